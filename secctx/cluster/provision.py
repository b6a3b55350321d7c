"""Bring a cluster up for a run, or find the one the user gave us.

One place decides the order: engine, mode, image map, node image, the run's
images in the local engine, kind cluster (created, reused, or an existing
cluster through a kubeconfig), images loaded. What the images are and how
they reach the nodes is secctx.images.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from ..core import cache, run_command, timeouts
from ..core.podspec import condition_true
from ..core.run_command import CommandError
from ..images import docker
from ..images import load as images
from ..images.imagemap import ImageMap
from ..offline import capshim, crionode, log, nodeimage
from . import engine, existing, inotify, kindconfig, versions
from . import mode as modes
from .kind import ClusterError, KindCluster

# Offline default: the newest release that builds and runs here (1.34-1.37 all do).
# Online default (no version asked): kind's own default node image.
DEFAULT_KUBERNETES_VERSION = "v1.37.2"
DEFAULT_CLUSTER_NAME = "secctx"
CRIS = tuple(kindconfig.CRI_SOCKETS)  # --cri: containerd (kind's own), crio


@dataclass
class Options:
    name: str = DEFAULT_CLUSTER_NAME
    kubernetes_version: str | None = None  # None: the mode's default
    mode: str = "auto"
    node_image: str | None = None
    kind_bin: Path | None = None
    existing_kubeconfig: Path | None = None
    kube_context: str | None = None  # context in existing_kubeconfig (None: current-context)
    image_map: Path | None = None
    image_registry: str | None = None  # --image-registry HOST[/PREFIX]
    registry_mirrors: tuple[str, ...] = ()  # --registry-mirror [REGISTRY=]URL (kind nodes)
    rebuild: bool = False
    workers: int = 0
    seccomp_default: bool = False  # kubelet seccompDefault: true (a second configuration)
    cri: str = "containerd"  # the kind nodes' CRI implementation (--cri)


@dataclass
class Cluster:
    kubeconfig: Path
    mode: str
    mode_reason: str
    image_map: ImageMap
    node_image: str | None = None
    kind: KindCluster | None = None  # None: an existing cluster we must not touch
    created: bool = False
    tally: images.Tally = field(default_factory=images.Tally)

    @property
    def nodes_pull(self) -> bool:
        """The nodes get the run's images themselves (else the suite loaded them)."""
        return self.kind is None or self.image_map.mode != modes.OFFLINE


def bring_up(opts: Options) -> Cluster:
    if opts.existing_kubeconfig:
        return _existing_cluster(opts)
    if opts.kind_bin and not Path(opts.kind_bin).is_file():
        raise ClusterError(f"kind is missing at {opts.kind_bin} (--kind-bin): install kind "
                           ">= v0.32 there, pass the path of an installed one, or drop --kind-bin "
                           "and the suite builds kind from its Go module")
    info = engine.ensure_engine()
    mode, why = modes.detect(opts.mode, info, docker.image_exists)
    log.step(f"mode: {mode} ({why})")
    requested = opts.kubernetes_version or (DEFAULT_KUBERNETES_VERSION if mode == modes.OFFLINE
                                            else None)
    version = None
    if requested:
        version, how = versions.resolve(requested, mode)
        if how != "as asked":
            log.step(f"Kubernetes {version} ({how})")
    conflict = modes.registry_problem(opts.image_registry, mode, why)
    if conflict:
        raise ClusterError(conflict)
    image_map = ImageMap.load(mode, opts.image_map, opts.image_registry)
    node_image, coredns = _node_image(opts, mode, version)
    to_load = images.ensure_local(image_map, opts.image_map)
    mirrors = kindconfig.registry_mirrors(list(opts.registry_mirrors))
    certs_dir = cache.cluster_state(opts.name) / "certs.d"
    if mirrors:
        kindconfig.write_hosts_files(certs_dir, mirrors)
        log.step("the kind nodes pull through " + ", ".join(f"{r} -> {u}" for r, u in mirrors.items()))
    config = kindconfig.kind_config(
        name=opts.name, cgroup_v1=kindconfig.host_cgroup_version() == 1,
        short_bounding_set=bool(capshim.missing_capabilities()), coredns=coredns,
        workers=opts.workers, seccomp_default=opts.seccomp_default, mirrors=mirrors,
        certs_dir=certs_dir, cri=opts.cri)
    kind = KindCluster(opts.name, kind_path=_kind_binary(opts.kind_bin),
                       image=node_image, config=config, cri=opts.cri)
    created = _create_or_reuse(kind)
    try:
        _wait_for_system_deployments(Path(kind.kubeconfig_path))
        images.load_onto_nodes(kind, to_load)
    except BaseException:  # a half-set-up cluster this run created is not kept
        if created:
            tear_down(Cluster(kubeconfig=Path(kind.kubeconfig_path), mode=mode, mode_reason=why,
                              image_map=image_map, kind=kind, created=True), keep=False)
        raise
    return Cluster(kubeconfig=Path(kind.kubeconfig_path), mode=mode, mode_reason=why,
                   image_map=image_map, node_image=node_image, kind=kind, created=created,
                   tally=images.Tally(built_here=list(to_load), loaded=list(to_load)))


