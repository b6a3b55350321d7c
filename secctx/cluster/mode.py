"""Online or offline: where the node image and workload images come from.

online:  kindest/node and the recipe's real images, pulled (laptops, CI
         runners with registry access).
offline: everything built here from package registries (secctx.offline,
         secctx.images).

`auto` never probes the network (air-gapped hosts flag such probes). It
picks online when the host shows signs of registry access: running in
GitHub Actions, the Docker client holds registry credentials, the engine
has registry mirrors, or the online node image is already present.
Otherwise offline. `--mode` or SECCTX_MODE overrides.

An existing cluster (--existing-cluster) has no mode of its own: the suite
builds nothing for it. Its image map is the online one (the recipe's real
images, pulled by its nodes) unless offline is asked for; then the offline
names are used, which must already be on the nodes (pods get
`imagePullPolicy: Never`).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

ONLINE, OFFLINE = "online", "offline"

# The kindest/node tags kind v0.33.0's release notes list. The default one is
# pinned by the digest kind's own source gives (pkg/apis/config/defaults/image.go);
# the others' digests are only in the release notes, which no source here holds:
# None until someone copies them from there (the tag is then pulled as is).
PUBLISHED_NODE_IMAGES: dict[str, str | None] = {
    "v1.37.0": "sha256:a1ed56cfb0e7b93589bdf97c8cd566405a265939e3620fc4f5de89adff580ae5",
    "v1.36.4": None,
    "v1.35.8": None,
    "v1.34.11": None,
}
KIND_DEFAULT_NODE_IMAGE = f"kindest/node:v1.37.0@{PUBLISHED_NODE_IMAGES['v1.37.0']}"
BUILT_NODE_REPOSITORY = "secctx.local/kindest-node"  # kind build node-image --type release


def online_node_image(version: str | None) -> tuple[str, bool]:
    """(node image, whether kind must build it): kind's default without a version,
    a published tag (by digest where pinned), else `kind build node-image --type
    release` of that version, tagged BUILT_NODE_REPOSITORY:<version>."""
    if not version:
        return KIND_DEFAULT_NODE_IMAGE, False
    if version in PUBLISHED_NODE_IMAGES:
        digest = PUBLISHED_NODE_IMAGES[version]
        return f"kindest/node:{version}" + (f"@{digest}" if digest else ""), False
    return f"{BUILT_NODE_REPOSITORY}:{version}", True


def newest_published(minor: str) -> str | None:
    """The newest published patch of `minor` ("v1.36"), or None."""
    patches = [v for v in PUBLISHED_NODE_IMAGES if v.startswith(minor + ".")]
    return max(patches, key=lambda v: int(v.rsplit(".", 1)[1])) if patches else None


def _requested(requested: str) -> str:
    """--mode, with SECCTX_MODE standing in for `auto`."""
    return os.environ.get("SECCTX_MODE", requested) if requested == "auto" else requested


def detect(requested: str, docker_info: dict, image_present) -> tuple[str, str]:
    """(mode, why). `image_present(tag) -> bool` checks the local engine."""
    requested = _requested(requested)
    if requested in (ONLINE, OFFLINE):
        return requested, "chosen with --mode/SECCTX_MODE"
    if os.environ.get("GITHUB_ACTIONS") == "true":
        return ONLINE, "running in GitHub Actions"
    if _docker_client_has_registry_login():
        return ONLINE, "the Docker client holds registry credentials (~/.docker/config.json)"
    if (docker_info.get("RegistryConfig") or {}).get("Mirrors"):
        return ONLINE, "the Docker engine has registry mirrors configured"
    if image_present(KIND_DEFAULT_NODE_IMAGE.split("@")[0]):
        return ONLINE, "kindest/node is already present locally"
    return OFFLINE, ("no sign of registry access (no GitHub Actions, no Docker login or "
                     "mirrors, no kindest/node image); use --mode online to pull instead")


def registry_problem(registry: str | None, mode: str, why: str) -> str | None:
    """--image-registry pulls every image; offline pulls nothing: not both."""
    if registry and _requested(mode) == OFFLINE:
        return (f"--image-registry {registry} pulls every image from that registry, but the "
                f"mode is offline ({why}), where nothing is pulled: add --mode online, or drop "
                "--image-registry")
    return None


def existing_cluster_map_mode(requested: str) -> tuple[str, str]:
    """(mode of the image map, why) for an existing cluster; nothing is probed."""
    if _requested(requested) == OFFLINE:
        return OFFLINE, ("chosen with --mode/SECCTX_MODE: offline names, which must already be on "
                         "the nodes (imagePullPolicy: Never)")
    return ONLINE, ("an existing cluster pulls the recipe's images; --mode offline uses the "
                    "offline names already on its nodes")


def _docker_client_has_registry_login() -> bool:
    path = Path(os.environ.get("DOCKER_CONFIG", Path.home() / ".docker")) / "config.json"
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return bool(config.get("auths") or config.get("credsStore") or config.get("credHelpers"))
