"""Wiring only: options, the session cluster, environment facts, case collection."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from secctx import cases as case_files
from secctx import report, session, timing
from secctx.cluster import existing, provision
from secctx.cluster.shared import SharedCluster

ROOT = Path(__file__).resolve().parent
CASES_DIR = ROOT / "fixtures" / "cases"
STATE_DIR = ROOT / ".pytest-kind"


def pytest_addoption(parser):
    g = parser.getgroup("secctx", "secctx-conformance")
    g.addoption("--kubernetes-version", default=None,
                help="Kubernetes version of the kind cluster (default: offline "
                     f"{provision.DEFAULT_KUBERNETES_VERSION}; online: kind's default node image)")
    g.addoption("--mode", choices=("auto", "online", "offline"), default="auto",
                help="where node and workload images come from (default: detect)")
    g.addoption("--image-map", type=Path, default=None,
                help="YAML image map merged over fixtures/images.yaml")
    g.addoption("--cases-dir", type=Path, action="append", default=[],
                help="extra directory of case files (repeatable)")
    g.addoption("--existing-cluster", action="store_true",
                help="run against the cluster of --kubeconfig; create and delete nothing")
    g.addoption("--kube-context", default=None, help="context in --kubeconfig")
    g.addoption("--keep-on-failure", action="store_true",
                help="keep a failing test's namespace (and the cluster) for inspection")
    g.addoption("--rebuild", action="store_true", help="rebuild offline images")


def pytest_configure(config):
    # CI stops jobs with SIGTERM: turn it into the same clean unwinding as Ctrl-C,
    # so fixtures delete namespaces and the cluster.
    def _terminate(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, _terminate)


@contextlib.contextmanager
def cleanup_first(what: str):
    """Clean-up that a signal must not cut short (it would leave objects behind).

    SIGINT/SIGTERM arriving meanwhile are noted, not raised; once the clean-up
    (bounded) is done the run stops with exit code 2. SIGKILL still aborts it,
    and the next run removes what is left by label."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = {s: signal.signal(s, lambda signum, frame: received.append(signum))
                for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if received:
        pytest.exit(f"{signal.Signals(received[0]).name} came while {what}: the clean-up "
                    "finished first, then the run stopped", returncode=pytest.ExitCode.INTERRUPTED)


# -- case collection ------------------------------------------------------

@dataclass(frozen=True)
class CaseParam:
    case: case_files.Case | None
    storage: str | None = None  # "default" or "local" for cases with claims
    error: case_files.CaseError | None = None

    def __repr__(self) -> str:  # what Allure shows as the parameter value
        return _param_id(self)


def _case_params(config) -> list[CaseParam]:
    found, errors = case_files.load_cases([CASES_DIR, *config.getoption("cases_dir")])
    params = [CaseParam(None, error=e) for e in errors]
    for case in found:
        if any(o.get("kind") == "PersistentVolumeClaim" for o in case.objects):
            params += [CaseParam(case, "default"), CaseParam(case, "local")]
        else:
            params.append(CaseParam(case))
    return params


def _param_id(p: CaseParam) -> str:
    if p.error:
        return f"invalid-case:{p.error.path.name}"
    return p.case.name + (f"[{p.storage}-storage]" if p.storage else "")


def pytest_generate_tests(metafunc):
    if "recipe_case" in metafunc.fixturenames:
        params = _case_params(metafunc.config)
        metafunc.parametrize("recipe_case", params, ids=[_param_id(p) for p in params])


# Fixtures a valid case needs; an invalid case file asks for none (no cluster).
CASE_FIXTURES = ("suite", "namespace")


