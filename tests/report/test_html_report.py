"""The offline HTML report, checked in a real browser (Debian's headless Chromium).

A small generated pytest file (allure epic/feature/story labels, steps, attachments,
one passing and one deliberately failing test) is RUN to make real allure-results;
secctx.report.html turns them into the Allure 3 report, single-file and multi-file,
carrying a history file over runs. Chromium then shows that the page renders the
suite and test names, that clicking the failed test lists its attachment (and that
the attachment opens), and that the page requests nothing outside 127.0.0.1.
A third demo test fails the way the suite's recipe cases fail (secctx's title,
parameters and verdict): its page shows the human title and the verdict, and no
object repr or Python traceback.
Observations: two documents of the recorded run's cases, NET_RAW planted in the newer one's
CapEff, go through `python -m secctx.matrix compare` and --secctx-compare-to's diff into a report
made with --matrix and --diff; Chromium goes from the report's page to the matrix in one
click, sees the changed cell marked as a regression with its case, field and versions,
and follows its link to that test's page in the report.
The screenshots land in reports/artifacts/report-screenshot.png, report-case-screenshot.png
and report-matrix-screenshot.png.
"""
from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from secctx import cases, observations, observe
from secctx.core import caps, paths
from secctx.report import html as htmlreport

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "reports" / "artifacts" / "report-screenshot.png"
CASE_SCREENSHOT = SCREENSHOT.with_name("report-case-screenshot.png")
MATRIX_SCREENSHOT = SCREENSHOT.with_name("report-matrix-screenshot.png")
VERDICT_SCREENSHOT = SCREENSHOT.with_name("report-verdict-screenshot.png")
RECORDED = ROOT / "tests" / "unit" / "recorded" / "v1.37.2-offline.json"  # a real run's observations
REPORT_NAME = "secctx report self-test"
SUITE = "test_secctx_demo"  # module name = the suite allure-pytest reports
PASSING, FAILING = "test_root_image_is_rejected", "test_root_filesystem_is_read_only"
ATTACHMENT = "container-log"
FAILURE = "write to / succeeded"

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--window-size=1400,900",
    # Nothing can leave the machine even if the page tried: names other than
    # 127.0.0.1 do not resolve. Requests are also logged and checked below.
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]

DEMO_TESTS = textwrap.dedent(f'''
    import os

    import allure
    import pytest


    @allure.epic("Pod Security Context")
    @allure.feature("runAsNonRoot")
    @allure.story("an image that runs as root is refused")
    @pytest.mark.parametrize("kubernetes", ["v1.37.0"])
    def {PASSING}(kubernetes):
        with allure.step("create the pod with runAsNonRoot: true"):
            allure.attach("Error: container has runAsNonRoot and image will run as root",
                          name="pod-events", attachment_type=allure.attachment_type.TEXT)
        with allure.step("the kubelet refuses to start the container"):
            pass


    @allure.epic("Pod Security Context")
    @allure.feature("readOnlyRootFilesystem")
    @allure.story("writes to / are refused")
    @pytest.mark.parametrize("kubernetes", ["v1.37.0"])
    def {FAILING}(kubernetes):
        with allure.step("create the pod with readOnlyRootFilesystem: true"):
            pass
        with allure.step("write a file to /"):
            allure.attach(f"touch /probe: exit {{0}} (expected: Read-only file system)",
                          name="{ATTACHMENT}", attachment_type=allure.attachment_type.TEXT)
            # SECCTX_DEMO_FIXED=1 makes this pass, to give the history a green run.
            assert os.environ.get("SECCTX_DEMO_FIXED") == "1", "{FAILURE}"
''')

# A failing case reported the way suites/test_recipe_cases.py reports it, through
# secctx's own functions: title and labels (report.label_case), one step per check
# (report.record_checks), the verdict (verdict.assert_holds). Its argument is the
# suite's session object, whose repr a Python traceback would print.
CASE, STORAGE = "fsgroup-demo", "local"
CASE_TITLE = "fsgroup-demo: fsGroup 2000 / fsGroupChangePolicy OnRootMismatch (local storage)"
CASE_VERDICT = ["NOT ENFORCED: 2 of 4 checks differ:",
                "FAIL /data group: expected 2000, observed 0  "
                "(fsGroup 2000: the kubelet sets the group of a local volume)",
                "FAIL /data setgid bit: expected True, observed False"]
