"""How a run's images get onto the nodes.

Offline: every image is built here, checked in the local Docker engine, and
loaded into the kind nodes (pods run them with imagePullPolicy Never).
Online: the nodes pull every image themselves, with the manifests' own pull
policy; nothing is pulled into the engine, built or loaded. The one exception,
said in a line: the suite's own test images, when their registry does not
serve them to a kind cluster's nodes (`load_suite_images`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..cluster.kind import ClusterError, KindCluster
from ..cluster.mode import OFFLINE
from ..offline import log
from . import build, docker
from .imagemap import ImageMap

LOCAL_PREFIX = "secctx.local/"  # images built here, never pulled
NGINX_USER1000 = "secctx/nginx-user1000:1.25"


@dataclass
class Tally:
    """What the run did to get its images: shown in the report's environment."""
    built_here: list[str] = field(default_factory=list)
    loaded: list[str] = field(default_factory=list)
    pulled_by_nodes: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (f"{len(self.pulled_by_nodes)} pulled by the nodes, {len(self.built_here)} built "
                f"here, {len(self.loaded)} loaded into the nodes")


def ensure_local(image_map: ImageMap, extra_map: Path | None = None) -> list[str]:
    """Offline, every image the run loads onto the nodes, in the local Docker
    engine (built, checked); returns their tags. Called before any cluster
    exists, so that a missing image fails the run before kind starts. Online:
    nothing (the nodes pull)."""
    if image_map.mode != OFFLINE:
        log.step(f"{image_map.mode}: the nodes pull the run's {len(image_map.local_images())} "
                 "images; nothing is built or loaded here")
        return []
    workload = build.build_workload_images(offline=True)
    tags = sorted(set(image_map.local_images()) | set(workload.values()))
    check_local(tags, image_map, extra_map)
    return tags


def load_onto_nodes(kind: KindCluster, tags: list[str]) -> None:
    """`kind load docker-image`: the images of ensure_local into every node."""
    kind.load_images(tags)


def build_suite_images(image_map: ImageMap, images: list[str]) -> None:
    """Build the suite's own test images here and tag each with the name the run
    uses for it (`images`: names from image_map.suite_owned())."""
    owned = image_map.suite_owned()
    local = ImageMap.load(OFFLINE).entries  # the offline names are the local build tags
    build.build_workload_images(offline=False)
    for image in images:
        ref = owned[image]
        if ref == NGINX_USER1000:  # the recipe's Dockerfile, FROM the nginx the run uses
            nginx = image_map.resolve("nginx:1.25")
            if not docker.image_exists(nginx):
                log.step(f"docker pull {nginx} (the base of {image})")
                docker.run(["pull", nginx])
            source = LOCAL_PREFIX + "nginx-user1000:1.25"
            build.build_user1000(nginx, source)
        else:
            source = local[ref]
        docker.run(["tag", source, image])


def load_suite_images(kind: KindCluster, image_map: ImageMap, images: list[str]) -> list[str]:
    """The suite's own test images that the nodes could not pull: built here and
    loaded into the kind nodes (a tag other than latest: the pods' IfNotPresent
    finds them there)."""
    build_suite_images(image_map, images)
    kind.load_images(images)
    return images


def publish(registry: str) -> list[str]:
    """Build the suite's own test images and push them to `registry` (HOST[/PREFIX])
    under the names --image-registry gives them; returns those names."""
    image_map = ImageMap.load("online", registry=registry)
    images = sorted(image_map.suite_owned())
    build_suite_images(image_map, images)
    for image in images:
        log.step(f"docker push {image}")
        docker.run(["push", image])
    return images


def check_local(tags: list[str], image_map: ImageMap, extra_map: Path | None) -> None:
    """Every image about to be loaded into the nodes is in the local engine."""
    missing = [t for t in tags if not docker.image_exists(t)]
    if missing:
        refs = {v: k for k, v in image_map.entries.items()}
        named = ", ".join(f"{t} (for {refs[t]})" if t in refs else t for t in missing)
        where = f"{extra_map} or fixtures/images.yaml" if extra_map else "fixtures/images.yaml"
        raise ClusterError(f"image(s) {named} are not in the local Docker engine, so they cannot "
                           f"be loaded into the nodes: build or `docker load` them, or fix the "
                           f"image map ({where})")
