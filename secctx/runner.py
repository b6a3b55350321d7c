"""One case from manifest to observation: apply, await the outcome, probe.

The test functions in suites/ call these in order and assert on what they
return; every step is recorded in the report with its inputs and outputs.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

from . import observe, report
from .cases import Case, Outcome
from .kube import Kube, Terminal, WaitTimeout, describe_pod, format_events
from .session import LOCAL_CLASS, Suite


@dataclass
class Applied:
    namespace: str
    objects: list[dict]       # as applied (images mapped, storage chosen)
    pod_name: str             # the pod under test (for a Deployment: its first pod)
    pod_spec: dict            # as applied


def prepare_objects(case: Case, suite: Suite, storage: str | None) -> list[dict]:
    """The case's objects with images mapped and, for `local` storage, claims on our class."""
    objects = [suite.image_map.rewrite(o) for o in case.objects]
    for obj in objects:
        if obj.get("kind") == "PersistentVolumeClaim" and storage == "local":
            obj.setdefault("spec", {})["storageClassName"] = LOCAL_CLASS
    return objects


def apply(suite: Suite, case: Case, namespace: str, objects: list[dict]) -> Applied:
    with report.step(f"apply {len(objects)} object(s) into namespace {namespace}"):
        for original, obj in zip(case.objects, objects):
            images = _image_pairs(original, obj)
            if images:
                report.attach_text(f"image map for {obj['kind']}/{obj['metadata']['name']}",
                                   "\n".join(f"{a} -> {b}" for a, b in images))
            report.attach_yaml(f"applied {obj['kind']}/{obj['metadata']['name']}", obj)
            suite.kube.apply(obj, namespace)
    workload = next(o for o in objects if o["kind"] == ("Deployment" if case.deployment else "Pod")
                    and o["metadata"]["name"] == (case.deployment or case.pod))
    spec = workload["spec"]["template"]["spec"] if case.deployment else workload["spec"]
    return Applied(namespace, objects, case.pod or "", spec)


def await_outcome(suite: Suite, case: Case, applied: Applied, outcome: Outcome,
                  timeout: float = 60) -> object:
    """Wait for what the case expects; returns the pod (running/crashing) or the
    Terminal problem (rejected). Raises AssertionError when the outcome differs."""
    kube = suite.kube
    ns = applied.namespace
    if case.deployment:
        with report.step(f"wait for deployment {case.deployment} to be ready (≤{timeout:.0f}s)"):
            kube.wait_for_deployment(case.deployment, ns, timeout)
            pods = kube.core.list_namespaced_pod(ns).items
            applied.pod_name = sorted(p.metadata.name for p in pods)[0]
            return pods
    if outcome.status == "running":
        with report.step(f"wait for pod {applied.pod_name} to be Ready (≤{timeout:.0f}s)"):
            return kube.wait_for_pod(applied.pod_name, ns, "Ready", timeout)
    if outcome.status == "rejected":
        with report.step(f"wait for pod {applied.pod_name} to be refused: "
                         f"reason {outcome.reason!r}, message containing {outcome.message!r}"):
            try:
                pod = kube.wait_for_pod(applied.pod_name, ns, "Ready", timeout)
            except Terminal as problem:
                return problem
            raise AssertionError(f"{report_prefix()}pod {applied.pod_name} is Ready, but the case "
                                 f"expects it refused ({outcome.reason}: {outcome.message}):\n"
                                 f"{describe_pod(pod)}")
    # crashing: the container starts and exits; wait until it has done so once.
    with report.step(f"wait for container {case.container} to start and exit (≤{timeout:.0f}s)"):
        return kube.wait_for_container_exit(applied.pod_name, ns, case.container, timeout)


def report_prefix() -> str:
    from .verdict import NOT_ENFORCED
    return f"{NOT_ENFORCED}: "


def probe(suite: Suite, applied: Applied, container: dict) -> observe.Observation:
    """One exec gathering PID 1's status, id, mounts, LSM label, stat and write tests."""
    mounts = container.get("volumeMounts") or []
    stat_paths = [m["mountPath"] for m in mounts]
    write_paths = [m["mountPath"] for m in mounts if not m.get("readOnly")]
    script = observe.probe_script(stat_paths, write_paths)
    with report.step(f"exec probe in {applied.pod_name}/{container['name']}: "
                     "cat /proc/1/status, id, id -G, /proc/1/mounts, attr/current, stat, writes"):
        result = suite.kube.exec(applied.pod_name, applied.namespace, container["name"],
                                 ["sh", "-c", script])
        report.attach_text("exec transcript (probe)", result.transcript())
        obs = observe.parse(result.stdout)
        report.attach_caps(obs.pid1)
        for name, text in obs.raw.items():
            report.attach_text(f"probe: {name}", text)
    return obs


