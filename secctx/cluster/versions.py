"""Which Kubernetes versions the offline builder can build, asked before any long step."""
from __future__ import annotations

import shutil
import subprocess

from ..offline.gobuild import kubernetes_built
from ..offline.gomod import KubeVersion, check_offline_buildable


def check_offline_version(version: KubeVersion) -> None:
    """Before any long step: the offline builder supports the version, and the Go
    module proxy serves it (asked only when its binaries are not cached)."""
    check_offline_buildable(version)
    if kubernetes_built(version):
        return
    served = served_kubernetes_versions()
    if served is not None:
        check_offline_buildable(version, served)


def served_kubernetes_versions(timeout: float = 60) -> list[str] | None:
    """Versions of k8s.io/kubernetes the Go module proxy lists; None when it cannot
    be asked (the build then reports its own error)."""
    if not shutil.which("go"):
        return None
    try:
        proc = subprocess.run(["go", "list", "-m", "-versions", "k8s.io/kubernetes"],
                              capture_output=True, text=True, timeout=timeout, cwd="/")
    except (subprocess.TimeoutExpired, OSError):
        return None
    fields = proc.stdout.split()
    if proc.returncode != 0 or not fields or fields[0] != "k8s.io/kubernetes":
        return None
    return fields[1:]
