"""The state an end-to-end run shares between tests, set up once per session.

Set-up: clean stale objects of earlier runs, learn the node facts, install
the cases' seccomp profiles on every node, offer `local` PersistentVolumes,
write the Allure environment files. Tear-down removes what set-up created.
"""
from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from .. import report
from ..cluster import hostlimits
from ..cluster.mode import OFFLINE
from ..cluster.provision import Cluster
from ..core import run_command, timeouts
from ..core.categories import runtime_cannot_run
from ..images import docker, load
from ..images.imagemap import ImageMap
from ..kube import MANAGED_BY, RUN_LABEL, Kube, pullcheck
from ..observations import Collector
from ..offline import log
from ..oracle import nodefacts
from .signals import cleanup_first

WORKER_LABEL = "secctx.io/worker"
LOCAL_CLASS = "secctx-local"
# Pre-bound `local` PVs whose contents set-up prepares, for fsGroupChangePolicy:
# (name, gid of the volume's root). Each holds a file `preexisting` of group 0.
PREPARED_CLASS = "secctx-local-prepared"  # no StorageClass object: claims bind by volumeName
PREPARED_FSGROUP = 2000
PREPARED_VOLUMES = (("root-matches", PREPARED_FSGROUP), ("root-differs", 0),
                    ("root-matches-always", PREPARED_FSGROUP))
PRIVILEGED_NS = {"pod-security.kubernetes.io/enforce": "privileged"}


@dataclass
class Suite:
    kube: Kube
    cluster: Cluster
    run_id: str
    env: nodefacts.Environment
    worker: str = "main"
    local_pvs: list[str] = field(default_factory=list)
    kept_namespaces: set[str] = field(default_factory=set)  # --secctx-keep-on-failure
    prepared_pvs: dict[str, str] = field(default_factory=dict)  # PREPARED_VOLUMES name -> PV
    # What this process observed (tests record into it); the plugin writes it at session end.
    observations: Collector = field(default_factory=Collector)
    # RuntimeClass -> the one line why its containers cannot run here (its tests say it).
    runtime_problems: dict[str, str] = field(default_factory=dict)
    # Those of them the suite itself added to a kind cluster's nodes: the host's limit.
    host_cannot_run: frozenset[str] = frozenset()

    def __repr__(self) -> str:  # short: pytest prints fixture values in failures
        return f"<suite run {self.run_id}, Kubernetes {self.env.kubernetes_version}, worker {self.worker}>"

    def require_runtime(self, runtime: str) -> None:
        """Stop a test under `runtime` when its containers cannot run: skipped (with the
        runtime's own error) where the suite itself added the RuntimeClass and this host
        cannot run it; failed where the cluster offers a RuntimeClass that does not work."""
        problem = self.runtime_problems.get(runtime)
        if problem and runtime in self.host_cannot_run:
            pytest.skip(runtime_cannot_run(runtime, problem))
        if problem:
            pytest.fail(problem, pytrace=False)

    @property
    def image_map(self) -> ImageMap:
        return self.cluster.image_map

    @property
    def kubernetes_version(self) -> str:
        return self.env.kubernetes_version

    def image_user(self, image: str, node: str | None) -> str | None:
        """The config USER of an image the run uses (its reference as the map resolves
        it), as that node's image store has it; else the local engine's copy; None
        if neither can tell (then the oracle takes the kubelet's word)."""
        users = self.env.on(node).image_users
        return users[image] if image in users else docker.config_user(image)

    def new_namespace(self, prefix: str, labels: dict | None = None) -> str:
        """A namespace labelled with this run and worker, so that tear-down finds
        it even if a signal cut its creator short."""
        return self.kube.create_namespace(prefix, self.run_id,
                                          {WORKER_LABEL: self.worker, **(labels or {})})

    def open_namespace(self, prefix: str) -> str:
        """A new namespace that can take pods (its default ServiceAccount exists);
        deleted again if that wait fails or is interrupted (nothing else would)."""
        ns = self.new_namespace(prefix)
        try:
            self.kube.wait_for_default_service_account(ns)
        except BaseException:
            with cleanup_first(f"deleting namespace {ns}"):
                self.kube.delete_namespace(ns)
            raise
        return ns



