"""The plugin's side of the observation document: collect, write, compare.

Each pytest process keeps one `observations.Collector` on its config; the suite
fixture hands it to the `Suite` (`attach`), and tests record into
`suite.observations`. At the end of the session:

- a pytest-xdist worker (its config has `workerinput`) sends its partial document
  to the controller in `workeroutput` (execnet carries plain data);
- the controller (or a run without xdist) merges what it received
  (`pytest_testnodedown`) with its own, writes `--secctx-observations FILE` (default
  `reports/observations.json` under the invocation directory), and with
  `--secctx-compare-to FILE` writes the diff next to it and prints a summary.

A session that observed nothing (unit tests, a run that failed before the
cluster) writes nothing.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .. import observations

if TYPE_CHECKING:  # the run's Suite records here; the run imports this module
    from ..run.session import Suite

DEFAULT_PATH = Path("reports") / "observations.json"
WORKER_OUTPUT = "secctx_observations"
_COLLECTOR = pytest.StashKey[observations.Collector]()


def collector(config: pytest.Config) -> observations.Collector:
    return config.stash.setdefault(_COLLECTOR, observations.Collector())


def attach(config: pytest.Config, suite: Suite) -> None:
    """Give the session's Suite this process's collector, with the run's environment."""
    c = collector(config)
    c.environment = observations.environment(suite.env.properties())
    suite.observations = c


def observations_path(config: pytest.Config) -> Path:
    return Path(config.invocation_params.dir) / (config.getoption("observations") or DEFAULT_PATH)


def baseline_problem(path: Path | None) -> str | None:
    """Why --secctx-compare-to FILE cannot be used (cause and fix), or None."""
    if path is None:
        return None
    try:
        observations.load(path)
    except observations.DocumentError as err:
        return f"--secctx-compare-to {err}"
    return None


def finish(c: observations.Collector, path: Path, baseline: Path | None,
           failed: set[str] = frozenset()) -> list[str]:
    """Write the document (and the diff with the baseline); the lines to print. `failed`:
    the case keys whose test failed (a runtime's difference there was not promised)."""
    return conclude(c, path, baseline, failed)[0]


def conclude(c: observations.Collector, path: Path, baseline: Path | None,
             failed: set[str] = frozenset()) -> tuple[list[str], list | None]:
    """`finish`, and the changes against the baseline (None: nothing was compared), which
    --secctx-fail-on-regression gates on (secctx.report.summary)."""
    if not c.observed_anything():
        return [f"nothing observed in this run (no end-to-end test reached the cluster): nothing "
                f"compared with {baseline}"] if baseline else [], None
    doc = c.document()
    if not doc["cases"] and not doc["admission"]:  # the floor, a run of cluster tests only
        return [f"no case observed in this run (only the environment): {path} not written, "
                "it keeps the last run's observations"
                + (f"; nothing compared with {baseline}" if baseline else "")], None
    lines = [f"observations of {doc['label']} ({len(doc['cases'])} case(s), "
             f"{len(doc['admission'])} manifest(s) under admission) written to {path}"]
    problems = observations.validation_errors(doc)
    if problems:
        lines.append(f"WARNING: the document does not match its schema: {problems[0]}")
    observations.write(path, doc)
    for runtime, changes in observations.runtime_differences(doc).items():
        lines += runtime_lines(runtime, changes, failed)
    if baseline:
        try:
            old = observations.load(baseline)
        except observations.DocumentError as err:
            return [*lines, f"INFRASTRUCTURE: --secctx-compare-to {err}"], None
        changes, text, diff_file = observations.compare(old, doc, path)
        lines += [f"compared with {baseline}:", *text.splitlines(), f"diff written to {diff_file} "
                  f"(summary: {observations.diff_path(path, '.diff.txt').name})"]
        return lines, changes
    return lines, None


def runtime_lines(runtime: str, changes: list, failed: set[str]) -> list[str]:
    """What a runtime shows differently from the default, case by case: each difference is
    either what Kubernetes promises for that runtime's own facts (the oracle predicted it
    from them: the case's test under the runtime passed) or not (its test failed)."""
    cases = observations.by_case(changes)
    gaps = {k for k in cases if f"{k}@{runtime}" in failed}
    lines = [f"under RuntimeClass {runtime}, against the default runtime: "
             + (f"{len(changes)} field(s) differ in {len(cases)} case(s): "
                f"{len(cases) - len(gaps)} as Kubernetes promises for {runtime}'s own facts, "
                f"{len(gaps)} not (the test failed)" if changes else "no field differs")]
    return lines + observations.case_lines(
        changes, lambda case: "NOT PROMISED: its test failed (an enforcement gap, or the runtime "
                              "reports it differently)" if case in gaps else
                              f"as promised: the oracle predicted it from {runtime}'s facts",
        name=lambda case: f"{case}@{runtime}")


class Recorder:
    """Registered by the plugin's pytest_configure."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.lines: list[str] = []
        self.failed: set[str] = set()  # case keys (test parameter ids) whose test failed
        self.changes: list | None = None  # against --secctx-compare-to; None: nothing compared

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:  # also the workers' reports, under xdist
        if report.failed and "[" in report.nodeid:
            self.failed.add(report.nodeid.split("[", 1)[1].rstrip("]"))

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object) -> None:  # pytest-xdist, in the controller
        part = getattr(node, "workeroutput", {}).get(WORKER_OUTPUT)
        if part:
            collector(self.config).parts.append(part)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        c = collector(self.config)
        if hasattr(self.config, "workerinput"):  # an xdist worker: the controller writes
            if c.observed_anything():
                self.config.workeroutput[WORKER_OUTPUT] = c.own_document()
            return
        self.lines, self.changes = conclude(c, observations_path(self.config),
                                            self.config.getoption("compare_to"), self.failed)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.lines:
            terminalreporter.write_sep("-", "observations")
            for line in self.lines:
                terminalreporter.write_line(line)