DEMO_TESTS += textwrap.dedent(f'''

    import json
    from pathlib import Path
    from types import SimpleNamespace

    from secctx import cases, observe, report, verdict
    from secctx.oracle import nodefacts
    from secctx.core import paths
    from secctx.run import plugin, session

    CASE = next(c for c in cases.load_cases([paths.CASES])[0] if c.name == "{CASE}")
    RECORDED = json.loads(Path({str(RECORDED)!r}).read_text())["cases"]


    @pytest.fixture
    def demo_suite():
        return session.Suite(kube=SimpleNamespace(), cluster=SimpleNamespace(), run_id="demo-run",
                             env=nodefacts.Environment(kubernetes_version="v1.37.0"))


    @pytest.mark.parametrize("case", [plugin.CaseParam(CASE, "{STORAGE}")], ids=repr)
    def test_recipe_case(case, demo_suite):
        report.label_case(case.case, demo_suite.env, case.storage)
        fixed = os.environ.get("SECCTX_DEMO_FIXED") == "1"
        why = "fsGroup 2000: the kubelet sets the group of a local volume"
        checks = [verdict.Check("outcome", "running", "running", "the spec asks for nothing refused"),
                  verdict.Check("uid", 1000, 1000, "runAsUser 1000 (pod securityContext)"),
                  verdict.Check("/data group", 2000, 2000 if fixed else 0, why),
                  verdict.Check("/data setgid bit", True, fixed, why + ", with the setgid bit")]
        report.record_checks(checks, case.case.recipe_claim)
        # As runner.run_case does: the observation, and the label naming it in the results.
        demo_suite.observations.record_case(case.id, case.case.container,
                                            observe.from_record(RECORDED[case.id], case.case))
        verdict.assert_holds(SimpleNamespace(cannot_enforce=None), checks)
''')


# --------------------------------------------------------------------------- results


