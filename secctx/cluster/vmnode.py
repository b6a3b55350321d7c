"""A worker node with its own kernel (cgroup v2, AppArmor), joined to an offline kind cluster.

The disk image is the cluster's own kind node image (same containerd, runc, crun,
kubelet) plus Debian's kernel and apparmor, cached under <cache>/vm/<key> keyed by the
node image and the kernel (build-image.sh, package data in vm/). qemu boots it (TCG; a
KVM guest never runs on this host, docs/vm-node-spike.md) on a TAP on the kind bridge
with a static address, so the API server reaches its kubelet like any node's; then
`kubeadm join` as kind's workers do, and a bounded wait for Ready.

`up` is a list of actions run in order (kind's pkg/cluster/internal/create style);
a failed action stops the VM, deletes the TAP and the Node object, and its error
carries the console's tail. Commands run through `_run` (one wrapper, VMNodeError).
"""
from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import signal
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..core import cache, run_command, timeouts
from ..core.run_command import CommandError
from ..offline import log
from .kind import ClusterError

HERE = Path(__file__).parent / "vm"
KERNEL_VERSION = "6.1.0-57-amd64"  # Debian bookworm's linux-image-amd64 (AppArmor by default)
KERNEL_DEB = f"linux-image-{KERNEL_VERSION}"
# The packages each --lsm adds to the node image (libselinux1, libsepol2 and libsemanage2
# are in it already). SELinux: Debian's reference policy, flavour "default" (MCS).
LSM_DEBS = {"apparmor": ("apparmor", "libapparmor1"),
            "selinux": ("selinux-utils", "policycoreutils", "selinux-policy-default")}
# Unpacked only to build refpolicy's container module at image-build time
# (vm/selinux-image.sh): the source, the headers and the tools from the same release.
LSM_BUILD_DEBS = {"apparmor": (),
                  "selinux": ("selinux-policy-src", "selinux-policy-dev", "checkpolicy",
                              "semodule-utils", "m4", "make")}
INITRD_MODULES = "virtio_pci virtio_blk virtio_net ext4 9pnet_virtio 9p"
SHELL_PIECES = ("build-image.sh", "init", "guest-agent.sh", "secctx-vm-agent.service",
                "20-vm-node.conf")
LSM_PIECES = {"apparmor": (), "selinux": ("selinux-image.sh",)}
LSMS = tuple(LSM_DEBS)
# Kernel arguments per --lsm: Debian's kernel has AppArmor as its default major LSM;
# saying so keeps the node what its name says whatever the kernel's default becomes.
# security= picks the one major LSM (6.1's legacy switch, so AppArmor is off with SELinux).
LSM_APPEND = {"apparmor": "apparmor=1 security=apparmor",
              # permissive: enforcing is blocked (docs/vm-node.md "SELinux"): containerd
              # runs in initrc_t, which may not enter container_t, and the guest agent's
              # 9p share is unlabeled_t
              "selinux": "security=selinux selinux=1 enforcing=0"}
# Host tools and the Debian package that brings each (one line for a missing one).
HOST_TOOLS = {"qemu-system-x86_64": "qemu-system-x86", "mkfs.ext4": "e2fsprogs",
              "depmod": "kmod", "cpio": "cpio", "busybox": "busybox-static",
              "ip": "iproute2", "dpkg-deb": "dpkg", "apt-get": "apt"}
# The label the suite pins a case to the VM node by, and a NoSchedule taint of the same
# key: nothing else of the suite (its own pods, local PVs' consumers) lands on the VM.
NODE_LABEL = "secctx.io/node-kind"  # nodefacts.NODE_KIND_LABEL
BOOT_TIMEOUT = 300.0   # boot to the guest agent: 12-18 s measured, 48 s at load 23
JOIN_TIMEOUT = 600.0   # kubeadm join: 15-22 s to Ready measured
READY_TIMEOUT = 600.0


