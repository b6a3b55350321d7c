"""The version matrix: what each Kubernetes version gives each case, field by field.

    python -m secctx.matrix compare FILE [FILE ...] [--out DIR] [--report-url URL]
                                    [--results DIR ...] [--fail-on-regression]
    python -m secctx.matrix run --versions V [V ...] [--out DIR] [--no-report] [-- PYTEST ARGS]

`compare` reads observation files (written by `pytest --secctx-observations`), in the
order given (oldest first, e.g. by Kubernetes version), and writes into `--out`
(default reports/matrix):

- matrix.json: every case × field × run (the rows of the table);
- diff.json: the field-by-field diff between each two adjacent runs, classified;
- summary.txt: a short text for CI logs ("no change" plainly when nothing changed);
- matrix.html: one self-contained table (rows: case and field; columns: runs;
  a cell that differs from the cell to its left is highlighted with its class).

Each cell links to its test in the Allure report at `--report-url` (default
index.html): the test results in `--results` (allure-results directories) carry
the label `secctx.observation` naming their entry, and Allure 3 names a test
result's page after the md5 of the result's uuid (`index.html#<md5>`). A cell
with no matching result links to the observation itself, printed at the end
of matrix.html (`#obs-...`).

`run` runs the suite once per version, one kind cluster at a time (each run
creates and deletes its own; the offline build caches are reused):
`python -m pytest suites --secctx-kubernetes-version V --secctx-observations OUT/V.json
--alluredir OUT/allure-results/V --clean-alluredir [PYTEST ARGS]`, then builds
one Allure report of all versions into OUT/html (unless --no-report) and does
`compare` with the observation files it got, linking to OUT/html/index.html.

The commands themselves: secctx.matrix.commands. Errors a user can fix end with one
line (cause and fix) and exit code 2.
"""
from __future__ import annotations

import html
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import observations as obs
from ..report.verdictpage import allure_page_id

DEFAULT_OUT = Path("reports") / "matrix"
DEFAULT_REPORT_URL = "index.html"
MATRIX_SCHEMA_VERSION = 1


@dataclass
class Run:
    label: str  # column name: the document's label, made unique
    doc: dict
    file: Path | None = None


def load_runs(files: Sequence[Path]) -> list[Run]:
    docs = [(Path(f), obs.load(Path(f))) for f in files]
    labels = [obs.run_label(d) for _, d in docs]
    cris = [d.get("environment", {}).get("container_runtime") for _, d in docs]
    runs = []
    for (path, doc), label, cri in zip(docs, labels, cris):
        same = [c for lab, c in zip(labels, cris) if lab == label]
        if len(same) > 1:  # two runs of one version: by their CRI if it differs, else by file
            label = f"{label} ({cri if cri and same.count(cri) == 1 else path.stem})"
        runs.append(Run(label, doc, path))
    return runs


# --- the matrix ------------------------------------------------------------------------

Key = tuple[str, str | None, str]  # (case, container or None, field)


def _flatten(value: Any, path: tuple[str, ...] = ()):
    if obs.is_leaf(value):
        yield path, value
        return
    for k, v in value.items():
        yield from _flatten(v, (*path, k))


def leaves(doc: dict) -> dict[Key, Any]:
    """Every observed value of a document by (case, container, field)."""
    out: dict[Key, Any] = {}
    for case, entry in doc.get("cases", {}).items():
        for path, value in _flatten(entry):
            if path[0] == "containers":
                out[(case, path[1], ".".join(path[2:]))] = value
            else:
                out[(case, None, ".".join(path))] = value
    for manifest, levels in doc.get("admission", {}).items():
        for path, value in _flatten(levels):
            out[(manifest, None, ".".join(("admission", *path)))] = value
    return out


def _cell_change(key: Key, old: dict, new: dict, old_label: str, new_label: str) -> obs.Change | None:
    case, container, field = key
    absent = object()
    a, b = old.get(key, absent), new.get(key, absent)
    if a == b:
        return None
    change = obs.Change(case, container, field, None if a is absent else a,
                        None if b is absent else b, old_label, new_label)
    if a is absent or b is absent:
        change.kind, change.rule = "neutral", "presence"
    else:
        change.kind, change.rule = obs.classify(change)
    return change