def start(cluster: Cluster, run_id: str, seccomp_profiles: dict[str, str], results: Path | None,
          local_pv_count: int = 4, context: str | None = None, worker: str = "main",
          runtimes: list[str] = (nodefacts.DEFAULT_RUNTIME,),
          apparmor_profiles: dict[str, str] | None = None) -> Suite:
    kube = Kube.from_kubeconfig(cluster.kubeconfig, context)
    if worker in ("main", "gw0"):  # once per run: xdist workers share the run id
        remove_stale(kube, run_id)
    system_ns = kube.create_namespace("secctx-system", run_id, PRIVILEGED_NS)
    try:
        kube.wait_for_default_service_account(system_ns)
        if cluster.nodes_pull and worker in ("main", "gw0"):
            check_images(kube, system_ns, cluster)
        dirs, prepared, prepare = local_volume_plan(run_id, worker, local_pv_count)
        files = {f"{nodefacts.SECCOMP_DIR}/{name}": content
                 for name, content in seccomp_profiles.items()}
        helper_image = cluster.image_map.resolve("busybox:1.36")
        # The offline node image leaves out what this host cannot run (hostlimits).
        left_out = hostlimits.left_out() if cluster.kind and cluster.mode == OFFLINE else {}
        probes = RuntimeProbes(kube, system_ns, helper_image, runtimes,
                               create=cluster.kind is not None, left_out=left_out)
        try:
            env = nodefacts.gather(kube, system_ns, helper_image,
                                   files, prepare, images=cluster.image_map.local_images(),
                                   apparmor_profiles=apparmor_profiles)
        except BaseException:
            probes.close()
            raise
        problems, host_cannot_run = probes.finish(env)
    finally:
        kube.delete_namespace(system_ns)
    for node, facts in env.per_node.items():
        log.step(f"node {node}: the config USER of {len(facts.get('image_users', {}))} of "
                 f"{len(cluster.image_map.local_images())} images read from its image store")
    env.extra.update(mode=cluster.mode, mode_reason=cluster.mode_reason,
                     node_image=cluster.node_image or "(existing cluster)",
                     images=cluster.tally.line())
    if cluster.image_map.registry:
        env.extra["image_registry"] = cluster.image_map.registry
    log.step(f"images: {cluster.tally.line()}")
    if cluster.kind:
        env.extra.update(_kind_node_versions(cluster))
    else:  # reading runc's version needs `docker exec` into a kind node
        reason = "not read: not a kind cluster (needs docker exec into the node)"
        env.extra.update(runc=reason, containerd=env.container_runtime or reason)
        log.step(f"skipped kind-only step (runc/containerd versions): {reason}")
    suite = Suite(kube, cluster, run_id, env, worker=worker, runtime_problems=problems,
                  host_cannot_run=frozenset(host_cannot_run))
    # `local` PVs on every node: a claim binds on the node its pod is pinned to (a VM
    # node's cases too); the prepared ones only on the first (their tests' pods go there).
    for i, node in enumerate(env.nodes):
        suite.local_pvs += _create_local_pvs(kube, run_id, node, dirs, LOCAL_CLASS,
                                             suffix=f"-n{i}" if i else "")
    for name, d in prepared.items():
        [suite.prepared_pvs[name]] = _create_local_pvs(kube, run_id, env.nodes[0], [d],
                                                       PREPARED_CLASS)
    suite.local_pvs += list(suite.prepared_pvs.values())
    if results:
        report.write_results_files(results, env.properties())
    log.step(f"environment: {json.dumps(env.properties())}")
    return suite