class VMNodeError(ClusterError):
    """A step of the VM node failed: what, the command, its exit code and output tail,
    and the console's tail when the VM was running."""

    def __init__(self, what: str, *, command: list[str] | None = None, rc: int | None = None,
                 output: str = "", console: str = "", fix: str = ""):
        self.what, self.command, self.rc, self.output = what, command, rc, output
        self.console, self.fix = console, fix
        super().__init__(self.message())

    def message(self) -> str:
        # Bad input is one line: the cause, then its fix.
        parts = [self.what + (f"; fix: {self.fix}" if self.fix else "")]
        if self.command is not None:
            parts.append(f"  command: {shlex.join(self.command)[:300]}"
                         + (f" (exit {self.rc})" if self.rc is not None else ""))
        if self.output.strip():
            parts.append("  output:\n" + _indent(self.output.strip()[-3000:]))
        if self.console.strip():
            parts.append("  console (last lines):\n" + _indent(self.console))
        return "\n".join(parts)


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


def _run(command: list[str], what: str, timeout: float = timeouts.VM_COMMAND, input: str | None = None,
         console: Callable[[], str] | None = None) -> str:
    """The one place a host command runs: bounded, its failure a VMNodeError."""
    try:
        return run_command.run(command, input=input, timeout=timeout).stdout
    except CommandError as err:
        raise _failed(what, err, console) from None


def _failed(what: str, err: CommandError, console: Callable[[], str] | None = None) -> VMNodeError:
    if not err.started:  # a host tool missing: the package that brings it
        return VMNodeError(f"{what}: {err.problem}",
                           fix=f"apt-get install {HOST_TOOLS.get(err.command[0], err.command[0])}")
    return VMNodeError(f"{what}: {err.problem}" if err.timed_out else f"{what} failed",
                       command=err.command, rc=err.returncode, output=err.stdout + err.stderr,
                       console=console() if console else "")


# -- pure parts ------------------------------------------------------------------


def image_key(node_image_id: str, debs: list[str], pieces: dict[str, bytes],
              images: dict[str, str] | None = None) -> str:
    """The cache key of a disk image: the node image's ID, the deb files (their names
    carry the versions), the shell pieces that build and run it, and the workload
    images preloaded into it (ref -> digest)."""
    h = hashlib.sha256(node_image_id.encode())
    for name in sorted(debs):
        h.update(b"\0deb\0" + name.encode())
    for name in sorted(pieces):
        h.update(b"\0piece\0" + name.encode() + b"\0" + pieces[name])
    for ref in sorted(images or {}):
        h.update(b"\0image\0" + ref.encode() + b"\0" + images[ref].encode())
    return h.hexdigest()[:16]


def image_refs(ctr_ls: str) -> dict[str, str]:
    """`ctr images ls` as {ref: digest}, without the names `kind load` leaves beside each
    image's own ("import-<date>@sha256:...") and bare digests."""
    refs = {}
    for line in ctr_ls.splitlines()[1:]:  # REF TYPE DIGEST SIZE PLATFORMS LABELS
        fields = line.split()
        if len(fields) >= 3 and not fields[0].startswith(("sha256:", "import-")):
            refs[fields[0]] = fields[2]
    return refs


def node_name(cluster: str) -> str:
    return f"{cluster}-vm"


def tap_name(cluster: str) -> str:
    """A TAP name of at most 15 bytes (IFNAMSIZ), one per cluster."""
    return "vmn-" + hashlib.sha256(cluster.encode()).hexdigest()[:10]


def vm_address(prefix: str, cluster: str, taken: set[str]) -> str:
    """A static address in the kind /16 far above docker's allocations (it hands them
    out from the bottom), the same one for a cluster each time, never one a container
    holds. The spike's VM held 255.200."""
    start = int(hashlib.sha256(cluster.encode()).hexdigest(), 16) % 200 + 10
    for i in range(200):
        ip = f"{prefix}.254.{(start + i) % 200 + 10}"
        if ip not in taken:
            return ip
    raise VMNodeError(f"no free address in {prefix}.254.10-209 on the kind network")


