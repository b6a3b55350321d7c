"""The suite as a pytest plugin (entry point `pytest11: secctx`): options, the
session cluster, one namespace per test, and the case files as parameters.

It is loaded in every pytest run of an environment where the package is installed,
beside other plugins and a team's own tests: its fixtures and parameters carry the
`secctx_` prefix, it registers its own markers (no copy of our pyproject.toml
needed), and only a run that collects the suite gets its SIGTERM handling and its
per-test timeout backstop.

In this checkout `pytest suites` uses it; in a platform team's repository that
holds only case files, `pytest --secctx-cases-dir cases/` runs the packaged suite with
them (the plugin adds the packaged `suites` to what pytest collects).
"""
from __future__ import annotations

import os
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from filelock import FileLock
from kubernetes import client as k8s

from .. import cases as case_files
from .. import report
from ..cluster import engine, hostlimits, kindconfig, provision, vmnode
from ..cluster import existing as existing_cluster
from ..cluster import mode as modes
from ..cluster.kind import ClusterError
from ..cluster.shared import SharedCluster
from ..core import cache, paths, timing
from ..core.categories import infrastructure as infrastructure_line
from ..core.errors import STOPPED, RunStopped, permissions
from ..generated import options as generated_options
from ..images import docker, imagemap
from ..kube import Kube
from ..observations import recording
from ..offline import log
from ..oracle.nodefacts import DEFAULT_NODE_KIND, DEFAULT_RUNTIME
from ..report import summary
from . import options as optionnames
from . import session
from .boundary import infrastructure
from .scheduler import DEFAULT_CONCURRENCY, Job, Scheduler
from .signals import cleanup_first, terminate_like_interrupt


def pytest_addoption(parser, pluginmanager):
    g = parser.getgroup("secctx", "secctx-conformance")

    def add(name, **kwargs):  # --secctx-NAME (and the old --NAME, hidden, for a release)
        optionnames.add(g, name, **kwargs)

    add("kubernetes-version", default=None,
        help="Kubernetes version of the kind cluster (default: offline "
             f"{provision.DEFAULT_KUBERNETES_VERSION}; online: kind's default node image)")
    add("mode", choices=("auto", "online", "offline"), default="auto",
        help="where node and workload images come from (default: detect)")
    add("image-map", type=Path, default=None,
        help="YAML image map merged over fixtures/images.yaml")
    add("image-registry", default=None, metavar="HOST[/PREFIX]",
        help="pull every image from this registry, under its repository path and tag "
             "(a private mirror)")
    add("registry-mirror", action="append", default=[], metavar="[REGISTRY=]URL",
        help="the kind nodes pull REGISTRY's images from URL (without REGISTRY: "
             "docker.io, registry.k8s.io, ghcr.io and URL's own host); repeatable")
    add("cases-dir", type=Path, action="append", default=[],
        help="extra directory of case files (repeatable)")
    add("existing-cluster", action="store_true",
        help="run against the cluster of --kubeconfig; create and delete nothing")
    add("kube-context", default=None, help="context in --kubeconfig")
    add("keep-on-failure", action="store_true",
        help="keep a failing test's namespace (and the cluster) for inspection")
    add("rebuild", action="store_true", help="rebuild offline images")
    add("kubelet-seccomp-default", action="store_true",
        help="create the kind cluster with kubelet seccompDefault: true (pods without a "
             "seccomp profile get RuntimeDefault); a kept cluster without it is refused")
    add("cri", old=False, choices=provision.CRIS, default="containerd",
        help="the CRI implementation of the kind cluster's nodes (default containerd; "
             "crio: an offline CRI-O node image, RuntimeClasses runc and crun)")
    add("runtime-class", action="append", default=[], metavar="NAME",
        help="run every case under this RuntimeClass (`default`: no runtimeClassName); "
             "repeatable (default: `default` and the RuntimeClasses of the cluster; "
             "offline kind: crun and runsc)")
    add("vm-node", old=False, choices=VM_NODE_LSMS, default=None, metavar="LSM",
        help="also run every case on a VM node with its own kernel (qemu; cgroup v2) "
             "whose LSM is LSM (apparmor), joined to the offline kind cluster after it "
             "is up and removed at the end unless the cluster is kept; its tests are "
             "<case>@vm-<LSM> (docs/vm-node.md)")
    add("observations", type=Path, default=None, metavar="FILE",
        help="write what the run observed, as JSON (default: reports/observations.json)")
    add("case-concurrency", type=int, default=DEFAULT_CONCURRENCY, metavar="N",
        help="every selected recipe case is applied at once; at most N are observed "
             f"and judged at once (default {DEFAULT_CONCURRENCY}; 1: one case after "
             "another, from apply to verdict)")
    add("compare-to", type=Path, default=None, metavar="FILE",
        help="compare this run's observations with FILE (an earlier run's) at the end")
    add("fail-on-regression", action="store_true",
        help="with --secctx-compare-to: exit 7 when the run regressed against FILE (and no check "
             "failed); see docs/summary.md")
    add("summary", type=Path, default=None, metavar="FILE",
        help="write the per-test verdict as JSON (default: reports/summary.json; written "
             "by every run of the suite)")
    generated_options.add(add)
    optionnames.add_kind_options(g, pluginmanager, provision.DEFAULT_CLUSTER_NAME)


