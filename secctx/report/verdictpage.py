"""The report's first page: is this cluster enforcing Pod Security Context?

One grid: a row per securityContext field (runAsUser, capabilities, seccompProfile,
...), a column per runtime (RuntimeClass; per node too when the run's cases ran on
several), and in each cell one verdict: enforced, NOT ENFORCED, cannot be enforced
here, not available in this version (or no verdict, when its tests broke). A cell
opens (a <details>, no script needed) to its tests, each linked to its page in the
Allure report, with every failed check's field, expected and observed value.

Beside the grid, not in it: the runtimes that cannot run on this host (one line
each: why, and how many tests it skipped) and the suite's self-checks (case files
valid, cluster ready).

A test's fields are its Allure feature ("runAsUser/runAsGroup/fsGroup", the case's
`field`), read by `fields_of`. A failed test counts against the fields its failed
checks are about (`CHECK_FIELDS`, e.g. a CapEff check: capabilities), not against
every field it names; when no failed check maps to one of them, against all.

`read_tests` is the one reader of test results (allure-results directories); the
rest works on its `TestOutcome`s. The page is injected at the top of the Allure
report's index.html (secctx.report.html), so it works wherever that file is opened.

Standard library only, like secctx.report.html.
"""
from __future__ import annotations

import hashlib
import html
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..core.categories import (
    ENVIRONMENT_CANNOT_ENFORCE,
    INFRASTRUCTURE,
    NODE_LABEL,
    NOT_AVAILABLE,
    NOT_ENFORCED,
    OTHERS_HOLD,
    RUNTIME_CANNOT_RUN,
    SELF_CHECK_EPIC,
    TIMEOUT,
)

# Labels the suite writes for this page (secctx.report): NODE_LABEL, SELF_CHECK_EPIC.
MANIFESTS_EPIC = "Manifests"  # the suite's manifests pass the API server's validation (dry run)
CLUSTER_EPIC = "Cluster"  # nodes ready, system pods, storage: set-up checks (suites/test_cluster.py)
DEFAULT_RUNTIME = "default"  # nodefacts.DEFAULT_RUNTIME: no runtimeClassName

# The securityContext fields, in the order a reader expects them (the pod's and the
# container's; hostUsers is the pod spec's, but it is what user namespaces hang on).
FIELDS = ("runAsUser", "runAsGroup", "runAsNonRoot", "supplementalGroups", "supplementalGroupsPolicy",
          "fsGroup", "fsGroupChangePolicy", "capabilities", "privileged", "allowPrivilegeEscalation",
          "readOnlyRootFilesystem", "seccompProfile", "appArmorProfile", "seLinuxOptions", "procMount",
          "hostUsers", "sysctls", "recursiveReadOnly")
# How a case's `field` names a securityContext field without its name.
ALIASES = {"image USER": "runAsUser", "generated pod specs": "generated pod specs (Hypothesis)",  # no runAsUser: the image's USER is what runAsUser defaults to
           "apparmor": "appArmorProfile", "AppArmor": "appArmorProfile", "SELinux": "seLinuxOptions"}

# A failed check's field (verdict.Check.field, "twin: " dropped) -> the fields it is about.
CHECK_FIELDS = (
    (re.compile(r"^uid$|uid \(exec\)"), ("runAsUser", "runAsNonRoot")),
    (re.compile(r"^gid$|gid \(exec\)"), ("runAsGroup",)),
    (re.compile(r"^groups$|Groups$"), ("supplementalGroups", "supplementalGroupsPolicy", "fsGroup")),
    (re.compile(r"^Cap(Eff|Prm|Bnd|Inh|Amb)$"), ("capabilities", "privileged")),
    (re.compile(r"^NoNewPrivs$"), ("allowPrivilegeEscalation", "privileged")),
    (re.compile(r"^Seccomp"), ("seccompProfile",)),
    (re.compile(r"^root read-only$|^write to / "), ("readOnlyRootFilesystem",)),
    (re.compile(r"^(uid_map|gid_map|unshare)"), ("hostUsers",)),
    (re.compile(r"^LSM label"), ("seLinuxOptions", "appArmorProfile")),
    (re.compile(r" (group|setgid bit|new file's group)$"), ("fsGroup", "fsGroupChangePolicy")),
)

# Verdicts, worst first: a cell shows the worst of its tests' (but "enforced" beats the
# skips: a field one test enforced is enforced, the others' reasons are in the cell).
FAILED, BROKEN, ENFORCED, CANNOT, UNAVAILABLE, SKIPPED = (
    "not enforced", "no verdict", "enforced", "cannot be enforced here",
    "not available in this version", "not run")