def _existing_cluster(opts: Options) -> Cluster:
    """A cluster of the user's (--kubeconfig): checked, never created or changed."""
    server = existing.check_kubeconfig(opts.existing_kubeconfig, opts.kube_context)
    existing.preflight_api(opts.existing_kubeconfig, opts.kube_context, server)
    map_mode, map_why = modes.existing_cluster_map_mode(opts.mode)
    log.step(f"image map: {map_mode} ({map_why})")
    return Cluster(kubeconfig=opts.existing_kubeconfig, mode="existing",
                   mode_reason="--kubeconfig names an existing cluster",
                   image_map=ImageMap.load(map_mode, opts.image_map, opts.image_registry))


def _node_image(opts: Options, mode: str, version) -> tuple[str, bool]:
    """The kind node image of this run (the user's, built offline, or kind's release
    one) and whether the cluster runs CoreDNS."""
    coredns = True
    if opts.node_image:
        node_image = opts.node_image
        # Offline, kind would try to pull a missing image and hang on the registry.
        if mode == modes.OFFLINE and not docker.image_exists(node_image):
            raise ClusterError(
                f"node image {node_image} does not exist in the local Docker engine, and offline "
                "mode never pulls: build one with `python -m secctx node-image "
                "--kubernetes-version vX.Y.Z` (tags secctx.local/kind-node:vX.Y.Z), `docker load` "
                "it, or drop --kind-image/--node-image to build the default one")
    elif mode == modes.OFFLINE:
        if version is None:
            raise ClusterError("offline mode needs --kubernetes-version")
        versions.check_offline_version(version)
        builder = crionode if opts.cri == crionode.CRI else nodeimage
        built = builder.build(version, rebuild=opts.rebuild)
        node_image, coredns = built.tag, built.coredns
    elif opts.cri != "containerd":
        raise ClusterError(f"--cri {opts.cri}: kind publishes node images with containerd only; "
                           f"use --mode offline (the suite builds a CRI-O node image), or "
                           f"--kind-image with a CRI-O node image of your own")
    else:
        node_image, must_build = modes.online_node_image(str(version) if version else None)
        if must_build and not docker.image_exists(node_image):
            log.step(f"kind publishes no node image for {version}: building {node_image} "
                     f"(kind build node-image --type release {version}; cached by version)")
            KindCluster.build_release_node_image(_kind_binary(opts.kind_bin), str(version),
                                                 node_image)
    return node_image, coredns


