"""The verdict to gate on: reports/summary.json, the JUnit properties, the exit code.

Per test the file holds its node id, case, runtime (RuntimeClass) and storage
variant, status, category (secctx.core.categories), each failed check of the verdict
with field, expected and observed, and the upstream e2e specs it corresponds to
(its case file's `upstream:` list, and for each failed check the specs that
check its field, secctx.report.upstream); then the totals, counted as pytest's JUnit
XML counts them, and the exit code (secctx.core.exitcodes) the run ends with. Format: schema/summary.schema.json; see
docs/summary.md.

The same case, runtime, storage, category and upstream names are JUnit
properties of the test (`user_properties`), for CI test reporters to group by.

The Gate plugin is registered by the plugin's pytest_configure. On a pytest-xdist
worker it only labels the reports (plain data, carried to the controller); the
controller, or a run without xdist, writes the file and sets the exit code.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from .. import observations
from ..core import exitcodes
from ..core.categories import category
from ..core.errors import STOPPED
from . import upstream

DEFAULT_PATH = Path("reports") / "summary.json"
SCHEMA_VERSION = 1
MESSAGE_LIMIT = 4000  # characters of a failure message kept (the verdict's table of failed checks fits)
_CHECKS = pytest.StashKey[list]()
_LABELS = pytest.StashKey[dict]()


class SummaryError(Exception):
    """A summary file that cannot be read or is not valid; the message says why and the fix."""


def record_checks(item: pytest.Item, checks: list) -> None:
    """The verdict's checks (secctx.verdict.Check) of the test `item` runs: its failed checks
    and the upstream specs of their fields go to its report."""
    item.stash[_CHECKS] = list(checks)


# --- the file ------------------------------------------------------------------

@cache
def schema() -> dict:
    return json.loads(resources.files("secctx").joinpath("schema/summary.schema.json").read_text())


def validation_errors(doc: Any) -> list[str]:
    """Each way `doc` breaks the schema, as `path: message`; empty when valid."""
    return observations.schema_errors(schema(), doc)


def load(path: Path) -> dict:
    """A valid summary document from `path` (what a run wrote), or SummaryError."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise SummaryError(f"{path} cannot be read as JSON ({err}): pass the summary file a run "
                           f"wrote (default {DEFAULT_PATH})") from None
    errors = validation_errors(doc)
    if errors:
        raise SummaryError(f"{path} is not a valid summary file ({errors[0]}): make it again with "
                           "this suite (schema: secctx/schema/summary.schema.json)")
    return doc


def summary_path(config) -> Path:
    return Path(config.invocation_params.dir) / (config.getoption("summary") or DEFAULT_PATH)


def path_problem(path: Path | None) -> str | None:
    """Why --secctx-summary FILE cannot be written (cause and fix), or None."""
    if path is not None and Path(path).is_dir():
        return f"--secctx-summary {path} is a directory: pass the path of a file (e.g. {path}/summary.json)"
    return None


# --- one test's entry -----------------------------------------------------------

def plain(value: Any) -> Any:
    """A check's value as JSON: tuples and sets as lists, anything else unknown as its repr."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted(plain(v) for v in value)
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    return repr(value)


def _spec(spec) -> dict:
    return {"name": spec.name, "url": spec.url}


def failed_check(check) -> dict:
    return {"field": check.field, "expected": plain(check.expected),
            "observed": plain(check.observed), "reason": check.reason, "line": check.line(),
            "upstream": [_spec(s) for s in upstream.for_field(check.field)]}


def labels(item: pytest.Item) -> dict:
    """What the test is about, known at collection: the case, runtime and storage of a
    recipe-case test (plugin.CaseParam) and its case file's upstream specs."""
    if _LABELS not in item.stash:
        # plugin.RECIPE_CASE (the plugin imports this module, not the other way round)
        param = getattr(getattr(item, "callspec", None), "params", {}).get("secctx_recipe_case")
        item.stash[_LABELS] = {"case": None, "runtime": None, "storage": None, "upstream": []} \
            if param is None else {"case": param.case.name, "runtime": param.runtime,
                                   "storage": param.storage,
                                   "upstream": [{"name": u.name, "url": u.url}
                                                for u in param.case.upstream]}
    return item.stash[_LABELS]


def _message(rep, call) -> str:
    if hasattr(rep, "wasxfail"):
        text = f"xfail: {rep.wasxfail}" if rep.skipped else rep.longreprtext
    elif call.excinfo is not None:
        text = call.excinfo.exconly()  # as Allure has it: "Failed: NOT ENFORCED: ...", "RunStopped: ..."
    else:
        text = rep.longreprtext
    return text if len(text) <= MESSAGE_LIMIT else text[:MESSAGE_LIMIT - 1] + "…"