# RuntimeClasses the suite creates on a kind cluster, for the handlers a node image
# registers in containerd (kind's test-handler is runc under another name; the offline
# node image adds crun and gVisor's runsc). Created when asked for and every node
# reports the handler.
KIND_RUNTIME_CLASSES = {"secctx-test-handler": "test-handler", "crun": "crun", "runsc": "runsc",
                        "runc": "runc"}
# The offline node image's own runtimes besides runc: a kind run runs them all.
OFFLINE_RUNTIME_CLASSES = ("crun", "runsc")
# The CRI-O node image's handlers (secctx.offline.crionode.HANDLERS), each a RuntimeClass
# of its own besides the default handler (runc there: crionode.RUNTIMES_DROP_IN).
CRIO_RUNTIME_CLASSES = ("runc", "crun")


class RuntimeProbes:
    """The run's RuntimeClasses: found (on kind, created) at once, then each probed in a
    thread with a client of its own while set-up goes on (a runtime that cannot run takes
    two sandbox failures, ~15 s: it must not add to the node helper's time)."""

    def __init__(self, kube: Kube, namespace: str, image: str, names: list[str], create: bool,
                 left_out: dict[str, str] | None = None):
        node_api = client.NodeV1Api(kube.api)
        listed = node_api.list_runtime_class().items
        self.names = list(names)
        self.classes = {rc.metadata.name: rc.handler for rc in listed}
        self.ours = {rc.metadata.name for rc in listed
                     if MANAGED_BY.items() <= (rc.metadata.labels or {}).items()}
        self.handlers = {n.metadata.name: [h.name or "(default)"
                                           for h in n.status.runtime_handlers or []]
                         for n in kube.core.list_node().items}
        for name in names:
            handler = KIND_RUNTIME_CLASSES.get(name)
            if create and handler and name not in self.classes and all(
                    handler in hs for hs in self.handlers.values()):
                node_api.create_runtime_class(client.V1RuntimeClass(
                    metadata=client.V1ObjectMeta(name=name, labels=MANAGED_BY), handler=handler))
                self.classes[name] = handler
                self.ours.add(name)
        self.left_out = left_out or {}
        self.line = runtime_line(self.classes, self.handlers, names, self.left_out)
        log.step(f"runtimes: {self.line}")
        probed = [n for n in names if n != nodefacts.DEFAULT_RUNTIME and n in self.classes]
        self._pool = ThreadPoolExecutor(max(1, len(probed)), thread_name_prefix="secctx-probe")
        self._probes = {n: self._pool.submit(nodefacts.gather_runtime, kube.clone(), namespace,
                                             image, nodefacts.Runtime(n, self.classes[n]))
                        for n in probed}

    def finish(self, env: nodefacts.Environment) -> tuple[dict[str, str], set[str]]:
        """Wait for the probes (each bounded) and learn them into env.runtimes; ({name:
        why it cannot run} for those that cannot, the names among them that the suite
        itself added, now or in an earlier run: this host's limit, not the cluster's)."""
        env.extra["runtime_classes"] = self.line
        problems, unrunnable = {}, set()
        try:
            for name in self.names:
                if name == nodefacts.DEFAULT_RUNTIME:
                    continue
                if name not in self.classes and name in self.left_out:
                    problems[name] = (f"RuntimeClass {name} is not on the cluster: the offline "
                                      f"node image leaves it out ({self.left_out[name]}): "
                                      f"run on a host that grants it, or drop --secctx-runtime-class {name}")
                    continue
                if name not in self.classes:
                    reported = sorted({h for hs in self.handlers.values() for h in hs})
                    problems[name] = (f"RuntimeClass {name} is not on the cluster (it has: "
                                      f"{', '.join(sorted(self.classes)) or 'none'}; the nodes' "
                                      f"handlers: {', '.join(reported) or 'none reported'}): "
                                      f"create it, or drop --secctx-runtime-class {name}")
                    continue
                try:
                    env.runtimes[name] = self._probes[name].result()
                except nodefacts.RuntimeUnavailable as err:
                    problems[name] = err.line(env.grantable_caps)
                    if name in self.ours:
                        unrunnable.add(name)
        finally:
            self.close()
        for line in problems.values():
            log.step(line)
        return problems, unrunnable

    def close(self) -> None:
        """Without waiting: after a failed set-up, the probes end at their own bound
        (their namespace is being deleted)."""
        self._pool.shutdown(wait=False, cancel_futures=True)