ORDER = (FAILED, BROKEN, ENFORCED, CANNOT, UNAVAILABLE, SKIPPED)
CSS_CLASS = {FAILED: "failed", BROKEN: "broken", ENFORCED: "enforced", CANNOT: "cannot",
             UNAVAILABLE: "unavailable", SKIPPED: "skipped"}

_CHECK_LINE = re.compile(r"^FAIL (?P<field>.+?): expected (?P<expected>.*?), observed "
                         r"(?P<observed>.*?)  \((?P<reason>.*)\)$", re.S)


@dataclass(frozen=True)
class FailedCheck:
    field: str
    expected: str
    observed: str
    reason: str = ""


@dataclass(frozen=True)
class TestOutcome:
    """One test as the page needs it."""
    title: str
    page: str  # its page in the Allure report (`#<page>`)
    status: str  # passed, failed, broken, skipped, unknown
    message: str = ""
    epic: str = ""
    feature: str = ""
    runtime: str = DEFAULT_RUNTIME
    node: str | None = None
    failed_checks: tuple[FailedCheck, ...] = ()
    refused: str | None = None  # a passed test whose promised outcome is a refusal: the refusal


def allure_page_id(uuid: str) -> str:
    """The id Allure 3 gives a test result's page: md5 of the result file's uuid."""
    return hashlib.md5(uuid.encode()).hexdigest()


# --- reading ----------------------------------------------------------------------------------

def read_tests(results: Sequence[Path]) -> list[TestOutcome]:
    """The tests of allure-results directories (of several results of one test, the last).

    The one place that knows where test outcomes come from: a summary file with the
    same facts per test (title, Allure uuid, status, message, epic and feature,
    runtime, node, failed checks with field, expected and observed) can replace it."""
    latest: dict[str, tuple[int, dict]] = {}
    for d in results:
        for path in sorted(Path(d).glob("*-result.json")):
            try:
                result = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if not isinstance(result, dict) or not result.get("uuid"):
                continue
            key = result.get("historyId") or result["uuid"]
            stop = int(result.get("stop") or 0)
            if key not in latest or latest[key][0] <= stop:
                latest[key] = (stop, result)
    return [_outcome(r) for _, r in sorted(latest.values(), key=lambda sr: sr[1].get("name", ""))]


def _outcome(result: dict) -> TestOutcome:
    labels = {lab.get("name"): lab.get("value") for lab in result.get("labels") or []}
    params = {p.get("name"): str(p.get("value", "")) for p in result.get("parameters") or []}
    details = result.get("statusDetails") or {}
    return TestOutcome(
        title=result.get("name") or "", page=allure_page_id(result["uuid"]),
        status=result.get("status") or "unknown", message=details.get("message") or "",
        epic=labels.get("epic") or "", feature=labels.get("feature") or "",
        runtime=params.get("runtime") or DEFAULT_RUNTIME, node=labels.get(NODE_LABEL),
        failed_checks=tuple(c for c in map(parse_check, _failed_step_names(result)) if c),
        refused=_refusal(result))


def _refusal(node: dict) -> str | None:
    """The refusal a test was promised and saw (runner's 'refused: ...' step), if any: a
    field enforced by refusing the pod (fail-closed where the node lacks the feature) reads
    differently from one applied in a running container."""
    for step in node.get("steps") or []:
        name = step.get("name") or ""
        if name.startswith("refused: ") and step.get("status") == "passed":
            return name.removeprefix("refused: ")
        found = _refusal(step)
        if found:
            return found
    return None


def _failed_step_names(node: dict) -> Iterable[str]:
    for step in node.get("steps") or []:
        if step.get("status") == "failed":
            yield step.get("name") or ""
        yield from _failed_step_names(step)


def parse_check(line: str) -> FailedCheck | None:
    """A failed check's step, as verdict.Check.line() writes it, back into its parts."""
    m = _CHECK_LINE.match(line)
    return FailedCheck(m["field"], m["expected"], m["observed"], m["reason"]) if m else None


# --- judging ------------------------------------------------------------------------------------

def fields_of(feature: str) -> list[str]:
    """The fields a test is about, from its feature ("runAsUser/runAsGroup (pod)",
    "capabilities.drop/capabilities.add", "privileged: true"): securityContext fields
    by name, others as written."""
    found: list[str] = []
    if feature.startswith("enforce="):  # a Pod Security Admission level
        return [f"Pod Security Admission ({feature.removeprefix('enforce=')})"]
    # "(...)" qualifies, " /etc/group" is a path: neither separates fields
    for part in re.sub(r"\([^)]*\)|\s/\S+", "", feature).split("/"):
        part = re.sub(r"^securityContext[. ]", "", part.strip())
        if not part:
            continue
        name = _known_field(part)
        if name is None:
            name = part.split(":")[0].strip() if re.match(r"^[\w.\[\]]+:", part) else part
        if name not in found:
            found.append(name)
    return found