def qemu_command(*, name: str, image_dir: Path, run_dir: Path, tap: str, ip: str, gateway: str,
                 lsm: str, cpus: int = 2, memory_mib: int = 3072, machine_uuid: str,
                 accel: str = "tcg,thread=multi") -> list[str]:
    """qemu booting the cached image as a throw-away snapshot (writes vanish with it),
    the node's address and hostname on the kernel command line, the guest agent's 9p
    share, the serial console to a file."""
    append = (f"console=ttyS0 loglevel=4 vm.ip={ip}/16 vm.gw={gateway} "
              f"systemd.hostname={name} {LSM_APPEND[lsm]}")
    mac = "52:54:00:" + ":".join(hashlib.sha256(name.encode()).hexdigest()[i:i + 2]
                                 for i in (0, 2, 4))
    return ["qemu-system-x86_64", "-name", name, "-accel", accel, "-cpu", "max",
            "-smp", str(cpus), "-m", str(memory_mib), "-uuid", machine_uuid,
            "-kernel", str(image_dir / "vmlinuz"), "-initrd", str(image_dir / "initrd.img"),
            "-append", append,
            "-drive", f"file={image_dir / 'disk.img'},if=virtio,format=raw,cache=unsafe",
            "-snapshot",
            "-netdev", f"tap,id=n0,ifname={tap},script=no,downscript=no",
            "-device", f"virtio-net-pci,netdev=n0,mac={mac}",
            "-device", "virtio-rng-pci",
            "-virtfs", f"local,path={run_dir / 'share'},mount_tag=secctxvm,"
                       "security_model=none,id=secctxvm",
            "-display", "none", "-serial", f"file:{run_dir / 'console.log'}", "-monitor", "none",
            "-daemonize", "-pidfile", str(run_dir / "qemu.pid")]


def join_arguments(print_join_command: str, name: str, lsm: str) -> list[str]:
    """`kubeadm token create --print-join-command`'s line made the VM's join: its node
    name and label, and SystemVerification ignored (it wants /proc/config.gz, which
    Debian's kernel builds as the 'configs' module it does not ship; kind ignores every
    preflight check)."""
    lines = [line for line in print_join_command.splitlines() if line.startswith("kubeadm join")]
    if not lines:
        raise VMNodeError("kubeadm token create printed no join command",
                          output=print_join_command)
    return [*shlex.split(lines[-1]), "--node-name", name,
            "--ignore-preflight-errors=SystemVerification"]


# -- the node ---------------------------------------------------------------------


