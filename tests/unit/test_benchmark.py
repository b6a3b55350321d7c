"""benchmarks/: summaries, phase-timing join, flagging, the table, and the
cold-build cache handling (no Docker, no cluster)."""
import json
import os
import sys
import time
from pathlib import Path

import pytest

from benchmarks import analysis as an
from benchmarks import run as br

NODE = "suites/test_recipe_cases.py::test_recipe_case"


# -- summaries -------------------------------------------------------------------

def test_summarize_median_min_max_n():
    assert an.summarize([3, 1, 2]) == {"median": 2.0, "min": 1.0, "max": 3.0, "n": 3}
    assert an.summarize([4, 1, 2, 3])["median"] == 2.5
    assert an.summarize([5.0, None]) == {"median": 5.0, "min": 5.0, "max": 5.0, "n": 1}
    assert an.summarize([]) == {"median": None, "min": None, "max": None, "n": 0}


def test_figure_summarizes_only_runs_whose_time_counts():
    runs = [{"seconds": 10, "counted": True}, {"seconds": 900, "counted": False},
            {"seconds": 12, "counted": True}]
    assert an.figure(runs)["summary"] == {"median": 11.0, "min": 10.0, "max": 12.0, "n": 2}


def test_speedup_is_ratio_of_medians_with_pairwise_range():
    serial = an.figure([{"seconds": s, "counted": True} for s in (60, 66, 63)])
    parallel = an.figure([{"seconds": s, "counted": True} for s in (30, 40, 35)])
    sp = an.speedup(serial, parallel)
    assert sp["ratio"] == pytest.approx(63 / 35, abs=1e-3)
    assert sp["pairs"]["n"] == 3
    assert sp["pairs"]["min"] == pytest.approx(1.65) and sp["pairs"]["max"] == pytest.approx(2.0)
    assert an.speedup(serial, None) is None


# -- pytest output -------------------------------------------------------------------

def test_parse_pytest_summary():
    out = "....s..\n=== short test summary info ===\nSKIPPED ...\n70 passed, 4 skipped in 55.12s\n"
    assert an.parse_pytest_summary(out) == {"counts": {"passed": 70, "skipped": 4},
                                            "pytest_seconds": 55.12}
    bad = "==== 1 failed, 2 errors, 3 passed, 1 warning in 3.00s (0:00:03) ===="
    assert an.parse_pytest_summary(bad)["counts"] == {"failed": 1, "error": 2, "passed": 3}
    assert an.parse_pytest_summary("Traceback ...\nKeyError") == {"counts": {},
                                                                 "pytest_seconds": None}


def test_parse_junit(tmp_path):
    f = tmp_path / "junit.xml"
    f.write_text('<testsuites><testsuite name="pytest" tests="74" failures="1" errors="0" '
                 'skipped="4" time="55.1"/></testsuites>')
    assert an.parse_junit(f) == {"tests": 74, "failed": 1, "error": 0, "skipped": 4, "passed": 69}
    assert an.parse_junit(tmp_path / "missing.xml") is None


# -- phase timings ---------------------------------------------------------------------

def _write(dir_: Path, worker: str, recs: list[dict], junk: str = "") -> None:
    dir_.mkdir(parents=True, exist_ok=True)
    with (dir_ / f"{worker}.jsonl").open("a") as f:
        for r in recs:
            f.write(json.dumps(r) + "\n")
        f.write(junk)


def test_read_timings_reads_every_worker_and_counts_bad_lines(tmp_path):
    _write(tmp_path, "gw0", [{"test": "a", "phase": "observation", "seconds": 1.5}])
    _write(tmp_path, "gw1", [{"test": "b", "phase": "apply_to_ready", "seconds": 2}],
           junk='{"test": "c"}\nnot json\n\n')
    (tmp_path / "junit.xml").write_text("<x/>")  # other files are ignored
    records, bad = an.read_timings(tmp_path)
    assert sorted(r["test"] for r in records) == ["a", "b"]
    assert bad == 2


@pytest.mark.parametrize("nodeid,key", [
    (f"{NODE}[secure-pod]", "secure-pod"),
    (f"{NODE}[fsgroup-demo[local-storage]]", "fsgroup-demo[local-storage]"),
    (f"{NODE}[invalid-case:broken.yaml]", "invalid-case:broken.yaml"),
    ("suites/test_cluster.py::test_pod_runs_as_the_uid_it_asks_for",
     "test_pod_runs_as_the_uid_it_asks_for"),
    ("suites/x.py::TestA::test_b[p-1]", "p-1"),
])
def test_nodeid_case_key(nodeid, key):
    assert an.nodeid_case_key(nodeid) == key


