"""The pure part of the benchmark: summaries, phase timings, targets, the table.

Nothing here runs a process or touches Docker; `benchmarks/run.py` measures
and this module turns the measurements into `result.json` figures and the
Markdown table. Everything is unit-tested in tests/unit/test_benchmark.py.
"""
from __future__ import annotations

import contextlib
import json
import re
import statistics
import xml.etree.ElementTree as ET
from pathlib import Path

# Targets of issues 6 and 11.
TARGET_WARM_BUILD_S = 10.0
TARGET_CLUSTER_S = 60.0
TARGET_SUITE_S = 20.0  # the suite with its scheduler, on a ready cluster
TARGET_PEER_RATIO = 5.0  # upstream e2e's Security Context focus / the suite
TARGET_DEFAULT_RUNTIME_RATIO = 4.0  # e2e / the suite on the default runtime only (issue 27)
TARGET_OVER_TRUE_FLOOR = 1.5  # the whole suite / (the true floor with its set-up) (issue 27)
SLOW_CASE_S = 10.0  # a case whose apply->verdict takes longer is flagged

CASE_PHASES = ("apply_to_ready", "observation")  # recorded under the case id
CLEANUP_PHASE = "cleanup"  # recorded under the pytest nodeid
CASE_TEST_FUNCTION = "test_recipe_case"  # the test that records the case phases

FIGURES = {  # name -> label, in table order
    "node_image_build_missing": "node image build (was missing)",
    "node_image_cold_from_scratch": "node image build, from scratch",
    "node_image_cold": "node image build, cold",
    "node_image_warm": "node image build, warm",
    "cluster_create": "cluster creation",
    "cluster_delete": "cluster deletion",
    "suite_serial": "suite, serial (--secctx-case-concurrency 1)",
    "suite_scheduler": "suite, scheduler (--secctx-case-concurrency 4)",
    "suite_parallel": "suite, scheduler per xdist worker (-n auto)",
    "suite_default_runtime": "suite, scheduler, default runtime only (as e2e runs)",
    "floor_wall": "floor: session set-up + the cases' pods, nothing observed",
    "floor": "floor: the cases' pods from first namespace to last outcome",
    "true_floor_wall": "true floor: session set-up + every case's pods at once",
    "true_floor": "true floor: first apply to the last pod settled",
    "e2e_prepare": "upstream e2e.test: build (cached) and load its images",
    "e2e": "upstream e2e.test --ginkgo.focus='Security Context'",
}


# -- summaries -------------------------------------------------------------

def summarize(values) -> dict:
    """Median, min, max and n of the numbers given (None entries are ignored)."""
    vals = [float(v) for v in values if v is not None]
    if not vals:
        return {"median": None, "min": None, "max": None, "n": 0}
    return {"median": round(statistics.median(vals), 3), "min": round(min(vals), 3),
            "max": round(max(vals), 3), "n": len(vals)}


def figure(runs: list[dict]) -> dict:
    """A figure: its runs and the summary of the runs whose time counts."""
    return {"summary": summarize(r.get("seconds") for r in runs if r.get("counted")),
            "runs": runs}


def count_checks(alluredir: Path) -> int | None:
    """Field checks the suite made: the lines of every "observed vs expected" attachment
    (report.record_checks writes one line per check) in an Allure results directory."""
    if not alluredir.is_dir():
        return None
    total = 0
    for result in alluredir.glob("*-result.json"):
        try:
            data = json.loads(result.read_text())
        except (OSError, ValueError):
            continue
        for att in _attachments(data):
            if att.get("name") == "observed vs expected":
                with contextlib.suppress(OSError):
                    total += sum(1 for line in (alluredir / att["source"]).read_text().splitlines()
                                 if line.strip())
    return total


def _attachments(node: dict):
    yield from node.get("attachments", [])
    for step in node.get("steps", []):
        yield from _attachments(step)


