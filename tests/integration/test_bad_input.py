"""Bad input and broken environments end a suite run with one clear line.

Each test runs the real suite (`python -m pytest suites ...`) as a user would,
with one thing wrong, and checks that every affected test shows the same
one-line message naming the cause and the fix, prefixed INFRASTRUCTURE (the
Allure category), without a traceback, and quickly. Only the missing-image
test needs the `secctx-robust` cluster; the others need none (some need the
Docker engine).
"""
from __future__ import annotations

import json
import re
import textwrap

import pytest

from secctx.core import exitcodes
from secctx.images.imagemap import ImageMap
from secctx.kube import Terminal

from .robust_helpers import (
    CLUSTER,
    ROOT,
    kind_clusters,
    nested_env,
    run_pytest,
    traceback_in,
    unreachable_kubeconfig,
    write_case,
)

OTHER = CLUSTER + "2"  # would be created if a check came too late
E2E_TESTS = "test_every_node_is_ready or test_pod_runs_as_the_uid"  # two tests, one line


def assert_one_clear_line(run, *needles: str) -> str:
    """The run ends at the first test that needs the cluster, with one INFRASTRUCTURE
    line containing the needles (cause and fix), not one per test; no traceback."""
    lines = [ln for ln in run.output.splitlines() if ln.startswith("INFRASTRUCTURE: ")]
    assert len(lines) == 1, run.output[-4000:]
    assert re.search(r"\b1 error in ", run.output.strip().splitlines()[-1]), run.output[-2000:]
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in: {lines[0]}"
    assert not traceback_in(run.output), run.output[-3000:]
    assert run.returncode == exitcodes.INFRASTRUCTURE_ERROR, run.output[-2000:]  # 6: no check failed
    return lines[0]


def test_unreachable_api_server_one_line_and_the_report_shows_it(tmp_path):
    kubeconfig = unreachable_kubeconfig(tmp_path / "kubeconfig")
    results = tmp_path / "allure"
    run = run_pytest("suites", "--secctx-existing-cluster", "--kubeconfig", str(kubeconfig),
                     "-k", E2E_TESTS, "--alluredir", str(results), log=tmp_path / "run.log")
    line = assert_one_clear_line(run, "cannot reach the API server at https://127.0.0.1:1 (",
                                 "check --kubeconfig/--secctx-kube-context")
    assert "Connection refused" in line
    assert run.seconds < 60, "the preflight is bounded"
    # The report: the one result carries the message, and the Infrastructure category matches it.
    messages = [json.loads(p.read_text())["statusDetails"]["message"]
                for p in results.glob("*-result.json")]
    assert len(messages) == 1 and all("INFRASTRUCTURE: cannot reach" in m for m in messages)
    categories = json.loads((results / "categories.json").read_text())
    infra = next(c for c in categories if c["name"] == "Infrastructure")
    assert all(re.fullmatch(infra["messageRegex"], m) for m in messages)


@pytest.mark.parametrize("problem", ["garbage-yaml", "not-a-kubeconfig", "missing-context",
                                     "missing-file"])
def test_invalid_kubeconfig_one_line(tmp_path, problem):
    path = tmp_path / "kubeconfig"
    args = []
    if problem == "garbage-yaml":
        path.write_text("apiVersion: v1\nclusters: [\n  - name: x\n  server: : :\n")
        needles = ["is not valid YAML at line", str(path)]
    elif problem == "not-a-kubeconfig":
        path.write_text("just a string\n")
        needles = ["has no contexts list: it is not a kubeconfig", str(path)]
    elif problem == "missing-context":
        unreachable_kubeconfig(path)
        args = ["--secctx-kube-context", "no-such-context"]
        needles = ["context 'no-such-context' is not in kubeconfig", "contexts in it: nowhere"]
    else:
        path = tmp_path / "absent"
        needles = ["cannot read kubeconfig", "No such file or directory"]
    run = run_pytest("suites", "--secctx-existing-cluster", "--kubeconfig", str(path), *args,
                     "-k", E2E_TESTS, log=tmp_path / "run.log")
    assert_ends_at_once(run, *needles, "--kube")


def test_kind_missing_one_line(tmp_path):
    run = run_pytest("suites", "--cluster-name", OTHER, "--kind-bin", "/nonexistent/kind",
                     "-k", E2E_TESTS, log=tmp_path / "run.log")
    assert_ends_at_once(run, "kind is missing at /nonexistent/kind", "install kind >= v0.32",
                        "drop --kind-bin")


def assert_ends_at_once(run, *needles: str) -> str:
    """Bad input found before anything starts: one INFRASTRUCTURE line, no test run."""
    lines = [ln for ln in run.output.splitlines() if "INFRASTRUCTURE: " in ln]
    assert len(lines) == 1, run.output[-4000:]
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in: {lines[0]}"
    assert "Traceback" not in run.output and "collected" not in run.output
    assert run.returncode == exitcodes.BAD_INPUT, run.output[-3000:]  # pytest's usage error
    return lines[0]


