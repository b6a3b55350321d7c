"""Pod Security Admission: each recipe pod, dry-run (server-side) into
namespaces enforcing `baseline` and `restricted`. Admitted, or refused with
the checks PSA names. Also: every manifest is valid for the API server.
"""
from __future__ import annotations

import pytest
import yaml
from kubernetes.client.rest import ApiException
from kubernetes.utils import FailToCreateError

from secctx import report
from secctx.cases import minor_version
from secctx.core import paths
from secctx.core.categories import not_enforced
from secctx.core.errors import denial
from secctx.verdict import require

pytestmark = pytest.mark.e2e

MANIFESTS = paths.MANIFESTS
VERDICTS = yaml.safe_load((MANIFESTS.parent / "pod-security-admission.yaml").read_text())
PSA_UPSTREAM = [("[sig-auth] PodSecurity admission", "https://github.com/kubernetes/kubernetes/"
                 "blob/master/test/e2e/auth/")]


def _objects(name: str) -> list[dict]:
    return [o for o in yaml.safe_load_all((MANIFESTS / name).read_text()) if o]


def _pod_under_admission(obj: dict) -> dict:
    """The Pod PSA judges: the object itself, or a Pod made from a Deployment's template."""
    if obj["kind"] == "Pod":
        return obj
    template = obj["spec"]["template"]
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": obj["metadata"]["name"], "labels": template["metadata"].get("labels")},
            "spec": template["spec"]}


@pytest.mark.parametrize("manifest", sorted(p.name for p in MANIFESTS.glob("*.yaml")))
def test_manifest_is_accepted_by_server_side_dry_run(manifest, secctx_suite, secctx_namespace):
    report.label_test("Manifests", "server-side validation", manifest, secctx_suite.kubernetes_version,
                      "critical", title=f"{manifest} is accepted by the API server (server-side dry-run)")
    for obj in _objects(manifest):
        with report.step(f"dry-run create {obj['kind']}/{obj['metadata']['name']}"):
            secctx_suite.kube.apply(secctx_suite.image_map.rewrite(obj), secctx_namespace, dry_run=True)


@pytest.fixture(scope="module")
def psa_namespaces(secctx_suite):
    names = {level: secctx_suite.new_namespace(f"secctx-psa-{level}", {
        "pod-security.kubernetes.io/enforce": level,
        "pod-security.kubernetes.io/enforce-version": "latest"}) for level in ("baseline", "restricted")}
    yield names
    for ns in names.values():
        secctx_suite.kube.delete_namespace(ns)


@pytest.mark.parametrize("level", ["baseline", "restricted"])
@pytest.mark.parametrize("manifest", sorted(VERDICTS))
def test_pod_security_admission_verdict(manifest, level, secctx_suite, psa_namespaces):
    expected = verdict_for(VERDICTS[manifest][level], secctx_suite.kubernetes_version)
    report.label_test("Pod Security Admission", f"enforce={level}", manifest,
                      secctx_suite.kubernetes_version, "critical", PSA_UPSTREAM,
                      title=f"{manifest} under enforce={level}: " + (
                          "admitted" if expected == "admitted" else f"refused for {', '.join(expected)}"))
    secctx_namespace = psa_namespaces[level]
    for obj in _objects(manifest):
        if obj["kind"] in ("ServiceAccount", "ConfigMap"):  # what the pods refer to
            _create_once(secctx_suite, obj, secctx_namespace)
    pods = [_pod_under_admission(o) for o in _objects(manifest) if o["kind"] in ("Pod", "Deployment")]
    for pod in pods:
        with report.step(f"dry-run Pod/{pod['metadata']['name']} into a namespace enforcing {level}; "
                         f"expected: {expected}"):
            message = _admission_error(secctx_suite, pod, secctx_namespace)
            report.attach_text("admission response", message or "admitted")
        secctx_suite.observations.record_admission(manifest, level, message)
        if expected == "admitted":
            require(message is None, not_enforced(f"expected admission at {level}, got: {message}"))
        else:
            require(message is not None, not_enforced(f"{level} admitted {manifest}; expected {expected}"))
            require("violates PodSecurity" in message, message)
            missing = [check for check in expected if check not in message]
            require(not missing, not_enforced(f"rejection lacks {missing}: {message}"))


def verdict_for(verdict, kubernetes_version: str):
    """A verdict, or {minor version: verdict}: the newest key not above the cluster's."""
    if not isinstance(verdict, dict):
        return verdict
    have = minor_version(kubernetes_version)
    return max(((minor_version(v), got) for v, got in verdict.items() if minor_version(v) <= have),
               key=lambda pair: pair[0])[1]


def _admission_error(secctx_suite, pod: dict, secctx_namespace: str) -> str | None:
    try:
        secctx_suite.kube.apply(secctx_suite.image_map.rewrite(pod), secctx_namespace, dry_run=True)
    except FailToCreateError as err:
        if denial(err):  # RBAC refused the request: no admission took place
            raise
        return " ".join(e.body if isinstance(e, ApiException) else str(e) for e in err.api_exceptions)
    return None


def _create_once(secctx_suite, obj: dict, secctx_namespace: str) -> None:
    try:
        secctx_suite.kube.apply(obj, secctx_namespace)
    except FailToCreateError as err:
        if not all(isinstance(e, ApiException) and e.status == 409 for e in err.api_exceptions):
            raise