def peer(version: dict) -> dict | None:
    """The suite (scheduler) against upstream e2e and against the floor: medians, counts,
    ratios (None where a figure is missing)."""
    suite, e2e = _median(version, "suite_scheduler"), _median(version, "e2e")
    floor, floor_wall = _median(version, "floor"), _median(version, "floor_wall")
    if suite is None:
        return None
    figs = version.get("figures", {})

    def last(name, key):
        for run in reversed((figs.get(name) or {}).get("runs", [])):
            if run.get(key) is not None:
                return run[key]
        return None
    alike = _median(version, "suite_default_runtime")  # e2e runs the default handler only
    true_floor, true_wall = _median(version, "true_floor"), _median(version, "true_floor_wall")
    return {"suite_s": suite, "e2e_s": e2e, "floor_s": floor, "floor_wall_s": floor_wall,
            "true_floor_s": true_floor, "true_floor_wall_s": true_wall,
            "over_true_floor": round(suite / true_wall, 2) if true_wall else None,
            "ratio": round(e2e / suite, 2) if e2e and suite else None,
            "default_runtime_s": alike,
            "ratio_default_runtime": round(e2e / alike, 2) if e2e and alike else None,
            "default_runtime_tests": last("suite_default_runtime", "counts"),
            "suite_over_floor_wall_s": round(suite - floor_wall, 1) if floor_wall else None,
            "suite_tests": last("suite_scheduler", "counts"),
            "suite_checks": last("suite_scheduler", "checks"),
            "e2e_specs": last("e2e", "counts")}


def true_floor_record(data: dict) -> dict:
    """One true-floor run (benchmarks/floor.py test_true_floor's JSON) as a figure's run:
    its seconds and its tail."""
    return {"seconds": data["all_settled_s"], "pods": data["pods"], "cases": data["cases"],
            "namespaces": data["namespaces"], "sandbox_ready_s": data["sandbox_ready_s"],
            "settled_s": data["settled_s"], "late": len(data["late"]),
            "sandbox_failures": data["sandbox_failures"],
            "failure_messages": sorted({m for ms in data["pods_with_sandbox_failures"].values()
                                        for m in ms})[:5]}


def speedup(serial: dict | None, parallel: dict | None) -> dict | None:
    """Serial median / parallel median, plus the ratio of each interleaved pair."""
    if not serial or not parallel:
        return None
    s, p = serial["summary"]["median"], parallel["summary"]["median"]
    pairs = [a["seconds"] / b["seconds"] for a, b in zip(serial["runs"], parallel["runs"])
             if a.get("counted") and b.get("counted") and b.get("seconds")]
    return {"ratio": round(s / p, 3) if s and p else None,
            "pairs": summarize(pairs)}


# -- pytest output -----------------------------------------------------------

_COUNT = re.compile(r"(\d+) (passed|failed|skipped|errors?|xfailed|xpassed|deselected)\b")
_DURATION = re.compile(r"\bin (\d+(?:\.\d+)?)s\b")


def parse_pytest_summary(output: str) -> dict:
    """Counts and duration from pytest's last summary line ("70 passed, 4 skipped in 55.1s")."""
    for line in reversed(output.strip().splitlines()):
        counts = _COUNT.findall(line)
        duration = _DURATION.search(line)
        if counts and duration:
            out = {("error" if k.startswith("error") else k): int(n) for n, k in counts}
            return {"counts": out, "pytest_seconds": float(duration.group(1))}
    return {"counts": {}, "pytest_seconds": None}