def test_join_phases_joins_cleanup_by_case_name_inside_the_nodeid():
    records = [
        {"test": "secure-pod", "phase": "apply_to_ready", "seconds": 4.0},
        {"test": "secure-pod", "phase": "observation", "seconds": 1.0},
        {"test": f"{NODE}[secure-pod]", "phase": "cleanup", "seconds": 0.5},
        {"test": "fsgroup-demo[local-storage]", "phase": "apply_to_ready", "seconds": 6.0},
        {"test": f"{NODE}[fsgroup-demo[local-storage]]", "phase": "cleanup", "seconds": 2.0},
        # another test whose parameter id equals a case name: the recipe test wins
        {"test": "suites/test_other.py::test_x[secure-pod]", "phase": "cleanup", "seconds": 9.0},
        # a test with a namespace but no case phases
        {"test": "suites/test_cluster.py::test_pod_runs", "phase": "cleanup", "seconds": 0.7},
        # a case whose namespace was kept (no cleanup record)
        {"test": "apparmor-pod", "phase": "apply_to_ready", "seconds": 3.0},
        {"test": "apparmor-pod", "phase": "apply_to_ready", "seconds": 1.0},  # summed
    ]
    joined = an.join_phases(records)
    assert joined["secure-pod"] == {"case": "secure-pod", "nodeid": f"{NODE}[secure-pod]",
                                    "phases": {"apply_to_ready": 4.0, "observation": 1.0,
                                               "cleanup": 0.5}}
    assert joined["fsgroup-demo[local-storage]"]["phases"] == {"apply_to_ready": 6.0,
                                                               "cleanup": 2.0}
    assert joined["suites/test_other.py::test_x[secure-pod]"]["phases"] == {"cleanup": 9.0}
    assert joined["suites/test_cluster.py::test_pod_runs"]["phases"] == {"cleanup": 0.7}
    assert joined["apparmor-pod"]["phases"] == {"apply_to_ready": 4.0}
    assert joined["apparmor-pod"]["nodeid"] is None


def test_join_phases_leaves_an_ambiguous_cleanup_unjoined():
    records = [{"test": "p", "phase": "apply_to_ready", "seconds": 1.0},
               {"test": "suites/a.py::test_a[p]", "phase": "cleanup", "seconds": 2.0},
               {"test": "suites/b.py::test_b[p]", "phase": "cleanup", "seconds": 3.0}]
    joined = an.join_phases(records)
    assert joined["p"]["phases"] == {"apply_to_ready": 1.0}
    assert joined["suites/a.py::test_a[p]"]["phases"] == {"cleanup": 2.0}


def _run(**cases):
    """{case: (apply, observation, cleanup)} -> one run as join_phases returns it."""
    out = {}
    for name, (a, o, c) in cases.items():
        phases = {k: v for k, v in (("apply_to_ready", a), ("observation", o), ("cleanup", c))
                  if v is not None}
        out[name] = {"case": name, "nodeid": f"{NODE}[{name}]", "phases": phases}
    return out


def test_aggregate_cases_summarizes_phases_and_flags_over_10s():
    runs = [_run(fast=(2.0, 1.0, 0.5), slow=(9.0, 2.0, 1.0), border=(8.0, 2.0, 0.1)),
            _run(fast=(3.0, 1.0, 0.7), slow=(10.0, 1.5, 1.2), border=(8.0, 2.0, 0.1)),
            _run(fast=(2.5, 1.0, 0.6), slow=(8.0, 1.0, None), border=(8.0, 2.0, 0.1))]
    cases = an.aggregate_cases(runs)
    assert [c["case"] for c in cases] == ["slow", "border", "fast"]  # slowest first
    slow = cases[0]
    assert slow["apply_to_ready"] == {"median": 9.0, "min": 8.0, "max": 10.0, "n": 3}
    assert slow["cleanup"]["n"] == 2
    assert slow["apply_to_verdict"]["median"] == 11.0  # per run 11.0, 11.5, 9.0
    assert slow["over_threshold"] is True
    assert cases[1]["apply_to_verdict"]["median"] == 10.0 and not cases[1]["over_threshold"]
    assert an.flagged(cases) == [slow]