def _known_field(text: str) -> str | None:
    for name in FIELDS:
        if re.search(rf"\b{name}\b", text):
            return name
    for alias, name in ALIASES.items():
        if alias in text:
            return name
    return None


def check_fields(check_field: str) -> tuple[str, ...]:
    """The securityContext fields a check is about (CHECK_FIELDS); () if none is known."""
    check_field = check_field.removeprefix("twin: ")
    for pattern, names in CHECK_FIELDS:
        if pattern.search(check_field):
            return names
    return ()


def is_runtime_cannot_run(test: TestOutcome) -> bool:
    return test.status == "skipped" and RUNTIME_CANNOT_RUN in test.message


def is_self_check(test: TestOutcome) -> bool:
    return test.epic in (SELF_CHECK_EPIC, CLUSTER_EPIC, MANIFESTS_EPIC)


def field_verdicts(test: TestOutcome) -> dict[str, str]:
    """{field: verdict} of one test, for each field it is about."""
    fallback = test.epic or test.title.split(":")[0]
    fields = fields_of(test.feature) or [_known_field(fallback) or fallback]
    message = _category_text(test.message)
    if test.status == "passed":
        return dict.fromkeys(fields, ENFORCED)
    if test.status == "failed" and message.startswith(NOT_ENFORCED):
        blamed = {f for c in test.failed_checks for f in check_fields(c.field)} & set(fields)
        return {f: FAILED if f in blamed or not blamed else ENFORCED for f in fields}
    if test.status in ("failed", "broken", "unknown"):
        return dict.fromkeys(fields, BROKEN)  # a timeout, the infrastructure, a plain error
    if message.startswith(ENVIRONMENT_CANNOT_ENFORCE):
        named = {_known_field(w) for w in re.findall(r"[\w.]+", message)} & set(fields)
        others = ENFORCED if OTHERS_HOLD in message else SKIPPED
        return {f: CANNOT if f in named or not named else others for f in fields}
    if message.startswith(NOT_AVAILABLE):
        return dict.fromkeys(fields, UNAVAILABLE)
    return dict.fromkeys(fields, SKIPPED)


def _category_text(message: str) -> str:
    """The message from its category prefix on (pytest adds "Failed: ", "Skipped: ")."""
    for prefix in (NOT_ENFORCED, ENVIRONMENT_CANNOT_ENFORCE, NOT_AVAILABLE, INFRASTRUCTURE, TIMEOUT):
        i = message.find(prefix)
        if i >= 0 and i <= len("Skipped: "):
            return message[i:]
    return message


def worst(verdicts: Iterable[str]) -> str:
    return min(verdicts, key=ORDER.index, default=SKIPPED)


@dataclass
class Cell:
    verdict: str = SKIPPED
    tests: list[tuple[str, TestOutcome]] = field(default_factory=list)  # (its verdict here, test)


@dataclass
class Page:
    columns: list[str]  # runtime, or "runtime on node"
    rows: list[str]  # securityContext fields first, then the other fields the run tested
    cells: dict[tuple[str, str], Cell]  # (row, column) -> cell
    cannot_run: dict[str, dict[str, int]]  # runtime -> {reason: tests skipped}
    self_checks: list[TestOutcome]
    headline: str
    verdict: str  # the worst cell's


def build(tests: Sequence[TestOutcome]) -> Page:
    """The page's grid and sections from the run's tests (pure)."""
    cannot_run: dict[str, dict[str, int]] = {}
    self_checks, judged = [], []
    for t in tests:
        if is_runtime_cannot_run(t):
            reason = _category_text(t.message).removeprefix(ENVIRONMENT_CANNOT_ENFORCE + ": ")
            reasons = cannot_run.setdefault(t.runtime, {})
            reasons[reason] = reasons.get(reason, 0) + 1
        elif is_self_check(t):
            self_checks.append(t)
        else:
            judged.append(t)
    several_nodes = len({t.node for t in judged if t.node}) > 1
    cells: dict[tuple[str, str], Cell] = {}
    columns: list[str] = []
    for t in judged:
        column = f"{t.runtime} on {t.node}" if several_nodes and t.node else t.runtime
        if column not in columns:
            columns.append(column)
        for name, v in field_verdicts(t).items():
            cells.setdefault((name, column), Cell()).tests.append((v, t))
    for cell in cells.values():
        cell.verdict = worst(v for v, _ in cell.tests)
    named = {r for r, _ in cells}
    rows = [f for f in FIELDS if f in named] + sorted(named - set(FIELDS), key=str.lower)
    columns.sort(key=lambda c: (not c.startswith(DEFAULT_RUNTIME + " ") and c != DEFAULT_RUNTIME, c))
    overall = worst(c.verdict for c in cells.values())
    return Page(columns, rows, cells, cannot_run, self_checks, _headline(cells, overall, self_checks),
                overall)