def learn_runtimes(kube: Kube, namespace: str, image: str, env: nodefacts.Environment,
                   names: list[str], create: bool) -> tuple[dict[str, str], set[str]]:
    """RuntimeProbes, started and finished (see there): with `create`, the
    KIND_RUNTIME_CLASSES asked for are created."""
    return RuntimeProbes(kube, namespace, image, names, create).finish(env)


def runtime_line(classes: dict[str, str], handlers: dict[str, list[str]],
                 names: list[str], left_out: dict[str, str] | None = None) -> str:
    """What the run runs under, and every RuntimeClass and handler it does not: none hidden."""
    run = ", ".join(n if n == nodefacts.DEFAULT_RUNTIME else f"{n} (handler {classes.get(n, '?')})"
                    for n in names)
    others = sorted(set(classes) - set(names))
    node_handlers = sorted({h for hs in handlers.values() for h in hs})
    return (f"run under {run}; node handlers: {', '.join(node_handlers) or 'none reported'}"
            + (f"; RuntimeClasses not in this run (--secctx-runtime-class NAME): {', '.join(others)}"
               if others else "")
            + "".join(f"; left out of the node image: {n} ({why})"
                      for n, why in sorted((left_out or {}).items())))


def check_images(kube: Kube, namespace: str, cluster: Cluster) -> None:
    """Every node can get every image of the run, or the run ends here with one
    line. The suite's own test images, when their registry does not serve them
    to a kind cluster, are built here and loaded instead, and the line says so."""
    image_map = cluster.image_map
    images = image_map.local_images()
    started = time.monotonic()
    missing = pullcheck.check(kube, namespace, images, never_pull=image_map.mode == "offline")
    got = sorted(set(images) - {m.image for m in missing})
    log.step(f"the nodes have {len(got)} of the run's {len(images)} images "
             f"({time.monotonic() - started:.1f}s)")
    cluster.tally.pulled_by_nodes = got
    owned = image_map.suite_owned()
    unpublished = sorted({m.image for m in missing if m.image in owned})
    # Only from their own registry: --secctx-image-registry says "everything from there".
    if unpublished and cluster.kind and not image_map.registry:
        first = next(m for m in missing if m.image in owned)
        log.step(f"{len(unpublished)} of the suite's own test images are not served to the "
                 f"nodes (first: {first.image}: {first.reason}: {first.message.strip()}); "
                 f"building them here and loading them into the kind nodes: "
                 f"{', '.join(unpublished)}")
        load.load_suite_images(cluster.kind, image_map, unpublished)
        cluster.tally.built_here += unpublished
        cluster.tally.loaded += unpublished
        missing = [m for m in missing if m.image not in owned]
    if missing:
        note = ("; the suite's own test images come from " + pullcheck.SUITE_IMAGES_HINT
                if any(m.image in owned for m in missing) else "")
        raise pullcheck.ImageUnavailable(pullcheck.one_line(missing, note))


def local_volume_plan(run_id: str, worker: str, count: int) -> tuple[list[str], dict[str, str], str]:
    """Directories for this worker's `local` PVs (under the node's LOCAL_PV_ROOT): the
    plain ones, the prepared ones by PREPARED_VOLUMES name, and the node-helper script
    that makes them (node paths as the helper sees them, under /host/local-pv)."""
    dirs = [f"{run_id[:12]}-{worker}-{i}" for i in range(count)]
    script = "".join(f"mkdir -p /host/local-pv/{d} && chmod 0777 /host/local-pv/{d}\n"
                     for d in dirs)
    prepared = {n: f"{run_id[:12]}-{worker}-{n}" for n, _ in PREPARED_VOLUMES}
    for name, root_gid in PREPARED_VOLUMES:
        d = f"/host/local-pv/{prepared[name]}"
        script += (f"mkdir -p {d} && chgrp {root_gid} {d} && chmod 2775 {d} && "
                   f"touch {d}/preexisting && chgrp 0 {d}/preexisting\n")
    return dirs, prepared, script


