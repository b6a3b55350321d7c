"""Offline HTML report from Allure results, with the pinned Allure 3 CLI (npm, no Java).

    python -m secctx.report.html --results reports/allure-results --out reports/html \
        [--multi-file] [--history reports/history.jsonl] [--name "..."] \
        [--matrix reports/matrix] [--diff reports/observations.diff.json]

The `allure` npm package is pinned in secctx/allure/package.json and its
package-lock.json (package data, found with importlib.resources); the first use
installs it with `npm ci` into the cache ($SECCTX_CACHE/tools/allure-<lock digest>,
outside the package, which may be read-only), where every checkout and venv finds
it. The report is the Awesome plugin's: one self-contained index.html that opens from disk or mail (the
default, --single-file), or with --multi-file a directory (index.html + data/) that
loads only over HTTP (opened from disk, Allure's app shows a spinner).

Its first page is the verdict (secctx.report.verdictpage): a grid of securityContext field
by runtime, each cell enforced / NOT ENFORCED / cannot be enforced here / not
available in this version, opening to the failed checks and links to the tests,
placed above Allure's own page in index.html. It is plain HTML, so it reads even
where Allure's app does not start.

History: Allure appends one line per run to the history file (JSON lines) and
reads it back for trends, new/fixed transitions and flaky marking, so a job that
carries the file between runs (CI cache) gets a report with history. The file is
updated only when the report is made, and keeps the last --history-limit runs.

Observations: --matrix DIR (what `python -m secctx.matrix compare` wrote) and --diff
FILE (what --secctx-compare-to wrote) become pages beside index.html (matrix.html,
baseline-diff.html) whose cells link to the report's tests, and a line of links above
the report's page leads to them, saying what changed ("1 regression"); with
--single-file they are the files beside the one index.html. Allure 3 (3.18)
has no place for such a link: it shows the executor's, the CI's and a test's links only
when they are absolute http(s) URLs, and HTML (attachments, descriptions) only in
sandboxed frames that cannot navigate the page; a synthetic test holding the matrix
would also count in the totals, trends and history.

The generated page would load Google Analytics (Allure 3 adds it unconditionally);
that tag is removed, so the report makes no request outside the report itself.

Standard library only, so a CI job can run it without installing the project.
Errors a user can fix end with one line (cause and fix) and exit code 2.
"""
from __future__ import annotations

import argparse
import fcntl
import hashlib
import html
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from ..core import cache, paths, run_command
from ..core.run_command import CommandError
from ..offline import log  # (standard library only too)
from . import verdictpage  # standard library only, like this module

PINS = paths.ALLURE_PINS  # package.json, package-lock.json
DEFAULT_NAME = "Pod Security Context conformance"
DEFAULT_HISTORY_LIMIT = 30
NPM_TIMEOUT = int(os.environ.get("SECCTX_NPM_TIMEOUT", "600"))
GENERATE_TIMEOUT = int(os.environ.get("SECCTX_REPORT_TIMEOUT", "600"))
MIN_NODE_MAJOR = 20

# Allure 3's Awesome template ends with a Google Analytics loader and its config.
_ANALYTICS = re.compile(
    r"\s*<script[^>]*\bsrc=\"https://www\.googletagmanager\.com/[^\"]*\"[^>]*>\s*</script>"
    r"(\s*<script>(?:(?!</script>).)*?\bgtag\((?:(?!</script>).)*?</script>)?",
    re.S,
)
# Any element that would still fetch from outside the report.
_EXTERNAL = re.compile(r"<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)=[\"']?((?:https?:)?//[^\"' >]+)",
                       re.I)


class ReportError(Exception):
    """A failure the user can fix; the message says cause and fix in one line."""


def pinned_version() -> str:
    """The exact `allure` version pinned in secctx/allure/package.json."""
    try:
        spec = json.loads((PINS / "package.json").read_text())["dependencies"]["allure"]
    except (OSError, ValueError, KeyError) as err:
        raise ReportError(f"cannot read the pinned allure version from {PINS / 'package.json'} "
                          f"({err}); reinstall the package (or restore the file from git)") from None
    return spec


def tool_dir() -> Path:
    """Where `npm ci` installs the pinned CLI: one directory per package-lock.json."""
    try:
        lock = (PINS / "package-lock.json").read_bytes()
    except OSError as err:
        raise ReportError(f"cannot read {PINS / 'package-lock.json'} ({err.strerror}); reinstall "
                          "the package (or restore the file from git)") from None
    return cache.path("tools", f"allure-{hashlib.sha256(lock).hexdigest()[:12]}")


