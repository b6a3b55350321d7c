"""Build binaries from Go modules into a cache keyed by module versions."""
from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

from ..core import cache, run_command, timeouts
from ..core.run_command import CommandError
from . import log
from .gomod import KubeVersion, build_go_mod, version_ldflags

KUBERNETES_COMMANDS = (
    "kubeadm",
    "kubelet",
    "kubectl",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kube-proxy",
)


def go_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("GOFLAGS", "-buildvcs=false")
    env.update(extra)
    return env


def go(args: list[str], cwd: Path, env: dict[str, str] | None = None,
       timeout: float = timeouts.GO_BUILD) -> str:
    """Run the go tool; long steps (a cold Kubernetes build takes ~10 min on 2
    cores) print a heartbeat (log.HEARTBEAT) so that a log shows progress."""
    what = "go " + " ".join(args[:3]) + (" ..." if len(args) > 3 else "")
    log.step(what)
    try:
        with log.heartbeat(f"running {what}"):
            return run_command.run(["go", *args], cwd=cwd, env=env or go_env(), timeout=timeout,
                                   merge_stderr=True).stdout
    except CommandError as err:
        if err.timed_out or not err.started:
            raise BuildError(str(err)) from None
        raise BuildError(f"go {' '.join(args)} failed in {cwd}:\n{err.tail(4000)}") from None


class BuildError(RuntimeError):
    """A build step failed; the message carries the tool's output."""


def module_info(path: str, version: str, cwd: Path) -> dict:
    """`go mod download -json`: fetches the module and tells where its files are."""
    out = go(["mod", "download", "-json", f"{path}@{version}"], cwd)
    info = json.loads(out)
    if info.get("Error"):
        raise BuildError(f"{path}@{version}: {info['Error']}")
    return info


def kubernetes_bin_dir(version: KubeVersion | str, root: Path | None = None) -> Path:
    """Where the Kubernetes binaries of `version` are cached (under `root`,
    default the cache root)."""
    return (root or cache.root()) / "kubernetes" / str(version) / "bin"


def kubernetes_built(version: KubeVersion | str, root: Path | None = None) -> bool:
    """The Kubernetes binaries of `version` are built: every command of
    KUBERNETES_COMMANDS is in kubernetes_bin_dir (the one test of it)."""
    bin_dir = kubernetes_bin_dir(version, root)
    return all((bin_dir / c).exists() for c in KUBERNETES_COMMANDS)


def build_kubernetes(version: KubeVersion) -> Path:
    """Directory with kubeadm, kubelet, kubectl and the control-plane commands,
    static and version-stamped; built once per version."""
    out_dir = kubernetes_bin_dir(version)
    if kubernetes_built(version):
        return out_dir
    work = out_dir.with_name("work")
    work.mkdir(parents=True, exist_ok=True)
    (work / "go.mod").write_text("module secctx.local/probe\n\ngo 1.22\n")
    info = module_info("k8s.io/kubernetes", str(version), work)
    kubernetes_mod = Path(info["GoMod"]).read_text()
    (work / "go.mod").write_text(build_go_mod("secctx.local/kubebuild", version, kubernetes_mod))
    (work / "go.sum").unlink(missing_ok=True)
    pkgs = [f"k8s.io/kubernetes/cmd/{c}" for c in KUBERNETES_COMMANDS]
    go(["get", *[f"{p}@{version}" for p in pkgs]], work)
    commit = (info.get("Origin") or {}).get("Hash", "0" * 40)
    built = datetime.fromisoformat(info.get("Time", "1970-01-01T00:00:00Z").replace("Z", "+00:00"))
    ldflags = version_ldflags(version, commit, built.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    go(["build", "-trimpath", "-ldflags", ldflags, "-o", str(tmp) + "/", *pkgs], work,
       go_env(CGO_ENABLED="0"))
    tmp.rename(out_dir)
    return out_dir