@dataclass
class VMNode:
    cluster: str
    lsm: str = "apparmor"
    cpus: int = 2
    memory_mib: int = 3072
    # learned by the actions
    control_plane: str = ""
    node_image: str = ""
    node_image_id: str = ""
    bridge: str = ""
    ip: str = ""
    gateway: str = ""
    image_dir: Path | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return node_name(self.cluster)

    @property
    def kind(self) -> str:
        """Its node kind: the label's value and the suffix of its cases' ids."""
        return f"vm-{self.lsm}"

    @property
    def tap(self) -> str:
        return tap_name(self.cluster)

    @property
    def run_dir(self) -> Path:
        return cache.cluster_state(self.cluster) / "vm-node"

    @property
    def kubeconfig(self) -> Path:
        return cache.cluster_state(self.cluster) / "kubeconfig"

    def console_tail(self, lines: int = 25) -> str:
        path = self.run_dir / "console.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def pid(self) -> int | None:
        try:
            pid = int((self.run_dir / "qemu.pid").read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if Path(f"/proc/{pid}").exists() else None

    def guest(self, script: str, what: str, timeout: float = timeouts.VM_GUEST) -> str:
        """Run `script` in the VM through the guest agent (9p share); bounded, and a dead
        qemu ends the wait at once."""
        cmd = self.run_dir / "share" / "cmd"
        n = f"c{time.time_ns()}"
        (cmd / f"{n}.tmp").write_text(script + "\n")
        (cmd / f"{n}.tmp").rename(cmd / f"{n}.sh")
        deadline = time.monotonic() + timeout
        while not (cmd / f"{n}.rc").exists():
            if self.pid() is None:
                raise VMNodeError(f"{what}: qemu is gone", console=self.console_tail())
            if time.monotonic() > deadline:
                raise VMNodeError(f"{what}: no answer from the VM within {timeout:.0f}s",
                                  console=self.console_tail())
            time.sleep(0.3)
        out = (cmd / f"{n}.out").read_text(errors="replace")
        rc = int((cmd / f"{n}.rc").read_text().strip() or 1)
        if rc != 0:
            raise VMNodeError(f"{what} failed in the VM", command=["bash", "-c", script], rc=rc,
                              output=out)
        return out

    def kubectl(self, *args: str, timeout: float = timeouts.VM_KUBECTL) -> str:
        return _run(["docker", "exec", self.control_plane, "kubectl",
                     "--kubeconfig", "/etc/kubernetes/admin.conf", *args],
                    f"kubectl {' '.join(args[:2])}", timeout=timeout)


@dataclass(frozen=True)
class Action:
    name: str
    run: Callable[[VMNode], None]


def check_host(node: VMNode) -> None:
    if node.lsm not in LSMS:
        raise VMNodeError(f"--lsm {node.lsm}: this VM node kind has {', '.join(LSMS)} only")
    missing = sorted({pkg for tool, pkg in HOST_TOOLS.items()
                      if not shutil.which(tool, path="/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")})
    if missing:
        raise VMNodeError("the VM node needs host tools that are missing",
                          fix=f"apt-get install {' '.join(missing)}")
    if node.pid() is not None:
        raise VMNodeError(f"a VM node of {node.cluster} already runs (pid {node.pid()})",
                          fix=f"python -m secctx vm-node down --cluster-name {node.cluster}")


def learn_cluster(node: VMNode) -> None:
    """The control plane's container, its node image (the VM's root filesystem) and the
    kind network's bridge, prefix and gateway."""
    node.control_plane = f"{node.cluster}-control-plane"
    try:
        image = _run(["docker", "inspect", "--format", "{{.Config.Image}}", node.control_plane],
                     "docker inspect").strip()
    except VMNodeError:
        raise VMNodeError(f"no kind cluster {node.cluster!r} (no container {node.control_plane})",
                          fix=f"python -m secctx cluster-up --cluster-name {node.cluster} "
                              "--mode offline") from None
    if not image.startswith("secctx.local/kind-node"):
        raise VMNodeError(f"cluster {node.cluster!r} runs {image}, not an offline node image "
                          "(secctx.local/kind-node): the VM node is built from the offline one",
                          fix="create the cluster with --mode offline")
    node.node_image = image
    node.node_image_id = _run(["docker", "image", "inspect", "--format", "{{.Id}}", image],
                              "docker image inspect").strip()
    try:
        net = json.loads(_run(["docker", "network", "inspect", "kind"], "docker network inspect"))[0]
    except VMNodeError:
        raise VMNodeError("no docker network 'kind'",
                          fix=f"python -m secctx cluster-up --cluster-name {node.cluster} "
                              "--mode offline") from None
    ipv4 = [c for c in net["IPAM"]["Config"] if c.get("Subnet", "").endswith(".0.0/16")
            and ":" not in c["Subnet"]]
    if not ipv4:
        raise VMNodeError("the kind network has no IPv4 /16 for the VM node's address")
    prefix = ".".join(ipv4[0]["Subnet"].split(".")[:2])
    node.gateway = ipv4[0].get("Gateway") or f"{prefix}.0.1"
    node.bridge = f"br-{net['Id'][:12]}"
    taken = {c["IPv4Address"].split("/")[0] for c in net.get("Containers", {}).values()}
    node.ip = vm_address(prefix, node.cluster, taken)


def _pieces(lsm: str) -> dict[str, bytes]:
    return {name: (HERE / name).read_bytes() for name in SHELL_PIECES + LSM_PIECES[lsm]}


def debs_of(lsm: str) -> tuple[str, ...]:
    return (KERNEL_DEB, *LSM_DEBS[lsm], *LSM_BUILD_DEBS[lsm])


def _debs(lsm: str) -> Path:
    """Debian's kernel and the LSM's debs, downloaded once (apt-get download)."""
    debs = cache.path("vm", "debs")
    debs.mkdir(parents=True, exist_ok=True)
    for pkg in debs_of(lsm):
        if not list(debs.glob(f"{pkg}_*.deb")):
            log.step(f"vm-node: apt-get download {pkg}")
            try:
                run_command.run(["apt-get", "download", pkg], cwd=debs, timeout=timeouts.VM_APT_DOWNLOAD)
            except CommandError as err:
                raise VMNodeError(f"apt-get download {pkg} failed ({err.problem})",
                                  output=err.stderr,
                                  fix="apt-get update, or put the deb in " + str(debs)) from None
    return debs


def control_plane_images(node: VMNode) -> dict[str, str]:
    return image_refs(_run(["docker", "exec", node.control_plane, "ctr", "-n", "k8s.io",
                            "images", "ls"], "ctr images ls"))


def build_image(node: VMNode) -> None:
    """The disk image, with every image the control plane has already unpacked in its
    containerd (a host-side import, build-image.sh): imported in the VM instead, the run's
    9 workload images took 218 s under emulation (load 16), more than boot and join."""
    debs = _debs(node.lsm)
    names = sorted(p.name for pkg in debs_of(node.lsm) for p in debs.glob(f"{pkg}_*.deb"))
    images = control_plane_images(node)
    key = image_key(node.node_image_id, names, _pieces(node.lsm), images)
    out = cache.path("vm", key)
    node.image_dir = out
    if (out / "disk.img").exists():
        log.step(f"vm-node: disk image {out} is up to date (same node image and kernel)")
        return
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    log.step(f"vm-node: building the disk image from {node.node_image} + linux {KERNEL_VERSION}"
             f" + {node.lsm} + {len(images)} image(s) of the control plane")
    export_images(node.control_plane, sorted(images), tmp / "images.tar")
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "NODE_IMAGE": node.node_image,
           "KVER": KERNEL_VERSION, "DEBS": str(debs), "OUT": str(tmp), "MODULES": INITRD_MODULES,
           "LSM": node.lsm, "LSM_DEBS": " ".join(LSM_DEBS[node.lsm]),
           "LSM_BUILD_DEBS": " ".join(LSM_BUILD_DEBS[node.lsm]),
           "IMAGES_TAR": str(tmp / "images.tar")}
    try:
        with log.heartbeat("building the VM disk image"):
            run_command.run(["bash", HERE / "build-image.sh"], env=env, timeout=timeouts.VM_DISK_IMAGE)
    except CommandError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        if err.timed_out:
            raise VMNodeError("building the VM disk image took over 1200s") from None
        raise _failed("building the VM disk image", err) from None
    (tmp / "images.tar").unlink(missing_ok=True)
    (tmp / "identity").write_text(f"{node.node_image} {node.node_image_id}\n" + "\n".join(names)
                                  + "".join(f"\n{r} {d}" for r, d in sorted(images.items())))
    tmp.rename(out)