def parse_junit(path: Path) -> dict | None:
    """{tests, passed, failed, error, skipped} from a JUnit XML file, or None if unreadable."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return None
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    total = {"tests": 0, "failed": 0, "error": 0, "skipped": 0}
    for s in suites:
        total["tests"] += int(s.get("tests", 0))
        total["failed"] += int(s.get("failures", 0))
        total["error"] += int(s.get("errors", 0))
        total["skipped"] += int(s.get("skipped", 0))
    total["passed"] = total["tests"] - total["failed"] - total["error"] - total["skipped"]
    return total


# -- phase timings (secctx/core/timing.py) ----------------------------------------

def read_timings(directory: Path) -> tuple[list[dict], int]:
    """Every record of every <worker>.jsonl in directory, and how many lines were unreadable."""
    records, bad = [], 0
    for path in sorted(Path(directory).glob("*.jsonl")):
        for line in path.read_text(errors="replace").splitlines():
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                rec = {"test": str(rec["test"]), "phase": str(rec["phase"]),
                       "seconds": float(rec["seconds"])}
            except (ValueError, KeyError, TypeError):
                bad += 1
                continue
            records.append(rec)
    return records, bad


def _split_nodeid(nodeid: str) -> tuple[str, str | None]:
    """("test_recipe_case", "fsgroup-demo[local-storage]") from
    "suites/test_recipe_cases.py::test_recipe_case[fsgroup-demo[local-storage]]"."""
    last = nodeid.split("::")[-1]
    if "[" in last and last.endswith("]"):
        i = last.index("[")
        return last[:i], last[i + 1:-1]
    return last, None


def nodeid_case_key(nodeid: str) -> str:
    """The case id inside a nodeid's [...] part (ids may nest brackets), else the test name."""
    function, param = _split_nodeid(nodeid)
    return param if param is not None else function


def join_phases(records: list[dict], case_function: str = CASE_TEST_FUNCTION) -> dict[str, dict]:
    """One run's records joined per case: {key: {"case", "nodeid", "phases": {phase: s}}}.

    apply_to_ready and observation are recorded under the case id
    (`fsgroup-demo[local-storage]`), cleanup under the pytest nodeid. A cleanup
    joins the case named inside its nodeid's [...]; when several nodeids
    name the same case (another parametrized test with the same id) the one
    of `case_function` wins, and the others stay entries of their own, keyed
    by nodeid, as do the cleanups of tests without case phases. Several
    records of one phase for one key are added up.
    """
    entries: dict[str, dict] = {}

    def add(key: str, nodeid: str | None, phase: str, seconds: float) -> None:
        e = entries.setdefault(key, {"case": key, "nodeid": nodeid, "phases": {}})
        if nodeid and not e["nodeid"]:
            e["nodeid"] = nodeid
        e["phases"][phase] = round(e["phases"].get(phase, 0.0) + seconds, 3)

    by_nodeid: dict[str, list[dict]] = {}
    for rec in records:
        if rec["phase"] == CLEANUP_PHASE or "::" in rec["test"]:
            by_nodeid.setdefault(rec["test"], []).append(rec)
        else:
            add(rec["test"], None, rec["phase"], rec["seconds"])
    case_ids = set(entries)

    claimants: dict[str, list[str]] = {}
    for nodeid in by_nodeid:
        key = nodeid_case_key(nodeid)
        if key in case_ids:
            claimants.setdefault(key, []).append(nodeid)
    owner: dict[str, str] = {}  # nodeid -> case key it joins
    for key, nodeids in claimants.items():
        if len(nodeids) > 1:
            nodeids = [n for n in nodeids if _split_nodeid(n)[0] == case_function]
        if len(nodeids) == 1:
            owner[nodeids[0]] = key
    for nodeid, recs in by_nodeid.items():
        key = owner.get(nodeid, nodeid)
        for rec in recs:
            add(key, nodeid, rec["phase"], rec["seconds"])
    return entries


