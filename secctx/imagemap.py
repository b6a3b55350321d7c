"""The image map: recipe image reference -> image the suite runs, per mode.

Read from fixtures/images.yaml (+ --image-map). Where the images come from and
how they reach the nodes: secctx.images.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from . import paths, podspec

DEFAULT_MAP = paths.FIXTURES / "images.yaml"


class ImageMapError(ValueError):
    pass


@dataclass(frozen=True)
class ImageMap:
    mode: str
    entries: dict[str, str]  # recipe reference -> local reference

    @classmethod
    def load(cls, mode: str, extra: Path | None = None) -> ImageMap:
        merged: dict[str, dict] = {}
        for path in [DEFAULT_MAP] + ([extra] if extra else []):
            data = yaml.safe_load(path.read_text()) or {}
            if not isinstance(data, dict):
                raise ImageMapError(f"{path}: expected a mapping of image references")
            for ref, modes in data.items():
                if not isinstance(modes, dict) or not ({"online", "offline"} & modes.keys()):
                    raise ImageMapError(f"{path}: {ref!r} needs an 'online' and/or 'offline' image")
                merged.setdefault(ref, {}).update(modes)
        return cls(mode, {ref: m.get(mode, ref) for ref, m in merged.items()})

    def resolve(self, reference: str) -> str:
        return self.entries.get(reference, reference)

    def rewrite(self, obj: dict, mode: str | None = None) -> dict:
        """Copy of a manifest object with every container image and image volume
        (`volumes[].image.reference`) mapped.

        Offline (`mode`, default the map's own) every container and image volume also
        gets pull policy `Never`: its image must already be on the node, and a
        missing one fails at once with ErrImageNeverPull instead of the kubelet
        trying a registry. Online the manifest's policy is kept.
        """
        import copy
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
        return sorted(set(self.entries.values()))