VM_NODE_LSMS = ("apparmor",)  # cluster.vmnode.LSMS (not imported at option time: no qemu needed)

MARKERS = (
    "e2e: needs a real cluster (the session cluster fixture creates or finds one)",
    "kind_only: needs docker access to kind nodes; skipped against an existing non-kind cluster",
    "every_runtime: set-up learns every runtime of the run, not only the selected cases' ones",
)
# A backstop per suite test where the run sets no timeout of its own (--timeout,
# PYTEST_TIMEOUT, an ini `timeout`); fixtures (cluster creation, image builds) have
# their own bounds, so it counts the test function only.
SUITE_TEST_TIMEOUT = 300


def pytest_configure(config):
    for line in MARKERS:
        config.addinivalue_line("markers", line)
    for line in optionnames.old_spellings_used(config.option):
        # The controller says it once; a worker has `workerinput` (its environment
        # variable is inherited by any pytest it starts, which is no worker).
        if not hasattr(config, "workerinput"):
            print(line, file=sys.stderr)
    log.set_sink(_live_lines(config))
    # A run of the suite writes reports/summary.json (not --collect-only: no verdict).
    writes_summary = bool(config.getoption("summary") or (
        not config.getoption("collectonly") and (config.getoption("cases_dir")
                                                 or _collects_the_suite(config))))
    problem = option_problem(config.getoption)
    if problem:
        problem = optionnames.for_pytest(problem)
        summary.write_bad_input(config, infrastructure_line(problem), writes_summary)
        raise pytest.UsageError(infrastructure_line(problem))
    config.pluginmanager.register(recording.Recorder(config), "secctx-observations")
    config.pluginmanager.register(summary.Gate(config, writes_summary), "secctx-summary")
    if config.getoption("cases_dir") and not _collects_the_suite(config):
        config.args.append(str(paths.SUITES))
    if _collects_the_suite(config):  # (an xdist controller collects nothing itself)
        terminate_like_interrupt()


def pytest_collection_modifyitems(config, items):
    # SIGTERM unwinds like Ctrl-C only where tests use the suite's cluster (its clean-up
    # must run); every other run of the environment keeps pytest's own handling.
    if any("secctx_suite" in getattr(item, "fixturenames", ()) for item in items):
        terminate_like_interrupt()
    if _run_sets_a_timeout(config):
        return
    backstop = pytest.mark.timeout(SUITE_TEST_TIMEOUT, func_only=True)
    for item in items:
        if is_suite_item(item) and item.get_closest_marker("timeout") is None:
            item.add_marker(backstop)


def _run_sets_a_timeout(config) -> bool:
    """The run's own pytest-timeout setting (or no pytest-timeout: -p no:timeout)."""
    if not config.pluginmanager.hasplugin("timeout"):
        return True
    return bool(config.getoption("timeout", None) is not None or os.environ.get("PYTEST_TIMEOUT")
                or config.getini("timeout"))


def is_suite_item(item) -> bool:
    return paths.SUITES.resolve() in Path(item.path).resolve().parents


