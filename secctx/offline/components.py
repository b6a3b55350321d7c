"""Node components built from their Go modules, pinned here.

Versions follow what kind's own base image pins (images/base/Dockerfile of
the kind release below), restricted to what the Go module proxy serves.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from ..core import cache
from . import log
from .gobuild import go, go_env, module_info
from .gomod import wrapper_go_mod

KIND_VERSION = "v0.33.0"


@dataclass(frozen=True)
class GoComponent:
    name: str
    module: str
    version: str
    packages: tuple[str, ...]  # relative to the module root; "." is the root
    cgo: bool = False
    tags: tuple[str, ...] = ()
    ldflags: str = ""  # may use {version} and {bare} (version without "v")
    local_version: str | None = None  # version of sibling modules for ../ replaces
    root_binary: str = ""  # name of the binary built from the module root (".")
    renames: tuple[tuple[str, str], ...] = ()  # (package, binary name) where not its base name

    def binary_name(self, package: str) -> str:
        renamed = dict(self.renames).get(package)
        if renamed:
            return renamed
        return self.root_binary or self.name if package == "." else Path(package).name


COMPONENTS = {
    c.name: c for c in (
        GoComponent("containerd", "github.com/containerd/containerd/v2", "v2.3.4",
                    ("cmd/containerd", "cmd/containerd-shim-runc-v2", "cmd/ctr"), cgo=True,
                    tags=("no_aufs", "no_zfs", "no_btrfs", "no_devmapper"),
                    ldflags="-X github.com/containerd/containerd/v2/version.Version={version}"),
        GoComponent("runc", "github.com/opencontainers/runc", "v1.4.3", (".",), cgo=True,
                    tags=("seccomp", "urfave_cli_no_docs"), ldflags="-X main.version={bare}"),
        GoComponent("crictl", "sigs.k8s.io/cri-tools", "v1.36.0", ("cmd/crictl",),
                    ldflags="-X sigs.k8s.io/cri-tools/pkg/version.Version={version}"),
        GoComponent("cni-plugins", "github.com/containernetworking/plugins", "v1.9.1",
                    ("plugins/main/bridge", "plugins/main/loopback", "plugins/main/ptp",
                     "plugins/ipam/host-local", "plugins/meta/portmap")),
        GoComponent("kind", "sigs.k8s.io/kind", KIND_VERSION, (".",)),
        # gVisor publishes no tagged module versions: its `go` branch, as the Go proxy
        # resolves gvisor.dev/gvisor@go (Debian's runsc is from 2022 and has no shim).
        GoComponent("gvisor", "gvisor.dev/gvisor", "v0.0.0-20260527191743-a81fd9dd382e",
                    ("runsc", "shim"), renames=(("shim", "containerd-shim-runsc-v1"),),
                    ldflags="-X gvisor.dev/gvisor/runsc/version.version={version}"),
        GoComponent("local-path-provisioner", "github.com/rancher/local-path-provisioner",
                    "v0.0.30", (".",)),
    )
}

# CRI-O for the CRI-O node image (--cri crio); the containerd image does not carry it.
# Its minor follows Kubernetes', but the Go module proxy serves only v1.34.0 of
# github.com/cri-o/cri-o (v1.35.0, v1.36.0, v1.37.0 and v1.34.1 answer "not available"),
# so every Kubernetes minor's CRI-O node runs v1.34.0 (kubelet v1.37 speaks CRI v1 to it).
# cgo against Debian's libseccomp-dev with CRI-O's `seccomp` tag (without it its seccomp
# package is the unsupported stub and RuntimeDefault applies nothing). The optional
# back-ends are left out by tags, not linked: no btrfs/devicemapper graph drivers, the
# Go openpgp instead of libgpgme (no cgo dependency), no ostree.
CRIO = GoComponent(
    "crio", "github.com/cri-o/cri-o", "v1.34.0", ("cmd/crio",), cgo=True,
    tags=("seccomp", "containers_image_ostree_stub", "containers_image_openpgp",
          "exclude_graphdriver_btrfs", "btrfs_noversion", "exclude_graphdriver_devicemapper"),
    ldflags="-X github.com/cri-o/cri-o/internal/version.buildDate=1970-01-01T00:00:00Z")


def etcd(version: str) -> GoComponent:
    """etcd at the version kubeadm asks for ("3.7.0-0" -> v3.7.0)."""
    v = "v" + version.split("-")[0].lstrip("v")
    return GoComponent("etcd", "go.etcd.io/etcd/server/v3", v, (".",),
                       ldflags="-X go.etcd.io/etcd/api/v3/version.GitSHA=secctx", root_binary="etcd")


def coredns(version: str) -> GoComponent:
    return GoComponent("coredns", "github.com/coredns/coredns", version, (".",))


def _out(component: GoComponent) -> Path:
    return cache.path("components", component.name, component.version)


def built(component: GoComponent) -> bool:
    """The component's binaries are in the cache (build() returns at once)."""
    return _out(component).exists()


def build(component: GoComponent) -> Path:
    """Directory with the component's binaries; built once per version."""
    out = _out(component)
    if out.exists():
        return out
    work = cache.path("work", component.name, component.version)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    (work / "go.mod").write_text("module secctx.local/probe\n\ngo 1.22\n")
    log.step(f"building {component.name} {component.version} from {component.module}")
    info = module_info(component.module, component.version, work)
    (work / "go.mod").write_text(wrapper_go_mod(component.module, component.version,
                                                Path(info["GoMod"]).read_text(),
                                                component.local_version))
    pkgs = [component.module if p == "." else f"{component.module}/{p}" for p in component.packages]
    go(["get", *[f"{p}@{component.version}" for p in pkgs]], work)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    args = ["build", "-trimpath", "-ldflags", "-s -w " + component.ldflags.format(
        version=component.version, bare=component.version.lstrip("v"))]
    if component.tags:
        args += ["-tags", " ".join(component.tags)]
    env = go_env(CGO_ENABLED="1" if component.cgo else "0")
    for rel, pkg in zip(component.packages, pkgs):
        go([*args, "-o", str(tmp / component.binary_name(rel)), pkg], work, env)
    tmp.rename(out)
    shutil.rmtree(work, ignore_errors=True)
    return out
