"""Debian root filesystems made with debootstrap, cached by suite and package list.

The node image and the larger workload images (nginx, the debug image) start
from one of these instead of a registry base image.
"""
from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path

from filelock import FileLock

from ..core import cache, run_command
from ..core.run_command import CommandError
from . import log
from .gobuild import BuildError

SUITE = "bookworm"
# debootstrap downloads and unpacks a few hundred packages: minutes when cold; the bound
# catches a stalled mirror, not a slow one.
ROOTFS_TIMEOUT = 3600
MIRROR = "http://deb.debian.org/debian"

# What kind's base image installs (images/base/Dockerfile), less the rootless
# and storage-protocol extras (fuse-overlayfs, nfs-common, open-iscsi).
NODE_PACKAGES = (
    "systemd", "systemd-sysv", "dbus", "conntrack", "iptables", "nftables", "iproute2",
    "ethtool", "util-linux", "mount", "kmod", "libseccomp2", "pigz", "e2fsprogs", "bash",
    "ca-certificates", "curl", "jq", "procps",
    "crun",  # a second runtime handler (nodeimage.RUNTIME_HANDLERS)
)


def tarball(packages: tuple[str, ...], suite: str = SUITE) -> Path:
    """A gzip'ed rootfs with `packages`, built once per (suite, packages). Two runs on one
    machine (xdist workers, two checkouts) build it once: the second waits for the lock."""
    key = hashlib.sha256(f"{suite}:{','.join(sorted(packages))}".encode()).hexdigest()[:12]
    out = cache.path("rootfs", f"{suite}-{key}.tar.gz")
    if out.exists():
        return out
    if not shutil.which("debootstrap"):
        raise BuildError("debootstrap is missing: apt-get install debootstrap")
    out.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out.with_suffix(".lock"))):
        if not out.exists():
            _debootstrap(packages, suite, out)
    return out


def _debootstrap(packages: tuple[str, ...], suite: str, out: Path) -> None:
    # A directory of this build's own: never one that another build is writing.
    work = Path(tempfile.mkdtemp(prefix=out.name + ".", dir=out.parent))
    try:
        log.step(f"debootstrap {suite} with {len(packages)} packages (a few minutes, once)")
        _run(["debootstrap", "--variant=minbase", f"--include={','.join(packages)}", suite,
              str(work), MIRROR])
        # Trim what no container needs: apt lists, caches, docs.
        for sub in ("var/lib/apt/lists", "var/cache/apt", "usr/share/doc", "usr/share/man",
                    "usr/share/locale"):
            shutil.rmtree(work / sub, ignore_errors=True)
            (work / sub).mkdir(parents=True, exist_ok=True)
        tmp = work.with_suffix(".tmp")
        _run(["tar", "-C", str(work), "--numeric-owner", "-czf", str(tmp), "."])
        tmp.rename(out)
    finally:
        _remove(work)


def _remove(work: Path) -> None:
    """A failed debootstrap leaves the target's /proc (and /sys) mounted: unmount them
    first, or rmtree walks the host's /proc and the directory stays."""
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()
              if line.split()[1].startswith(f"{work}/")]
    for mount in sorted(mounts, reverse=True):
        run_command.run(["umount", "--lazy", mount], timeout=run_command.QUERY, check=False)
    shutil.rmtree(work, ignore_errors=True)


def _run(cmd: list[str]) -> None:
    try:
        with log.heartbeat(" ".join(cmd[:2])):  # debootstrap takes minutes cold
            run_command.run(cmd, timeout=ROOTFS_TIMEOUT)
    except CommandError as err:
        raise BuildError(f"{cmd[0]} failed ({err.problem}):\n{err.stdout[-3000:]}\n"
                         f"{err.stderr[-3000:]}") from None

# One rootfs for the Debian-based workload images, so that inside the node
# they share a layer: the nginx stand-in, the debug (netshoot) stand-in and
# kube-proxy, which needs iptables and conntrack.
WORKLOAD_PACKAGES = (
    "nginx-light", "iproute2", "iputils-ping", "procps", "libcap2-bin", "iptables",
    "conntrack", "ca-certificates",
)