def _live_lines(config):
    """Progress lines to the terminal while pytest captures output; without a
    terminal (an xdist worker, -p no:terminal) they go to stderr. The plugins are
    looked up per line: the terminal reporter registers after this plugin."""
    def write(line: str) -> None:
        capture = config.pluginmanager.getplugin("capturemanager")
        terminal = config.pluginmanager.getplugin("terminalreporter")
        if capture is None or terminal is None:
            raise LookupError("no terminal")  # log.step falls back to stderr
        with capture.global_and_fixture_disabled():
            terminal.write_line(line)
            terminal.flush()  # a log file (CI, a nested run) shows it now, not at exit
    return write


def pytest_unconfigure(config):
    log.set_sink(None)


def option_problem(get) -> str | None:
    """What is wrong with the suite's options (cause and fix), or None: the first problem
    of the checks below, in this order. `get` is pytest's config.getoption."""
    for check in (_input_files_problem, _registry_option_problem, _run_option_problem,
                  _cluster_option_problem, vm_node_problem):
        problem = check(get)
        if problem:
            return problem
    return None


def _input_files_problem(get) -> str | None:
    for d in get("cases_dir"):
        if not d.is_dir():
            return (f"--secctx-cases-dir {d} is not a directory"
                    + (" (it is a file)" if d.exists() else " (it does not exist)")
                    + ": pass a directory that holds case files (*.yaml)")
        if not any(d.glob("*.yaml")):
            return (f"--secctx-cases-dir {d} holds no case files (*.yaml): add cases (see "
                    "fixtures/cases/README.md) or drop the option")
    image_map = get("image_map")
    if image_map is not None and not image_map.is_file():
        return f"--secctx-image-map {image_map} is not a file: pass the path of a YAML image map"
    return None


def _registry_option_problem(get) -> str | None:
    registry = get("image_registry")
    if registry is not None and imagemap.registry_problem(registry):
        return imagemap.registry_problem(registry)
    conflict = modes.registry_problem(registry, get("mode"), "chosen with --secctx-mode/SECCTX_MODE")
    if conflict:
        return conflict
    try:
        kindconfig.registry_mirrors(get("registry_mirror") or [])
    except ValueError as err:
        return str(err)
    return None


def _run_option_problem(get) -> str | None:
    concurrency = get("case_concurrency")
    if concurrency is not None and concurrency < 1:
        return (f"--secctx-case-concurrency {concurrency} is below 1: pass 1 (one case after another) "
                "or more")
    baseline = recording.baseline_problem(get("compare_to"))
    if baseline:
        return baseline
    if get("fail_on_regression") and not get("compare_to"):
        return ("--secctx-fail-on-regression needs --secctx-compare-to FILE (the baseline run's observations): "
                "pass --secctx-compare-to, or drop --secctx-fail-on-regression")
    return summary.path_problem(get("summary"))


def _cluster_option_problem(get) -> str | None:
    kind_bin = get("kind_bin")
    if kind_bin and not get("existing_cluster") and not Path(kind_bin).is_file():
        return (f"kind is missing at {kind_bin} (--kind-bin): install kind >= v0.32 there, pass "
                "the path of an installed one, or drop --kind-bin and the suite builds kind from "
                "its Go module")
    existing = get("existing_cluster")
    if existing:
        for option, value in (("--secctx-kubernetes-version", get("kubernetes_version")),
                              ("--kind-image", get("kind_image")), ("--kind-bin", kind_bin),
                              ("--keep-cluster", get("keep_cluster")),
                              ("--secctx-rebuild", get("rebuild")),
                              ("--secctx-registry-mirror", get("registry_mirror")),
                              ("--secctx-kubelet-seccomp-default", get("kubelet_seccomp_default")),
                              ("--secctx-cri", get("cri") != "containerd" and get("cri"))):
            if value:
                return (f"{option} cannot go with --secctx-existing-cluster: the suite creates no "
                        f"cluster there; drop {option}, or drop --secctx-existing-cluster to test a kind "
                        "cluster")
        if not get("kubeconfig"):
            return ("--secctx-existing-cluster needs --kubeconfig PATH (the kubeconfig of the cluster "
                    "to test)")
        try:  # the file and its context, not the network: that is the session's preflight
            existing_cluster.check_kubeconfig(Path(get("kubeconfig")), get("kube_context"))
        except ClusterError as err:
            return str(err)
    elif get("kube_context"):
        return ("--secctx-kube-context needs --secctx-existing-cluster and --kubeconfig: a kind cluster the "
                "suite creates has one context")
    return None


