"""The CRI-O variant of the offline kind node image (`--cri crio`).

The same Kubernetes, runc, crun, CNI plugins and preloaded images as the
containerd node image (nodeimage.ingredients), with CRI-O as the kubelet's CRI:
CRI-O built from its Go module (components.CRIO), its pinns helper compiled
from the same module, conmon and skopeo from Debian. CRI-O runs with its own
default configuration; the only drop-in adds the runc handler beside CRI-O's
crun and makes it the default (RUNTIMES_DROP_IN says why), so that both
RuntimeClasses run.

Images: CRI-O reads containers/storage, not containerd's content store. Layers
cannot be unpacked into an overlay store while building (overlay on the build
container's overlay), so the node carries the docker-save archives and a
oneshot unit copies them into the store with skopeo at its first boot, before
CRI-O starts; `kind load` (ctr) is replaced the same way (load_images).
"""
from __future__ import annotations

import hashlib
import json
import shlex
import shutil
import tempfile
import time
from pathlib import Path

from filelock import FileLock

from ..core import cache, run_command, timeouts
from ..core.run_command import CommandError
from ..images import docker
from . import components, log, nodeimage, overlap, rootfs
from .gobuild import BuildError
from .gomod import KubeVersion, check_offline_buildable

CRI = "crio"
SOCKET = "unix:///var/run/crio/crio.sock"
# skopeo needs golang-github-containers-common, which depends on the virtual package
# container-network-stack: debootstrap resolves no virtual packages, so one provider
# is named (its plugins land in /usr/lib/cni; CRI-O's plugin_dirs is /opt/cni/bin).
PACKAGES = (*rootfs.NODE_PACKAGES, "conmon", "skopeo", "containernetworking-plugins")
ROOTFS = "secctx.local/rootfs/node-crio:bookworm"
# CRI-O's own pause image (pkg/config/config_linux.go DefaultPauseImage): the node holds
# kubeadm's pause under this name too, so that CRI-O's default finds it offline.
CRIO_PAUSE = "registry.k8s.io/pause:3.10"
# CRI-O's default runtime is crun (pkg/config/config_linux.go DefaultRuntime); runc is
# added as a handler, through the capability shim on PATH as for containerd.
HANDLERS = ("crun", "runc")
# One change of CRI-O's defaults, forced by this host: Debian's crun 1.8.1 under CRI-O
# on a cgroup v1 host creates no container at all ("open /sys/fs/cgroup/hugetlb/...
# crio-<id>.scope/container: No such file or directory", every static pod), so the
# default handler is runc; crun stays a handler (RuntimeClass crun), and the run says
# whether it can run containers.
RUNTIMES_DROP_IN = """\
# secctx-conformance: runc as a handler beside CRI-O's crun, and the default one
# (Debian's crun 1.8.1 creates no container under CRI-O on a cgroup v1 host).
# Nothing else of CRI-O's default configuration is changed.
[crio.runtime]
default_runtime = "runc"

[crio.runtime.runtimes.runc]
runtime_path = "/usr/local/sbin/runc"
runtime_root = "/run/runc"
"""
CRIO_UNIT = """\
[Unit]
Description=CRI-O container runtime (secctx-conformance offline node)
After=network.target local-fs.target secctx-crio-images.service
Requires=secctx-crio-images.service
Before=kubelet.service
StartLimitIntervalSec=0

[Service]
Type=notify
ExecStart=/usr/local/bin/crio
Restart=always
RestartSec=1
TasksMax=infinity
LimitNOFILE=1048576
LimitNPROC=infinity
LimitCORE=infinity
OOMScoreAdjust=-999

[Install]
WantedBy=multi-user.target
"""
IMAGES_UNIT = """\
[Unit]
Description=Copy the node's preloaded images into CRI-O's storage (first boot)
Before=crio.service
ConditionPathExists=!/var/lib/secctx/crio-images-loaded

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/kind/bin/secctx-crio-images.sh

[Install]
WantedBy=multi-user.target
"""
# One line per image of /kind/images/list: "<archive> <name>".
IMAGES_SCRIPT = """\
#!/bin/sh
set -eu
while read -r archive name; do
  skopeo copy --quiet "docker-archive:/kind/images/$archive" "containers-storage:$name"
done < /kind/images/list
mkdir -p /var/lib/secctx && touch /var/lib/secctx/crio-images-loaded
"""
CRICTL_YAML = f"runtime-endpoint: {SOCKET}\nimage-endpoint: {SOCKET}\n"