def build_matrix(runs: list[Run]) -> dict:
    """Rows of case × field with one value per run, and each cell's change from the run
    before it (class and rule)."""
    values = [leaves(r.doc) for r in runs]
    keys = sorted(set().union(*values), key=lambda k: (k[0], k[1] or "", k[2]))
    rows = []
    for key in keys:
        changes = {}
        for i in range(1, len(runs)):
            change = _cell_change(key, values[i - 1], values[i], runs[i - 1].label, runs[i].label)
            if change:
                changes[runs[i].label] = {"class": change.kind, "rule": change.rule,
                                          "change": obs.format_change(change)}
        rows.append({"case": key[0], "container": key[1], "field": key[2],
                     "values": {r.label: v[key] for r, v in zip(runs, values) if key in v},
                     "changes": changes})
    return {"schema_version": MATRIX_SCHEMA_VERSION,
            "runs": [{"label": r.label, "file": str(r.file) if r.file else None,
                      "created": r.doc.get("created"), "environment": r.doc.get("environment")}
                     for r in runs],
            "rows": rows}


def adjacent_diffs(runs: list[Run]) -> list[tuple[Run, Run, list[obs.Change]]]:
    return [(a, b, obs.diff(a.doc, b.doc)) for a, b in zip(runs, runs[1:])]


def _relabelled(run: Run) -> dict:
    return {**run.doc, "label": run.label}


def diff_json(runs: list[Run]) -> dict:
    pairs = []
    for a, b in zip(runs, runs[1:]):
        old, new = _relabelled(a), _relabelled(b)
        pairs.append(obs.diff_document(obs.diff(old, new), old, new))
    return {"schema_version": obs.SCHEMA_VERSION, "pairs": pairs}


def summary_text(runs: list[Run], verdicts: Sequence[dict[str, tuple[str, str]]] | None = None) -> str:
    """`verdicts`, one per run (outcomes() of its allure-results), add each differing case's
    tests' verdicts: a difference both tests passed is what Kubernetes promises for each
    run's own node (its oracle predicted it), one a test failed on is not."""
    if len(runs) < 2:
        return f"only one run ({runs[0].label}): nothing to compare\n" if runs else "no runs\n"
    parts = []
    total = 0
    for i, (a, b) in enumerate(zip(runs, runs[1:])):
        old, new = _relabelled(a), _relabelled(b)
        changes = obs.diff(old, new)
        total += len(changes)
        parts.append(obs.summary(changes, old, new))
        if changes and verdicts is not None:
            parts.append(_verdict_text(changes, (a, b), verdicts[i:i + 2]))
    head = ("no change across " if total == 0 else f"{total} change(s) across ") + \
        " → ".join(r.label for r in runs) + "\n"
    return head + "".join(parts)


def _verdict_text(changes: list[obs.Change], pair: tuple[Run, Run],
                  verdicts: Sequence[dict[str, tuple[str, str]]]) -> str:
    def results(v: dict[str, tuple[str, str]], case: str) -> list[tuple[str, str]]:
        # a case's test, or a manifest's admission tests (admission/<manifest>/<level>)
        return [o for k, o in v.items() if k == case or k.startswith(f"admission/{case}/")]

    def verdict(case: str) -> str:
        found = [results(v, case) for v in verdicts]
        if not all(found):
            return "not judged: no test result for it in " + " and ".join(
                f"{r.label}'s --results" for r, f in zip(pair, found) if not f)
        failed = [f"{r.label}: {text}" for r, f in zip(pair, found) for status, text in f
                  if status == "failed"]
        if failed:
            return "NOT PROMISED: its test failed in " + "; in ".join(failed)
        skipped = [f"{r.label} ({text})" for r, f in zip(pair, found) for status, text in f
                   if status == "skipped"]
        if skipped:
            return "not judged: its test was skipped in " + "; in ".join(skipped)
        return ("as promised: its test passed in both runs (each run's oracle predicted its "
                "value from that node's own facts)")
    judged = obs.case_lines(changes, verdict, rules=True)
    return "per case, the tests' verdicts (--results):\n" + "\n".join(judged) + "\n"


