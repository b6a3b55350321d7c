"""The image map: recipe image reference -> image the suite runs, per mode.

Read from fixtures/images.yaml (+ --secctx-image-map), then, with --secctx-image-registry
HOST[/PREFIX], every image is pulled from that registry under its repository
path and tag, as a mirror keeps them (`docker.io/library/busybox:1.36` ->
`HOST/PREFIX/library/busybox:1.36`). Where the images come from and how they
reach the nodes: secctx.images.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import yaml

from ..core import paths, podspec

DEFAULT_MAP = paths.FIXTURES / "images.yaml"
# Where the suite's own test images are published (their online names); a kind
# cluster without access to them gets them built here and loaded (secctx.images.load).
SUITE_REGISTRY = "ghcr.io/secctx-conformance"
DOCKER_HUB = "docker.io"


def split_reference(reference: str) -> tuple[str, str]:
    """(registry, repository path with tag or digest), as containerd resolves a
    reference: no registry part means Docker Hub, and a one-part name there is
    `library/NAME`."""
    first, _, rest = reference.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return first, rest
    return DOCKER_HUB, reference if rest else f"library/{reference}"


def registry_problem(value: str) -> str | None:
    """What is wrong with an --secctx-image-registry value, or None."""
    host = value.split("/", 1)[0]
    if not value or "://" in value or value.endswith("/") or not host or \
            ("." not in host and ":" not in host and host != "localhost"):
        return (f"--secctx-image-registry {value!r} is not HOST[:PORT][/PREFIX] (a registry host has a "
                "dot or a port, no scheme; e.g. registry.example.com/mirror or localhost:5000)")
    return None


class ImageMapError(ValueError):
    pass


@dataclass(frozen=True)
class ImageMap:
    mode: str
    entries: dict[str, str]  # recipe reference -> local reference
    registry: str | None = None  # --secctx-image-registry HOST[/PREFIX]

    @classmethod
    def load(cls, mode: str, extra: Path | None = None, registry: str | None = None) -> ImageMap:
        merged: dict[str, dict] = {}
        for path in [DEFAULT_MAP] + ([extra] if extra else []):
            data = yaml.safe_load(path.read_text()) or {}
            if not isinstance(data, dict):
                raise ImageMapError(f"{path}: expected a mapping of image references")
            for ref, modes in data.items():
                if not isinstance(modes, dict) or not ({"online", "offline"} & modes.keys()):
                    raise ImageMapError(f"{path}: {ref!r} needs an 'online' and/or 'offline' image")
                merged.setdefault(ref, {}).update(modes)
        return cls(mode, {ref: m.get(mode, ref) for ref, m in merged.items()}, registry)

    def resolve(self, reference: str) -> str:
        image = self.entries.get(reference, reference)
        if self.registry:
            image = str(PurePosixPath(self.registry, split_reference(image)[1]))
        return image

    def suite_owned(self) -> dict[str, str]:
        """The suite's own test images: {image the run uses: what `build` tags it}.
        Their online names live under SUITE_REGISTRY."""
        return {self.resolve(ref): ref for ref, image in self.entries.items()
                if image.startswith(SUITE_REGISTRY + "/")}

    def rewrite(self, obj: dict, mode: str | None = None) -> dict:
        """Copy of a manifest object with every container image and image volume
        (`volumes[].image.reference`) mapped.

        Offline (`mode`, default the map's own) every container and image volume also
        gets pull policy `Never`: its image must already be on the node, and a
        missing one fails at once with ErrImageNeverPull instead of the kubelet
        trying a registry. Online the manifest's policy is kept.
        """
        never = (mode or self.mode) == "offline"
        obj = copy.deepcopy(obj)
        if not isinstance(obj.get("spec"), dict):  # ConfigMaps, Secrets: no containers
            return obj
        for c in podspec.containers(podspec.pod_spec(obj)):
            if "image" in c:
                c["image"] = self.resolve(c["image"])
                if never:
                    c["imagePullPolicy"] = "Never"
        for volume in podspec.pod_spec(obj).get("volumes") or []:
            image = volume.get("image")
            if isinstance(image, dict) and "reference" in image:
                image["reference"] = self.resolve(image["reference"])
                if never:
                    image["pullPolicy"] = "Never"
        return obj

    def local_images(self) -> list[str]:
        return sorted({self.resolve(ref) for ref in self.entries})