def stop(suite: Suite, last: bool, timeout: float = timeouts.SESSION_STOP) -> None:
    """Delete this worker's PVs; the last worker out also deletes the shared StorageClass.

    Waits (bounded) until the run's deleted namespaces and PVs are gone, so that
    "deleted" at exit means gone, not Terminating. Namespaces kept on failure
    are not being deleted and are not waited for.
    """
    deadline = time.monotonic() + timeout
    _delete_leftover_namespaces(suite)
    # First the namespaces: their claims release the PVs (pv-protection).
    _wait_until_gone(suite.kube, "namespace", deadline)
    for pv in suite.local_pvs:
        try:
            suite.kube.core.delete_persistent_volume(pv)
        except ApiException as err:
            if err.status != 404:
                raise
    if last:
        _delete_storage_class(suite.kube)
    _wait_until_gone(suite.kube, "persistentvolume", deadline)


def _delete_leftover_namespaces(suite: Suite) -> None:
    """This worker's namespaces still active, except those kept on failure: a signal
    can land after the API server created a namespace but before its fixture
    knew the name."""
    selector = f"{RUN_LABEL}={suite.run_id},{WORKER_LABEL}={suite.worker}"
    listed = suite.kube.core.list_namespace(label_selector=selector).items
    for name in leftover_namespaces(listed, suite.kept_namespaces):
        suite.kube.delete_namespace(name)


def leftover_namespaces(listed: list, kept: set[str]) -> list[str]:
    """The listed namespaces still active, except those kept on failure."""
    return [ns.metadata.name for ns in listed
            if ns.status.phase == "Active" and ns.metadata.name not in kept]


def _wait_until_gone(kube: Kube, kind: str, deadline: float) -> None:
    """Until no object of ours (label MANAGED_BY) of `kind` is being deleted, or the deadline.

    A PV whose claim lives in a namespace that is not being deleted (kept on
    failure) stays bound and is not waited for."""
    selector = ",".join(f"{k}={v}" for k, v in MANAGED_BY.items())
    list_fn = (kube.core.list_namespace if kind == "namespace"
               else kube.core.list_persistent_volume)
    listed = list_fn(label_selector=selector)
    kept = set()
    if kind == "persistentvolume":
        kept = {ns.metadata.name for ns in kube.core.list_namespace().items
                if not ns.metadata.deletion_timestamp}
    pending = being_deleted(listed.items, kind, kept)
    if not pending:
        return
    started = time.monotonic()
    w = watch.Watch()
    while pending and time.monotonic() < deadline:
        try:
            for ev in w.stream(list_fn, label_selector=selector,
                               resource_version=listed.metadata.resource_version,
                               timeout_seconds=max(1, int(deadline - time.monotonic()))):
                if ev["type"] == "DELETED":
                    pending.discard(ev["object"].metadata.name)
                    if not pending:
                        w.stop()
        except ApiException as err:
            if err.status != 410:  # 410: the resource version expired; list again
                raise
        if pending:
            listed = list_fn(label_selector=selector)
            pending &= {o.metadata.name for o in listed.items}
    if pending:
        log.step(f"WARNING: {kind}s still terminating after {time.monotonic() - started:.0f}s: "
                 f"{', '.join(sorted(pending))}")
    else:
        log.step(f"{kind}s of this run are gone ({time.monotonic() - started:.1f}s)")


def being_deleted(items: list, kind: str, active_namespaces: set[str]) -> set[str]:
    """Objects being deleted that will go by themselves: a PV whose claim lives in a
    namespace that stays (kept on failure) stays bound, and is not waited for."""
    return {o.metadata.name for o in items if o.metadata.deletion_timestamp and not (
        kind == "persistentvolume" and o.spec.claim_ref
        and o.spec.claim_ref.namespace in active_namespaces)}


