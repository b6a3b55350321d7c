"""Online or offline: where the node image and workload images come from.

online:  kindest/node and the recipe's real images, pulled (laptops, CI
         runners with registry access).
offline: everything built here from package registries (secctx.offline).

`auto` never probes the network (air-gapped hosts flag such probes). It
picks online when the host shows signs of registry access: running in
GitHub Actions, the Docker client holds registry credentials, the engine
has registry mirrors, or the online node image is already present.
Otherwise offline. `--mode` or SECCTX_MODE overrides.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

ONLINE, OFFLINE = "online", "offline"

# kind v0.33.0's default node image; other versions use kindest/node:<version>.
KIND_DEFAULT_NODE_IMAGE = ("kindest/node:v1.37.0@sha256:"
                           "a1ed56cfb0e7b93589bdf97c8cd566405a265939e3620fc4f5de89adff580ae5")


def online_node_image(version: str | None) -> str:
    return f"kindest/node:{version}" if version else KIND_DEFAULT_NODE_IMAGE


def detect(requested: str, docker_info: dict, image_present) -> tuple[str, str]:
    """(mode, why). `image_present(tag) -> bool` checks the local engine."""
    requested = os.environ.get("SECCTX_MODE", requested) if requested == "auto" else requested
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


def _docker_client_has_registry_login() -> bool:
    path = Path(os.environ.get("DOCKER_CONFIG", Path.home() / ".docker")) / "config.json"
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return bool(config.get("auths") or config.get("credsStore") or config.get("credHelpers"))