def _status(rep) -> str:
    if rep.skipped:
        return "skipped"
    if rep.failed:
        return "failed" if rep.when == "call" else "error"
    return "passed"


@dataclass
class Entry:
    """One test as the summary shows it, built from its reports in order."""
    nodeid: str
    labels: dict
    status: str = "passed"
    phase: str = "call"
    category: str | None = None
    message: str | None = None
    failed_checks: list = field(default_factory=list)
    upstream: list = field(default_factory=list)
    duration: float = 0.0
    teardown_error: dict | None = None
    seen: set = field(default_factory=set)  # the phases reported

    def add(self, when: str, status: str, info: dict, duration: float) -> None:
        self.seen.add(when)
        self.duration += duration
        known = {s["name"] for s in self.upstream}  # each phase's, once (a failure adds some)
        self.upstream += [s for s in info.get("upstream", []) if s["name"] not in known]
        if status == "passed":
            return
        failure = {"category": info.get("category"), "message": info.get("message")}
        if when == "teardown" and self.status != "passed":  # JUnit: a second error, same test
            self.teardown_error = failure
            return
        self.status, self.phase = status, when
        self.category, self.message = failure["category"], failure["message"]
        self.failed_checks = info.get("failed_checks", [])

    def failing_categories(self) -> list[str]:
        return ([self.category] if self.status in ("failed", "error") else []) + \
            ([self.teardown_error["category"]] if self.teardown_error else [])

    def to_dict(self) -> dict:
        doc = {"nodeid": self.nodeid, **{k: self.labels.get(k) for k in ("case", "runtime", "storage")},
               "status": self.status, "phase": self.phase, "category": self.category,
               "message": self.message, "failed_checks": self.failed_checks,
               "upstream": self.upstream, "duration": round(self.duration, 3)}
        if self.teardown_error:
            doc["teardown_error"] = self.teardown_error
        return doc


def totals(entries: list[Entry]) -> dict[str, int]:
    """As pytest's JUnit XML counts: a setup or teardown error is an error, a test that
    failed and then errored at teardown counts as two tests (two testcase elements), a
    skipped test with a teardown error is skipped and an error."""
    by = {s: sum(e.status == s for e in entries) for s in ("passed", "failed", "error", "skipped")}
    teardown = sum(e.teardown_error is not None for e in entries)
    return {"tests": len(entries) + sum(e.status == "failed" and e.teardown_error is not None
                                        for e in entries),
            "passed": by["passed"], "failed": by["failed"], "errors": by["error"] + teardown,
            "skipped": by["skipped"]}


def document(entries: list[Entry], code: int, comparison: dict | None,
             problem: str | None = None) -> dict:
    return {"schema_version": SCHEMA_VERSION,
            "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "exit": {"code": code, "meaning": exitcodes.MEANING[code]}, "problem": problem,
            "totals": totals(entries), "comparison": comparison,
            "tests": [e.to_dict() for e in entries]}


def write_bad_input(config, line: str, writes: bool) -> None:
    """The file of a run that ends with exit 4 at its options (the line says cause and
    fix), so that a gate reading it never reads an earlier run's verdict. Not when
    --secctx-summary itself is the problem, nor outside a run of the suite."""
    path = summary_path(config)
    if writes and not path_problem(config.getoption("summary")):
        observations.write(path, document([], exitcodes.BAD_INPUT, None, line))


def comparison(baseline: Path | None, changes: list | None, fail_on_regression: bool) -> dict | None:
    """What --secctx-compare-to found (None without it); `changes` None: nothing was compared."""
    if baseline is None:
        return None
    regressed = [c for c in changes or [] if c.kind == observations.REGRESSION]
    return {"baseline": str(baseline), "compared": changes is not None,
            "counts": observations.counts(changes or []), "fail_on_regression": fail_on_regression,
            "regressions": [{"case": c.case, "container": c.container, "field": c.field,
                             "rule": c.rule, "change": observations.format_change(c, limit=400)}
                            for c in regressed]}


# --- the plugin ------------------------------------------------------------------