def aggregate_cases(runs: list[dict[str, dict]], threshold: float = SLOW_CASE_S) -> list[dict]:
    """Per case over several runs: a summary per phase and of apply->verdict
    (apply_to_ready + observation), flagged when its median exceeds threshold.
    Cases first (slowest apply->verdict first), then entries with cleanup only."""
    keys: dict[str, str | None] = {}
    for run in runs:
        for key, e in run.items():
            if keys.get(key) is None:
                keys[key] = e.get("nodeid")
    out = []
    for key, nodeid in keys.items():
        per_phase: dict[str, list[float]] = {}
        verdict = []
        for run in runs:
            e = run.get(key)
            if not e:
                continue
            for phase, s in e["phases"].items():
                per_phase.setdefault(phase, []).append(s)
            if "apply_to_ready" in e["phases"]:
                verdict.append(e["phases"]["apply_to_ready"] + e["phases"].get("observation", 0.0))
        row = {"case": key, "nodeid": nodeid,
               **{p: summarize(per_phase.get(p, [])) for p in (*CASE_PHASES, CLEANUP_PHASE)},
               **{p: summarize(v) for p, v in per_phase.items()
                  if p not in (*CASE_PHASES, CLEANUP_PHASE)},
               "apply_to_verdict": summarize(verdict)}
        med = row["apply_to_verdict"]["median"]
        row["over_threshold"] = med is not None and med > threshold
        out.append(row)

    def order(row):
        med = row["apply_to_verdict"]["median"]
        return (med is None, -(med or 0.0), row["case"])
    return sorted(out, key=order)


def flagged(cases: list[dict]) -> list[dict]:
    return [c for c in cases if c.get("over_threshold")]


# -- targets -----------------------------------------------------------------

def _median(version: dict, name: str) -> float | None:
    fig = version.get("figures", {}).get(name)
    return fig["summary"]["median"] if fig else None


def targets(version: dict) -> list[dict]:
    """The issues' targets, checked against one version's figures (None: not measured)."""
    ratio = (version.get("peer") or {}).get("ratio")

    def t(name, value, limit, op):
        met = None if value is None else (value <= limit if op == "<=" else value >= limit)
        return {"target": name, "value": value, "limit": limit, "op": op, "met": met}
    return [
        t("node image build, warm", _median(version, "node_image_warm"), TARGET_WARM_BUILD_S, "<="),
        t("cluster creation", _median(version, "cluster_create"), TARGET_CLUSTER_S, "<="),
        t("suite, scheduler", _median(version, "suite_scheduler"), TARGET_SUITE_S, "<="),
        t("upstream e2e Security Context / suite", ratio, TARGET_PEER_RATIO, ">="),
        t("upstream e2e / suite, default runtime only",
          (version.get("peer") or {}).get("ratio_default_runtime"),
          TARGET_DEFAULT_RUNTIME_RATIO, ">="),
        t("whole suite / (true floor + set-up)", (version.get("peer") or {}).get("over_true_floor"),
          TARGET_OVER_TRUE_FLOOR, "<="),
    ]


# -- the table ---------------------------------------------------------------

def fmt_s(v: float | None) -> str:
    return "–" if v is None else f"{v:.1f} s"


def fmt_mb(kb: float | None) -> str:
    return "–" if kb is None else f"{kb / 1024:.0f} MB"


def _mark(met: bool | None) -> str:
    return {True: "✓", False: "✗", None: "–"}[met]


def _tests(fig: dict) -> str:
    """"74: 70 passed, 4 skipped" of the last run that has counts."""
    for run in reversed(fig["runs"]):
        c = run.get("counts")
        if c:
            parts = [f"{c[k]} {k}" for k in ("passed", "failed", "error", "skipped") if c.get(k)]
            total = c.get("tests") or sum(c.get(k, 0) for k in ("passed", "failed", "error", "skipped"))
            return f"{total}: " + ", ".join(parts)
    return ""


def _failures(fig: dict) -> str:
    bad = [r for r in fig["runs"] if r.get("status") not in ("ok",)]
    if not bad:
        return ""
    kinds: dict[str, int] = {}
    for r in bad:
        kinds[r.get("status", "?")] = kinds.get(r.get("status", "?"), 0) + 1
    return "; ".join(f"{n}× {k}" for k, n in kinds.items())


def _summary_cells(s: dict, fmt=fmt_s) -> list[str]:
    return [fmt(s["median"]), fmt(s["min"]), fmt(s["max"]), str(s["n"])]