def vm_node_problem(get) -> str | None:
    """--secctx-vm-node joins a VM built from the offline node image to a kind cluster the
    suite makes or keeps: not an existing cluster, not an online one."""
    lsm = get("vm_node")
    if not lsm:
        return None
    if get("existing_cluster"):
        return (f"--secctx-vm-node {lsm} cannot go with --secctx-existing-cluster: the VM joins a kind "
                "cluster the suite creates; drop one of them")
    if get("mode") == modes.ONLINE or get("kind_image"):
        what = "--secctx-mode online" if get("mode") == modes.ONLINE else "--kind-image"
        return (f"--secctx-vm-node {lsm} cannot go with {what}: the VM's disk is built from the "
                "offline node image; use --secctx-mode offline (or auto on a host without registries)")
    return None


def _collects_the_suite(config) -> bool:
    """The command line already names the suite (this checkout's `suites`, or a file in it)."""
    suites = paths.SUITES.resolve()
    for arg in config.args:
        path = Path(config.invocation_params.dir, arg.split("::")[0]).resolve()
        if path == suites or suites in path.parents or path in suites.parents:
            return True
    return False


# -- case collection ------------------------------------------------------

@dataclass(frozen=True)
class CaseParam:
    """One case of the run, on one storage kind for cases with claims, under one
    RuntimeClass, on one node kind."""
    case: case_files.Case
    storage: str | None = None  # "default" or "local" for cases with claims
    runtime: str = DEFAULT_RUNTIME  # a RuntimeClass name, or DEFAULT_RUNTIME (none)
    node: str = DEFAULT_NODE_KIND  # a node kind (nodefacts.NODE_KIND_LABEL), e.g. vm-apparmor

    @property
    def id(self) -> str:
        """The case, its storage, "@RuntimeClass" and "@node-kind" but for the defaults:
        its ids stay those of runs before runtimes and node kinds were parameters
        (baselines, matrices key by them)."""
        return (self.case.name + (f"[{self.storage}-storage]" if self.storage else "")
                + ("" if self.runtime == DEFAULT_RUNTIME else f"@{self.runtime}")
                + ("" if self.node == DEFAULT_NODE_KIND else f"@{self.node}"))

    def __repr__(self) -> str:  # what Allure shows as the parameter value
        return self.id


@dataclass(frozen=True)
class CaseFile:
    path: Path
    errors: tuple[case_files.CaseError, ...]

    def __repr__(self) -> str:
        return self.path.name


def _load(config) -> tuple[list[case_files.Case], list[case_files.CaseError]]:
    if not hasattr(config, "_secctx_cases"):
        config._secctx_cases = case_files.load_cases([paths.CASES, *config.getoption("cases_dir")])
    return config._secctx_cases


def case_params(config) -> list[CaseParam]:
    params = []
    for node in node_kinds(config):
        for runtime in runtime_names(config):
            for case in _load(config)[0]:
                if case.claims:
                    params += [CaseParam(case, "default", runtime, node),
                               CaseParam(case, "local", runtime, node)]
                else:
                    params.append(CaseParam(case, runtime=runtime, node=node))
    return params


def node_kinds(config) -> list[str]:
    """The node kinds the run's cases run on: the cluster's own nodes, and the VM node
    of --secctx-vm-node (cluster.vmnode labels it vm-<lsm>)."""
    lsm = config.getoption("vm_node", None)
    return [DEFAULT_NODE_KIND, *([f"vm-{lsm}"] if lsm else [])]