def test_aggregate_cases_puts_cleanup_only_entries_last():
    runs = [{"t": {"case": "t", "nodeid": "s.py::t", "phases": {"cleanup": 5.0}},
             **_run(c=(1.0, 1.0, 0.1))}]
    cases = an.aggregate_cases(runs)
    assert [c["case"] for c in cases] == ["c", "t"]
    assert cases[1]["apply_to_verdict"]["n"] == 0 and cases[1]["over_threshold"] is False


def test_timings_written_by_secctx_timing_round_trip(tmp_path, monkeypatch):
    from secctx.core import timing
    monkeypatch.setenv("SECCTX_TIMINGS_DIR", str(tmp_path))
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw3")
    timing.record("secure-pod", "apply_to_ready", 12.5)
    timing.record(f"{NODE}[secure-pod]", "cleanup", 0.25)
    records, bad = an.read_timings(tmp_path)
    assert bad == 0 and (tmp_path / "gw3.jsonl").exists()
    cases = an.aggregate_cases([an.join_phases(records)])
    assert cases[0]["case"] == "secure-pod" and cases[0]["over_threshold"]
    assert cases[0]["cleanup"]["median"] == 0.25


# -- targets and the table --------------------------------------------------------------

def _fig(*seconds, **extra):
    return an.figure([{"seconds": s, "counted": True, "status": "ok", **extra} for s in seconds])


TRUE_FLOOR = {"cases": 41, "pods": 44, "namespaces": 2, "applied_s": 1.2, "all_settled_s": 6.5,
              "sandbox_ready_s": {"p50": 3.0, "p90": 4.0, "max": 5.0},
              "settled_s": {"p50": 3.5, "p90": 5.0, "max": 6.5}, "late": ["ns/p"],
              "refused_by_api": [], "sandbox_failures": 2,
              "pods_with_sandbox_failures": {"ns/a": ["unable to freeze"], "ns/b": ["unable to freeze"]},
              "outcomes": {}, "pods_by_settled": []}


def _version(serial=(70.0, 72.0), scheduler=(15.0, 16.0), e2e=(101.0,)):
    figs = {"node_image_warm": _fig(3.0, 4.0), "cluster_create": _fig(20.0, 22.0),
            "suite_serial": _fig(*serial, counts={"tests": 74, "passed": 70, "skipped": 4},
                                 max_rss_kb=200 * 1024, tree_rss_peak_kb=300 * 1024),
            "suite_scheduler": _fig(*scheduler, counts={"tests": 74, "passed": 70, "skipped": 4},
                                    checks=900, max_rss_kb=180 * 1024),
            "suite_default_runtime": _fig(10.0, 11.0, counts={"tests": 40, "passed": 40}),
            "floor_wall": _fig(10.0, 11.0), "floor": _fig(4.0, 5.0),
            "true_floor_wall": _fig(9.0, 11.0),
            "true_floor": _fig(6.0, 7.0, **an.true_floor_record(TRUE_FLOOR)),
            "e2e": _fig(*e2e, counts={"tests": 30, "passed": 30, "failed": 0, "skipped": 0})}
    v = {"node_image": {"state": "built"}, "figures": figs}
    v["speedup"] = an.speedup(figs["suite_serial"], figs["suite_scheduler"])
    v["peer"] = an.peer(v)
    return v


def test_peer_compares_the_suite_with_upstream_e2e_and_the_floor():
    p = _version()["peer"]
    assert p["suite_s"] == 15.5 and p["e2e_s"] == 101.0 and p["ratio"] == round(101 / 15.5, 2)
    assert p["floor_s"] == 4.5 and p["suite_over_floor_wall_s"] == 5.0
    assert p["suite_checks"] == 900 and p["e2e_specs"]["tests"] == 30
    # Like for like: e2e runs the default handler only, so does this figure.
    assert p["default_runtime_s"] == 10.5 and p["ratio_default_runtime"] == round(101 / 10.5, 2)
    assert an.peer({"figures": {}}) is None
    # The whole suite against the machine's own floor with the same session set-up.
    assert p["true_floor_wall_s"] == 10.0 and p["over_true_floor"] == 1.55


def test_a_true_floor_run_keeps_its_tail_late_pods_and_the_runtime_s_messages():
    rec = an.true_floor_record(TRUE_FLOOR)
    assert rec["seconds"] == 6.5 and rec["late"] == 1 and rec["sandbox_failures"] == 2
    assert rec["failure_messages"] == ["unable to freeze"]