CC_TIMEOUT = 300  # pinns is a handful of C files: seconds; the bound is for a stuck compiler


def pinns(version: str = components.CRIO.version) -> Path:
    """CRI-O's pinns (C, in the module's pinns/src; its Makefile builds it static)."""
    out = cache.path("components", "crio-pinns", version, "pinns")
    if out.exists():
        return out
    from .gobuild import module_info
    work = cache.path("work", "crio-pinns")
    work.mkdir(parents=True, exist_ok=True)
    (work / "go.mod").write_text("module secctx.local/probe\n\ngo 1.22\n")
    src = Path(module_info(components.CRIO.module, version, work)["Dir"]) / "pinns" / "src"
    tmp = out.with_suffix(".tmp")
    tmp.parent.mkdir(parents=True, exist_ok=True)
    try:
        run_command.run(["cc", "-std=c99", "-Os", "-Wall", "-static", "-o", tmp,
                         *sorted(str(f) for f in src.glob("*.c"))], timeout=CC_TIMEOUT)
    except CommandError as err:
        raise BuildError(f"cc pinns failed: {err}") from None
    tmp.rename(out)
    return out


def inputs_key(version: KubeVersion) -> str:
    """The containerd image's inputs (this module's source is among them) and CRI-O's."""
    h = hashlib.sha256(f"{nodeimage.inputs_key(version)}|{components.CRIO.name}="
                       f"{components.CRIO.version}|{','.join(PACKAGES)}".encode())
    return h.hexdigest()[:16]


def recipe_tag(version: KubeVersion) -> str:
    return f"{nodeimage.REPOSITORY}:{version}-crio-{inputs_key(version)[:12]}"


def image_tag(version: KubeVersion) -> str:
    return f"{nodeimage.REPOSITORY}:{version}-crio"


def up_to_date(version: KubeVersion) -> bool:
    """The node image of these inputs is built (build() returns at once)."""
    return docker.image_label(recipe_tag(version), nodeimage.INPUTS_LABEL) == inputs_key(version)


def slow_part_cached() -> bool:
    """CRI-O's Go build, the cold build's largest part (1010-1514 s on 2 cores), is cached:
    the rest (rootfs ~221 s, assembly ~50 s) fits a CI run."""
    return components.built(components.CRIO)


def build(version: KubeVersion, rebuild: bool = False) -> nodeimage.NodeImage:
    tag = recipe_tag(version)
    if not rebuild and up_to_date(version):
        log.step(f"node image {tag} is up to date (same inputs)")
        return nodeimage.NodeImage(tag, version, docker.image_label(tag, "io.secctx.coredns") == "true")
    check_offline_buildable(version)
    lock = cache.path("locks", f"node-image-{version}.lock")  # the containerd build's too
    lock.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(lock)), tempfile.TemporaryDirectory(prefix="secctx-crio-node-") as stage:
        return _build(version, rebuild, Path(stage))


def _build(version: KubeVersion, rebuild: bool, stage: Path) -> nodeimage.NodeImage:
    t0 = time.monotonic()
    tag = recipe_tag(version)
    # CRI-O's Debian rootfs (debootstrap: ~4 min cold) beside the Go builds (CPU).
    with overlap.beside(lambda: docker.import_rootfs(rootfs.tarball(PACKAGES), ROOTFS), "rootfs"):
        parts = nodeimage.ingredients(version)
        crio_bin = components.build(components.CRIO)
    log.step(f"CRI-O {components.CRIO.version} ready after {time.monotonic() - t0:.0f}s")
    files = nodeimage.node_files(version, parts.k8s_bin, parts.built, parts.names, stage)
    root = files["root"]
    _add_crio(root, crio_bin / "crio", pinns(), parts.archives, parts.names.pause)
    dockerfile = nodeimage.DOCKERFILE.format(
        base=ROOTFS, cri_service="crio.service secctx-crio-images.service")
    coredns = parts.coredns_bin is not None
    key = docker.content_key(dockerfile, files)
    docker.build(tag, dockerfile + f'LABEL {nodeimage.INPUTS_LABEL}={inputs_key(version)}\n'
                 f'LABEL io.secctx.coredns={str(coredns).lower()}\n', files, rebuild=rebuild)
    docker.run(["tag", tag, image_tag(version)])
    log.step(f"node image {tag} (content {key}) built in {time.monotonic() - t0:.0f}s")
    return nodeimage.NodeImage(tag, version, coredns)