def _headline(cells: dict[tuple[str, str], Cell], overall: str, self_checks: list[TestOutcome]) -> str:
    def where(verdict: str) -> str:
        by_field: dict[str, list[str]] = {}
        for (row, column), cell in cells.items():
            if cell.verdict == verdict:
                by_field.setdefault(row, []).append(column)
        return "; ".join(f"{r} ({', '.join(sorted(cols))})" for r, cols in by_field.items())
    if overall == FAILED:
        text = f"NOT ENFORCED: {where(FAILED)}"
    elif overall == BROKEN:
        text = f"NO VERDICT: tests broke (infrastructure, time-out or error) for {where(BROKEN)}"
    elif overall == ENFORCED:
        text = "ENFORCED: every field the suite checked holds"
        if any(c.verdict == CANNOT for c in cells.values()):
            text += f"; cannot be enforced here: {where(CANNOT)}"
    else:
        text = "NO VERDICT: no field was checked"
    bad = [t for t in self_checks if t.status not in ("passed", "skipped")]
    if bad:
        text += f". {len(bad)} suite self-check(s) failed"
    return text


# --- HTML ---------------------------------------------------------------------------------------

VERDICT_ID = "secctx-verdict"

_CSS = """
#secctx-verdict{font:14px/1.45 system-ui,sans-serif;color:#1d1d1f;background:#fff;
  border-bottom:2px solid #d0d7de;padding:0}
#secctx-verdict>details>summary{cursor:pointer;padding:10px 16px;font-size:17px;font-weight:600;
  list-style-position:inside}
#secctx-verdict .v-failed>summary,#secctx-verdict .head.failed{background:#ffd7d5}
#secctx-verdict .v-broken>summary{background:#fff1c2}
#secctx-verdict .v-enforced>summary{background:#d2f4d3}
#secctx-verdict .body{padding:8px 16px 14px}
#secctx-verdict h3{font-size:14px;margin:14px 0 4px}
#secctx-verdict table.grid{border-collapse:collapse;margin:4px 0}
#secctx-verdict table.grid th,#secctx-verdict table.grid td{border:1px solid #d0d7de;padding:3px 8px;
  text-align:left;vertical-align:top}
#secctx-verdict table.grid thead th{background:#f6f8fa}
#secctx-verdict table.grid tbody th{font-weight:500;font-family:ui-monospace,monospace;font-size:13px}
#secctx-verdict td.failed{background:#ffd7d5}#secctx-verdict td.broken{background:#fff1c2}
#secctx-verdict td.enforced{background:#d2f4d3}#secctx-verdict td.cannot{background:#e8e8ec}
#secctx-verdict td.unavailable{background:#eef1f5;color:#555}#secctx-verdict td.skipped{color:#777}
#secctx-verdict td.none{background:#fafafa}
#secctx-verdict td details summary{cursor:pointer;white-space:nowrap}
#secctx-verdict td ul{margin:4px 0 2px 0;padding-left:18px;min-width:420px;max-width:760px}
#secctx-verdict td li{margin:2px 0}
#secctx-verdict table.checks{border-collapse:collapse;margin:2px 0 4px;font-size:12px}
#secctx-verdict table.checks td,#secctx-verdict table.checks th{border:1px solid #0002;padding:1px 6px}
#secctx-verdict .note{color:#555;font-size:13px}
#secctx-verdict a{color:#0b57d0}
"""

# Opening a test (#<page>) folds the verdict, so the Allure page below comes into view;
# the report's own home (no hash) unfolds it again.
_SCRIPT = """(function(){var d=document.querySelector('#secctx-verdict>details');
function f(){var h=location.hash.replace(/^#\\/?/,'');d.open=!h;if(h)window.scrollTo(0,0);}
window.addEventListener('hashchange',f);f();
var n=document.getElementById('secctx-serve');if(n&&location.protocol==='file:')n.hidden=false;})();"""