def test_count_checks_counts_the_lines_of_every_observed_vs_expected_attachment(tmp_path):
    (tmp_path / "a-attachment.txt").write_text("runAsUser: 1000 == 1000 ok\nfsGroup: ok\n")
    (tmp_path / "b-attachment.txt").write_text("ignored\n")
    (tmp_path / "1-result.json").write_text(json.dumps({"attachments": [
        {"name": "observed vs expected", "source": "a-attachment.txt"},
        {"name": "node environment", "source": "b-attachment.txt"}],
        "steps": [{"attachments": [{"name": "observed vs expected",
                                    "source": "a-attachment.txt"}]}]}))
    assert an.count_checks(tmp_path) == 4
    assert an.count_checks(tmp_path / "missing") is None


def test_targets():
    t = {x["target"]: x for x in an.targets(_version())}
    assert t["node image build, warm"]["met"] is True
    assert t["cluster creation"]["value"] == 21.0
    assert t["suite, scheduler"]["value"] == 15.5 and t["suite, scheduler"]["met"] is True
    assert t["upstream e2e Security Context / suite"]["met"] is True  # 6.5x
    assert t["upstream e2e / suite, default runtime only"]["met"] is True  # 9.6x >= 4x
    assert t["whole suite / (true floor + set-up)"]["met"] is False  # 1.55x > 1.5x
    slow = {x["target"]: x for x in an.targets(_version(scheduler=(30.0, 32.0)))}
    assert slow["suite, scheduler"]["met"] is False
    assert slow["upstream e2e Security Context / suite"]["met"] is False  # 3.3x
    empty = an.targets({"figures": {}})
    assert all(x["met"] is None and x["value"] is None for x in empty)


def test_render_table():
    ver = _version()
    ver["cases"] = an.aggregate_cases([_run(**{"slow-case": (11.0, 1.0, 1.0),
                                               "ok-case": (2.0, 1.0, 0.5)})])
    ver["figures"]["cluster_create"]["runs"].append(
        {"seconds": 600.0, "counted": False, "status": "timeout"})
    result = {"started_at": "2025-01-01T00:00:00Z", "options": {"repeat": 2},
              "host": {"cpus": 2, "kernel": "6.1"}, "cluster_name": "secctx-bench",
              "primary_version": "v1.37.2",
              "versions": {"v1.37.2": ver,
                           "v1.34.4": {"node_image": {"state": "not built", "detail": "missing x"},
                                       "figures": {}}}}
    result["targets"] = an.targets(ver)
    table = an.render_table(result)
    assert "| node image build, warm | v1.37.2 | 3.5 s | 3.0 s | 4.0 s | 2 |" in table
    assert ("| suite, serial (--secctx-case-concurrency 1) | v1.37.2 | 71.0 s | 70.0 s | 72.0 s | 2 | "
            "74: 70 passed, 4 skipped |") in table
    assert "| suite, scheduler (--secctx-case-concurrency 4) | v1.37.2 | 15.5 s |" in table
    assert "1× timeout" in table  # failures are visible next to the figure
    assert "| speed-up serial / scheduler | v1.37.2 | 4.58× |" in table
    assert ("| upstream e2e / suite (scheduler) | v1.37.2 | 6.52× |  |  |  | e2e: 30 specs "
            "(30 passed) in 101.0 s; suite: 74 tests, 900 field checks in 15.5 s |") in table
    assert "| suite (scheduler) over the floor | v1.37.2 | 5.0 s |" in table
    assert "| whole suite (scheduler) / true floor with set-up | v1.37.2 | 1.55× |" in table
    assert "2 failed sandbox creations (unable to freeze); 1 late |" in table
    assert "| floor: the cases' pods from first namespace to last outcome | v1.37.2 | 4.5 s |" in table
    assert "peak RSS, serial: largest process | v1.37.2 | 200 MB" in table
    assert "peak RSS, serial: whole process tree | v1.37.2 | 300 MB" in table
    assert "Not measured: v1.34.4: node image not built (missing x)." in table
    assert "| upstream e2e Security Context / suite | ≥ 5× | 6.52× | ✓ |" in table
    assert "| suite, scheduler | ≤ 20 s | 15.5 s | ✓ |" in table
    assert "| v1.34.4 | not built | – | – | – | – |" in table  # the version matrix
    assert "| slow-case | 11.0 s | 1.0 s | 1.0 s | 12.0 s | > 10 s |" in table
    assert "| ok-case | 2.0 s | 1.0 s | 0.5 s | 3.0 s |  |" in table
    assert "1 over 10 s" in table


def test_render_table_of_an_empty_interrupted_run():
    table = an.render_table({"interrupted": True, "versions": {}, "errors": ["boom"]})
    assert "Interrupted" in table and "Harness errors: boom" in table