def _first_lines(message: str, limit: int = 3) -> str:
    """A failure's FAIL lines (the first `limit`), else its first line."""
    fails = [ln.strip() for ln in message.splitlines() if ln.strip().startswith("FAIL")]
    text = "; ".join(fails[:limit]) + (f"; and {len(fails) - limit} more" if len(fails) > limit else "")
    return text or (message.strip().splitlines() or ["(no message)"])[0][:300]


def outcomes(results_dir: Path) -> dict[str, tuple[str, str]]:
    """{observation key: (passed | failed | skipped, what failed or why it skipped)} of one
    allure-results directory; of several results for one test, the last."""
    found: dict[str, tuple[int, tuple[str, str]]] = {}
    for key, result in _keyed_results(results_dir):
        stop = int(result.get("stop") or 0)
        if key in found and found[key][0] > stop:
            continue
        status = {"broken": "failed"}.get(result.get("status"), result.get("status") or "unknown")
        message = (result.get("statusDetails") or {}).get("message") or ""
        found[key] = (stop, (status, "" if status == "passed" else _first_lines(message)))
    return {k: v for k, (_, v) in found.items()}


# --- links to the Allure report ------------------------------------------------------------

def _unquote(value: str) -> str:
    return value[1:-1] if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"" else value


def _result_key(result: dict) -> str | None:
    for label in result.get("labels") or []:
        if label.get("name") == obs.ALLURE_LABEL:
            return label.get("value")
    params = {p.get("name"): _unquote(str(p.get("value", ""))) for p in result.get("parameters") or []}
    # results without the label: written before it existed, or skipped before the case
    # ran (the fixture's parameter, secctx_recipe_case since the option rename)
    for name in ("secctx_recipe_case", "recipe_case"):
        if name in params:
            return params[name]
    if "manifest" in params and params.get("level") in obs.PSA_LEVELS:
        return obs.admission_key(params["manifest"], params["level"])
    return None


def _keyed_results(results_dir: Path):
    """(observation key, result) of each readable test result that names its entry."""
    for path in sorted(Path(results_dir).glob("*-result.json")):
        try:
            result = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        key = _result_key(result)
        if key:
            yield key, result


def results_index(results_dir: Path) -> dict[tuple[str | None, str], str]:
    """{(Kubernetes version or None, observation key): Allure page id} of one
    allure-results directory; of several results for one test, the last."""
    found: dict[tuple[str | None, str], tuple[int, str]] = {}
    for key, result in _keyed_results(results_dir):
        if not result.get("uuid"):
            continue
        params = {p.get("name"): _unquote(str(p.get("value", "")))
                  for p in result.get("parameters") or []}
        version = params.get("Kubernetes")
        stop = int(result.get("stop") or 0)
        for k in ((version, key), (None, key)):
            if k not in found or found[k][0] <= stop:
                found[k] = (stop, allure_page_id(result["uuid"]))
    return {k: v for k, (_, v) in found.items()}


def link_table(runs: list[Run], results: Sequence[Path],
               by_position: bool = True) -> list[dict[str, str]]:
    """Per run, {observation key: Allure page id}. One results directory per run is
    matched by position (unless not `by_position`); otherwise results are matched by
    the Kubernetes version."""
    indexes = [results_index(d) for d in results]
    tables = []
    for i, run in enumerate(runs):
        version = run.doc.get("environment", {}).get("kubernetes_version")
        if by_position and len(indexes) == len(runs):
            table = {key: page for (v, key), page in indexes[i].items() if v is None}
        else:
            table = {key: page for index in indexes for (v, key), page in index.items()
                     if v is not None and v == version}
        tables.append(table)
    return tables


def row_key(row: dict) -> str:
    """The observation key of a row: the case id, or admission/<manifest>/<level>."""
    if row["field"].startswith("admission."):
        return obs.admission_key(row["case"], row["field"].split(".")[1])
    return row["case"]