def remove_stale(kube: Kube, run_id: str) -> list[str]:
    """Namespaces and PVs left by earlier (interrupted) runs, recognised by label."""
    selector = ",".join(f"{k}={v}" for k, v in MANAGED_BY.items())
    stale = []
    for ns in kube.core.list_namespace(label_selector=selector).items:
        if (ns.metadata.labels or {}).get(RUN_LABEL) != run_id and ns.status.phase == "Active":
            stale.append(ns.metadata.name)
            kube.delete_namespace(ns.metadata.name)
    for pv in kube.core.list_persistent_volume(label_selector=selector).items:
        if (pv.metadata.labels or {}).get(RUN_LABEL) != run_id:
            stale.append(pv.metadata.name)
            try:
                kube.core.delete_persistent_volume(pv.metadata.name)
            except ApiException as err:
                if err.status != 404:  # gone meanwhile (its own run deleted it)
                    raise
    if stale:
        log.step(f"removed objects of earlier runs: {', '.join(stale)}")
    return stale


def _create_local_pvs(kube: Kube, run_id: str, node: str, dirs: list[str],
                      storage_class: str, suffix: str = "") -> list[str]:
    """`local` PVs (fsGroup applies to these, unlike hostPath), one claim each."""
    try:
        client.StorageV1Api(kube.api).create_storage_class(client.V1StorageClass(
            metadata=client.V1ObjectMeta(name=LOCAL_CLASS, labels=MANAGED_BY),
            provisioner="kubernetes.io/no-provisioner", volume_binding_mode="WaitForFirstConsumer"))
    except ApiException as err:
        if err.status != 409:
            raise
    names = []
    for d in dirs:
        name = f"secctx-local-{d}{suffix}"
        kube.core.create_persistent_volume(client.V1PersistentVolume(
            metadata=client.V1ObjectMeta(name=name, labels={**MANAGED_BY, RUN_LABEL: run_id}),
            spec=client.V1PersistentVolumeSpec(
                capacity={"storage": "1Gi"}, access_modes=["ReadWriteOnce"],
                persistent_volume_reclaim_policy="Retain", storage_class_name=storage_class,
                local=client.V1LocalVolumeSource(path=f"{nodefacts.LOCAL_PV_ROOT}/{d}"),
                node_affinity=client.V1VolumeNodeAffinity(required=client.V1NodeSelector(
                    node_selector_terms=[client.V1NodeSelectorTerm(match_expressions=[
                        client.V1NodeSelectorRequirement(key="kubernetes.io/hostname",
                                                         operator="In", values=[node])])])))))
        names.append(name)
    return names


def _delete_storage_class(kube: Kube) -> None:
    try:
        client.StorageV1Api(kube.api).delete_storage_class(LOCAL_CLASS)
    except ApiException as err:
        if err.status != 404:
            raise


def _kind_node_versions(cluster: Cluster) -> dict[str, str]:
    """runc, crun, runsc and containerd or CRI-O versions inside the kind node (kind mode
    only); the node image holds one CRI implementation, the other says it is not there."""
    node = f"{cluster.kind.name}-control-plane"
    out = {}
    for key, cmd in (("runc", ["runc", "--version"]), ("containerd", ["containerd", "--version"]),
                     ("crio", ["crio", "--version"]),
                     ("crun", ["crun", "--version"]), ("runsc", ["runsc", "--version"])):
        proc = run_command.run(["docker", "exec", node, *cmd], timeout=run_command.QUERY, check=False)
        # docker exec writes the OCI runtime's "executable file not found" to stdout
        lines = proc.stdout.splitlines() if proc.returncode == 0 else []
        out[key] = lines[0] if lines else "not on the node"
    kind = run_command.run([cluster.kind.kind_path, "version"], timeout=run_command.QUERY, check=False)
    out["kind"] = kind.stdout.strip()
    return out