# -- run.py: commands, cold-build cache handling, child processes -----------------------

def test_commands():
    assert br.node_image_cmd("v1.37.2")[1:] == ["-m", "secctx", "node-image",
                                                "--kubernetes-version", "v1.37.2"]
    assert br.node_image_cmd("v1.37.2", rebuild=True)[-1] == "--rebuild"
    suite = br.suite_cmd("secctx-bench", "v1.36.3", "parallel", Path("/t/j.xml"))
    assert suite[1:8] == ["-m", "pytest", "suites", "-q", "-p", "no:cacheprovider",
                          "--cluster-name"]
    assert "--keep-cluster" in suite and suite[-2:] == ["-n", "auto"]
    assert suite[suite.index("--secctx-kubernetes-version") + 1] == "v1.36.3"
    scheduler = br.suite_cmd("secctx-bench", "v1.36.3", "scheduler", Path("/t/j.xml"), Path("/a"))
    assert "-n" not in scheduler and scheduler[-2:] == ["--secctx-case-concurrency", "4"]
    assert "--alluredir=/a" in scheduler
    assert br.suite_cmd("b", "v1.36.3", "serial", Path("/j"))[-2:] == ["--secctx-case-concurrency", "1"]
    floor = br.floor_cmd("secctx-bench", "v1.37.2")
    assert floor[3].endswith("benchmarks/floor.py::test_floor") and "--keep-cluster" in floor
    assert br.floor_cmd("b", "v1.37.2", "test_true_floor")[3].endswith("floor.py::test_true_floor")
    assert br.e2e_prepare_cmd("b", "v1.37.2")[1:4] == ["-m", "benchmarks.e2e", "--cluster-name"]


def test_e2e_reads_ginkgos_summary_and_its_junit_report(tmp_path):
    from benchmarks import e2e
    assert e2e.ran_line("...\nRan 30 of 7412 Specs in 101.3 seconds\nSUCCESS!") == {
        "ran": 30, "of": 7412, "ginkgo_seconds": 101.3}
    assert e2e.ran_line("no summary") is None
    (tmp_path / "junit_01.xml").write_text(
        "<testsuites><testsuite><testcase name='[It] a'/><testcase name='[It] b'><failure/>"
        "</testcase><testcase name='[It] c'><skipped/></testcase>"
        "<testcase name='[SynchronizedBeforeSuite]'/></testsuite></testsuites>")
    assert e2e.spec_counts(tmp_path) == {"tests": 2, "passed": 1, "failed": 1, "skipped": 1}
    cmd = e2e.command(Path("/e"), Path("/k"), Path("/r"))
    assert cmd[0] == "/e/e2e.test" and "--ginkgo.focus=Security Context" in cmd


def test_base_env_drops_what_would_change_the_commands():
    env = br.base_env({"PATH": "/usr/bin", "SECCTX_TIMINGS_DIR": "/x", "PYTEST_XDIST_WORKER": "gw0",
                       "HOME": "/root"})
    assert "SECCTX_TIMINGS_DIR" not in env and "PYTEST_XDIST_WORKER" not in env
    assert env["HOME"] == "/root" and env["PYTHONUNBUFFERED"] == "1"


def test_from_scratch_env_points_every_cache_at_empty_directories(tmp_path):
    env = br.from_scratch_env({"GOCACHE": "/root/.cache/go-build", "PATH": "/bin"}, tmp_path)
    for var in ("GOCACHE", "GOMODCACHE", "SECCTX_CACHE"):
        d = Path(env[var])
        assert d.is_dir() and d.parent == tmp_path and not any(d.iterdir())
    assert env["PATH"] == "/bin"
    assert br.cache_root(env) == tmp_path / "secctx-cache"
    assert br.cache_root({}) == Path.home() / ".cache" / "secctx"


def test_cold_paths():
    paths = br.cold_paths(Path("/c"), "v1.37.2", {"runc": "v1.4.3", "etcd": "v3.7.0"})
    assert paths == [Path("/c/kubernetes/v1.37.2"), Path("/c/components/etcd/v3.7.0"),
                     Path("/c/components/runc/v1.4.3")]