def render(page: Page, serve_hint: str | None = None) -> str:
    """The page as an HTML fragment (scoped style, one small script) for the top of the
    report. `serve_hint`: a line shown when the page is opened from disk and the report
    below needs HTTP (its multi-file form)."""
    e = html.escape
    out = [f"<style>{_CSS}</style>", f'<section id="{VERDICT_ID}" aria-label="verdict">',
           f'<details open class="v-{CSS_CLASS[page.verdict]}"><summary>'
           f'Is this cluster enforcing Pod Security Context? {e(page.headline)}</summary>'
           '<div class="body">']
    if serve_hint:
        out.append(f'<p id="secctx-serve" class="note" hidden>{e(serve_hint)}</p>')
    if page.rows:
        out.append('<table class="grid"><thead><tr><th>field</th>'
                   + "".join(f"<th>{e(c)}</th>" for c in page.columns) + "</tr></thead><tbody>")
        for row in page.rows:
            out.append(f"<tr><th>{e(row)}</th>")
            for column in page.columns:
                cell = page.cells.get((row, column))
                out.append(_cell(cell) if cell else '<td class="none">-</td>')
            out.append("</tr>")
        out.append("</tbody></table>")
        out.append('<p class="note">A cell opens to its tests; a test\'s name opens its page in the '
                   "report below. A failed test counts against the fields its failed checks are "
                   "about.</p>")
    if page.cannot_run:
        out.append("<h3>Runtimes that cannot run on this host (not in the grid)</h3><ul>")
        for runtime, reasons in sorted(page.cannot_run.items()):
            for reason, count in sorted(reasons.items()):
                out.append(f"<li><b>{e(runtime)}</b>: {count} test{'s' * (count != 1)} skipped: "
                           f"{e(reason)}</li>")
        out.append("</ul>")
    if page.self_checks:
        counts: dict[str, int] = {}
        for t in page.self_checks:
            counts[t.status] = counts.get(t.status, 0) + 1
        bad = [t for t in page.self_checks if t.status not in ("passed", "skipped")]
        out.append(f"<h3>Suite self-checks (case files, manifests, cluster set-up): "
                   f"{e(', '.join(f'{n} {s}' for s, n in sorted(counts.items())))}</h3>")
        out.append("<details><summary>" + (f"{len(bad)} failed" if bad else "all")
                   + "</summary><ul>" + "".join(_test_item(t, t.status) for t in
                                                (bad or page.self_checks)) + "</ul></details>")
    out.append("</div></details></section>")
    out.append(f"<script>{_SCRIPT}</script>")
    return "".join(out)


def _cell(cell: Cell) -> str:
    n = len(cell.tests)
    tests = sorted(cell.tests, key=lambda vt: (ORDER.index(vt[0]), vt[1].title))
    refused = sum(1 for v, t in tests if v == ENFORCED and t.refused)
    return (f'<td class="{CSS_CLASS[cell.verdict]}"><details><summary>{html.escape(cell.verdict)} '
            f'<span class="note">({n} test{"s" * (n != 1)}'
            f'{f", {refused} by refusing the pod" if refused else ""})</span></summary><ul>'
            + "".join(_test_item(t, v) for v, t in tests) + "</ul></details></td>")


def _test_item(test: TestOutcome, verdict: str) -> str:
    e = html.escape
    text = f'<li>{e(verdict)}: <a href="#{e(test.page)}">{e(test.title)}</a>'
    if test.failed_checks and verdict == FAILED:
        text += ('<table class="checks"><tr><th>check</th><th>expected</th><th>observed</th></tr>'
                 + "".join(f"<tr><td>{e(c.field)}</td><td>{e(c.expected)}</td><td>{e(c.observed)}"
                           "</td></tr>" for c in test.failed_checks) + "</table>")
    elif test.refused and verdict == ENFORCED:
        text += f'<div class="note">refused, as promised: {e(test.refused[:300])}</div>'
    elif test.message and verdict not in (ENFORCED, FAILED):
        text += f'<div class="note">{e(_category_text(test.message).splitlines()[0][:300])}</div>'
    return text + "</li>"


def inject(index: Path, results: Sequence[Path], serve_hint: str | None = None) -> Page:
    """Put the page at the top of the report's index.html; the page."""
    page = build(read_tests(results))
    text = index.read_text(encoding="utf-8")
    body = re.search(r"<body\b[^>]*>", text)
    if body is None:
        raise ValueError("the generated report has no <body>")
    index.write_text(text[:body.end()] + render(page, serve_hint) + text[body.end():], encoding="utf-8")
    return page