def _create_or_reuse(kind: KindCluster) -> bool:
    """Reuse a kept cluster only when it was made with the same config and image."""
    def identity() -> str:
        return kindconfig.dump(kind.config) + f"# image: {kind.image} {_image_identity(kind.image)}\n"
    wanted = identity()
    stamp = kind.path / "identity"
    if kind.exists():
        if not stamp.exists() or stamp.read_text() != wanted:
            raise ClusterError(
                f"a kind cluster named {kind.name!r} exists but was made with another config or "
                f"node image (see {stamp}); delete it (kind delete cluster --name {kind.name}) "
                "or choose another name with --cluster-name")
        if kind.running() and _api_ready(kind.kubeconfig_path):
            log.step(f"reusing kept cluster {kind.name}")
            return False
        log.step(f"kept cluster {kind.name} is stopped or unhealthy; recreating it")
        kind.delete()
    inotify.ensure(engine.STATE_DIR)
    log.step(f"creating kind cluster {kind.name} from {kind.image}")
    kind.create()
    stamp.write_text(identity())  # an image kind pulled is there now, and has an identity
    return True


def _image_identity(image: str) -> str:
    """What makes a node image the same image: its content key when we built it (a
    relabel after a builder edit changes the ID, not the content), else its ID."""
    if not docker.image_exists(image):
        return "(pulled by kind)"
    return (f"content {docker.image_label(image)}" if docker.image_label(image)
            else docker.run(["image", "inspect", "--format", "{{.Id}}", image]).strip())


def _wait_for_system_deployments(kubeconfig: Path, timeout: float = timeouts.SYSTEM_DEPLOYMENTS) -> None:
    """kind returns once the control plane is Ready; CoreDNS and the storage
    provisioner may still be starting. A complete cluster has them available.
    local-path-provisioner often restarts once while the kubernetes Service is
    not yet routed, so a crash loop here is waited out, within the bound."""
    from ..kube import Kube, WaitTimeout
    kube = Kube.from_kubeconfig(kubeconfig)
    for namespace in ("kube-system", "local-path-storage"):
        for dep in kube.apps.list_namespaced_deployment(namespace).items:
            try:
                kube.wait_for_deployment(dep.metadata.name, namespace, timeout, fail_fast=False)
            except WaitTimeout as err:  # the dump (events, unwell containers' logs) says why
                raise ClusterError(f"the new cluster's system pods did not become ready: {err}") \
                    from None
    log.step("system deployments are available")


def _api_ready(kubeconfig: Path, timeout: float = timeouts.API_READY) -> bool:
    """The API server answers and every node is Ready (bounded)."""
    import time

    from kubernetes import client, config
    try:
        api = config.new_client_from_config(config_file=str(kubeconfig))
    except Exception:  # unreadable kubeconfig: the cluster cannot be reused
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            client.VersionApi(api).get_code(_request_timeout=5)
            nodes = client.CoreV1Api(api).list_node(_request_timeout=5).items
            if nodes and all(condition_true(n, "Ready") for n in nodes):
                return True
        except Exception:  # not up yet after a restart: retry until the bound
            pass
        time.sleep(1)  # a restarting API server offers nothing to watch
    return False


def _kind_binary(given: Path | None) -> Path:
    if given:
        return given
    on_path = shutil.which("kind")
    if on_path and _kind_version_ok(on_path):
        return Path(on_path)
    return nodeimage.kind_binary()


def _kind_version_ok(path: str) -> bool:
    try:  # a kind on PATH that does not run is as good as an old one: build ours
        out = run_command.run([path, "version"], timeout=run_command.QUERY, check=False).stdout.split()
    except CommandError:
        return False
    try:
        major, minor = (int(x) for x in out[1].lstrip("v").split(".")[:2])
    except (IndexError, ValueError):
        return False
    return (major, minor) >= (0, 32)  # older kind writes kubeadm v1beta3, refused by 1.37


def tear_down(cluster: Cluster, keep: bool) -> None:
    if cluster.kind and cluster.created and not keep:
        log.step(f"deleting kind cluster {cluster.kind.name}")
        cluster.kind.delete()
        (cluster.kind.path / "identity").unlink(missing_ok=True)