def runtime_names(config) -> list[str]:
    """The RuntimeClasses the run's cases run under: those asked for, else `default` and
    the cluster's. They are parameters, so they are known at collection, before a kind
    cluster exists: an existing cluster is asked; a kind cluster runs its default unless
    others are asked for. Session start lists every RuntimeClass not in the run (none
    hidden)."""
    if not hasattr(config, "_secctx_runtimes"):
        requested = config.getoption("runtime_class", None) or []
        if requested:
            names = list(dict.fromkeys(requested))
        elif config.getoption("existing_cluster", None):
            names = [DEFAULT_RUNTIME, *_existing_runtime_classes(config)]
        else:
            names = [DEFAULT_RUNTIME, *_kind_runtime_classes(config)]
        config._secctx_runtimes = names
    return config._secctx_runtimes


# Local PVs a run makes at the least (the hand-written storage tests bind their own).
MIN_LOCAL_PVS = 4


def local_pv_count(items) -> int:
    """One local PV per claim of every selected `local`-storage case param: a bound local
    PV is not bound again in the run, so three RuntimeClasses need three of each."""
    params = [item.callspec.params[RECIPE_CASE] for item in items
              if RECIPE_CASE in getattr(getattr(item, "callspec", None), "params", {})]
    return max(MIN_LOCAL_PVS, sum(len(p.case.claims) for p in params if p.storage == "local"))


def selected_runtimes(items, config) -> list[str]:
    """`default` and the RuntimeClasses of the selected recipe cases, in run order: set-up
    learns (and on kind creates) only those (`-k` without recipe cases: none but default).
    A test marked `every_runtime` (the benchmark's floor runs every case itself) needs all
    the run's runtimes."""
    if any(item.get_closest_marker("every_runtime") for item in items):
        return runtime_names(config)
    params = (getattr(item, "callspec", None) for item in items)
    chosen = [p.params[RECIPE_CASE].runtime for p in params
              if p is not None and RECIPE_CASE in p.params]
    return list(dict.fromkeys([DEFAULT_RUNTIME, *chosen]))


def _kind_runtime_classes(config) -> tuple[str, ...]:
    """Besides `default`, a kind cluster of this run has the offline node image's runtimes
    (the suite creates their RuntimeClasses); kindest/node and a node image of the user's
    (--kind-image) have none the suite knows of. The mode is decided as set-up will."""
    if config.getoption("kind_image", None):
        return ()
    mode, _ = modes.detect(config.getoption("mode"), engine.docker_info() or {},
                           docker.image_exists)
    if mode != modes.OFFLINE:
        return ()
    if config.getoption("cri", "containerd") == "crio":
        return session.CRIO_RUNTIME_CLASSES
    return tuple(n for n in session.OFFLINE_RUNTIME_CLASSES if n not in hostlimits.left_out())


def _existing_runtime_classes(config) -> list[str]:

    kube = Kube.from_kubeconfig(Path(config.getoption("kubeconfig")),
                                config.getoption("kube_context"))
    try:
        return sorted(rc.metadata.name for rc in k8s.NodeV1Api(kube.api).list_runtime_class().items)
    except Exception as err:  # noqa: BLE001 - the session's preflight says what is wrong
        print(f"secctx: RuntimeClasses not listed at collection ({err}); running under default")
        return []


def case_file_params(config) -> list[CaseFile]:
    found, errors = _load(config)
    by_file = {c.source: [] for c in found}
    for e in errors:
        by_file.setdefault(e.path, []).append(e)
    return [CaseFile(p, tuple(errs)) for p, errs in sorted(by_file.items())]


# The parameters a test asks for by name: prefixed, so the plugin parametrizes no
# other plugin's or team's test that happens to take a `case_file` argument.
RECIPE_CASE = "secctx_recipe_case"
CASE_FILE = "secctx_case_file"


def pytest_generate_tests(metafunc):
    if RECIPE_CASE in metafunc.fixturenames:
        params = case_params(metafunc.config)
        metafunc.parametrize(RECIPE_CASE, params, ids=[p.id for p in params])
    if CASE_FILE in metafunc.fixturenames:
        files = case_file_params(metafunc.config)
        metafunc.parametrize(CASE_FILE, files, ids=[f.path.name for f in files])


# -- the session cluster and suite ---------------------------------------

def _run_id() -> str:
    # pytest-xdist gives all workers of one run the same uid.
    return os.environ.get("PYTEST_XDIST_TESTRUNUID", "")[:12] or uuid.uuid4().hex[:12]