def _md(rows: list[list[str]], header: list[str], align: str) -> list[str]:
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def render_table(result: dict, top: int = 10) -> str:
    """The short Markdown table printed at the end and written to table.md."""
    opts = result.get("options", {})
    host = result.get("host", {})
    out = [f"# secctx benchmark — {result.get('started_at', '?')}",
           "",
           f"{host.get('cpus', '?')} CPUs, {host.get('kernel', '?')}; median/min/max of "
           f"--repeat {opts.get('repeat', '?')}; cluster `{result.get('cluster_name', '?')}`."
           + (" Interrupted: figures are partial." if result.get("interrupted") else ""),
           ""]
    rows = []
    notes = []
    for v, ver in result.get("versions", {}).items():
        state = ver.get("node_image", {})
        if state.get("state") != "built" and not ver.get("figures"):
            notes.append(f"{v}: node image {state.get('state', '?')}"
                         + (f" ({state['detail']})" if state.get("detail") else ""))
            continue
        for name, label in FIGURES.items():
            fig = ver.get("figures", {}).get(name)
            if not fig:
                continue
            extra = [x for x in (_tests(fig) if name.startswith(("suite", "e2e")) else "",
                                 _failures(fig)) if x]
            rows.append([label, v, *_summary_cells(fig["summary"]), "; ".join(extra)])
        sp = ver.get("speedup")
        if sp:
            pairs = sp["pairs"]
            rows.append(["speed-up serial / scheduler", v,
                         "–" if sp["ratio"] is None else f"{sp['ratio']:.2f}×",
                         "–" if pairs["min"] is None else f"{pairs['min']:.2f}×",
                         "–" if pairs["max"] is None else f"{pairs['max']:.2f}×",
                         str(pairs["n"]), "ratio of medians; min/max of interleaved pairs"])
        pr = ver.get("peer")
        if pr and pr.get("ratio"):
            specs = pr.get("e2e_specs") or {}
            tests = pr.get("suite_tests") or {}
            rows.append(["upstream e2e / suite (scheduler)", v, f"{pr['ratio']:.2f}×", "", "", "",
                         f"e2e: {specs.get('tests', '?')} specs ({specs.get('passed', '?')} "
                         f"passed) in {fmt_s(pr['e2e_s'])}; suite: {tests.get('tests', '?')} "
                         f"tests, {pr.get('suite_checks') or '?'} field checks in "
                         f"{fmt_s(pr['suite_s'])}"])
        if pr and pr.get("ratio_default_runtime"):
            specs = pr.get("e2e_specs") or {}
            tests = pr.get("default_runtime_tests") or {}
            rows.append(["upstream e2e / suite (default runtime only)", v,
                         f"{pr['ratio_default_runtime']:.2f}×", "", "", "",
                         f"the same runtime as e2e: {tests.get('tests', '?')} tests in "
                         f"{fmt_s(pr['default_runtime_s'])}; e2e: {specs.get('tests', '?')} "
                         f"specs in {fmt_s(pr['e2e_s'])}"])
        if pr and pr.get("suite_over_floor_wall_s") is not None:
            rows.append(["suite (scheduler) over the floor", v,
                         fmt_s(pr["suite_over_floor_wall_s"]), "", "", "",
                         f"suite {fmt_s(pr['suite_s'])} − floor with set-up "
                         f"{fmt_s(pr['floor_wall_s'])} (pods alone {fmt_s(pr['floor_s'])})"])
        if pr and pr.get("over_true_floor") is not None:
            rows.append(["whole suite (scheduler) / true floor with set-up", v,
                         f"{pr['over_true_floor']:.2f}×", "", "", "",
                         f"suite {fmt_s(pr['suite_s'])}; true floor with set-up "
                         f"{fmt_s(pr['true_floor_wall_s'])} (pods alone "
                         f"{fmt_s(pr['true_floor_s'])})"])
        tf = [r for r in (ver.get("figures", {}).get("true_floor") or {}).get("runs", [])
              if r.get("counted")]
        if tf:
            last = tf[-1]
            rows.append(["true floor: the tail", v, "", "", "", str(len(tf)),
                         f"last run: {last['pods']} pods of {last['cases']} cases in "
                         f"{last['namespaces']} namespaces; sandbox ready "
                         f"{last['sandbox_ready_s']}, settled {last['settled_s']}; "
                         f"{last['sandbox_failures']} failed sandbox creations "
                         f"({'; '.join(m[:120] for m in last['failure_messages']) or 'none'}); "
                         f"{last['late']} late"])
        for name, label in (("suite_serial", "serial"), ("suite_scheduler", "scheduler"),
                            ("suite_parallel", "-n auto")):
            fig = ver.get("figures", {}).get(name)
            if not fig:
                continue
            runs = [r for r in fig["runs"] if r.get("counted")]
            largest = summarize(r.get("max_rss_kb") for r in runs)
            tree = summarize(r.get("tree_rss_peak_kb") for r in runs)
            if largest["n"]:
                rows.append([f"peak RSS, {label}: largest process", v,
                             *_summary_cells(largest, fmt_mb), "getrusage of the pytest tree"])
            if tree["n"]:
                rows.append([f"peak RSS, {label}: whole process tree", v,
                             *_summary_cells(tree, fmt_mb), "sampled every 0.5 s"])
    out += _md(rows, ["figure", "version", "median", "min", "max", "n", "notes"], "llrrrrl")
    if notes:
        out += ["", "Not measured: " + "; ".join(notes) + "."]

    primary = result.get("primary_version")
    tgts = result.get("targets") or []
    if tgts:
        out += ["", f"Targets ({primary}):", ""]
        trows = []
        for t in tgts:
            unit = "×" if t["op"] == ">=" else " s"
            value = "–" if t["value"] is None else (
                f"{t['value']:.2f}×" if unit == "×" else fmt_s(t["value"]))
            limit = f"{t['limit']:g}{unit}"
            trows.append([t["target"], f"{'≤' if t['op'] == '<=' else '≥'} {limit}", value,
                          _mark(t["met"])])
        out += _md(trows, ["target", "limit", "median", "met"], "lllr")

    versions = result.get("versions", {})
    if len(versions) > 1:
        out += ["", "Per Kubernetes version (median, min–max):", ""]
        vrows = []
        for v, ver in versions.items():
            figs = ver.get("figures", {})

            def cell(name):
                fig = figs.get(name)
                if not fig or not fig["summary"]["n"]:
                    return "–" if not fig else "failed"
                s = fig["summary"]
                return f"{fmt_s(s['median'])} ({s['min']:.1f}–{s['max']:.1f})"
            vrows.append([v, ver.get("node_image", {}).get("state", "?"),
                          cell("node_image_warm"), cell("cluster_create"), cell("suite_serial"),
                          _tests(figs["suite_serial"]) if "suite_serial" in figs else "–"])
        out += _md(vrows, ["version", "node image", "build, warm", "cluster creation",
                           "suite, serial", "tests"], "llrrrl")

    cases = (versions.get(primary) or {}).get("cases") or []
    case_rows = [c for c in cases if c["apply_to_verdict"]["n"]]
    if case_rows:
        slow = flagged(case_rows)
        shown = case_rows[:top] + [c for c in slow if c not in case_rows[:top]]
        out += ["", f"Per case ({primary}, serial runs; {len(case_rows)} cases, "
                    f"{len(slow)} over {SLOW_CASE_S:g} s apply→verdict; slowest {len(shown)} "
                    "shown, all in result.json):", ""]
        crows = [[c["case"], fmt_s(c["apply_to_ready"]["median"]),
                  fmt_s(c["observation"]["median"]), fmt_s(c["cleanup"]["median"]),
                  fmt_s(c["apply_to_verdict"]["median"]),
                  f"> {SLOW_CASE_S:g} s" if c["over_threshold"] else ""] for c in shown]
        out += _md(crows, ["case", "apply→ready", "observation", "cleanup", "apply→verdict",
                           "flag"], "lrrrrl")
    if result.get("errors"):
        out += ["", "Harness errors: " + "; ".join(result["errors"])]
    return "\n".join(out) + "\n"