def installed_version(directory: Path) -> str | None:
    try:
        return json.loads((directory / "node_modules" / "allure" / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None


def ensure_allure() -> Path:
    """Install the pinned Allure 3 CLI with `npm ci` unless it is already there."""
    want = pinned_version()
    tool = tool_dir()
    allure = tool / "node_modules" / ".bin" / "allure"
    if allure.exists() and installed_version(tool) == want:
        return allure
    _check_node()
    npm = shutil.which("npm")
    if npm is None:
        raise ReportError("npm is not installed; install Node.js 20+ with npm "
                          "(Debian: apt-get install -y nodejs npm) and retry")
    cmd = [npm, "ci", "--prefix", str(tool), "--no-audit", "--no-fund", "--loglevel=error"]
    with _install_lock():
        if allure.exists() and installed_version(tool) == want:  # another process did it
            return allure
        tool.mkdir(parents=True, exist_ok=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(PINS / name, tool / name)
        print(f"installing allure {want} (npm ci --prefix {tool}) ...", file=sys.stderr)
        try:
            _tool(cmd, f"npm ci in {tool}", NPM_TIMEOUT, "check that the npm registry is "
                  "reachable (npm config get registry) or raise SECCTX_NPM_TIMEOUT", cwd=tool)
        except CommandError as err:
            raise ReportError(f"npm ci in {tool} failed: "
                              f"{err.last_line() if err.started else err.problem}; check the npm "
                              "registry access and that package-lock.json matches package.json") \
                from None
    if not allure.exists() or installed_version(tool) != want:
        raise ReportError(f"npm ci did not install allure {want} into {tool / 'node_modules'}; "
                          f"remove that directory and retry")
    return allure


def _categories(dirs: list[Path]) -> list[dict]:
    """The suite's categories.json rules (Allure 2 format), which Allure 3 reads
    from its configuration rather than from the results directory."""
    for d in dirs:
        path = d / "categories.json"
        if path.exists():
            try:
                rules = json.loads(path.read_text())
            except ValueError:
                continue
            return [{k: v for k, v in r.items() if k in ("name", "matchedStatuses", "messageRegex",
                                                         "traceRegex", "flaky")} for r in rules]
    return []


def generate(results: Path | Sequence[Path], out: Path, single_file: bool = True,
             history: Path | None = None, name: str = DEFAULT_NAME,
             history_limit: int = DEFAULT_HISTORY_LIMIT, matrix: Path | None = None,
             diff: Path | None = None) -> Path:
    """Make the HTML report of `results` (one or more allure-results directories) in `out`.

    Returns the report's index.html, the verdict page at its top. `out` is replaced
    whole (only if it is empty or an earlier report). `single_file`: one index.html
    that opens from disk; else index.html and data/, to be served over HTTP. With `history`, that JSON-lines file gives the trend and flaky
    marking and gets this run appended, capped to the last `history_limit` runs.
    `matrix` (a `secctx.matrix compare` output directory) and `diff` (an
    observations.diff.json) add their pages, linked from the top of the report.
    """
    dirs = [Path(results)] if isinstance(results, (str, os.PathLike)) else [Path(r) for r in results]
    if not dirs:
        raise ReportError("no results directory given; pass --results reports/allure-results")
    for d in dirs:
        _check_results(d)
    pages = _observation_pages(dirs, matrix, diff)
    out = Path(out).resolve()
    _check_replaceable(out)
    allure = ensure_allure()
    out.parent.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory(prefix=f".{out.name}.", dir=out.parent) as tmp:
        tmp = Path(tmp)
        staging = tmp / "report"
        config = _allure_config(name, staging, single_file, _categories(dirs))
        work_history = None
        if history is not None:
            history = Path(history).resolve()
            work_history = tmp / "history.jsonl"  # the real file changes only on success
            if history.exists():
                shutil.copyfile(history, work_history)
            config["historyPath"] = str(work_history)
            config["historyLimit"] = history_limit
        (tmp / "allurerc.json").write_text(json.dumps(config, indent=2))
        index = _run_allure(allure, tmp, dirs, staging)
        _make_offline(index)
        try:
            verdictpage.inject(index, dirs, None if single_file else serve_hint(out))
        except ValueError as err:
            raise ReportError(f"cannot put the verdict page into the report ({err}); the pinned "
                              "allure version changed its template, so update "
                              "secctx/report/verdictpage.py") from None
        _add_pages(index, pages)

        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
        if history is not None and work_history.exists():
            history.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(work_history, history)
    return out / "index.html"


def _allure_config(name: str, staging: Path, single_file: bool, categories: list) -> dict:
    config = {
        "name": name,
        "output": str(staging),
        "plugins": {"awesome": {"options": {
            "reportName": name, "singleFile": bool(single_file), "reportLanguage": "en",
            # The tree a platform engineer reads: recipe section, field, manifest.
            "groupBy": ["epic", "feature", "story"],
        }}},
    }
    if categories:
        config["categories"] = {"rules": categories}
    return config


def _run_allure(allure: Path, tmp: Path, dirs: list[Path], staging: Path) -> Path:
    """`allure generate` with tmp/allurerc.json, bounded; the staged index.html."""
    cmd = [str(allure), "generate", "--config", str(tmp / "allurerc.json"),
           *(str(d.resolve()) for d in dirs)]
    env = {**os.environ, "NO_COLOR": "1", "FORCE_COLOR": "0"}
    try:
        proc = _tool(cmd, "allure generate", GENERATE_TIMEOUT, "check the size of the results "
                     "(large attachments) or raise SECCTX_REPORT_TIMEOUT", cwd=tmp, env=env,
                     check=False)
    except CommandError as err:
        raise ReportError(f"cannot run {_rel(allure)} ({err.problem}); remove {allure.parents[1]} "
                          "so it is installed again") from None
    index = staging / "index.html"
    if proc.returncode != 0 or not index.exists():
        raise ReportError(f"allure generate failed (exit {proc.returncode}): "
                          f"{run_command.last_line(proc.stderr or proc.stdout)}; check the results directory and "
                          "rerun with the same command to see the full output")
    return index


def serve_hint(out: Path) -> str:
    """How to read a multi-file report (what its verdict page says when opened from disk)."""
    return (f"The full report below is the multi-file form, which loads only over HTTP: "
            f"python3 -m http.server -d {_rel(out)} 8080, then open http://127.0.0.1:8080/ "
            "(or make it with --single-file, the default, to open it from disk).")


def _make_offline(index: Path) -> None:
    html = index.read_text(encoding="utf-8")
    html = _ANALYTICS.sub("", html)
    left = _EXTERNAL.findall(html)
    if left:
        raise ReportError(f"the generated report still loads {left[0]} from outside; the pinned allure "
                          "version changed its template, so update _ANALYTICS/_EXTERNAL in "
                          "secctx/report/html.py")
    index.write_text(html, encoding="utf-8")


def _observation_pages(dirs: list[Path], matrix: Path | None, diff: Path | None) -> list:
    """The matrix and baseline-diff pages (secctx.matrix.ReportPage), linked to the tests."""
    if matrix is None and diff is None:
        return []
    from .. import matrix as matrix_pages  # standard library only, like this module
    try:
        return ([matrix_pages.matrix_page(Path(matrix), dirs)] if matrix is not None else []) + \
            ([matrix_pages.diff_page(Path(diff), dirs)] if diff is not None else [])
    except matrix_pages.obs.DocumentError as err:
        raise ReportError(str(err)) from None


_PAGES_CSS = (
    "#secctx-pages{display:flex;flex-wrap:wrap;justify-content:center;gap:8px 12px;padding:6px 8px;"
    "background:#f6f8fa;border-bottom:1px solid #d0d7de;font:14px/1.4 system-ui,sans-serif}"
    "#secctx-pages a{padding:2px 10px;border-radius:4px;border:1px solid #0002;color:#1d1d1f;"
    "text-decoration:none;background:#fff}#secctx-pages a:hover{text-decoration:underline}"
    "#secctx-pages a.regression{background:#ffd7d5}#secctx-pages a.neutral{background:#fff1c2}"
    "#secctx-pages a.relaxation{background:#d2f4d3}")


def _add_pages(index: Path, pages: list) -> None:
    """Write the pages beside index.html and a line of links to them above the report."""
    if not pages:
        return
    links = []
    for page in pages:
        (index.parent / page.file).write_text(page.html, encoding="utf-8")
        changed = {k: n for k, n in page.counts.items() if n}
        verdict = ", ".join(f"{n} {k}" + ("s" if n > 1 and k != "neutral" else "")
                            for k, n in changed.items()) or "no change"
        colour = next((k for k in ("regression", "neutral", "relaxation") if k in changed), "none")
        links.append(f'<a href="{html.escape(page.file)}" class="{colour}"><b>{html.escape(page.title)}'
                     f"</b> {html.escape(page.runs)}: {html.escape(verdict)} ›</a>")
    nav = (f'<style>{_PAGES_CSS}</style><nav id="secctx-pages" aria-label="observations">'
           + "".join(links) + "</nav>")
    text = index.read_text(encoding="utf-8")
    body = re.search(r"<body\b[^>]*>", text)
    if body is None:
        raise ReportError("the generated report has no <body>; the pinned allure version changed its "
                          "template, so update _add_pages in secctx/report/html.py")
    index.write_text(text[:body.end()] + nav + text[body.end():], encoding="utf-8")


def _check_results(d: Path) -> None:
    if not d.is_dir():
        raise ReportError(f"results directory {d} does not exist; run the suite with "
                          f"--alluredir {d} first")
    if not any(d.glob("*-result.json")):
        raise ReportError(f"no Allure test results (*-result.json) in {d}; run the suite with "
                          f"--alluredir {d} first")


def _check_replaceable(out: Path) -> None:
    if not out.exists():
        return
    if not out.is_dir():
        raise ReportError(f"--out {out} is a file; choose a directory for the report")
    if any(out.iterdir()) and not (out / "index.html").exists():
        raise ReportError(f"--out {out} holds other files than a report (no index.html); "
                          "choose an empty or new directory")


def _check_node() -> None:
    node = shutil.which("node")
    if node is None:
        raise ReportError("node is not installed; install Node.js 20+ with npm "
                          "(Debian: apt-get install -y nodejs npm) and retry")
    try:
        text = run_command.run([node, "--version"], timeout=run_command.QUERY, check=False).stdout
        major = int(text.strip().lstrip("v").split(".")[0])
    except (CommandError, ValueError):
        return  # let npm report it
    if major < MIN_NODE_MAJOR:
        raise ReportError(f"node {text.strip()} is too old for Allure 3; install Node.js "
                          f"{MIN_NODE_MAJOR}+ and retry")


class _install_lock:
    """Serialises `npm ci` between processes (pytest-xdist workers, parallel jobs)."""

    def __enter__(self):
        lock_dir = cache.root()
        lock_dir.mkdir(parents=True, exist_ok=True)
        self._fh = open(lock_dir / "report-npm.lock", "w")
        fcntl.flock(self._fh, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        self._fh.close()  # releases the lock


def _tool(cmd: list[str], what: str, timeout: float, timeout_fix: str,
          **kwargs) -> run_command.Result:
    """One of the report's tools (npm, allure), with a heartbeat; past its timeout a
    ReportError that says what to check."""
    try:
        with log.heartbeat(what):
            return run_command.run(cmd, timeout=timeout, **kwargs)
    except CommandError as err:
        if err.timed_out:
            raise ReportError(f"{what} did not finish in {timeout}s; {timeout_fix}") from None
        raise


def _rel(p: Path) -> str:
    try:
        return str(p.relative_to(Path.cwd()))
    except ValueError:
        return str(p)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m secctx.report.html",
                                     description="Offline HTML report (Allure 3) from Allure results.")
    parser.add_argument("--results", type=Path, action="append", required=True,
                        help="allure-results directory; repeat to merge several (e.g. one per "
                             "Kubernetes version)")
    parser.add_argument("--out", type=Path, default=Path("reports/html"),
                        help="report directory, replaced whole (default: reports/html)")
    form = parser.add_mutually_exclusive_group()
    form.add_argument("--single-file", dest="single_file", action="store_true", default=True,
                      help="one self-contained index.html that opens from disk (the default)")
    form.add_argument("--multi-file", dest="single_file", action="store_false",
                      help="index.html and data/, to be served over HTTP (opened from disk, "
                           "only the verdict at its top shows)")
    parser.add_argument("--history", type=Path, default=None,
                        help="history file (JSON lines) to read and append to, e.g. reports/history.jsonl")
    parser.add_argument("--history-limit", type=int, default=DEFAULT_HISTORY_LIMIT,
                        help=f"runs kept in the history file (default: {DEFAULT_HISTORY_LIMIT})")
    parser.add_argument("--name", default=DEFAULT_NAME, help="report name shown in the page")
    parser.add_argument("--matrix", type=Path, default=None, metavar="DIR",
                        help="version matrix to include: the --out directory of python -m "
                             "secctx.matrix compare (its matrix.json), e.g. reports/matrix")
    parser.add_argument("--diff", type=Path, default=None, metavar="FILE",
                        help="baseline diff to include: observations.diff.json, written by a run "
                             "with --secctx-compare-to")
    args = parser.parse_args(argv)
    try:
        index = generate(args.results, args.out, args.single_file, args.history, args.name,
                         args.history_limit, args.matrix, args.diff)
    except ReportError as err:
        print(f"secctx.report.html: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("secctx.report.html: interrupted", file=sys.stderr)
        return 130
    print(f"HTML report: {_rel(index)}")
    print(f"  verdict: {verdictpage.build(verdictpage.read_tests(args.results)).headline}")
    for page in ("matrix.html", "baseline-diff.html"):
        if (index.parent / page).exists():
            print(f"  linked from its top: {_rel(index.parent / page)}")
    if not args.single_file:
        print(f"  {serve_hint(index.parent)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