def _provision_options(config) -> provision.Options:
    """The cluster this run asks for, from its options."""
    existing = config.getoption("existing_cluster")
    kubeconfig = config.getoption("kubeconfig")
    name = config.getoption("cluster_name")
    return provision.Options(
        name=provision.DEFAULT_CLUSTER_NAME if name == "pytest-kind" else name,
        kubernetes_version=config.getoption("kubernetes_version"), mode=config.getoption("mode"),
        node_image=config.getoption("kind_image"),
        kind_bin=Path(config.getoption("kind_bin")) if config.getoption("kind_bin") else None,
        existing_kubeconfig=Path(kubeconfig) if existing else None,
        kube_context=config.getoption("kube_context"),
        image_map=config.getoption("image_map"), image_registry=config.getoption("image_registry"),
        registry_mirrors=tuple(config.getoption("registry_mirror")),
        rebuild=config.getoption("rebuild"),
        seccomp_default=config.getoption("kubelet_seccomp_default"),
        cri=config.getoption("cri"))


@pytest.fixture(scope="session")
def secctx_suite(request):
    """The cluster (created, reused or existing) and what tests share about it."""
    config = request.config
    alluredir = config.getoption("allure_report_dir", None)
    results = Path(alluredir) if alluredir else None
    opts = _provision_options(config)
    run_id = _run_id()
    shared = SharedCluster(cache.cluster_state(opts.name), run_id)
    vm_lsm = config.getoption("vm_node")
    keep_cluster = config.getoption("keep_cluster")
    with infrastructure(results):
        cluster = shared.acquire(opts)
    if vm_lsm:
        try:
            with infrastructure(results, "the VM node did not join the cluster"):
                vm_node_up(cluster, vm_lsm)
        except BaseException:
            with cleanup_first("releasing the cluster"):
                shared.release(keep=keep_cluster or config.getoption("keep_on_failure"))
            raise
    profiles = {name_: path.read_text() for p in case_params(config)
                for name_, path in p.case.seccomp_profiles.items()}
    apparmor = {name_: path.read_text() for p in case_params(config)
                for name_, path in p.case.apparmor_profiles.items()}
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    try:
        with infrastructure(results, "suite set-up on the cluster failed"):
            s = session.start(cluster, run_id, profiles, results,
                              context=config.getoption("kube_context"), worker=worker,
                              runtimes=selected_runtimes(request.session.items, config),
                              apparmor_profiles=apparmor,
                              local_pv_count=local_pv_count(request.session.items))
    except BaseException:  # also Ctrl-C/SIGTERM: a cluster this run created goes too
        with cleanup_first("releasing the cluster"):
            keep = keep_cluster or config.getoption("keep_on_failure")
            released = shared.release(keep=keep)
            if vm_lsm and released and not keep:
                vm_node_down(released)
        raise
    recording.attach(config, s)  # tests record into s.observations
    yield s
    with cleanup_first("deleting the run's objects"):
        try:
            session.stop(s, last=shared.is_last_user())
        finally:
            keep = config.getoption("keep_cluster") or (
                config.getoption("keep_on_failure") and request.session.testsfailed > 0)
            released = shared.release(keep=keep)
            if vm_lsm and released and not keep:
                vm_node_down(released)
            if released and released.kind and keep:
                print(f"\nkept kind cluster {released.kind.name}: "
                      f"export KUBECONFIG={released.kubeconfig}"
                      + (f" (and its VM node: python -m secctx vm-node down --cluster-name "
                         f"{released.kind.name})" if vm_lsm else ""))


def vm_node_up(cluster, lsm: str) -> None:
    """The VM node of --secctx-vm-node joined to the session's kind cluster: the one already
    running and Ready (a kept cluster's), else booted and joined now (cluster.vmnode)."""
    if cluster.kind is None:  # (option_problem refuses --existing-cluster)
        raise ClusterError(f"--secctx-vm-node {lsm} needs a kind cluster")
    if cluster.mode != modes.OFFLINE:
        raise ClusterError(f"--secctx-vm-node {lsm}: the cluster is {cluster.mode} ({cluster.mode_reason})"
                           "; the VM's disk is built from the offline node image: run with "
                           "--secctx-mode offline")
    node = vmnode.VMNode(cluster.kind.name, lsm=lsm)
    with FileLock(str(cache.cluster_state(cluster.kind.name) / "vm-node.lock")):
        if vmnode.running(node):
            log.step(f"vm-node: {node.name} already runs and is Ready: reused")
            node.control_plane = f"{cluster.kind.name}-control-plane"
            vmnode.load_images(node)  # those loaded into the kind nodes since
            return
        vmnode.up(node)
    log.step(f"vm-node: {node.name} Ready at {node.ip}; "
             + ", ".join(f"{k} {v}s" for k, v in node.timings.items()))