def create_tap(node: VMNode) -> None:
    _run(["ip", "tuntap", "add", "dev", node.tap, "mode", "tap"], "ip tuntap add")
    _run(["ip", "link", "set", node.tap, "master", node.bridge, "up"], "ip link set master")


def boot(node: VMNode) -> None:
    assert node.image_dir is not None
    share = node.run_dir / "share"
    shutil.rmtree(share, ignore_errors=True)
    (share / "cmd").mkdir(parents=True)
    (node.run_dir / "console.log").unlink(missing_ok=True)
    log.step(f"vm-node: qemu (TCG, {node.cpus} vCPU, {node.memory_mib} MiB) {node.name} "
             f"at {node.ip} on {node.bridge}")
    _run(qemu_command(name=node.name, image_dir=node.image_dir, run_dir=node.run_dir,
                      tap=node.tap, ip=node.ip, gateway=node.gateway, lsm=node.lsm,
                      cpus=node.cpus, memory_mib=node.memory_mib,
                      machine_uuid=str(uuid.uuid4())), "qemu", timeout=timeouts.VM_QEMU_START)


def wait_agent(node: VMNode) -> None:
    """Boot to the guest agent, following qemu (gone: fail at once) and the console."""
    marker = node.run_dir / "share" / "agent-up"
    deadline = time.monotonic() + BOOT_TIMEOUT
    with log.heartbeat("booting the VM node"):
        while not marker.exists():
            if node.pid() is None:
                raise VMNodeError("qemu exited during boot", console=node.console_tail())
            if time.monotonic() > deadline:
                raise VMNodeError(f"the VM node's agent did not start within {BOOT_TIMEOUT:.0f}s",
                                  console=node.console_tail())
            time.sleep(0.5)


