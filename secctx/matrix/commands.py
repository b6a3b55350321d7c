"""The commands of `python -m secctx.matrix` (see secctx.matrix): `compare`, and `run`,
which runs the suite once per version and builds one HTML report of all of them.

Apart from the matrix itself because `run` uses secctx.report.html, which uses the
matrix's report pages: the matrix stays below the report, this module above it.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .. import observations as obs
from ..core import paths
from ..report import html as htmlreport
from . import DEFAULT_OUT, DEFAULT_REPORT_URL, compare
from . import __doc__ as MATRIX_DOC


def suite_arg() -> str:
    """The suite as `pytest` should be given it: `suites` in a checkout, else the package's."""
    try:
        return str(paths.SUITES.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(paths.SUITES)


def pytest_command(version: str, out: Path, pytest_args: Sequence[str] = (),
                   python: str = sys.executable) -> list[str]:
    """The suite's command line for one version of `run`."""
    out = Path(out)
    return [python, "-m", "pytest", suite_arg(), "--secctx-kubernetes-version", version,
            "--secctx-observations", str(out / f"{version}.json"),
            "--alluredir", str(out / "allure-results" / version), "--clean-alluredir",
            *pytest_args]


@dataclass
class VersionRun:
    version: str
    command: list[str]
    returncode: int
    seconds: float
    observations: Path | None  # None: the run wrote none (it failed before the cluster)


def run_versions(versions: Sequence[str], out: Path, pytest_args: Sequence[str] = (),
                 execute: Callable[[list[str]], int] | None = None) -> list[VersionRun]:
    """Run the suite for each version in turn; `execute` runs one command line (tests pass a fake)."""
    # Direct, not run_command.run: a whole suite run whose output is the user's terminal,
    # bounded by its own per-test and set-up timeouts; only its exit code is wanted.
    execute = execute or (lambda cmd: subprocess.run(cmd).returncode)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    done = []
    for version in versions:
        target = out / f"{version}.json"
        target.unlink(missing_ok=True)  # a failed run must not leave an older file to compare
        cmd = pytest_command(version, out, pytest_args)
        print(f"matrix: {version}: {' '.join(cmd)}", file=sys.stderr, flush=True)
        start = time.monotonic()
        code = execute(cmd)
        seconds = time.monotonic() - start
        done.append(VersionRun(version, cmd, code, seconds, target if target.is_file() else None))
        print(f"matrix: {version}: exit {code} in {seconds:.0f}s"
              + ("" if target.is_file() else " (no observation file)"), file=sys.stderr, flush=True)
    (out / "runs.json").write_text(json.dumps(
        [{"version": r.version, "command": r.command, "exit_code": r.returncode,
          "seconds": round(r.seconds, 1), "observations": str(r.observations) if r.observations else None}
         for r in done], indent=1) + "\n")
    return done


def _run_command(args, pytest_args: list[str]) -> int:
    out = Path(args.out)
    done = run_versions(args.versions, out, pytest_args)
    files = [r.observations for r in done if r.observations]
    results = [out / "allure-results" / r.version for r in done if r.observations]
    report_url = args.report_url
    if not args.no_report and results:
        try:
            htmlreport.generate(results, out / "html", name="Pod Security Context: version matrix")
            report_url = report_url or "html/index.html"
        except htmlreport.ReportError as err:
            print(f"matrix: no Allure report: {err}", file=sys.stderr)
    if files:
        written = compare(files, out, report_url or DEFAULT_REPORT_URL, results)
        with written["summary"].open("a") as f:
            f.write("runs: " + ", ".join(f"{r.version} exit {r.returncode} in {r.seconds:.0f}s"
                                         for r in done) +
                    f"; total {sum(r.seconds for r in done):.0f}s\n")
        print(written["summary"].read_text(), end="")
        print(f"matrix: {written['html']}", file=sys.stderr)
    else:
        print("matrix: no run wrote observations; nothing to compare", file=sys.stderr)
    return 0 if all(r.returncode == 0 for r in done) and files else 1


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m secctx.matrix", description=MATRIX_DOC.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("compare", help="compare observation files (oldest first)")
    c.add_argument("files", nargs="+", type=Path, metavar="FILE")
    c.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output directory ({DEFAULT_OUT})")
    c.add_argument("--report-url", default=DEFAULT_REPORT_URL,
                   help="the Allure report's index.html, as matrix.html should link to it")
    c.add_argument("--results", type=Path, action="append", default=[], metavar="DIR",
                   help="allure-results directory of the runs (repeatable): one per FILE, in "
                        "order, or any number matched by Kubernetes version")
    c.add_argument("--fail-on-regression", action="store_true",
                   help="exit 3 when any adjacent pair has a regression")
    r = sub.add_parser("run", help="run the suite per version, then compare",
                       description="Arguments after -- (and options this command does not know) "
                                   "go to pytest.")
    r.add_argument("--versions", nargs="+", required=True, metavar="V")
    r.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output directory ({DEFAULT_OUT})")
    r.add_argument("--report-url", default=None,
                   help="link target for the cells (default: the report built into OUT/html)")
    r.add_argument("--no-report", action="store_true", help="do not build the Allure report")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    after = []
    if "--" in argv:
        at = argv.index("--")
        argv, after = argv[:at], argv[at + 1:]
    args, unknown = parser().parse_known_args(argv)
    try:
        if args.command == "run":
            return _run_command(args, [*unknown, *after])
        if unknown or after:
            parser().error(f"unrecognized arguments: {' '.join(unknown + after)}")
        written = compare(args.files, args.out, args.report_url, args.results)
    except obs.DocumentError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(written["summary"].read_text(), end="")
    print(f"matrix: {written['html']}", file=sys.stderr)
    if args.fail_on_regression:
        pairs = json.loads(written["diff"].read_text())["pairs"]
        if any(p["counts"][obs.REGRESSION] for p in pairs):
            return 3
    return 0


