"""Every case in fixtures/cases (and --cases-dir): apply the recipe's manifest,
wait for the outcome the case expects, look inside the container, and compare
each observed field with what Kubernetes promises for that spec.
"""
from __future__ import annotations

import re

import pytest

from secctx import expect, report, runner, timing, verdict
from secctx.kube import Terminal, describe_pod
from secctx.report import ENVIRONMENT_CANNOT_ENFORCE

pytestmark = pytest.mark.e2e

UNSUPPORTED = {
    "selinux": "SELinux is disabled on the node: the kubelet passes seLinuxOptions to the "
               "runtime, which silently ignores them, so there is no label to assert",
    "apparmor": "AppArmor is not enabled on the node",
}


def test_recipe_case(recipe_case, request):
    # A bad case file fails here, before the cluster is asked for: it is reported
    # (file:line) even when no cluster can be had. Valid cases get `suite` and
    # `namespace` set up before the call (conftest.pytest_collection_modifyitems),
    # outside the per-test timeout; these calls return them.
    if recipe_case.error:
        pytest.fail(f"invalid case file: {recipe_case.error}", pytrace=False)
    suite = request.getfixturevalue("suite")
    namespace = request.getfixturevalue("namespace")
    case = recipe_case.case
    report.label_case(case, suite.kubernetes_version, recipe_case.storage)
    report.attach_text("node environment", "\n".join(
        f"{k}={v}" for k, v in sorted(suite.env.properties().items())))
    unsupported = case.skip_unless and not suite.supports(case.skip_unless)
    outcome = case.when_unsupported if unsupported and case.when_unsupported else case.outcome

    objects = runner.prepare_objects(case, suite, recipe_case.storage)
    test_id = repr(recipe_case)
    applied = None
    try:
        with timing.phase(test_id, "apply_to_ready"):
            applied = runner.apply(suite, case, namespace, objects)
            result = runner.await_outcome(suite, case, applied, outcome)
        with timing.phase(test_id, "observation"):
            if outcome.status == "rejected":
                assert_refused_as_promised(result, outcome)
            elif outcome.status == "crashing":
                assert_crashed_as_promised(suite, applied, case.container, outcome)
            else:
                assert_enforced(suite, case, applied)
    except BaseException:
        runner.attach_diagnostics(suite, applied, case.container)
        raise
    report.note_recipe_claim(case.recipe_claim)
    if unsupported and not case.when_unsupported:
        pytest.skip(f"{ENVIRONMENT_CANNOT_ENFORCE}: {UNSUPPORTED[case.skip_unless]}; "
                    "every other field of this case was checked and holds")


def assert_refused_as_promised(problem: Terminal, outcome) -> None:
    pod = problem.pod
    message = " ".join(filter(None, [str(problem), pod.status.message if pod else None]))
    with report.step(f"refused: reason {problem.reason!r}"):
        report.attach_text("pod status", describe_pod(pod))
        if outcome.reason:
            assert outcome.reason in problem.reason, (
                f"{verdict.NOT_ENFORCED}: expected refusal reason {outcome.reason!r}, "
                f"got {problem.reason!r}: {message}")
        if outcome.message:
            assert outcome.message in message, (
                f"{verdict.NOT_ENFORCED}: expected refusal message containing "
                f"{outcome.message!r}, got: {message}")


def assert_crashed_as_promised(suite, applied, container: str, outcome) -> None:
    logs = suite.kube.logs(applied.pod_name, applied.namespace, container)
    previous = suite.kube.logs(applied.pod_name, applied.namespace, container, previous=True)
    report.attach_text(f"logs {container} (current and previous)", f"{logs}\n---\n{previous}")
    if outcome.logs:
        assert outcome.logs in logs + previous, (
            f"{verdict.NOT_ENFORCED}: container {container} exited, but its log lacks "
            f"{outcome.logs!r}:\n{logs}\n{previous}")


def assert_enforced(suite, case, applied) -> None:
    container = next(c for c in applied.pod_spec["containers"] if c["name"] == case.container)
    obs = runner.probe(suite, applied, container)
    image_user = suite.image_map.image_user(next(
        c["image"] for c in case.pod_spec()["containers"] if c["name"] == case.container))
    expected = expect.expect_process(applied.pod_spec, case.container, suite.env.node_facts(),
                                     image_user)
    bound = runner.bound_storage_kinds(suite, applied)
    overrides = case.expectations(next(iter(bound.values()), None))
    checks = verdict.process_checks(obs, expected, overrides)
    checks += verdict.exec_agrees_with_pid1(obs)
    checks += verdict.root_write_check(obs, expected.root_read_only, expected.uid)
    mount_modes = {m["mountPath"]: bool(m.get("readOnly")) for m in container.get("volumeMounts") or []}
    computed, volume_reasons = runner.volume_expectations(applied.pod_spec, container, bound)
    # Case-pinned volumes win over the oracle's, mount by mount.
    checks += verdict.volume_checks(obs, {**computed, **(overrides.get("volumes") or {})},
                                    mount_modes, volume_reasons)
    pod = suite.kube.core.read_namespaced_pod(applied.pod_name, applied.namespace)
    checks += verdict.pod_level_checks(obs, applied.pod_spec, pod.status.pod_ip, pod.status.host_ip)
    checks += verdict.command_checks(runner.run_commands(suite, applied, case))
    label = overrides.get("lsm_label")
    if label and not (case.skip_unless and not suite.supports(case.skip_unless)):
        checks.append(verdict.lsm_check(obs, label))
    report.record_checks(checks)
    bad = verdict.failures(checks)
    assert not bad, (f"{verdict.NOT_ENFORCED}: {len(bad)} of {len(checks)} checks differ:\n"
                     + verdict.table(bad))
