"""Assemble a kind node image offline, the way `kind build node-image` does.

kind's own build pulls etcd, CoreDNS, pause, kindnetd and the storage images
from registries. Here every piece comes from a Go module or a Debian package:
run the base, copy the binaries, import image archives into containerd's
k8s.io namespace, write /kind/version and /kind/manifests, commit.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from ..cluster import hostlimits
from ..core import cache, paths, run_command
from ..core.run_command import CommandError
from ..images import build as images
from ..images import docker
from . import capshim, components, log, overlap
from .gobuild import BuildError, build_kubernetes
from .gomod import KubeVersion, check_offline_buildable

NODE_FILES = paths.NODE_FILES
REPOSITORY = "secctx.local/kind-node"
LOCAL_PATH_PROVISIONER = "secctx.local/local-path-provisioner:{version}"
LOCAL_PATH_HELPER = images.BUSYBOX

# Versions of this assembly procedure; bump to force rebuilding every node image.
RECIPE = "1"


@dataclass(frozen=True)
class NodeImage:
    tag: str
    kubernetes: KubeVersion
    coredns: bool  # False: the CoreDNS addon is left out on purpose


def image_tag(version: KubeVersion) -> str:
    """The newest node image built for `version` (for `docker save`, --kind-image)."""
    return f"{REPOSITORY}:{version}"


def recipe_tag(version: KubeVersion) -> str:
    """The node image of this checkout's recipe: two checkouts with different builders
    (a branch, a helper's worktree) each keep their own image, so neither rebuilds the
    other's nor makes the other's kept cluster stale."""
    return f"{REPOSITORY}:{version}-{inputs_key(version)[:12]}"


def kind_binary() -> Path:
    return components.build(components.COMPONENTS["kind"]) / "kind"


INPUTS_LABEL = "io.secctx.inputs"


def inputs_key(version: KubeVersion) -> str:
    """A cheap key of everything the node image is made from: versions, the
    builder's own source and files. Equal key: the image is up to date, with no
    need to hash hundreds of megabytes of binaries (a warm start in seconds)."""
    h = hashlib.sha256(f"{RECIPE}|{version}|{components.KIND_VERSION}".encode())
    for c in components.COMPONENTS.values():
        h.update(f"{c.name}={c.version}".encode())
    h.update(f"left out: {sorted(_left_out())}".encode())  # a host that can run more builds more
    here = Path(__file__).parent
    # secctx/images: the control-plane image recipes and the docker build they use.
    sources = [*sorted(here.glob("*.py")), Path(images.__file__), Path(docker.__file__),
               *sorted(NODE_FILES.glob("*")), *sorted(capshim.SOURCE.glob("*")),
               *sorted((images.IMAGE_SOURCES / "pause").rglob("*"))]  # the node's only image source
    for f in sources:
        if f.is_file():
            h.update(f.name.encode() + hashlib.sha256(f.read_bytes()).digest())
    return h.hexdigest()[:16]


def build(version: KubeVersion, rebuild: bool = False) -> NodeImage:
    tag = recipe_tag(version)
    if not rebuild and docker.image_label(tag, INPUTS_LABEL) == inputs_key(version):
        coredns = docker.image_label(tag, "io.secctx.coredns") == "true"
        log.step(f"node image {tag} is up to date (same inputs)")
        return NodeImage(tag, version, coredns)
    check_offline_buildable(version)  # before any long step
    # Two builds of one version would write the same cache directories.
    lock = cache.path("locks", f"node-image-{version}.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(lock)):
        with tempfile.TemporaryDirectory(prefix="secctx-node-") as stage:
            return _build(version, rebuild, Path(stage))


@dataclass(frozen=True)
class Ingredients:
    """What every node image of a version is made from (the containerd one and the
    CRI-O one, secctx.offline.crionode): binaries, the control-plane image names and
    the docker-save archives of every image the node must hold."""
    k8s_bin: Path
    names: images.ControlPlaneImages
    built: dict[str, Path]
    coredns_bin: Path | None
    archives: list[Path]


def ingredients(version: KubeVersion) -> Ingredients:
    t0 = time.monotonic()
    # The Debian rootfs (debootstrap: ~4 min cold, mirror and disk) beside the Go builds (CPU).
    with overlap.beside(images.base_images, "rootfs"):
        k8s_bin = build_kubernetes(version)
        names = images.ControlPlaneImages.from_kubeadm_list(_kubeadm_images(k8s_bin, version))
        left_out = _left_out()
        for limit in left_out.values():
            log.step(f"leaving {limit.component} ({limit.runtime}) out of the node image: "
                     f"{limit.why}, which this host's bounding set lacks (no node here could "
                     f"run it)")
        built = {name: components.build(c) for name, c in components.COMPONENTS.items()
                 if name not in left_out}
        built["etcd"] = components.build(
            components.etcd(images.ControlPlaneImages.tag_of(names.etcd)))
        coredns_bin = _try_coredns(images.ControlPlaneImages.tag_of(names.coredns))
    log.step(f"binaries ready after {time.monotonic() - t0:.0f}s")
    return Ingredients(k8s_bin, names, built, coredns_bin,
                       _image_archives(names, k8s_bin, built, coredns_bin))


def _build(version: KubeVersion, rebuild: bool, stage: Path) -> NodeImage:
    tag = recipe_tag(version)
    t0 = time.monotonic()
    parts = ingredients(version)
    k8s_bin, names, built, coredns_bin, archives = (
        parts.k8s_bin, parts.names, parts.built, parts.coredns_bin, parts.archives)
    files = node_files(version, k8s_bin, built, names, stage)
    key = docker.content_key(RECIPE, files | {f"archive-{i}": a for i, a in enumerate(archives)})
    same = None if rebuild else image_with_content(key)
    if same:
        # Same content, new inputs key (the builder's source changed): label it with
        # this recipe's key so that the next warm start takes the fast path again.
        docker.run(["build", "-q", "-t", tag, "--label", f"{INPUTS_LABEL}={inputs_key(version)}",
                    "-"], input=f"FROM {same}\n".encode())
        docker.run(["tag", tag, image_tag(version)])
        log.step(f"node image {tag} is up to date (the content of {same})")
        return NodeImage(tag, version, coredns_bin is not None)
    base_tag = f"{REPOSITORY}-base:{version}"
    docker.build(base_tag, DOCKERFILE.format(base=images.NODE_ROOTFS, cri_service="containerd.service"),
                 files, rebuild=rebuild)
    _import_and_commit(base_tag, tag, archives, key, coredns_bin is not None, version)
    docker.run(["tag", tag, image_tag(version)])
    log.step(f"node image {tag} built in {time.monotonic() - t0:.0f}s")
    return NodeImage(tag, version, coredns_bin is not None)


def image_with_content(key: str) -> str | None:
    """A local node image (any tag) whose content key is `key`."""
    found = docker.run(["images", "-q", "--filter", f"label={docker.KEY_LABEL}={key}",
                        REPOSITORY]).split()
    return found[0] if found else None


def _kubeadm_images(k8s_bin: Path, version: KubeVersion) -> list[str]:
    try:
        return run_command.run([k8s_bin / "kubeadm", "config", "images", "list",
                                "--kubernetes-version", str(version)],
                               timeout=run_command.QUERY).stdout.splitlines()
    except CommandError as err:
        raise BuildError(f"kubeadm config images list failed: {err}") from None


def _try_coredns(version: str) -> Path | None:
    try:
        return components.build(components.coredns(version))
    except BuildError as err:
        log.step(f"CoreDNS {version} did not build; the node image leaves the addon out: {err}")
        return None


def _image_archives(names, k8s_bin, built, coredns_bin) -> list[Path]:
    """docker-save archives of every image the node must hold, cached by image ID."""
    tags = images.build_control_plane_images(names, k8s_bin, built["etcd"], coredns_bin)
    images.build_workload_images(offline=True)  # provides the busybox helper
    provisioner = LOCAL_PATH_PROVISIONER.format(version=built["local-path-provisioner"].name)
    images.scratch_binary(provisioner, built["local-path-provisioner"] / "local-path-provisioner",
                          "/usr/bin/local-path-provisioner")
    tags += [provisioner, LOCAL_PATH_HELPER]
    return [_saved(t) for t in tags]


def _saved(tag: str) -> Path:
    # Keyed by name and content: equal images under two tags (pause 3.10.1 and
    # 3.10.2) must each be saved with their own name.
    image_id = docker.run(["image", "inspect", "--format", "{{.Id}}", tag]).strip()
    key = hashlib.sha256(f"{tag}@{image_id}".encode()).hexdigest()[:24]
    out = cache.path("archives", key + ".tar")
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp")
        docker.run(["save", "-o", str(tmp), tag])
        tmp.rename(out)
    return out


def node_files(version: KubeVersion, k8s_bin: Path, built: dict[str, Path],
                names: images.ControlPlaneImages, stage: Path) -> dict[str, Path]:
    """The build context: kind's base-image files plus our binaries and config."""
    kind_src = _kind_module_dir() / "images" / "base" / "files"
    root = stage / "root"
    shutil.copytree(kind_src, root, symlinks=True)
    (root / "LICENSES").mkdir(exist_ok=True)
    for d in ("usr/local/bin", "kind/bin"):
        for f in (root / d).iterdir():
            f.chmod(0o755)
    _place(root / "usr/bin", k8s_bin, ("kubeadm", "kubelet", "kubectl"))
    _place(root / "usr/local/bin", built["containerd"], ("containerd", "containerd-shim-runc-v2", "ctr"))
    _place(root / "usr/local/bin", built["crictl"], ("crictl",))
    left_out = _left_out()  # what _build did not build (built lacks it)
    if "gvisor" not in left_out:
        _place(root / "usr/local/bin", built["gvisor"], ("runsc", "containerd-shim-runsc-v1"))
    _place(root / "opt/cni/bin", built["cni-plugins"], ("bridge", "loopback", "ptp", "host-local", "portmap"))
    sbin = root / "usr/local/sbin"
    sbin.mkdir(parents=True, exist_ok=True)
    # containerd runs "runc" from PATH: that is the capability shim, which
    # execs runc.real beside it (a no-op filter on hosts with every capability).
    shutil.copy2(built["runc"] / "runc", sbin / "runc.real")
    shutil.copy2(capshim.build(), sbin / "runc")
    # crun (the rootfs's Debian package) behind the same shim: it too refuses a
    # privileged container that asks for capabilities the host cannot hold.
    shutil.copy2(capshim.build(), sbin / "crun")
    (sbin / "crun.real").symlink_to(CRUN_BINARY)
    (sbin / "crun.oci-version").write_text(CRUN_OCI_VERSION + "\n")
    config = (root / "etc/containerd/config.toml").read_text()
    config = with_runtime_handlers(_set_toml_string(config, "sandbox_image", names.pause),
                                   without={limit.runtime for limit in left_out.values()})
    (root / "etc/containerd/config.toml").write_text(config)
    (root / "etc/containerd/cri-base.json").write_text(_cri_base_spec(built["containerd"] / "ctr"))
    (root / CRUN_BASE_SPEC.lstrip("/")).write_text(
        _cri_base_spec(built["containerd"] / "ctr", product_files_hook=False))
    (root / "etc/cni/net.d").mkdir(parents=True, exist_ok=True)
    shutil.copy2(NODE_FILES / "10-secctx-bridge.conflist", root / "etc/cni/net.d/")
    shutil.copy2(NODE_FILES / "secctx-pod-masquerade.service", root / "etc/systemd/system/")
    (root / "kind/manifests").mkdir(parents=True, exist_ok=True)
    shutil.copy2(NODE_FILES / "default-cni.yaml", root / "kind/manifests/default-cni.yaml")
    storage = (NODE_FILES / "default-storage.yaml").read_text()
    storage = storage.replace("{{PROVISIONER_IMAGE}}", LOCAL_PATH_PROVISIONER.format(
        version=built["local-path-provisioner"].name)).replace("{{HELPER_IMAGE}}", LOCAL_PATH_HELPER)
    (root / "kind/manifests/default-storage.yaml").write_text(storage)
    (root / "kind/version").write_text(str(version) + "\n")
    (root / "kind/secctx-offline.json").write_text(json.dumps({
        "kubernetes": str(version),
        "components": {n: c.version for n, c in components.COMPONENTS.items() if n in built},
        "left_out": {limit.runtime: limit.why for limit in left_out.values()},
        "images": names.all(),
    }, indent=2) + "\n")
    return {"root": root}


CRUN_BINARY = "/usr/bin/crun"
# Debian bookworm's crun 1.8.1 refuses a config.json newer than OCI 1.1 ("unknown
# version specified"); containerd 2 writes 1.3.0. The shim relabels it (capshim).
CRUN_OCI_VERSION = "1.1.0"
# kind's createContainer hook (mount-product-files.sh) exits 1 under crun 1.8.1 for
# a container with a read-only root filesystem (seen in hardened-pod@crun): crun's
# base spec is containerd's without it (the hook only bind-mounts a product_uuid).
CRUN_BASE_SPEC = "/etc/containerd/cri-base-crun.json"
# containerd handlers besides kind's runc and test-handler, as runc's: the runc shim
# runs any runc-compatible binary (BinaryName), here crun through the capability shim.
RUNTIME_HANDLERS = {"crun": ("/usr/local/sbin/crun", CRUN_BASE_SPEC)}
_HANDLER = """
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.{name}]
  runtime_type = "io.containerd.runc.v2"
  base_runtime_spec = "{spec}"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.{name}.options]
    BinaryName = "{binary}"
    SystemdCgroup = true
"""


# Handlers with a containerd shim of their own (found on PATH by runtime_type): gVisor's
# containerd-shim-runsc-v1, which runs runsc from PATH.
SHIM_HANDLERS = {"runsc": "io.containerd.runsc.v1"}
_SHIM_HANDLER = """
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.{name}]
  runtime_type = "{runtime_type}"
"""


def handler_names() -> set[str]:
    """The containerd handlers the offline node image adds to kind's."""
    return set(RUNTIME_HANDLERS) | set(SHIM_HANDLERS)


def with_runtime_handlers(config: str, without: set[str] = frozenset()) -> str:
    """kind's containerd config with RUNTIME_HANDLERS and SHIM_HANDLERS registered
    (but those `without`: runtimes left out of the image)."""
    return (config + "".join(_HANDLER.format(name=n, binary=b, spec=spec)
                             for n, (b, spec) in RUNTIME_HANDLERS.items() if n not in without)
            + "".join(_SHIM_HANDLER.format(name=n, runtime_type=t)
                      for n, t in SHIM_HANDLERS.items() if n not in without))


def _left_out() -> dict[str, hostlimits.HostLimit]:
    """{component: limit} for the components whose runtime this host cannot run."""
    return {limit.component: limit for limit in hostlimits.unmet(hostlimits.bounding_set())}


def _place(dest: Path, src_dir: Path, names: tuple[str, ...]) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for n in names:
        shutil.copy2(src_dir / n, dest / n)
        (dest / n).chmod(0o755)


def _set_toml_string(text: str, key: str, value: str) -> str:
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.strip().startswith(f"{key} ="):
            indent = line[: len(line) - len(line.lstrip())]
            lines[i] = f'{indent}{key} = "{value}"'
            return "\n".join(lines) + "\n"
    raise BuildError(f"{key} not found in kind's containerd config")


def _cri_base_spec(ctr: Path, product_files_hook: bool = True) -> str:
    """containerd's default OCI spec with kind's product-files hook, as kind makes it."""
    try:
        spec = json.loads(run_command.run([ctr, "oci", "spec"], timeout=run_command.QUERY).stdout)
    except CommandError as err:
        raise BuildError(f"ctr oci spec failed: {err}") from None
    if product_files_hook:
        hooks = spec.setdefault("hooks", {}).setdefault("createContainer", [])
        hooks.append({"path": "/kind/bin/mount-product-files.sh"})
    spec["process"].pop("rlimits", None)
    return json.dumps(spec, indent=2) + "\n"


def _kind_module_dir() -> Path:
    from .gobuild import module_info
    work = cache.path("work", "kind-files")
    work.mkdir(parents=True, exist_ok=True)
    (work / "go.mod").write_text("module secctx.local/probe\n\ngo 1.22\n")
    return Path(module_info("sigs.k8s.io/kind", components.KIND_VERSION, work)["Dir"])


# Mirrors the package-independent steps of kind's images/base/Dockerfile; cri_service:
# the CRI implementation's unit (containerd.service, or crio.service and what it needs).
DOCKERFILE = """FROM {base}
COPY root/ /
RUN chmod 755 /kind /kind/bin \\
 && find /lib/systemd/system/sysinit.target.wants/ -name systemd-tmpfiles-setup.service -delete \\
 && rm -f /lib/systemd/system/multi-user.target.wants/* /etc/systemd/system/*.wants/* \\
          /lib/systemd/system/local-fs.target.wants/* /lib/systemd/system/sockets.target.wants/*udev* \\
          /lib/systemd/system/sockets.target.wants/*initctl* /lib/systemd/system/basic.target.wants/* \\
 && echo "ReadKMsg=no" >> /etc/systemd/journald.conf \\
 && (test -e /sbin/init || ln -s /usr/lib/systemd/systemd /sbin/init) \\
 && systemctl enable kubelet.service {cri_service} undo-mount-hacks.service \\
                   secctx-pod-masquerade.service \\
 && systemctl mask systemd-binfmt.service \\
 && mkdir -p /etc/kubernetes/manifests
ENV container=docker
STOPSIGNAL SIGRTMIN+3
ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]
"""


def _import_and_commit(base_tag: str, tag: str, archives: list[Path], key: str,
                       coredns: bool, version: KubeVersion) -> None:
    # A build killed earlier (engine restarted, SIGKILL) may have left its container.
    stale = docker.run(["ps", "-aq", "--filter", "name=secctx-node-build-"]).split()
    if stale:
        docker.run(["rm", "-f", "-v", *stale])
    name = f"secctx-node-build-{int(time.time())}"
    docker.run(["run", "-d", "--privileged", "--name", name, "--entrypoint", "sleep",
                base_tag, "infinity"])
    try:
        def sh(script: str, **kw) -> str:
            return docker.run(["exec", "-i", name, "bash", "-c", script], **kw)
        sh("nohup containerd > /var/log/containerd-build.log 2>&1 &")
        sh("for i in $(seq 1 100); do [ -S /run/containerd/containerd.sock ] && ctr version "
           ">/dev/null 2>&1 && exit 0; sleep 0.1; done; cat /var/log/containerd-build.log; exit 1")
        for archive in archives:
            log.step(f"importing {archive.name} into the node's containerd")
            docker.run(["exec", "-i", name, "ctr", "--namespace=k8s.io", "images", "import",
                        "--label=io.cri-containerd.pinned=pinned", "--all-platforms",
                        "--no-unpack", "--digests", "-"], input=archive.read_bytes())
        log.step("node holds: " + " ".join(sh("ctr -n k8s.io images list -q").split()))
        # Stop containerd cleanly so that its metadata is flushed before the commit.
        # (sleep is PID 1 and does not reap: an exited containerd stays a zombie.)
        sh("pkill -x containerd; for i in $(seq 1 100); do ps -C containerd -o stat= | "
           "grep -qv Z || exit 0; sleep 0.1; done; ps -C containerd -o pid,stat,args; exit 1")
        docker.run(["commit",
                    "--change", 'ENTRYPOINT [ "/usr/local/bin/entrypoint", "/sbin/init" ]',
                    "--change", "CMD []",
                    "--change", f"LABEL {docker.KEY_LABEL}={key}",
                    "--change", f"LABEL io.secctx.coredns={str(coredns).lower()}",
                    "--change", f"LABEL {INPUTS_LABEL}={inputs_key(version)}",
                    name, tag])
    finally:
        run_command.run(["docker", "rm", "-f", "-v", name], timeout=run_command.QUERY, check=False)