class Gate:
    def __init__(self, config, writes: bool):
        """`writes`: the run writes the file (a run of the suite, or --secctx-summary): the unit
        tests of this checkout write none."""
        self.config = config
        self.writes = writes
        self.entries: dict[str, Entry] = {}
        self.lines: list[str] = []

    # Labels: at collection (where the items are), and on each report.
    def pytest_collection_modifyitems(self, items):
        for item in items:
            info = labels(item)
            for name in ("case", "runtime", "storage"):
                if info[name] is not None:
                    item.user_properties.append((name, info[name]))
            for spec in info["upstream"]:
                item.user_properties.append(("upstream", spec["name"]))

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        rep = (yield).get_result()
        info = {"upstream": list(labels(item)["upstream"])}
        status = _status(rep)
        if status != "passed":
            info["message"] = _message(rep, call)
            info["category"] = category(status, info["message"])
            info["failed_checks"] = [failed_check(c) for c in item.stash.get(_CHECKS, [])
                                     if not c.ok]
            # Who filters by an upstream spec finds the tests failing what it checks.
            known = {s["name"] for s in info["upstream"]}
            for check in info["failed_checks"]:
                for spec in check["upstream"]:
                    if spec["name"] not in known:
                        known.add(spec["name"])
                        info["upstream"].append(spec)
        new = [("upstream", s["name"]) for s in info["upstream"]
               if ("upstream", s["name"]) not in item.user_properties]
        if status != "passed" and not any(k == "category" for k, _ in item.user_properties):
            new.append(("category", info["category"]))
        # JUnit reads the teardown report's properties, copied from the item's when it was made.
        item.user_properties.extend(new)
        rep.user_properties.extend(p for p in new if p not in rep.user_properties)
        rep.secctx = {**labels(item), **info}  # plain data: pytest-xdist carries it

    def pytest_runtest_logreport(self, report):  # the workers' reports too, in the controller
        info = getattr(report, "secctx", None)
        if info is None:  # a report no item made here (pytest-xdist's of a crashed worker)
            status = _status(report)
            message = report.longreprtext[:MESSAGE_LIMIT] if status != "passed" else None
            info = {"message": message, "category": category(status, message or "")}
        entry = self.entries.get(report.nodeid)
        if entry is None or (report.when == "setup" and "setup" in entry.seen):  # a rerun
            entry = self.entries[report.nodeid] = Entry(report.nodeid, info)
        # A crashed xdist worker's report says when="???" (JUnit: an error of the test).
        when = report.when if report.when in ("setup", "teardown") else "call"
        entry.add(when, _status(report), info, getattr(report, "duration", 0.0))

    def pytest_collectreport(self, report):
        if report.passed:
            return
        status = "skipped" if report.skipped else "error"
        message = report.longreprtext[:MESSAGE_LIMIT]
        entry = self.entries[report.nodeid] = Entry(report.nodeid, {})
        entry.add("collect", status, {"message": message, "category": category(status, message)}, 0.0)
        entry.phase = "collect"

    @pytest.hookimpl(trylast=True)  # after the observations (secctx.observations.recording) are compared
    def pytest_sessionfinish(self, session, exitstatus):
        if hasattr(self.config, "workerinput"):  # an xdist worker: the controller decides
            return
        get = self.config.getoption
        recorder = self.config.pluginmanager.getplugin("secctx-observations")
        changes = getattr(recorder, "changes", None)
        entries = list(self.entries.values())
        regressions = sum(c.kind == observations.REGRESSION for c in changes or [])
        pytest_code = int(exitstatus)
        dsession = self.config.pluginmanager.getplugin("dsession")
        if pytest_code == exitcodes.INTERRUPTED and getattr(dsession, "shouldstop", None) == STOPPED:
            # pytest-xdist ends a run a worker stopped (our RunStopped, as -x) as interrupted;
            # without xdist the same run ends 1: decide from that.
            pytest_code = exitcodes.NOT_ENFORCED
        code = exitcodes.decide(pytest_code, [c for e in entries for c in e.failing_categories()],
                                regressions, bool(get("fail_on_regression")))
        session.exitstatus = code  # pytest returns it as the last sessionfinish left it
        if code != int(exitstatus):
            self.lines.append(f"exit code {code} (not pytest's {int(exitstatus)}): "
                              f"{exitcodes.MEANING[code]}")
        if not self.writes:
            return
        doc = document(entries, code, comparison(get("compare_to"), changes,
                                                 bool(get("fail_on_regression"))))
        path = summary_path(self.config)
        problems = validation_errors(doc)
        if problems:
            self.lines.append(f"WARNING: the summary does not match its schema: {problems[0]}")
        observations.write(path, doc)
        t = doc["totals"]
        self.lines.insert(0, f"{t['tests']} test(s): {t['passed']} passed, {t['failed']} failed, "
                             f"{t['errors']} error(s), {t['skipped']} skipped; exit code {code}; "
                             f"written to {path}")

    def pytest_terminal_summary(self, terminalreporter):
        if self.lines:
            terminalreporter.write_sep("-", "verdict")
            for line in self.lines:
                terminalreporter.write_line(line)
