"""Which Kubernetes version a run gets (a minor resolves to its newest patch),
and which ones the offline builder can build, asked before any long step."""
from __future__ import annotations

import re
import shutil

from ..core import run_command, timeouts
from ..core.run_command import CommandError
from ..offline.gobuild import kubernetes_built
from ..offline.gomod import KubeVersion, VersionError, check_offline_buildable
from . import mode as modes


def check_offline_version(version: KubeVersion) -> None:
    """Before any long step: the offline builder supports the version, and the Go
    module proxy serves it (asked only when its binaries are not cached)."""
    check_offline_buildable(version)
    if kubernetes_built(version):
        return
    served = served_kubernetes_versions()
    if served is not None:
        check_offline_buildable(version, served)


def served_kubernetes_versions(timeout: float = timeouts.VERSION_LIST) -> list[str] | None:
    """Versions of k8s.io/kubernetes the Go module proxy lists; None when it cannot
    be asked (the build then reports its own error)."""
    if not shutil.which("go"):
        return None
    try:
        proc = run_command.run(["go", "list", "-m", "-versions", "k8s.io/kubernetes"],
                               timeout=timeout, cwd="/", check=False)
    except CommandError:
        return None
    fields = proc.stdout.split()
    if not proc.ok or not fields or fields[0] != "k8s.io/kubernetes":
        return None
    return fields[1:]


def resolve(requested: str, mode: str) -> tuple[KubeVersion, str]:
    """(version, how it was chosen). A minor ("v1.36" or "1.36") means its newest
    patch: online the newest published kindest/node tag, offline the newest release
    the Go module proxy serves."""
    m = re.fullmatch(r"v?(\d+)\.(\d+)", requested.strip())
    if not m:
        return KubeVersion.parse(requested), "as asked"
    minor = f"v{m.group(1)}.{m.group(2)}"
    if mode == modes.ONLINE:
        newest = modes.newest_published(minor)
        if newest is None:
            raise VersionError(f"--kubernetes-version {requested}: kind v0.33.0 publishes no "
                               f"node image for {minor}; give a full version (vX.Y.Z), which "
                               "kind then builds (kind build node-image --type release)")
        return KubeVersion.parse(newest), f"{minor}: the newest published kindest/node tag"
    served = served_kubernetes_versions() or []
    newest = newest_release(served, minor)
    if newest is None:
        raise VersionError(f"--kubernetes-version {requested}: the Go module proxy serves no "
                           f"release of {minor} (or cannot be asked); give a full version vX.Y.Z")
    return KubeVersion.parse(newest), f"{minor}: the newest release the Go module proxy serves"


def newest_release(served: list[str], minor: str) -> str | None:
    patches = [v for v in served if re.fullmatch(re.escape(minor) + r"\.\d+", v)]
    return max(patches, key=lambda v: int(v.rsplit(".", 1)[1])) if patches else None