def test_no_docker_engine_one_line(tmp_path):
    """No engine answers, dockerd is not installed and we are not root (simulated
    in the nested run by a plugin: this host has a working engine)."""
    plugin = tmp_path / "no_engine.py"
    plugin.write_text(textwrap.dedent("""
        import os, shutil
        from secctx.cluster import engine
        engine.docker_info = lambda: None
        _which = shutil.which
        shutil.which = lambda name, *a, **k: (
            None if name in ("docker", "dockerd") else _which(name, *a, **k))
        os.geteuid = lambda: 1000
    """))
    env = nested_env(PYTHONPATH=f"{tmp_path}:{ROOT}")
    run = run_pytest("-p", "no_engine", "suites", "--cluster-name", OTHER, "-k", E2E_TESTS,
                     log=tmp_path / "run.log", env=env)
    assert_one_clear_line(run, "No Docker engine runs and dockerd is not installed",
                          "apt-get install docker.io")


@pytest.mark.e2e
def test_node_image_that_does_not_exist_fails_before_kind_pulls(tmp_path):
    before = kind_clusters()
    run = run_pytest("suites", "--secctx-mode", "offline", "--cluster-name", OTHER,
                     "--kind-image", "secctx.local/kind-node:does-not-exist", "-k", E2E_TESTS,
                     log=tmp_path / "run.log")
    assert_one_clear_line(run, "node image secctx.local/kind-node:does-not-exist does not exist",
                          "offline mode never pulls", "python -m secctx node-image")
    assert OTHER not in kind_clusters() and OTHER not in before
    assert run.seconds < 60, "no kind create, no pull attempt"


@pytest.mark.e2e
def test_kubernetes_version_the_offline_builder_cannot_build(tmp_path):
    run = run_pytest("suites", "--secctx-mode", "offline", "--cluster-name", OTHER,
                     "--secctx-kubernetes-version", "v1.99.0", "-k", E2E_TESTS, log=tmp_path / "run.log")
    assert_one_clear_line(run, "offline builds support v1.34-v1.37; v1.99.0 is not one",
                          "--secctx-kubernetes-version")
    assert run.seconds < 60, "checked before any build step"
    assert OTHER not in kind_clusters()


def bad_cases(directory):
    """A malformed case file, one with an unknown expectation field, and a valid one."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "malformed.yaml").write_text(
        "name: malformed\nsection: Capabilities\nmanifest: [unclosed\n")
    write_case(directory, "unknown-field", ROOT / "fixtures/manifests/secure-pod.yaml",
               "secure-pod", "app", expect={"uid": 1000, "capz_eff": []})
    write_case(directory, "still-valid", ROOT / "fixtures/manifests/secure-pod.yaml",
               "secure-pod", "app",
               outcome={"status": "crashing", "logs": "(13: Permission denied)"})
    return directory


def test_bad_case_files_are_reported_without_a_cluster(tmp_path):
    """Each bad file fails its own test with file:line, before any cluster is asked
    for (an unreachable --secctx-existing-cluster would print INFRASTRUCTURE otherwise),
    and the other cases are still collected."""
    cases = bad_cases(tmp_path / "cases")
    kubeconfig = unreachable_kubeconfig(tmp_path / "kubeconfig")
    common = ("suites", "--secctx-cases-dir", str(cases), "--secctx-existing-cluster",
              "--kubeconfig", str(kubeconfig))
    run = run_pytest(*common, "-k", "test_case_file_is_valid", log=tmp_path / "run.log")
    assert run.returncode == 1
    assert "INFRASTRUCTURE" not in run.output
    # The unclosed list on line 3 runs to the end of the file (line 4).
    assert f"invalid case file: {cases}/malformed.yaml:4: malformed YAML" in run.output
    assert "(while parsing a flow sequence at line 3)" in run.output
    unknown = re.search(rf"invalid case file: {cases}/unknown-field.yaml:(\d+): unknown "
                        r"expectation 'capz_eff'.*did you mean 'cap_eff'", run.output)
    assert unknown, run.output[-3000:]
    line = int(unknown.group(1))
    assert (cases / "unknown-field.yaml").read_text().splitlines()[line - 1].strip() \
        .startswith("capz_eff")
    assert re.search(r"2 failed, \d+ passed, \d+ deselected", run.output), run.output[-2000:]
    assert "Traceback" not in run.output
    collected = run_pytest(*common, "--collect-only", "-q", log=tmp_path / "collect.log")
    assert "test_recipe_case[still-valid]" in collected.output
    assert "test_recipe_case[secure-pod]" in collected.output


@pytest.mark.e2e
def test_image_missing_from_the_node_fails_fast_with_the_fix(clean):
    """Offline, the image map sets imagePullPolicy: Never, so the kubelet never asks a
    registry: a missing image is ErrImageNeverPull at once, and the message says how
    to load it."""
    kube = clean.kube
    namespace = kube.create_namespace("secctx-image-missing", "integration-test")
    image = "secctx.local/absent:1.0"
    try:
        pod = ImageMap.load("offline").rewrite({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "absent"},
            "spec": {"containers": [{"name": "main", "image": image}]}})
        assert pod["spec"]["containers"][0]["imagePullPolicy"] == "Never"
        kube.apply(pod, namespace)
        with pytest.raises(Terminal) as problem:
            kube.wait_for_pod("absent", namespace, "Ready", timeout=60)
        assert problem.value.reason == "ErrImageNeverPull"
        assert (f"image {image} is not on the node: load it (kind load docker-image {image}) "
                "or fix the image map") in str(problem.value)
    finally:
        clean.delete_namespaces_and_wait([namespace])