def prepare_guest(node: VMNode) -> None:
    """What kind's entrypoint does for a node container, the VM does for itself: the
    control plane's name, the modules and sysctls kubeadm's preflight wants."""
    cp_ip = _run(["docker", "inspect", "--format",
                  "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", node.control_plane],
                 "docker inspect").split()[0]
    node.guest(f"echo '{cp_ip} {node.control_plane}' >> /etc/hosts; modprobe br_netfilter; "
               "modprobe overlay; sysctl -qw net.ipv4.ip_forward=1 "
               "net.bridge.bridge-nf-call-iptables=1 net.bridge.bridge-nf-call-ip6tables=1; "
               # containerd may still be starting (systemd boots on beside the agent)
               "for i in $(seq 1 120); do systemctl is-active -q containerd && break; sleep 1; done; "
               "systemctl is-active containerd", "preparing the guest", timeout=timeouts.VM_GUEST_PREPARE)


def load_images(node: VMNode) -> None:
    """The images the control plane's containerd has and the VM's lacks (those `kind
    load`ed into the kind nodes after the disk image was built, which preloads the rest),
    exported there and imported in the VM through the 9p share."""
    ctr = ["ctr", "-n", "k8s.io", "images"]
    have = control_plane_images(node)
    vm = image_refs(node.guest(" ".join(ctr) + " ls", "ctr images ls"))
    lacks = sorted(r for r, digest in have.items() if vm.get(r) != digest)
    if not lacks:
        return
    tar = node.run_dir / "share" / "images.tar"
    log.step(f"vm-node: loading {len(lacks)} image(s) the control plane has: {', '.join(lacks)}")
    try:
        with log.heartbeat("exporting images for the VM node"):
            export_images(node.control_plane, lacks, tar)
        # The SELinux guest's import from the 9p share failed twice with short reads
        # ("short read: expected 5120 bytes but got 4096", "untar manifest.json:
        # unexpected EOF") while cp of the same share read it whole: that guest
        # imports a copy on its own disk.
        tar_in = "/run/secctx-vm/images.tar"
        copy = (f"cp {tar_in} /var/tmp/images.tar && " if node.lsm == "selinux" else "")
        with log.heartbeat("importing images into the VM node"):
            node.guest(copy + " ".join(ctr) + " import " + (
                "/var/tmp/images.tar; rc=$?; rm -f /var/tmp/images.tar; exit $rc" if copy
                else tar_in), "ctr images import", timeout=timeouts.VM_IMAGE_IMPORT)
    finally:
        tar.unlink(missing_ok=True)


def export_images(container: str, refs: list[str], tar: Path) -> None:
    """`ctr images export` of `refs` in the kind node `container`, copied to `tar`. Into a
    file there, not to stdout: `ctr images export -` through docker exec ended 15-55 KiB
    short of the file's 117,186,048 bytes in 2 of 3 runs (the VM's import then failed:
    `untar manifest "manifest.json": unexpected EOF`), so the copy's size is checked too."""
    inside = "/var/tmp/secctx-vm-images.tar"  # /var is a volume (docker cp reads it; /tmp is a tmpfs)
    try:
        _run(["docker", "exec", container, "ctr", "-n", "k8s.io", "images", "export", inside,
              *refs], "ctr images export on the control plane",
              timeout=timeouts.VM_IMAGE_EXPORT)
        size = int(_run(["docker", "exec", container, "stat", "-c", "%s", inside], "stat").strip())
        _run(["docker", "cp", f"{container}:{inside}", str(tar)], "docker cp", timeout=timeouts.VM_IMAGE_EXPORT)
    finally:
        run_command.run(["docker", "exec", container, "rm", "-f", inside], timeout=run_command.QUERY,
                        check=False)
    if tar.stat().st_size != size:
        raise VMNodeError(f"the images' tar copied from {container} has {tar.stat().st_size} "
                          f"bytes, the export {size}")


def join(node: VMNode) -> None:
    line = _run(["docker", "exec", node.control_plane, "kubeadm", "token", "create",
                 "--print-join-command", "--ttl", "1h"], "kubeadm token create")
    args = join_arguments(line, node.name, node.lsm)
    with log.heartbeat("kubeadm join"):
        try:
            node.guest(shlex.join(args) + " 2>&1", "kubeadm join", timeout=JOIN_TIMEOUT)
        except VMNodeError as err:
            err.console = node.console_tail()
            raise VMNodeError(err.what, command=args, rc=err.rc, output=err.output,
                              console=err.console) from None