def _add_crio(root: Path, crio: Path, pinns_bin: Path, archives: list[Path], pause: str) -> None:
    # containerd stays out (kind's entrypoint edits /etc/containerd/config.toml, which stays).
    for name in ("containerd", "containerd-shim-runc-v2", "containerd-shim-runsc-v1", "ctr"):
        (root / "usr/local/bin" / name).unlink(missing_ok=True)
    nodeimage._place(root / "usr/local/bin", crio.parent, ("crio",))
    shutil.copy2(pinns_bin, root / "usr/local/bin/pinns")
    (root / "etc/crio/crio.conf.d").mkdir(parents=True, exist_ok=True)
    (root / "etc/crio/crio.conf.d/10-secctx-runc.conf").write_text(RUNTIMES_DROP_IN)
    (root / "etc/systemd/system/crio.service").write_text(CRIO_UNIT)
    (root / "etc/systemd/system/secctx-crio-images.service").write_text(IMAGES_UNIT)
    (root / "etc/crictl.yaml").write_text(CRICTL_YAML)
    script = root / "kind/bin/secctx-crio-images.sh"
    script.write_text(IMAGES_SCRIPT)
    script.chmod(0o755)
    dest = root / "kind/images"
    dest.mkdir(parents=True, exist_ok=True)
    lines = []
    for archive in archives:
        shutil.copy2(archive, dest / archive.name)
        for name in archive_names(archive):
            lines.append(f"{archive.name} {name}")
            if name == pause:
                lines.append(f"{archive.name} {CRIO_PAUSE}")
    (dest / "list").write_text("\n".join(lines) + "\n")
    offline = json.loads((root / "kind/secctx-offline.json").read_text())
    offline["cri"] = {"name": CRI, "version": components.CRIO.version, "handlers": list(HANDLERS)}
    (root / "kind/secctx-offline.json").write_text(json.dumps(offline, indent=2) + "\n")


def archive_names(archive: Path) -> list[str]:
    """The image names a docker-save archive carries (its manifest.json RepoTags)."""
    import tarfile
    with tarfile.open(archive) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
    return [t for entry in manifest for t in entry.get("RepoTags") or []]


def load_images(nodes: list[str], tags: list[str], timeout: float = timeouts.IMAGE_LOAD) -> None:
    """`kind load docker-image` for CRI-O nodes: docker save each image, copy it into
    the node and into CRI-O's storage with skopeo (kind's own loader runs ctr)."""
    for tag in tags:
        with tempfile.TemporaryDirectory(prefix="secctx-load-") as tmp:
            archive = Path(tmp) / "image.tar"
            docker.run(["save", "-o", str(archive), tag], timeout=timeout)
            for node in nodes:
                # /var is the node's volume (docker cp writes there; /tmp is a tmpfs of
                # the node's own, which docker cp does not see)
                inside = f"/var/tmp/secctx-load-{hashlib.sha256(tag.encode()).hexdigest()[:12]}.tar"
                docker.run(["cp", str(archive), f"{node}:{inside}"], timeout=timeout)
                docker.run(["exec", node, "sh", "-c",
                            f"skopeo copy --quiet docker-archive:{inside} "
                            f"containers-storage:{shlex.quote(tag)}; rc=$?; rm -f {inside}; "
                            "exit $rc"], timeout=timeout)
    if tags:
        log.step(f"loaded {len(tags)} images into CRI-O's storage on {len(nodes)} node(s)")