def vm_node_down(cluster) -> None:
    if cluster.kind is not None:
        removed = vmnode.down(vmnode.VMNode(cluster.kind.name))
        if removed:
            log.step(f"vm-node: removed {', '.join(removed)}")


# A permission the API server refuses, in any phase of any test, becomes its one
# INFRASTRUCTURE line (errors.permissions), and the run stops there: every later
# test would be refused the same.
@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_setup(item):
    try:
        with permissions():
            return (yield)
    finally:
        # Outermost wrapper: allure-pytest has recorded the test's parameters when this resumes.
        report.plain_parameters(item.callspec.params if hasattr(item, "callspec") else {})


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    with permissions():
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item):
    with permissions():
        return (yield)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)
    if call.excinfo and isinstance(call.excinfo.value, RunStopped):
        item.session.shouldfail = STOPPED


def namespace_prefix(node) -> str:
    """A test's namespace prefix: secctx- and its parameter id (or its name)."""
    return ("secctx-" + node.name.split("[")[-1].rstrip("]").replace(":", "-")).lower()[:40]


@pytest.fixture
def secctx_namespace(request, secctx_suite):
    """A fresh namespace per test, deleted afterwards (kept on failure if asked)."""
    ns = secctx_suite.open_namespace(namespace_prefix(request.node))
    yield ns
    failed = getattr(request.node, "rep_call", None) and request.node.rep_call.failed
    if failed and request.config.getoption("keep_on_failure"):
        secctx_suite.kept_namespaces.add(ns)
        print(f"\nkept namespace {ns} of failed test: "
              f"KUBECONFIG={secctx_suite.cluster.kubeconfig} kubectl -n {ns} get all,events")
        return
    with cleanup_first(f"deleting namespace {ns}"), timing.phase(request.node.nodeid, "cleanup"):
        secctx_suite.kube.delete_namespace(ns)


# -- the recipe cases, started together -------------------------------------

@pytest.fixture(scope="session")
def secctx_scheduler(request, secctx_suite):
    """Works on every selected recipe case of this process at once (secctx.run.scheduler);
    each test_recipe_case reads its own case's result."""
    s = Scheduler(secctx_suite, request.config.getoption("case_concurrency") or DEFAULT_CONCURRENCY,
                  keep_on_failure=request.config.getoption("keep_on_failure"),
                  upcoming=lambda: upcoming_jobs(request.session))
    try:
        yield s
    finally:
        with cleanup_first("stopping the recipe cases"):
            s.close()


@pytest.fixture(autouse=True)
def _secctx_recipe_cases_start_early(request):
    """The recipe cases start once the cluster is there, while the other tests run
    (their pods overlap): any test that uses the suite starts what is not started."""
    if "secctx_suite" in request.fixturenames and upcoming_jobs(request.session):
        request.getfixturevalue("secctx_scheduler").start()


def recipe_job(item) -> Job:
    return Job(item.callspec.params[RECIPE_CASE], item.nodeid, namespace_prefix(item))


def upcoming_jobs(session) -> list[Job]:
    """The recipe-case tests this process will run, in order: the selected ones
    (after -k, -m); on an xdist worker those queued to it so far."""
    items = session.items
    queue = next((p.torun for p in session.config.pluginmanager.get_plugins()
                  if type(p).__name__ == "WorkerInteractor" and hasattr(p, "torun")), None)
    if queue is not None:
        with queue.lock() as queued:
            items = [items[i] for i in list(queued) if isinstance(i, int)]
    return [recipe_job(i) for i in items
            if hasattr(i, "callspec") and RECIPE_CASE in i.callspec.params]