def wait_ready(node: VMNode) -> None:
    """The Node's Ready condition, followed until True (bounded); on failure its
    conditions and the kubelet's last journal lines."""
    deadline = time.monotonic() + READY_TIMEOUT
    last = ""
    with log.heartbeat(f"waiting for node {node.name} Ready"):
        while time.monotonic() < deadline:
            if node.pid() is None:
                raise VMNodeError("qemu exited before the node was Ready",
                                  console=node.console_tail())
            try:
                out = node.kubectl("get", "node", node.name, "-o", "json", timeout=timeouts.VM_KUBECTL_QUERY)
                conds = {c["type"]: c for c in json.loads(out)["status"].get("conditions", [])}
                ready = conds.get("Ready", {})
                if ready.get("status") == "True":
                    break
                last = f"Ready={ready.get('status')} {ready.get('reason', '')}: {ready.get('message', '')}"
            except VMNodeError as err:
                last = err.output.strip()[-300:]
            time.sleep(1)
        else:
            try:
                journal = node.guest("journalctl -u kubelet --no-pager | tail -20", "journal",
                                     timeout=timeouts.VM_KUBECTL)
            except VMNodeError as err:
                journal = str(err)
            raise VMNodeError(f"node {node.name} not Ready within {READY_TIMEOUT:.0f}s ({last})",
                              output=journal, console=node.console_tail())
    node.kubectl("label", "node", node.name, "--overwrite", f"{NODE_LABEL}={node.kind}")
    node.kubectl("taint", "node", node.name, "--overwrite", f"{NODE_LABEL}={node.kind}:NoSchedule")


def running(node: VMNode) -> bool:
    """The cluster's VM node is up: its qemu runs and its Node is Ready."""
    if node.pid() is None:
        return False
    node.control_plane = node.control_plane or f"{node.cluster}-control-plane"
    try:
        out = node.kubectl("get", "node", node.name, "-o", "json", timeout=timeouts.VM_KUBECTL_QUERY)
    except VMNodeError:
        return False
    conds = {c["type"]: c["status"] for c in json.loads(out)["status"].get("conditions", [])}
    return conds.get("Ready") == "True"


ACTIONS = (Action("check host", check_host), Action("learn cluster", learn_cluster),
           Action("build image", build_image), Action("create tap", create_tap),
           Action("boot", boot), Action("wait for agent", wait_agent),
           Action("prepare guest", prepare_guest), Action("load images", load_images),
           Action("kubeadm join", join),
           Action("wait for Ready", wait_ready))


def up(node: VMNode, actions: tuple[Action, ...] = ACTIONS) -> VMNode:
    """Run the actions in order; any failure (also ^C) leaves nothing behind."""
    node.run_dir.mkdir(parents=True, exist_ok=True)
    try:
        for action in actions:
            start = time.monotonic()
            action.run(node)
            node.timings[action.name] = round(time.monotonic() - start, 1)
            log.step(f"vm-node: {action.name} done in {node.timings[action.name]}s")
    except BaseException:
        if node.control_plane:  # the host check failed before anything was made
            down(node)
        raise
    return node


def _signal(pid: int, sig: signal.Signals) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):  # gone already, or not ours: as `kill` was
        pass


def down(node: VMNode) -> list[str]:
    """Stop qemu, delete the TAP and the Node object; each only if there. Returns what
    it removed."""
    done = []
    pid = node.pid()
    if pid is not None:
        _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        if Path(f"/proc/{pid}").exists():
            _signal(pid, signal.SIGKILL)
        done.append(f"qemu (pid {pid})")
    (node.run_dir / "qemu.pid").unlink(missing_ok=True)
    if run_command.run(["ip", "link", "show", node.tap], timeout=run_command.QUERY, check=False).ok:
        _run(["ip", "link", "del", node.tap], "ip link del")
        done.append(f"TAP {node.tap}")
    node.control_plane = node.control_plane or f"{node.cluster}-control-plane"
    try:
        out = node.kubectl("delete", "node", node.name, "--ignore-not-found",
                           timeout=timeouts.VM_KUBECTL)
        if out.strip():
            done.append(f"Node {node.name}")
    except VMNodeError:
        pass  # no cluster any more: no Node object either
    return done
