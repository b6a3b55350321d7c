"""Wiring only: options, the session cluster, environment facts, case collection."""
from __future__ import annotations

import json
import os
import signal
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from secctx import cases as case_files
from secctx import session, timing
from secctx.cluster import provision
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


# -- the session cluster and suite ---------------------------------------

def _run_id() -> str:
    # pytest-xdist gives all workers of one run the same uid.
    return os.environ.get("PYTEST_XDIST_TESTRUNUID", "")[:12] or uuid.uuid4().hex[:12]


@pytest.fixture(scope="session")
def suite(request):
    """The cluster (created, reused or existing) and what tests share about it."""
    config = request.config
    existing = config.getoption("existing_cluster")
    kubeconfig = config.getoption("kubeconfig")
    if existing and not kubeconfig:
        raise pytest.UsageError("--existing-cluster needs --kubeconfig PATH")
    name = config.getoption("cluster_name")
    opts = provision.Options(
        name=provision.DEFAULT_CLUSTER_NAME if name == "pytest-kind" else name,
        kubernetes_version=config.getoption("kubernetes_version"), mode=config.getoption("mode"),
        node_image=config.getoption("kind_image"),
        kind_bin=Path(config.getoption("kind_bin")) if config.getoption("kind_bin") else None,
        existing_kubeconfig=Path(kubeconfig) if existing else None,
        image_map=config.getoption("image_map"), rebuild=config.getoption("rebuild"))
    run_id = _run_id()
    shared = SharedCluster(STATE_DIR / opts.name, run_id)
    cluster = shared.acquire(opts)
    profiles = {}
    for p in _case_params(config):
        for name_, path in (p.case.seccomp_profiles.items() if p.case else []):
            profiles[name_] = path.read_text()
    alluredir = config.getoption("allure_report_dir", None)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    s = session.start(cluster, run_id, profiles, Path(alluredir) if alluredir else None,
                      context=config.getoption("kube_context"), worker=worker)
    yield s
    session.stop(s, last=shared.is_last_user())
    keep = config.getoption("keep_cluster") or (
        config.getoption("keep_on_failure") and request.session.testsfailed > 0)
    released = shared.release(keep=keep)
    if released and released.kind and keep:
        print(f"\nkept kind cluster {released.kind.name}: export KUBECONFIG={released.kubeconfig}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


@pytest.fixture
def namespace(request, suite):
    """A fresh namespace per test, deleted afterwards (kept on failure if asked)."""
    prefix = "secctx-" + request.node.name.split("[")[-1].rstrip("]").replace(":", "-")
    ns = suite.kube.create_namespace(prefix.lower()[:40], suite.run_id)
    suite.kube.wait_for_default_service_account(ns)
    yield ns
    failed = getattr(request.node, "rep_call", None) and request.node.rep_call.failed
    if failed and request.config.getoption("keep_on_failure"):
        print(f"\nkept namespace {ns} of failed test: "
              f"KUBECONFIG={suite.cluster.kubeconfig} kubectl -n {ns} get all,events")
        return
    with timing.phase(request.node.nodeid, "cleanup"):
        suite.kube.delete_namespace(ns)