def attach_diagnostics(suite: Suite, applied: Applied | None, container: str | None) -> None:
    """What a reader needs to diagnose a failure without re-running."""
    if applied is None:
        return
    kube, ns = suite.kube, applied.namespace
    report.attach_text("events (time order)", format_events(kube.events(ns)))
    for pod in kube.core.list_namespaced_pod(ns).items:
        report.attach_object(f"stored Pod/{pod.metadata.name}", pod, kube.api)
        report.attach_text(f"describe Pod/{pod.metadata.name}", describe_pod(pod))
        for c in pod.spec.containers:
            report.attach_text(f"logs {pod.metadata.name}/{c.name}",
                               kube.logs(pod.metadata.name, ns, c.name))


def _image_pairs(original: dict, mapped: dict) -> list[tuple[str, str]]:
    def images(obj):
        spec = obj.get("spec", {})
        pod = spec.get("template", {}).get("spec", spec)
        return [c.get("image") for k in ("initContainers", "containers")
                for c in pod.get(k) or [] if c.get("image")]
    return [(a, b) for a, b in zip(images(original), images(mapped))]


def bound_storage_kinds(suite: Suite, applied: Applied) -> dict[str, str]:
    """{claim name: volume source kind of its PV} (hostPath, local, csi, nfs, ...)."""
    kinds = {}
    for vol in applied.pod_spec.get("volumes") or []:
        claim = (vol.get("persistentVolumeClaim") or {}).get("claimName")
        if not claim:
            continue
        pvc = suite.kube.core.read_namespaced_persistent_volume_claim(claim, applied.namespace)
        pv = suite.kube.core.read_persistent_volume(pvc.spec.volume_name)
        spec = suite.kube.api.sanitize_for_serialization(pv.spec)
        kinds[claim] = next((k for k in ("hostPath", "local", "csi", "nfs") if k in spec), "other")
        report.attach_text(f"PV bound to {claim}", f"{pv.metadata.name}: {kinds[claim]} "
                                                   f"({spec.get(kinds[claim], '')})")
    return kinds


def _volume_of_mount(pod_spec: dict, mount: dict) -> dict:
    return next(v for v in pod_spec.get("volumes") or [] if v["name"] == mount["name"])


def volume_expectations(pod_spec: dict, container: dict,
                        bound: dict[str, str]) -> tuple[dict[str, dict], dict[str, str]]:
    """fsGroup expectations per mount path from the oracle (expect_volume), and why.

    A claim's volume is ownership-managed when its PV is `local` or CSI; inline
    volumes are, except hostPath.
    """
    from .expect import expect_volume
    expected, reasons = {}, {}
    for mount in container.get("volumeMounts") or []:
        vol = _volume_of_mount(pod_spec, mount)
        claim = (vol.get("persistentVolumeClaim") or {}).get("claimName")
        managed = bound.get(claim) in ("local", "csi") if claim else "hostPath" not in vol
        exp = expect_volume(pod_spec, mount["name"], managed)
        reasons[mount["mountPath"]] = exp.reason
        if exp.gid is not None:
            expected[mount["mountPath"]] = {"gid": exp.gid, "setgid": exp.setgid}
    return expected, reasons


def start_pod(suite: Suite, namespace: str, pod: dict, timeout: float = 60):
    """Apply a pod written in a test (images mapped) and wait for it to be Ready."""
    pod = suite.image_map.rewrite(pod)
    with report.step(f"apply Pod/{pod['metadata']['name']} and wait for Ready (≤{timeout:.0f}s)"):
        report.attach_yaml(f"applied Pod/{pod['metadata']['name']}", pod)
        suite.kube.apply(pod, namespace)
        return suite.kube.wait_for_pod(pod["metadata"]["name"], namespace, "Ready", timeout)


def sh(suite: Suite, namespace: str, pod: str, script: str, container: str = "main"):
    """Run a shell snippet in the container; the transcript goes to the report."""
    with report.step(f"exec in {pod}: {script[:100]}"):
        result = suite.kube.exec(pod, namespace, container, ["sh", "-c", script])
        report.attach_text(f"exec: {script[:60]}", result.transcript())
    return result


def run_commands(suite: Suite, applied: Applied, case: Case) -> list[tuple]:
    """The case's `commands`, each exec'd in the container under test."""
    return [(command, sh(suite, applied.namespace, applied.pod_name, command.run, case.container))
            for command in case.commands]