def _cache(tmp_path):
    root = tmp_path / "cache"
    for rel in ("kubernetes/v1.37.2/bin/kubeadm", "components/runc/v1.4.3/runc",
                "components/etcd/v3.6.6/etcd"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("old")
    paths = br.cold_paths(root, "v1.37.2", {"runc": "v1.4.3", "crictl": "v9"})  # crictl absent
    return root, paths


def test_aside_restores_the_originals_when_the_build_fails(tmp_path):
    root, paths = _cache(tmp_path)
    aside = root / ".bench-aside" / "x"
    with br.Aside(paths, aside) as moved:
        assert len(moved.moved) == 2
        assert not (root / "kubernetes/v1.37.2").exists()
        assert json.loads((aside / "manifest.json").read_text())[0]["original"] == str(paths[0])
        # a failed build leaves a partial directory behind
        (root / "kubernetes/v1.37.2/work").mkdir(parents=True)
    assert (root / "kubernetes/v1.37.2/bin/kubeadm").read_text() == "old"
    assert not (root / "kubernetes/v1.37.2/work").exists()
    assert (root / "components/runc/v1.4.3/runc").read_text() == "old"
    assert (root / "components/etcd/v3.6.6/etcd").exists()  # other versions untouched
    assert not aside.exists()


def test_aside_keeps_the_rebuilt_cache_after_a_successful_build(tmp_path):
    root, paths = _cache(tmp_path)
    aside = root / ".bench-aside" / "x"
    with br.Aside(paths, aside) as moved:
        (root / "kubernetes/v1.37.2/bin").mkdir(parents=True)
        (root / "kubernetes/v1.37.2/bin/kubeadm").write_text("new")
        moved.keep_new()
    assert (root / "kubernetes/v1.37.2/bin/kubeadm").read_text() == "new"
    assert not aside.exists()


def test_aside_restores_on_interruption(tmp_path):
    root, paths = _cache(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        with br.Aside(paths, root / ".bench-aside" / "x"):
            raise KeyboardInterrupt
    assert (root / "kubernetes/v1.37.2/bin/kubeadm").read_text() == "old"


def test_build_in_progress():
    assert br.build_in_progress("v1.35.4", [["python", "-m", "secctx", "node-image",
                                             "--kubernetes-version", "v1.35.4"]])
    assert br.build_in_progress("v1.35.4", [["go", "build", "-o",
                                             "/root/.cache/secctx/kubernetes/v1.35.4/bin.tmp/"]])
    assert not br.build_in_progress("v1.35.4", [["python", "-m", "secctx", "node-image",
                                                 "--kubernetes-version", "v1.36.3"]])


def test_node_image_state(tmp_path):
    root = tmp_path
    assert br.node_image_state("v1.37.2", root, lambda tag: False, [])["state"] == "not built"
    assert br.node_image_state("v1.37.2", root, lambda tag: False,
                               [["secctx", "node-image", "v1.37.2"]])["state"] == "building elsewhere"
    for c in br.kubernetes_commands():
        (root / "kubernetes/v1.37.2/bin").mkdir(parents=True, exist_ok=True)
        (root / "kubernetes/v1.37.2/bin" / c).write_text("")
    for name, v in br.fixed_components().items():
        (root / "components" / name / v).mkdir(parents=True)
    from secctx.offline import nodeimage
    from secctx.offline.gomod import KubeVersion
    ours = nodeimage.recipe_tag(KubeVersion.parse("v1.37.2"))
    assert br.node_image_state("v1.37.2", root, lambda tag: tag.endswith(":v1.37.2"), [])[
        "state"] == "not built", "another recipe's image (the alias) is not this one's"
    state = br.node_image_state("v1.37.2", root, lambda tag: tag == ours, [])
    assert state == {"state": "built", "detail": ours}
    assert "image" in br.node_image_state("v1.37.2", root, lambda tag: False, [])["detail"]


def test_run_record_statuses():
    m = br.Measured(["x"], 1.0, 0)
    assert br.run_record(m, 1, Path("l"), False)["status"] == "ok"
    assert br.run_record(br.Measured(["x"], 1.0, 1), 1, Path("l"), True)["status"] == "tests failed"
    assert br.run_record(br.Measured(["x"], 1.0, 1), 1, Path("l"), True)["counted"] is True
    assert br.run_record(br.Measured(["x"], 1.0, 1), 1, Path("l"), False)["counted"] is False
    assert br.run_record(br.Measured(["x"], 1.0, 2), 1, Path("l"), True)["status"] == "failed"
    assert br.run_record(br.Measured(["x"], 5.0, -15, timed_out=True), 1, Path("l"), True)[
        "status"] == "timeout"


def test_run_measured_times_a_child_and_reads_its_peak_memory(tmp_path):
    code = "import os; b = bytearray(64 * 2**20); print(os.environ['TMPDIR'])"
    m = br.run_measured([sys.executable, "-c", code], timeout=60, log=tmp_path / "a.log",
                        env=dict(os.environ))
    assert m.returncode == 0 and not m.timed_out and 0 < m.seconds < 60
    assert m.max_rss_kb > 64 * 1024
    tmpdir = (tmp_path / "a.log").read_text().splitlines()[-1]
    assert "secctx-bench-tmp-" in tmpdir and not Path(tmpdir).exists()  # private, removed
    assert m.tmp_left_mb == 0


def test_run_measured_stops_the_whole_group_on_timeout(tmp_path):
    marker = tmp_path / "grandchild.pid"
    code = ("import subprocess, sys, time; "
            f"p = subprocess.Popen(['sleep', '60']); open({str(marker)!r}, 'w').write(str(p.pid)); "
            "time.sleep(60)")
    t0 = time.monotonic()
    m = br.run_measured([sys.executable, "-c", code], timeout=1.5, grace=2,
                        log=tmp_path / "b.log", env=dict(os.environ))
    assert m.timed_out and time.monotonic() - t0 < 15
    grandchild = int(marker.read_text())
    time.sleep(0.2)
    stat = Path(f"/proc/{grandchild}/stat")
    assert not stat.exists() or stat.read_text().rpartition(")")[2].split()[0] == "Z"
    assert "timeout after" in (tmp_path / "b.log").read_text()


def test_run_measured_records_a_command_that_cannot_start(tmp_path):
    m = br.run_measured(["/nonexistent/tool"], timeout=5, log=tmp_path / "c.log",
                        env=dict(os.environ))
    assert m.error and m.returncode is None
    assert br.run_record(m, 1, Path("c.log"), False)["status"] == "error"


def test_parse_args():
    args = br.parse_args(["--versions", "v1.36.3, 1.37.2,v1.36.3", "--repeat", "1"])
    assert args.versions == ["v1.36.3", "v1.37.2"] and args.repeat == 1
    assert br.primary_version(args.versions) == "v1.37.2"
    assert br.primary_version(["v1.36.3", "v1.35.4"]) == "v1.36.3"
    for bad in (["--cluster-name", "secctx"], ["--repeat", "0"], ["--versions", "banana"]):
        with pytest.raises(SystemExit):
            br.parse_args(bad)


# -- run.py: the build figures' order and the cold paths, with a fake `measure` ---------

class _FakeMeasure:
    """Stands in for Bench.measure: records calls, simulates what the build does."""

    def __init__(self, out: Path, root: Path, fail: set[str] = frozenset()):
        self.out, self.root, self.fail, self.calls = out, root, fail, []

    def __call__(self, figure, version, i, argv, timeout, env=None, suite=False, timings=None):
        env = env or {}
        self.calls.append({"figure": figure, "i": i, "argv": argv, "env": env,
                           "kube_present": (self.root / "kubernetes" / version).exists()})
        if figure == "node_image_cold_from_scratch":  # every cache it sees is empty
            assert all(not any(Path(env[v]).iterdir())
                       for v in ("GOCACHE", "GOMODCACHE", "SECCTX_CACHE"))
            (Path(env["GOCACHE"]) / "big").write_text("x" * 1000)
        if figure == "node_image_cold" and figure not in self.fail:
            (self.root / "kubernetes" / version / "bin").mkdir(parents=True)
            (self.root / "kubernetes" / version / "bin" / "kubeadm").write_text("new")
        log = self.out / "logs" / f"{figure}-{i}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text("[  0.1s] node image secctx.local/kind-node:v1.37.2 is up to date\n")
        ok = figure not in self.fail
        return {"i": i, "status": "ok" if ok else "failed", "counted": ok, "seconds": 1.0 + i,
                "log": str(log.relative_to(self.out))}


def _bench(tmp_path, monkeypatch, argv, fail=frozenset()):
    root = tmp_path / "cache"
    (root / "kubernetes/v1.37.2/bin").mkdir(parents=True)
    (root / "kubernetes/v1.37.2/bin/kubeadm").write_text("old")
    monkeypatch.setenv("SECCTX_CACHE", str(root))
    monkeypatch.setattr(br, "host_info", lambda: {"cpus": 2})
    monkeypatch.setattr(br, "node_image_state", lambda *a, **k: {"state": "built", "detail": ""})
    monkeypatch.setattr(br, "version_components", lambda v, r: {"runc": "v1.4.3"})
    monkeypatch.setattr(br, "build_in_progress", lambda v, cmdlines=None: False)
    args = br.parse_args([*argv, "--out", str(tmp_path / "out"), "--skip-cluster", "--skip-suite"])
    bench = br.Bench(args)
    bench.measure = _FakeMeasure(args.out, root, fail)
    return bench, root


def test_cold_runs_come_first_then_a_prime_then_the_warm_runs(tmp_path, monkeypatch):
    bench, root = _bench(tmp_path, monkeypatch,
                         ["--repeat", "2", "--cold", "--cold-from-scratch"])
    bench.run()
    order = [(c["figure"], c["i"]) for c in bench.measure.calls]
    assert order == [("node_image_cold_from_scratch", 1), ("node_image_cold_from_scratch", 2),
                     ("node_image_cold", 1), ("node_image_cold", 2),
                     ("node_image_warm_prime", 0),
                     ("node_image_warm", 1), ("node_image_warm", 2)]
    calls = bench.measure.calls
    assert all(c["argv"][-1] == "--rebuild" for c in calls[:4])
    assert all("--rebuild" not in c["argv"] for c in calls[4:])
    assert not any(c["kube_present"] for c in calls[2:4])  # cold: moved aside
    assert all(c["kube_present"] for c in calls[:2])  # from scratch: another cache entirely
    scratch = Path(calls[0]["env"]["SECCTX_CACHE"]).parent
    assert not scratch.exists()  # removed after the run
    figs = bench.result["versions"]["v1.37.2"]["figures"]
    assert figs["node_image_warm"]["summary"] == {"median": 2.5, "min": 2.0, "max": 3.0, "n": 2}
    assert all(r["cache_hit"] for r in figs["node_image_warm"]["runs"])
    assert figs["node_image_cold"]["runs"][0]["moved_aside"] == [str(root / "kubernetes/v1.37.2")]
    assert (root / "kubernetes/v1.37.2/bin/kubeadm").read_text() == "new"  # rebuilt one kept
    assert not any((root / ".bench-aside").iterdir())
    saved = json.loads((tmp_path / "out" / "result.json").read_text())
    assert saved["targets"][0]["value"] == 2.5


def test_a_failed_cold_build_puts_the_cache_back_and_is_recorded(tmp_path, monkeypatch):
    bench, root = _bench(tmp_path, monkeypatch, ["--repeat", "1", "--cold"],
                         fail={"node_image_cold"})
    bench.run()
    assert (root / "kubernetes/v1.37.2/bin/kubeadm").read_text() == "old"
    fig = bench.result["versions"]["v1.37.2"]["figures"]["node_image_cold"]
    assert fig["summary"]["n"] == 0 and fig["runs"][0]["status"] == "failed"
    assert "node image build, cold | v1.37.2 | – | – | – | 0 | 1× failed" in bench.finish()


def test_true_floor_packs_cases_into_as_few_namespaces_as_their_names_allow():
    from benchmarks import floor
    a, b, a_again = {("Pod", "a"), ("ConfigMap", "cfg")}, {("Pod", "b")}, {("Pod", "a")}
    # a and b share a namespace; a second "a" (another runtime's copy) needs another
    assert floor.pack([a, b, a_again, {("Pod", "c"), ("ConfigMap", "cfg")}]) == [0, 0, 1, 1]


def test_true_floor_settles_a_pod_at_ready_an_end_or_a_refusal_not_while_starting():
    from kubernetes.client import (
        V1ContainerState,
        V1ContainerStateWaiting,
        V1ContainerStatus,
        V1Pod,
        V1PodCondition,
        V1PodStatus,
    )

    from benchmarks import floor

    def pod(phase="Pending", ready="False", waiting=None):
        state = V1ContainerState(waiting=V1ContainerStateWaiting(reason=waiting)) if waiting else None
        return V1Pod(status=V1PodStatus(phase=phase, conditions=[
            V1PodCondition(type="Ready", status=ready)], container_statuses=[
            V1ContainerStatus(name="c", image="i", image_id="", ready=False, restart_count=0,
                              state=state)]))
    assert floor.settled(pod(ready="True")) == "Ready"
    assert floor.settled(pod(waiting="ContainerCreating")) is None
    assert floor.settled(pod(waiting="CreateContainerConfigError")) == "CreateContainerConfigError"
    assert floor.settled(pod(phase="Failed")) == "Failed"
    assert floor.quantiles([3.0, 1.0, 2.0, 10.0]) == {"p50": 3.0, "p90": 10.0, "max": 10.0}
