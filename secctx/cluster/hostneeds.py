"""What a run needs from the host before Python can start it: Debian packages and
a Docker engine, by the mode the run will take.

hack/lib.sh asks `python -m secctx host-needs [PYTEST ARGS]` and installs only
what this prints; the mode is decided by secctx.cluster.mode, as set-up will
decide it (no second copy of that rule in bash).

- `--secctx-existing-cluster`: nothing. The suite builds nothing and talks only to the
  cluster's API server (no engine, no packages, no root).
- online kind: a Docker engine and busybox-static. The suite's own test images
  (myapp, identity, escalation) are built here from Debian's static busybox
  when their registry does not serve them to the nodes (session.ensure_images).
- offline kind: also debootstrap (the root filesystems), libseccomp-dev,
  pkg-config and gcc (runc and containerd are built with cgo, runc with seccomp).
- offline kind: also the VM node's host tools (qemu-system-x86, e2fsprogs, kmod, cpio,
  iproute2; cluster.vmnode.HOST_TOOLS): CI joins a VM node to its offline cluster
  (tests/integration/test_vm_node.py), and `--secctx-vm-node` asks for one.
- `--report-test` (hack/test.sh): chromium, which opens the HTML report.

Go is not a Debian package here (Debian's is older than the builds need): a
missing one is said, not installed.
"""
from __future__ import annotations

import argparse
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from ..core import run_command
from ..offline import log
from . import mode as modes
from .vmnode import HOST_TOOLS as VM_TOOLS

WHY = {
    "busybox-static": "the suite's own test images are built from it when no registry serves them",
    "debootstrap": "the offline build's Debian root filesystems",
    "libseccomp-dev": "the offline build of runc (seccomp, cgo)",
    "pkg-config": "the offline build of runc (finds libseccomp)",
    "gcc": "the offline build of runc and containerd (cgo)",
    "chromium": "the report test opens the HTML report in a real browser",
    "docker.io": "no Docker engine is installed, and kind runs its nodes in one",
    **{pkg: f"the VM node ({tool})" for tool, pkg in VM_TOOLS.items()},
}
KIND = ("busybox-static",)
VM_NODE = tuple(dict.fromkeys(p for p in VM_TOOLS.values() if p not in KIND + ("dpkg", "apt")))
OFFLINE = KIND + ("debootstrap", "libseccomp-dev", "pkg-config", "gcc") + VM_NODE
DOCKER_SOCKET = Path("/var/run/docker.sock")


@dataclass
class Needs:
    mode: str  # online, offline or existing
    why: str
    engine: bool
    packages: list[str] = field(default_factory=list)  # wanted, installed or not

    def summary(self) -> str:
        wanted = ", ".join(self.packages) or "no Debian packages"
        engine = "a Docker engine" if self.engine else "no Docker engine"
        return f"mode {self.mode} ({self.why}): needs {engine} and {wanted}"


def parse(args: list[str]) -> argparse.Namespace:
    """The few pytest options that decide the host's needs; the rest are pytest's."""
    p = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    # Both spellings of the plugin's options (secctx.run.options), the old one for a release.
    p.add_argument("--secctx-existing-cluster", "--existing-cluster", dest="existing_cluster",
                   action="store_true")
    p.add_argument("--secctx-mode", "--mode", dest="mode", default="auto")
    p.add_argument("--report-test", action="store_true")
    return p.parse_known_args(args)[0]


def needs(args: list[str], docker_info: dict | None, image_present,
          engine_installed: bool) -> Needs:
    """What the run of pytest `args` needs. `docker_info`: the running engine's
    `docker info` or None; `image_present(tag)` asks it (only called with one)."""
    opts = parse(args)
    extra = ["chromium"] if opts.report_test else []
    if opts.existing_cluster:
        return Needs("existing", "--secctx-existing-cluster: the suite builds nothing", False, extra)
    if docker_info is None:  # no engine answers yet: nothing local to look at
        image_present = _nothing_present
    mode, why = modes.detect(opts.mode, docker_info or {}, image_present)
    packages = list(OFFLINE if mode == modes.OFFLINE else KIND) + extra
    if docker_info is None and not engine_installed:
        packages.append("docker.io")
    return Needs(mode, why, True, packages)


def _nothing_present(_tag: str) -> bool:
    return False


def missing(packages: list[str]) -> list[str] | None:
    """The packages dpkg does not report installed; None on a host without dpkg."""
    if not shutil.which("dpkg-query"):
        return None
    absent = []
    for p in packages:
        proc = run_command.run(["dpkg-query", "-W", "-f=${Status}", p], timeout=run_command.QUERY,
                               check=False)
        if "install ok installed" not in proc.stdout:
            absent.append(p)
    return absent


def engine_installed() -> bool:
    """A Docker engine to use: one answering on its socket, or dockerd to start."""
    return bool(shutil.which("docker") and (shutil.which("dockerd") or DOCKER_SOCKET.is_socket()))


def report(args: list[str]) -> str:
    """hack/lib.sh's input: `engine yes|no`, then `missing PACKAGE<TAB>WHY` lines.
    The decision itself goes to stderr, one line."""
    from ..images import docker
    from . import engine
    info = engine.docker_info()
    found = needs(args, info, docker.image_exists, engine_installed())
    log.step(found.summary())
    absent = missing(found.packages)
    if absent is None:
        log.step("not a Debian host: install these yourself: " + ", ".join(
            f"{p} ({WHY[p]})" for p in found.packages))
        absent = []
    lines = [f"engine {'yes' if found.engine else 'no'}"]
    lines += [f"missing {p}\t{WHY[p]}" for p in absent]
    return "\n".join(lines) + "\n"