# --- HTML ---------------------------------------------------------------------------------

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#1d1d1f}
h1{font-size:1.4em;margin:0 0 .3em}
.runs,.legend{margin:.3em 0;color:#444}
.nochange{font-size:1.2em;font-weight:600;color:#1a7f37}
table.matrix{border-collapse:collapse;margin-top:.8em}
.matrix th,.matrix td{border:1px solid #d0d7de;padding:3px 6px;vertical-align:top;text-align:left}
.matrix thead th{background:#f6f8fa;position:sticky;top:0}
.matrix td.case{font-weight:600}
.matrix td.field{font-family:ui-monospace,monospace;font-size:12px}
.matrix td.cell{font-family:ui-monospace,monospace;font-size:12px;max-width:28em;word-break:break-word}
.matrix td.cell a{color:inherit;text-decoration:none}
.matrix td.cell a:hover{text-decoration:underline}
.matrix td.absent{color:#999}
td.changed.regression,.badge.regression{background:#ffd7d5}
td.changed.relaxation,.badge.relaxation{background:#d2f4d3}
td.changed.neutral,.badge.neutral{background:#fff1c2}
.badge{display:inline-block;font:11px system-ui,sans-serif;padding:0 4px;border-radius:3px;margin-left:4px}
td.changed .badge{border:1px solid #0002}
#only-changed:checked~table tr.same{display:none}
details{margin:.2em 0}
pre{background:#f6f8fa;padding:.5em;overflow:auto;font-size:12px}
"""


def _anchor(run_index: int, key: str) -> str:
    return f"obs-{run_index}-" + re.sub(r"[^A-Za-z0-9_.-]+", "-", key).strip("-")


def _observation_of(doc: dict, key: str) -> Any:
    if key.startswith("admission/"):
        _, manifest, level = key.split("/", 2)
        return doc.get("admission", {}).get(manifest, {}).get(level)
    return doc.get("cases", {}).get(key)


def cell_counts(matrix: dict) -> dict[str, int]:
    """Changed cells per class (regression, relaxation, neutral)."""
    return {k: sum(1 for row in matrix["rows"] for c in row["changes"].values() if c["class"] == k)
            for k in (obs.REGRESSION, obs.RELAXATION, obs.NEUTRAL)}


def render_html(runs: list[Run], matrix: dict, links: list[dict[str, str]],
                report_url: str = DEFAULT_REPORT_URL, summary: str = "",
                page_title: str = "Observations matrix", back: str | None = None) -> str:
    """The page; `back` links (at the top) to the report it belongs to."""
    e = html.escape
    labels = [r.label for r in runs]
    changed_rows = sum(1 for row in matrix["rows"] if row["changes"])
    counts = cell_counts(matrix)
    heading = f"{page_title}: {' → '.join(labels)}"
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>{e(heading)}</title>",
           f"<style>{_CSS}</style></head><body>"]
    if back:
        out.append(f'<p class="back"><a href="{e(back)}" id="back">← the test report</a></p>')
    out.append(f"<h1>{e(heading)}</h1>")
    for r in runs:
        env = r.doc.get("environment", {})
        facts = ", ".join(x for x in (env.get("container_runtime"), env.get("kernel"),
                                      env.get("node_image"), env.get("mode")) if x)
        out.append(f'<div class="runs"><b>{e(r.label)}</b>: {e(facts)} '
                   f'(written {e(str(r.doc.get("created")))})</div>')
    if changed_rows == 0:
        out.append('<p class="nochange" id="verdict">no change</p>')
    else:
        out.append(f'<p id="verdict">{changed_rows} field(s) changed: '
                   + ", ".join(f'<span class="badge {k}">{n} {k}</span>' for k, n in counts.items())
                   + "</p>")
    out.append('<p class="legend">Colours: <span class="badge regression">regression</span> '
               'less strict than the run before; <span class="badge relaxation">relaxation</span> '
               'stricter; <span class="badge neutral">neutral</span> any other change. Hover a '
               'cell for the rule; click it for its test in the Allure report.</p>')
    if summary:
        out.append(f"<details><summary>Text summary</summary><pre>{e(summary)}</pre></details>")
    checked = " checked" if changed_rows else ""
    out.append(f'<input type="checkbox" id="only-changed"{checked}> '
               '<label for="only-changed">only rows that changed</label>')
    out.append('<table class="matrix"><thead><tr><th>case</th><th>container</th><th>field</th>'
               + "".join(f"<th>{e(label)}</th>" for label in labels) + "</tr></thead><tbody>")
    for row in matrix["rows"]:
        out.append(_row_html(row, runs, labels, links, report_url))
    out.append("</tbody></table>")
    if any(r.doc.get("cases") or r.doc.get("admission") for r in runs):
        out.append("<h2>Observations</h2><p>What each run recorded, per case (the target of a "
                   "cell whose test is not in the Allure report).</p>")
    out.extend(_observation_details(runs))
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def _row_html(row: dict, runs: list[Run], labels: list[str], links: list[dict[str, str]],
              report_url: str) -> str:
    """One field's row: a cell per run, a changed cell with its class, rule and link."""
    e = html.escape
    key = row_key(row)
    cls = "changed-row" if row["changes"] else "same"
    cells = []
    for i, label in enumerate(labels):
        page = links[i].get(key) if i < len(links) else None
        href = f"{report_url}#{page}" if page else (
            f"#{_anchor(i, key)}" if _observation_of(runs[i].doc, key) is not None else None)
        change = row["changes"].get(label)
        if label in row["values"]:
            text = obs.format_value(row["values"][label], limit=120)
            td = "cell"
        else:
            text, td = "—", "cell absent"
        title = ""
        badge = ""
        if change:
            td += f" changed {change['class']}"
            meaning = obs.RULES.get(change["rule"], ("", ""))[1]
            title = f' title="{e(change["class"])}: {e(change["rule"])}: {e(meaning)}; {e(change["change"])}"'
            badge = f'<span class="badge {change["class"]}">{change["class"]}</span>'
        content = f'<a href="{e(href)}">{e(text)}</a>' if href else e(text)
        cells.append(f'<td class="{td}"{title} data-run="{e(label)}">{content}{badge}</td>')
    return (f'<tr class="{cls}"><td class="case">{e(row["case"])}</td>'
            f'<td>{e(row["container"] or "")}</td><td class="field">{e(row["field"])}</td>'
            + "".join(cells) + "</tr>")


def _observation_details(runs: list[Run]) -> list[str]:
    """What each run recorded, per case: the target of a cell without a test."""
    e = html.escape
    out = []
    for i, r in enumerate(runs):
        keys = sorted(set(r.doc.get("cases", {})) | {
            obs.admission_key(m, lvl) for m, levels in r.doc.get("admission", {}).items()
            for lvl in levels})
        for key in keys:
            body = json.dumps(_observation_of(r.doc, key), indent=1, sort_keys=True)
            out.append(f'<details id="{_anchor(i, key)}"><summary>{e(key)} in {e(r.label)}</summary>'
                       f"<pre>{e(body)}</pre></details>")
    return out


# --- pages of the HTML report (python -m secctx.report.html --matrix DIR --diff FILE) -----------

@dataclass
class ReportPage:
    """A page the HTML report carries beside its index.html, and what its link there says."""
    file: str  # its name in the report directory
    title: str  # "Version matrix", "Changes since the baseline"
    runs: str  # "v1.36.3 → v1.37.2"
    counts: dict[str, int]  # changed cells per class
    html: str


def _json_object(path: Path) -> dict | None:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _text_beside(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def matrix_page(matrix_dir: Path, results: Sequence[Path],
                report_url: str = DEFAULT_REPORT_URL) -> ReportPage:
    """matrix.html for a report, from what `compare` wrote into `matrix_dir`, each cell
    linked to its test among `results` (the report's allure-results, matched by Kubernetes
    version). The runs' observation files are read back where they still exist, for the
    observations printed at the end of the page."""
    path = Path(matrix_dir) / "matrix.json"
    data = _json_object(path)
    if data is None or not isinstance(data.get("runs"), list) or not isinstance(data.get("rows"), list):
        raise obs.DocumentError(f"{path} is missing or not a matrix that `python -m secctx.matrix "
                                f"compare` wrote: run it with --out {matrix_dir} first")
    runs = []
    for r in data["runs"]:
        doc = _json_object(Path(r["file"])) if r.get("file") else None
        if doc is None or "cases" not in doc:
            doc = {"environment": r.get("environment") or {}, "created": r.get("created")}
        runs.append(Run(r["label"], doc, Path(r["file"]) if r.get("file") else None))
    return ReportPage("matrix.html", "Version matrix", " → ".join(r.label for r in runs),
                      cell_counts(data), render_html(
        runs, data, link_table(runs, results, by_position=False), report_url,
        _text_beside(Path(matrix_dir) / "summary.txt"), page_title="Version matrix",
        back=report_url))


def diff_page(diff_file: Path, results: Sequence[Path],
              report_url: str = DEFAULT_REPORT_URL) -> ReportPage:
    """The diff that --secctx-compare-to wrote (observations.diff.json) as a two-column matrix
    page for a report: one row per change, cells linked to the tests among `results`."""
    data = _json_object(diff_file)
    try:
        changes = [obs.Change(**c) for c in data["changes"]]
        old, new = data["old"]["label"], data["new"]["label"]
    except (TypeError, KeyError) as err:
        raise obs.DocumentError(f"{diff_file} is missing or not a diff that --secctx-compare-to wrote "
                                f"(observations.diff.json next to the observation file; {err!r})"
                                ) from None
    versions = f"{old} → {new}"
    if old == new:  # tonight against last night on one version
        old, new = f"{old} (baseline)", f"{new} (this run)"
    runs = [Run(label, {"environment": side.get("environment") or {}, "created": side.get("created")})
            for label, side in ((old, data["old"]), (new, data["new"]))]
    rows = []
    for change in changes:
        rows.append({"case": change.case, "container": change.container, "field": change.field,
                     "values": {old: change.old, new: change.new},
                     "changes": {new: {"class": change.kind, "rule": change.rule,
                                       "change": obs.format_change(change)}}})
    rows.sort(key=lambda row: (row["case"], row["container"] or "", row["field"]))
    table = {"schema_version": MATRIX_SCHEMA_VERSION, "runs": [], "rows": rows}
    name = Path(diff_file).name  # its summary, observations.diff.txt, is beside it
    summary = _text_beside(Path(diff_file).with_name(name[:-len("json")] + "txt")) \
        if name.endswith(".diff.json") else ""
    return ReportPage("baseline-diff.html", "Changes since the baseline", versions,
                      cell_counts(table), render_html(
                          runs, table, link_table(runs, results, by_position=False), report_url,
                          summary, page_title="Changes since the baseline", back=report_url))


# --- compare (the command; run and the command line: secctx.matrix.commands) ----------------------------------------------------------------------------

def compare(files: Sequence[Path], out: Path, report_url: str = DEFAULT_REPORT_URL,
            results: Sequence[Path] = ()) -> dict[str, Path]:
    """Write matrix.json, diff.json, summary.txt and matrix.html into `out`; their paths."""
    runs = load_runs(files)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    matrix = build_matrix(runs)
    dirs = [Path(r) for r in results if Path(r).is_dir()]
    # The tests' verdicts need one results directory per run, in order.
    summary = summary_text(runs, [outcomes(d) for d in dirs] if len(dirs) == len(runs) else None)
    links = link_table(runs, dirs)
    written = {"matrix": out / "matrix.json", "diff": out / "diff.json",
               "summary": out / "summary.txt", "html": out / "matrix.html"}
    written["matrix"].write_text(json.dumps(matrix, indent=1) + "\n")
    written["diff"].write_text(json.dumps(diff_json(runs), indent=1) + "\n")
    written["summary"].write_text(summary)
    written["html"].write_text(render_html(runs, matrix, links, report_url, summary))
    return written
