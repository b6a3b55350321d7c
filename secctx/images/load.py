"""How a run's images get onto the nodes: into the local Docker engine first
(built, or pulled online), checked there, then loaded into the kind nodes.

Which images: every image of the run's image map (secctx.imagemap) plus the
workload images the suite builds (secctx.images.build). Online, the images the
map names from a registry are pulled (not again when the engine has them) and
the recipe's USER 1000 nginx is rebuilt FROM the pulled nginx; offline nothing
is pulled: the map names only images built here.
"""
from __future__ import annotations

from pathlib import Path

from ..cluster.kind import ClusterError, KindCluster
from ..cluster.mode import OFFLINE, ONLINE
from ..imagemap import ImageMap
from ..offline import log
from . import build, docker

LOCAL_PREFIX = "secctx.local/"  # images built here, never pulled


def ensure_local(image_map: ImageMap, extra_map: Path | None = None) -> list[str]:
    """Every image the run loads onto the nodes, in the local Docker engine
    (built, pulled online, checked); returns their tags. Called before any
    cluster exists, so that a missing image fails the run before kind starts."""
    workload = build.build_workload_images(offline=(image_map.mode == OFFLINE))
    if image_map.mode == ONLINE:
        pull_online(image_map)
    tags = sorted(set(image_map.local_images()) | set(workload.values()))
    check_local(tags, image_map, extra_map)
    return tags


def load_onto_nodes(kind: KindCluster, tags: list[str]) -> None:
    """`kind load docker-image`: the images of ensure_local into every node."""
    kind.load_images(tags)


def pull_online(image_map: ImageMap) -> None:
    """Pull the map's registry images the engine lacks; rebuild the recipe's
    USER 1000 nginx FROM the pulled nginx."""
    for ref in image_map.local_images():
        if not ref.startswith(LOCAL_PREFIX) and not docker.image_exists(ref):
            log.step(f"docker pull {ref}")
            docker.run(["pull", ref])
    build.build_user1000(image_map.resolve("nginx:1.25"),
                         image_map.resolve("secctx/nginx-user1000:1.25"))


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