def _run_demo_suite(workdir: Path, results: Path, fixed: bool) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / f"{SUITE}.py").write_text(DEMO_TESTS)
    (workdir / "pytest.ini").write_text("[pytest]\n")  # keep the project's config out
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTEST_", "SECCTX_DEMO"))}
    if fixed:
        env["SECCTX_DEMO_FIXED"] = "1"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
         "--alluredir", str(results), f"{SUITE}.py"],
        cwd=workdir, env=env, capture_output=True, text=True, timeout=120)
    want = 0 if fixed else 1
    assert proc.returncode == want, f"demo suite exit {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """Results of three runs (failed, fixed, failed again) and their reports.

    The history file is carried across the runs like the nightly job does, so the
    last reports show the failing test as flaky (it passed in between).
    """
    base = tmp_path_factory.mktemp("report")
    red, green = base / "red-results", base / "green-results"
    _run_demo_suite(base / "suite", red, fixed=False)
    _run_demo_suite(base / "suite", green, fixed=True)

    history = base / "history.jsonl"
    start = time.monotonic()
    htmlreport.generate(red, base / "run1", False, history, REPORT_NAME)
    htmlreport.generate(green, base / "run2", False, history, REPORT_NAME)
    single = htmlreport.generate(red, base / "single", True, history, REPORT_NAME)
    multi = htmlreport.generate(red, base / "multi", False, history, REPORT_NAME)
    return {"red": red, "history": history, "single": single, "multi": multi,
            "generate_seconds": time.monotonic() - start}


def test_demo_results_are_realistic(reports):
    results = [json.loads(p.read_text()) for p in reports["red"].glob("*-result.json")]
    by_name = {r["name"].split("[")[0]: r for r in results}
    assert set(by_name) == {PASSING, FAILING, CASE_TITLE}
    assert by_name[PASSING]["status"] == "passed"
    assert by_name[FAILING]["status"] == "failed"
    labels = {lab["name"]: lab["value"] for lab in by_name[FAILING]["labels"]}
    assert labels["epic"] == "Pod Security Context"
    assert labels["feature"] == "readOnlyRootFilesystem"
    assert labels["suite"] == SUITE
    # str parameters show without quotes (secctx.run.plugin re-sets them as report.Plain)
    assert {p["name"]: p["value"] for p in by_name[FAILING]["parameters"]} == {"kubernetes": "v1.37.0"}
    steps = by_name[FAILING]["steps"]
    assert [s["name"] for s in steps] == ["create the pod with readOnlyRootFilesystem: true",
                                          "write a file to /"]
    attachment = steps[1]["attachments"][0]
    assert attachment["name"] == ATTACHMENT
    assert (reports["red"] / attachment["source"]).exists()


def test_failing_case_result_carries_verdict_not_python(reports):
    """The result as secctx writes it: the human title, plain parameters, the verdict
    as the message, and no traceback in the test or its failed steps."""
    results = [json.loads(p.read_text()) for p in reports["red"].glob("*-result.json")]
    case = next(r for r in results if r["name"] == CASE_TITLE)
    assert case["status"] == "failed"
    assert {p["name"]: p["value"] for p in case["parameters"]} == {
        "case": f"{CASE}[{STORAGE}-storage]", "Kubernetes": "v1.37.0", "storage": STORAGE,
        "runtime": "default"}
    details = case["statusDetails"]
    assert details["message"].startswith("Failed: " + "\n".join(CASE_VERDICT[:2])), details
    failed_steps = [s for s in case["steps"] if s["status"] == "failed"]
    assert [s["name"].split(":")[0] for s in failed_steps] == ["FAIL /data group", "FAIL /data setgid bit"]
    for text in [details["message"], details.get("trace") or ""] + [
            s["statusDetails"].get("message", "") + (s["statusDetails"].get("trace") or "")
            for s in failed_steps]:
        assert not python_leaks(text), (python_leaks(text), text)


def test_history_file_carries_runs_and_marks_flaky(reports):
    lines = reports["history"].read_text().splitlines()
    assert len(lines) == 4, "one history entry per generated report"
    assert all(REPORT_NAME == json.loads(line)["name"] for line in lines)
    data = reports["multi"].parent / "data" / "test-results"
    flaky = {}
    for p in data.glob("*.json"):
        tr = json.loads(p.read_text())
        flaky[tr["name"].split("[")[0]] = tr.get("flaky")
    assert flaky == {PASSING: False, FAILING: True, CASE_TITLE: True}, \
        "failed, passed, failed again: flaky"


def test_single_file_report_is_self_contained(reports):
    index = reports["single"]
    assert not (index.parent / "data").exists(), "single file: no data directory beside it"
    html = index.read_text()
    assert "googletagmanager" not in html and "gtag(" not in html
    assert not re.search(r"<(script|link|img)\b[^>]*\b(src|href)=\"(https?:)?//", html)
    assert reports["generate_seconds"] < 40


def test_multi_file_report_has_no_outside_references(reports):
    index = reports["multi"]
    assert (index.parent / "data" / "attachments").is_dir()
    html = index.read_text()
    assert "googletagmanager" not in html
    assert not re.search(r"<(script|link|img)\b[^>]*\b(src|href)=\"(https?:)?//", html)


def test_cli_fails_with_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "secctx.report.html", "--results", str(tmp_path / "none"),
                           "--out", str(tmp_path / "html")], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "does not exist" in proc.stderr and "--alluredir" in proc.stderr


# Signs of Python in what a reader sees: object reprs, traceback frames, pytest's
# source listing and assertion introspection.
PYTHON_LEAKS = {
    "object repr": r"<[\w.]+ object at 0x[0-9a-fA-F]+>",
    "dataclass repr of the suite": r"\bSuite\(",
    "SimpleNamespace repr": r"\b(SimpleNamespace|namespace)\(",
    "traceback header": r"Traceback \(most recent call last\)",
    "traceback frame": r'File "[^"\n]+", line \d+',
    "pytest frame location": r"\.py:\d+: \w+",
    "pytest source listing": r"(?m)^(>|E) {3,}\S|\bdef test_\w+\(",
    "assertion introspection": r"(?m)^\s*\+\s+where ",
}


def python_leaks(text: str) -> list[str]:
    return [what for what, pattern in PYTHON_LEAKS.items() if re.search(pattern, text)]


# --------------------------------------------------------------------------- browser


def _chromium() -> str:
    """Debian's chromium; SECCTX_CHROMIUM or the names GitHub's Ubuntu runners use also do."""
    for name in (os.environ.get("SECCTX_CHROMIUM"), "chromium", "/usr/bin/chromium",
                 "chromium-browser", "google-chrome"):
        path = name and shutil.which(name)
        if path:
            return path
    pytest.skip("headless Chromium is not installed (no chromium on PATH, no /usr/bin/chromium); "
                "install it with: apt-get install -y chromium")


def test_single_file_report_renders_from_disk(reports, tmp_path):
    chromium = _chromium()
    proc = subprocess.run(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
         "--virtual-time-budget=15000", "--dump-dom", reports["single"].as_uri()],
        capture_output=True, text=True, timeout=60)
    dom = proc.stdout
    assert proc.returncode == 0, proc.stderr[-2000:]
    # The tree (rendered by the app, not in the HTML as written) shows suite and tests.
    leaves = re.findall(r'data-testid="tree-leaf-title"[^>]*>([^<]+)<', dom)
    assert leaves, "no test tree rendered; the report app did not start"
    # Grouped as a platform engineer reads it: epic (recipe section), feature
    # (field), story (manifest); the group holding a failure opens by itself.
    assert f"{FAILING}[v1.37.0]" in leaves, leaves
    sections = re.findall(r'data-testid="tree-section-title"[^>]*>([^<]+)<', dom)
    for group in ("Pod Security Context", "runAsNonRoot", "readOnlyRootFilesystem"):
        assert group in sections, f"{group!r} not rendered as a tree section: {sections}"
    assert re.search(rf'data-testid="report-title"[^>]*>{re.escape(REPORT_NAME)}<', dom)
    assert re.search(r'data-testid="counter"[^>]*status-failed[^>]*>2<', dom), "2 failed counter"


def test_single_file_report_opened_from_disk_answers_first_and_one_click_leads_to_the_failure(
        reports, browser):
    """The first screen, from file://: the verdict (a NOT ENFORCED field by runtime), its
    failed checks one click away, and the failed test's page in the report one more."""
    cdp = browser
    cdp.call("Page.enable")
    cdp.call("Emulation.setDeviceMetricsOverride", width=1400, height=900, deviceScaleFactor=1,
             mobile=False)
    cdp.call("Page.navigate", url=reports["single"].as_uri())
    headline = cdp.wait_for("document.querySelector('#secctx-verdict summary')?.innerText",
                            "the verdict's headline")
    # The demo's case fails its fsGroup checks: the field is named, with its runtime.
    assert "NOT ENFORCED: fsGroup (default)" in headline, headline
    # Allure's app routes by the URL's hash once it has started: links are followed after that.
    cdp.wait_for("document.querySelector('[data-testid=tree-leaf]') !== null", "the report's tree")
    cell = cdp.js("[...document.querySelectorAll('#secctx-verdict td')].map(td => [td.className, "
                  "td.innerText.split('\\n')[0]])")
    assert ["failed", "not enforced (1 test)"] in cell, cell
    cdp.click("#secctx-verdict td.failed summary", "not enforced")
    cdp.wait_for("[...document.querySelectorAll('#secctx-verdict td.failed table.checks td')]"
                 ".some(td => td.innerText === '/data group')", "the failed check in the cell")
    VERDICT_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    shot = cdp.call("Page.captureScreenshot", format="png")
    VERDICT_SCREENSHOT.write_bytes(base64.b64decode(shot["data"]))
    # The test's link opens its page in the report below (the verdict folds away).
    cdp.click("#secctx-verdict td.failed a", "fsgroup-demo")
    cdp.wait_for(f"document.body.innerText.includes({json.dumps(CASE_VERDICT[1][:40])})",
                 "the failed test's page with its verdict")
    assert cdp.js("document.querySelector('#secctx-verdict details').open") is False


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextlib.contextmanager
def _serving(directory: Path):
    """The directory over HTTP on 127.0.0.1; its URL."""
    handler = functools.partial(_Quiet, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def served_report(reports):
    with _serving(reports["multi"].parent) as url:
        yield url


class DevTools:
    """A tiny Chrome DevTools Protocol client over one page's websocket."""

    def __init__(self, ws_url: str):
        import websocket  # websocket-client
        self.ws = websocket.create_connection(ws_url, timeout=30, suppress_origin=True)
        self.next_id = 0
        self.events: list[dict] = []

    def call(self, method: str, **params) -> dict:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    def js(self, expression: str):
        res = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in res:
            raise RuntimeError(f"page script failed: {res['exceptionDetails']}")
        return res["result"].get("value")

    def wait_for(self, expression: str, what: str, timeout: float = 20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.js(expression)
            if value:
                return value
            time.sleep(0.2)
        text = self.js("document.body ? document.body.innerText.slice(0, 1500) : ''")
        raise AssertionError(f"timed out waiting for {what}; page text:\n{text}")

    def click(self, selector: str, text: str):
        """A real mouse click on the centre of the element matching selector + text."""
        box = self.js(f"""(() => {{
            const el = [...document.querySelectorAll({json.dumps(selector)})]
                .find(e => e.innerText.includes({json.dumps(text)}));
            if (!el) return null;
            el.scrollIntoView({{block: "center"}});
            const r = el.getBoundingClientRect();
            return {{x: r.x + r.width / 2, y: r.y + r.height / 2}};
        }})()""")
        assert box, f"no {selector} with text {text!r} on the page"
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=box["x"], y=box["y"],
                      button="left", clickCount=1)

    def close(self):
        self.ws.close()


@pytest.fixture
def browser(tmp_path):
    chromium = _chromium()
    profile = tmp_path / "profile"
    proc = subprocess.Popen(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0",
         "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 20
        while not (port_file.exists() and port_file.read_text().count("\n") >= 1):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"chromium did not open its DevTools port: {proc.stderr.read()[-2000:]}")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as resp:
            page = next(t for t in json.load(resp) if t["type"] == "page")
        tools = DevTools(page["webSocketDebuggerUrl"])
        yield tools
        tools.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_report_in_browser_lists_failed_test_attachment_and_stays_local(reports, served_report, browser):
    cdp = browser
    cdp.call("Network.enable")
    cdp.call("Page.enable")
    cdp.call("Emulation.setDeviceMetricsOverride", width=1400, height=900, deviceScaleFactor=1,
             mobile=False)
    cdp.call("Page.navigate", url=served_report + "index.html")

    # The tree shows the groups (epic, features) and the failed test.
    titles = cdp.wait_for(
        "[...document.querySelectorAll('[data-testid=tree-leaf-title]')].map(e => e.innerText)",
        "the test tree")
    assert f"{FAILING}[v1.37.0]" in titles, titles
    body = cdp.js("document.body.innerText")
    assert "Pod Security Context" in body and "runAsNonRoot" in body and REPORT_NAME in body

    # Open the failed test: the failure, its steps and the attachment are listed.
    cdp.click("[data-testid=tree-leaf]", FAILING)
    cdp.wait_for(f"document.body.innerText.includes({json.dumps(FAILURE)})", "the failure message")
    cdp.wait_for(f"document.body.innerText.includes({json.dumps(ATTACHMENT)})",
                 f"the attachment {ATTACHMENT!r} in the failed test")
    assert "write a file to /" in cdp.js("document.body.innerText")

    # The attachment opens: its content is fetched from the report's data/ and shown
    # inside the attachment's own element (the trace quotes the source, not the content).
    cdp.click("[data-testid=test-result-attachment-header]", ATTACHMENT)
    cdp.wait_for(f"""[...document.querySelectorAll('[data-testid=test-result-attachment]')]
        .some(e => e.innerText.includes({json.dumps(ATTACHMENT)})
                   && e.innerText.includes('touch /probe: exit 0'))""", "the attachment's content")

    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    shot = cdp.call("Page.captureScreenshot", format="png")
    SCREENSHOT.write_bytes(base64.b64decode(shot["data"]))

    # Every request the page made stayed on the local server (or inline data).
    urls = [e["params"]["request"]["url"] for e in cdp.events
            if e["method"] == "Network.requestWillBeSent"]
    assert any(u.startswith(served_report + "data/attachments/") for u in urls), urls
    outside = [u for u in urls if not u.startswith((served_report, "data:", "blob:"))]
    assert not outside, f"the report requested outside 127.0.0.1: {outside}"
    failed = [e["params"] for e in cdp.events if e["method"] == "Network.loadingFailed"]
    assert not failed, f"requests failed: {failed}"


def _tree(cdp, url: str) -> list[str]:
    """Open the report at its tree; the leaves' titles."""
    cdp.call("Page.navigate", url=url + "index.html")
    return cdp.wait_for(
        "[...document.querySelectorAll('[data-testid=tree-leaf-title]')].map(e => e.innerText)",
        "the test tree")


def _open_test(cdp, url: str, leaf: str, shown: str) -> str:
    """From the tree, click the leaf holding `leaf`; once `shown` is on the page, its text."""
    _tree(cdp, url)
    cdp.click("[data-testid=tree-leaf]", leaf)
    cdp.wait_for(f"document.body.innerText.includes({json.dumps(shown)})", f"{shown!r} on the page")
    time.sleep(0.5)  # the rest of the test's page (steps, attachments) renders after its header
    return cdp.js("document.body.innerText")


def test_failing_case_in_browser_reads_without_python(reports, served_report, browser):
    cdp = browser
    cdp.call("Page.enable")
    cdp.call("Emulation.setDeviceMetricsOverride", width=1400, height=1600, deviceScaleFactor=1,
             mobile=False)
    titles = _tree(cdp, served_report)
    assert CASE_TITLE in titles, f"the case is not listed under its human title: {titles}"

    # The control: a plain `assert` in a test (the demo's FAILING) shows Python in the
    # page, and the checks below see it.
    control = _open_test(cdp, served_report, FAILING, FAILURE)
    assert {"pytest source listing", "pytest frame location", "assertion introspection"} <= set(
        python_leaks(control)), python_leaks(control)

    page = _open_test(cdp, served_report, CASE_TITLE, CASE_VERDICT[1].split("  ")[0])
    header = cdp.js("document.querySelector('[data-testid=test-result-info-title]').innerText")
    assert header.strip() == CASE_TITLE
    # The verdict leads the failure: field, expected, observed and why, as secctx wrote it.
    error = cdp.js("document.querySelector('[data-testid=test-result-error-message]').innerText")
    assert error.startswith("Failed: " + CASE_VERDICT[0]), error
    for line in CASE_VERDICT:
        assert line in error, f"{line!r} not in the error shown:\n{error}"
    # Plain parameter values.
    items = cdp.js("""[...document.querySelectorAll('[data-testid=metadata-item]')].map(e => [
        e.querySelector('[data-testid=metadata-item-key]')?.innerText,
        e.querySelector('[data-testid=metadata-item-value]')?.innerText])""")
    params = {k: v for k, v in items if k in ("case", "Kubernetes", "storage")}
    assert params == {"case": f"{CASE}[{STORAGE}-storage]", "Kubernetes": "v1.37.0", "storage": STORAGE}
    assert "'v1.37.0'" not in page
    # Nothing Python: no object repr, no traceback, anywhere on the test's page.
    assert not python_leaks(page), (python_leaks(page), page)

    CASE_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    shot = cdp.call("Page.captureScreenshot", format="png")
    CASE_SCREENSHOT.write_bytes(base64.b64decode(shot["data"]))


# --------------------------------------------------------------------------- observations

CASE_ID = f"{CASE}[{STORAGE}-storage]"  # the demo case's observation key
OLD, NEW = "v1.36.3", "v1.37.0"  # NEW: the demo results' Kubernetes version
CAP_EFF = "process.capabilities.CapEff"
REGRESSION_BG = "rgb(255, 215, 213)"  # matrix.html's red


def _observations(version: str, plant_net_raw: bool = False) -> dict:
    """The document a run of every recorded case makes (the suite's own path: from_record,
    the collector); with `plant_net_raw`, the demo case's CapEff also holds NET_RAW."""
    recorded = json.loads(RECORDED.read_text())
    by_name = {c.name: c for c in cases.load_cases([paths.CASES])[0]}
    collector = observations.Collector()
    collector.environment = observations.environment(
        {**recorded["environment"], "kubernetes_version": version})
    for key, record in recorded["cases"].items():
        case = by_name[key.split("[")[0]]
        collector.record_case(key, case.container, observe.from_record(record, case))
    doc = collector.document()
    if plant_net_raw:
        cap_eff = doc["cases"][CASE_ID]["containers"]["app"]["process"]["capabilities"]["CapEff"]
        assert "NET_RAW" not in cap_eff["names"]
        cap_eff.update(observations.capability_set(caps.encode(cap_eff["names"] + ["NET_RAW"])))
    return doc


def _run_cli(*args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, f"{args[0]} exit {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def matrix_report(reports, tmp_path_factory):
    """The failing run's report with a version matrix (OLD → NEW, NET_RAW planted in NEW)
    and a baseline diff (NEW tonight against NEW last night, the same plant), made by the
    commands a user runs."""
    base = tmp_path_factory.mktemp("matrix")
    old = observations.write(base / f"{OLD}.json", _observations(OLD))
    new = observations.write(base / f"{NEW}.json", _observations(NEW, plant_net_raw=True))
    _run_cli("secctx.matrix", "compare", str(old), str(new), "--out", str(base / "matrix"),
             "--results", str(reports["red"]))
    tonight = base / "reports" / "observations.json"  # what --secctx-compare-to writes at the end
    observations.compare(_observations(NEW), observations.load(new), tonight)
    proc = _run_cli("secctx.report.html", "--results", str(reports["red"]), "--out", str(base / "html"),
                    "--name", REPORT_NAME, "--matrix", str(base / "matrix"),
                    "--diff", str(observations.diff_path(tonight)))
    case = next(json.loads(p.read_text()) for p in reports["red"].glob("*-result.json")
                if json.loads(p.read_text())["name"] == CASE_TITLE)
    return {"index": base / "html" / "index.html", "stdout": proc.stdout,
            "case_page": hashlib.md5(case["uuid"].encode()).hexdigest()}


def test_report_carries_the_matrix_and_the_baseline_diff_linked_from_its_top(matrix_report):
    index = matrix_report["index"]
    html = index.read_text()
    nav = re.search(r'<nav id="secctx-pages"[^>]*>(.*?)</nav>', html)
    assert nav, "no line of links at the top of the report"
    assert re.findall(r'href="([^"]+)"', nav.group(1)) == ["matrix.html", "baseline-diff.html"]
    assert f"Version matrix</b> {OLD} → {NEW}: 1 regression" in nav.group(1)
    assert f"Changes since the baseline</b> {NEW} → {NEW}: 1 regression" in nav.group(1)
    assert 'class="regression"' in nav.group(1)
    assert not re.search(r"<(script|link|img)\b[^>]*\b(src|href)=\"(https?:)?//", html)
    for page in ("matrix.html", "baseline-diff.html"):
        text = (index.parent / page).read_text()
        assert "<script" not in text and not re.search(r"(src|href)=\"(https?:)?//", text)
        assert f'href="index.html#{matrix_report["case_page"]}"' in text, page
        assert re.search(rf"linked from its top: \S*/{page}$", matrix_report["stdout"], re.M), page


def test_cli_with_a_matrix_directory_without_matrix_json_fails_with_one_line(reports, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "secctx.report.html", "--results", str(reports["red"]),
                           "--out", str(tmp_path / "html"), "--matrix", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "matrix.json is missing" in proc.stderr and "secctx.matrix" in proc.stderr
    assert not (tmp_path / "html").exists()


def _changed_cells(cdp) -> list[dict]:
    """Each highlighted cell of the page: its row's case, container and field, its column,
    its class, text, hover text and colour, and the cell to its left."""
    return cdp.js("""[...document.querySelectorAll('table.matrix td.cell.changed')].map(td => {
        const tr = td.closest('tr'), cells = [...tr.children];
        const heads = [...document.querySelectorAll('table.matrix thead th')].map(th => th.innerText);
        const left = td.previousElementSibling;
        return {case: cells[0].innerText, container: cells[1].innerText, field: cells[2].innerText,
                column: heads[cells.indexOf(td)], run: td.dataset.run, classes: td.className,
                text: td.innerText, title: td.title, background: getComputedStyle(td).backgroundColor,
                visible: td.offsetParent !== null, left_column: heads[cells.indexOf(left)],
                left_classes: left.className, left_text: left.innerText,
                href: td.querySelector('a')?.getAttribute('href')};
    })""")


def _outside_requests(cdp, url: str) -> list[str]:
    urls = [e["params"]["request"]["url"] for e in cdp.events if e["method"] == "Network.requestWillBeSent"]
    return [u for u in urls if not u.startswith((url, "data:", "blob:"))]


def test_matrix_in_browser_one_click_from_the_report_then_to_the_changed_cells_test(
        matrix_report, browser):
    cdp = browser
    cdp.call("Network.enable")
    cdp.call("Page.enable")
    cdp.call("Emulation.setDeviceMetricsOverride", width=1400, height=900, deviceScaleFactor=1,
             mobile=False)
    with _serving(matrix_report["index"].parent) as url:
        assert CASE_TITLE in _tree(cdp, url), "the report's page did not render"
        # One click from the report's page: the link at its top, saying what changed.
        link = cdp.js("document.querySelector('#secctx-pages a[href=\"matrix.html\"]').innerText")
        assert link.startswith(f"Version matrix {OLD} → {NEW}: 1 regression"), link
        cdp.click("#secctx-pages a", "Version matrix")
        cdp.wait_for("location.pathname.endsWith('/matrix.html') && !!document.querySelector('table.matrix')",
                     "the matrix page")
        assert cdp.js("document.querySelector('#verdict').innerText").startswith("1 field(s) changed")
        [cell] = _changed_cells(cdp)
        assert (cell["case"], cell["container"], cell["field"]) == (CASE_ID, "app", CAP_EFF)
        assert (cell["left_column"], cell["column"], cell["run"]) == (OLD, NEW, NEW)
        assert "regression" in cell["classes"] and cell["background"] == REGRESSION_BG
        assert "NET_RAW" in cell["text"] and "regression" in cell["text"]
        assert "caps-added" in cell["title"] and "+NET_RAW" in cell["title"]
        assert "changed" not in cell["left_classes"] and cell["left_text"] == "(none)"
        assert cell["visible"] and cdp.js(
            "[...document.querySelectorAll('table.matrix tbody tr')].filter(tr => tr.offsetParent).length"
        ) == 1, "only the row that changed shows at first"
        assert cell["href"] == f"index.html#{matrix_report['case_page']}"

        MATRIX_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shot = cdp.call("Page.captureScreenshot", format="png")
        MATRIX_SCREENSHOT.write_bytes(base64.b64decode(shot["data"]))

        # The cell's link lands on that test's page in the report.
        cdp.click("table.matrix td.cell.changed a", "NET_RAW")
        header = cdp.wait_for(
            "document.querySelector('[data-testid=test-result-info-title]')?.innerText", "the test's page")
        assert header.strip() == CASE_TITLE
        assert cdp.js("location.pathname").endswith("/index.html")
        assert cdp.js("location.hash") == "#" + matrix_report["case_page"]

        assert not _outside_requests(cdp, url), "the pages requested outside 127.0.0.1"
        failed = [e["params"] for e in cdp.events if e["method"] == "Network.loadingFailed"]
        assert not failed, f"requests failed: {failed}"


def test_baseline_diff_in_browser_one_click_from_the_report(matrix_report, browser):
    cdp = browser
    cdp.call("Network.enable")
    cdp.call("Page.enable")
    with _serving(matrix_report["index"].parent) as url:
        _tree(cdp, url)
        cdp.click("#secctx-pages a", "Changes since the baseline")
        # The path changes when the new document commits, before it is parsed (CI saw no cells).
        cdp.wait_for("location.pathname.endsWith('/baseline-diff.html') && document.readyState === 'complete'",
                     "the baseline diff page")
        [cell] = _changed_cells(cdp)
        assert (cell["case"], cell["field"]) == (CASE_ID, CAP_EFF)
        assert (cell["left_column"], cell["column"]) == (f"{NEW} (baseline)", f"{NEW} (this run)")
        assert cell["background"] == REGRESSION_BG and "caps-added" in cell["title"]
        assert cell["href"] == f"index.html#{matrix_report['case_page']}"
        # And back to the report.
        cdp.click("a#back", "the test report")
        cdp.wait_for("!!document.querySelector('[data-testid=tree-leaf-title]')", "the report again")
        assert not _outside_requests(cdp, url), "the pages requested outside 127.0.0.1"