def pytest_collection_modifyitems(items):
    """test_recipe_case asks for the cluster lazily, so that an invalid case file is
    reported without one. For valid cases, set the fixtures up in the setup phase
    anyway, like any e2e test: outside the per-test timeout (a cold cluster
    bring-up takes minutes), and set-up errors reported as errors."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        param = callspec.params.get("recipe_case") if callspec else None
        if isinstance(param, CaseParam) and not param.error:
            # A new list: parametrized items share their definition's list.
            item.fixturenames = [*item.fixturenames,
                                 *(f for f in CASE_FIXTURES if f not in item.fixturenames)]


# -- the session cluster and suite ---------------------------------------

def _run_id() -> str:
    # pytest-xdist gives all workers of one run the same uid.
    return os.environ.get("PYTEST_XDIST_TESTRUNUID", "")[:12] or uuid.uuid4().hex[:12]


def _infrastructure_errors() -> tuple[type[BaseException], ...]:
    """Errors of the environment or of the user's input, each with a message that
    names its cause and fix: they end set-up with that one line, no traceback."""
    from kubernetes.config.config_exception import ConfigException
    from urllib3.exceptions import HTTPError

    from secctx.cli import USER_ERRORS
    from secctx.kube import Terminal, WaitTimeout
    return (*USER_ERRORS, ConfigException, HTTPError, Terminal, WaitTimeout)


@contextlib.contextmanager
def infrastructure(results: Path | None, what: str = ""):
    """Turn a user-fixable error into `INFRASTRUCTURE: <cause and fix>`.

    Raised from the session fixture, pytest caches the failure, so every e2e
    test shows the same line, and Allure files it under "Infrastructure"
    (categories.json is written here too: set-up, which writes it, did not get
    that far)."""
    from kubernetes.client.rest import ApiException
    prefix = f"{report.INFRASTRUCTURE}: {what}{': ' if what else ''}"
    try:
        yield
        return
    except _infrastructure_errors() as err:
        if type(err).__module__.startswith("urllib3"):  # the cluster went away mid-set-up
            message = (f"cannot reach the API server ({existing.short_reason(err)}); check "
                       "--kubeconfig/--kube-context and that the cluster is up")
        else:
            message = str(err)
    except ApiException as err:
        if err.status not in (401, 403):
            raise
        message = (f"the API server refused a request ({err.status} {err.reason}: "
                   f"{_api_message(err)}); check the credentials of --kubeconfig and the RBAC "
                   "the suite needs (README, 'Running against an existing cluster')")
    if results:
        report.write_results_files(results, {"set-up": "failed (category Infrastructure)"})
    # `from None`: the message says it all; no chained traceback.
    raise pytest.fail.Exception(prefix + message, pytrace=False) from None


def _api_message(err) -> str:
    try:
        return json.loads(err.body).get("message", "")
    except (TypeError, ValueError, AttributeError):
        return str(err.body or "")[:300]


@pytest.fixture(scope="session")
def suite(request):
    """The cluster (created, reused or existing) and what tests share about it."""
    config = request.config
    existing = config.getoption("existing_cluster")
    kubeconfig = config.getoption("kubeconfig")
    alluredir = config.getoption("allure_report_dir", None)
    results = Path(alluredir) if alluredir else None
    if existing and not kubeconfig:
        with infrastructure(results):
            raise provision.ClusterError("--existing-cluster needs --kubeconfig PATH (the "
                                         "kubeconfig of the cluster to test)")
    name = config.getoption("cluster_name")
    opts = provision.Options(
        name=provision.DEFAULT_CLUSTER_NAME if name == "pytest-kind" else name,
        kubernetes_version=config.getoption("kubernetes_version"), mode=config.getoption("mode"),
        node_image=config.getoption("kind_image"),
        kind_bin=Path(config.getoption("kind_bin")) if config.getoption("kind_bin") else None,
        existing_kubeconfig=Path(kubeconfig) if existing else None,
        kube_context=config.getoption("kube_context"),
        image_map=config.getoption("image_map"), rebuild=config.getoption("rebuild"))
    run_id = _run_id()
    shared = SharedCluster(STATE_DIR / opts.name, run_id)
    with infrastructure(results):
        cluster = shared.acquire(opts)
    profiles = {}
    for p in _case_params(config):
        for name_, path in (p.case.seccomp_profiles.items() if p.case else []):
            profiles[name_] = path.read_text()
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    try:
        with infrastructure(results, "suite set-up on the cluster failed"):
            s = session.start(cluster, run_id, profiles, results,
                              context=config.getoption("kube_context"), worker=worker)
    except BaseException:  # also Ctrl-C/SIGTERM: a cluster this run created goes too
        with cleanup_first("releasing the cluster"):
            shared.release(keep=config.getoption("keep_cluster") or
                           config.getoption("keep_on_failure"))
        raise
    yield s
    with cleanup_first("deleting the run's objects"):
        try:
            session.stop(s, last=shared.is_last_user())
        finally:
            keep = config.getoption("keep_cluster") or (
                config.getoption("keep_on_failure") and request.session.testsfailed > 0)
            released = shared.release(keep=keep)
            if released and released.kind and keep:
                print(f"\nkept kind cluster {released.kind.name}: "
                      f"export KUBECONFIG={released.kubeconfig}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


@pytest.fixture
def namespace(request, suite):
    """A fresh namespace per test, deleted afterwards (kept on failure if asked)."""
    prefix = "secctx-" + request.node.name.split("[")[-1].rstrip("]").replace(":", "-")
    ns = suite.new_namespace(prefix.lower()[:40])
    try:
        suite.kube.wait_for_default_service_account(ns)
    except BaseException:  # interrupted (Ctrl-C, SIGTERM) or timed out: no teardown will run
        with cleanup_first(f"deleting namespace {ns}"):
            suite.kube.delete_namespace(ns)
        raise
    yield ns
    failed = getattr(request.node, "rep_call", None) and request.node.rep_call.failed
    if failed and request.config.getoption("keep_on_failure"):
        suite.kept_namespaces.add(ns)
        print(f"\nkept namespace {ns} of failed test: "
              f"KUBECONFIG={suite.cluster.kubeconfig} kubectl -n {ns} get all,events")
        return
    with cleanup_first(f"deleting namespace {ns}"), timing.phase(request.node.nodeid, "cleanup"):
        suite.kube.delete_namespace(ns)
