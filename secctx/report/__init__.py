"""Allure: labels, steps and attachments of a case, and the results-directory files.

Categories (categories.json) key on the message prefixes of secctx.core.categories.
Cases where the recipe's claim is wrong carry the tag "recipe claim differs"
and a step that says how.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

import allure
import pytest
import yaml

from ..core import caps
from ..core.categories import CATEGORIES, NODE_LABEL, SELF_CHECK_EPIC

SEVERITY = {"blocker": allure.severity_level.BLOCKER, "critical": allure.severity_level.CRITICAL,
            "normal": allure.severity_level.NORMAL, "minor": allure.severity_level.MINOR}

_SECRET_KEYS = re.compile(r"(token|password|secret|client-key-data|client-certificate-data|"
                          r"certificate-authority-data)", re.I)


def redact(obj):
    """Copy of an object with Secret data and credential-like fields blanked."""
    if isinstance(obj, dict):
        if obj.get("kind") == "Secret":
            obj = {**obj, "data": {k: "<redacted>" for k in obj.get("data") or {}},
                   "stringData": {k: "<redacted>" for k in obj.get("stringData") or {}}}
        return {k: ("<redacted>" if _SECRET_KEYS.search(str(k)) and isinstance(v, str) else redact(v))
                for k, v in obj.items()}
    if isinstance(obj, list):
        return [redact(v) for v in obj]
    return obj


def label_case(case, env, variant: str | None = None, runtime: str = "default",
               node_kind: str = "default") -> None:
    """The case's title and labels (the RuntimeClass a parameter, and the node kind but
    the default one: the other tests' history stays theirs), and the node environment
    it runs on (as that runtime and node kind have it) as an attachment."""
    label_test(case.section, case.field, case.name, env.kubernetes_version, case.severity,
               [(up.name, up.url) for up in case.upstream], title=case_title(case, variant))
    if variant:
        allure.dynamic.parameter("storage", Plain(variant))
    allure.dynamic.parameter("runtime", Plain(runtime))
    if node_kind != "default":  # nodefacts.DEFAULT_NODE_KIND
        allure.dynamic.parameter("node kind", Plain(node_kind))
    if runtime in getattr(env, "runtimes", {}):
        env = env.under(runtime)
    if hasattr(env, "placed") and env.nodes_of(node_kind):
        env = env.placed(node_kind)
    attach_text("node environment", "\n".join(
        f"{k}={v}" for k, v in sorted(env.properties().items())))
    allure.dynamic.description(
        f"Case file: {case.source}\nManifests: {', '.join(str(m) for m in case.manifests)}\n"
        f"Field under test: {case.field}\n"
        + (f"\nRecipe claim: {case.recipe_claim}\n" if case.recipe_claim else ""))


def label_test(epic: str, feature: str, story: str, kubernetes_version: str,
               severity: str = "normal", upstream: list[tuple[str, str]] = (),
               title: str | None = None) -> None:
    """epic = recipe section, feature = field, story = manifest; version as a parameter;
    title = what a reader sees instead of the test function's name: a sentence that
    says the field and the expected value."""
    if title:
        allure.dynamic.title(title)
    allure.dynamic.epic(epic)
    allure.dynamic.feature(feature)
    allure.dynamic.story(story)
    allure.dynamic.severity(SEVERITY[severity])
    allure.dynamic.parameter("Kubernetes", Plain(kubernetes_version))
    for name, url in upstream:
        allure.dynamic.tag(name[:120])
        allure.dynamic.link(url, name=name[:80])


def title(text: str) -> None:
    """The test's title in the report (instead of its Python name)."""
    allure.dynamic.title(text)


def label_self_check(text: str) -> None:
    """Title and group of a test of the suite itself (a case file is valid), not of the
    cluster: the report's verdict page and tree keep them apart."""
    allure.dynamic.title(text)
    allure.dynamic.epic(SELF_CHECK_EPIC)


def label_node(node: str | None) -> None:
    """The node the case's pod ran on: the verdict page has a column per node when
    the cases ran on several."""
    if node:
        dynamic("label", NODE_LABEL, node)


# --- titles ------------------------------------------------------------------

TITLE_SETTINGS = 3  # securityContext settings a case title shows; the rest are counted


def case_title(case, storage: str | None = None) -> str:
    """The case, the fields it is about and the values its spec sets for them:
    "secure-pod: runAsUser 1000 / runAsGroup 3000 / fsGroup 2000 +2 more".

    The fields are the case's `field` ("runAsUser/runAsGroup/..."; a parenthesised
    note is dropped), each with the value the container under test gets: its own
    securityContext's, else the pod's. At most TITLE_SETTINGS are shown. A case
    whose field is no securityContext field shows the field as written. The
    storage variant, if any, is appended: "(local storage)".
    """
    settings = case_settings(case)
    text = " / ".join(settings[:TITLE_SETTINGS]) or case.field
    if len(settings) > TITLE_SETTINGS:
        text += f" +{len(settings) - TITLE_SETTINGS} more"
    return f"{case.name}: {text}" + (f" ({storage} storage)" if storage else "")


def case_settings(case) -> list[str]:
    """"name value" for each field of the case that its spec sets, in the case's order."""
    try:
        pod_sc = case.pod_spec().get("securityContext") or {}
        container_sc = case.container_spec().get("securityContext") or {}
        annotations = case.workload().get("metadata", {}).get("annotations") or {}
    except (LookupError, StopIteration, AttributeError, TypeError):
        return []
    settings = []
    for part in case.field.split("/"):
        name = part.split("(")[0].strip()
        if name.endswith(" annotation"):  # e.g. the AppArmor annotation of the container
            key = f"{name.removesuffix(' annotation')}/{case.container}"
            if key in annotations:
                settings.append(f"{key} {annotations[key]}")
            continue
        value = _lookup(container_sc, name)
        if value is None:
            value = _lookup(pod_sc, name)
        if value is not None:
            settings.append(f"{name} {_show(value)}")
    return settings


def _lookup(security_context: dict, dotted: str):
    value = security_context
    for key in dotted.split("."):
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


_SELINUX_PARTS = ("user", "role", "type", "level")


def _show(value) -> str:
    """A securityContext value as Kubernetes writes it, on one line."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return ",".join(_show(v) for v in value)
    if isinstance(value, dict):
        if value and set(value) <= set(_SELINUX_PARTS):  # seLinuxOptions, as the label reads
            return ":".join(str(value[k]) for k in _SELINUX_PARTS if k in value)
        if "type" in value:  # seccompProfile, appArmorProfile
            return " ".join(str(v) for v in [value["type"], value.get("localhostProfile")] if v)
        return " ".join(f"{k} {_show(v)}" for k, v in value.items())  # capabilities
    return str(value)


# --- parameters --------------------------------------------------------------

class Plain:
    """A parameter value that Allure shows as written. allure-commons renders a
    parameter with repr(), so a str shows in quotes ('v1.37.2'); this repr is the text."""

    __slots__ = ("text",)

    def __init__(self, text) -> None:
        self.text = str(text)

    def __repr__(self) -> str:
        return self.text

    __str__ = __repr__


def plain_parameters(params: dict) -> None:
    """Re-set the test's str parameters (pytest's, recorded by allure-pytest) as Plain.
    The history id does not change: allure-pytest hashes the original values."""
    for name, value in params.items():
        if isinstance(value, str):
            allure.dynamic.parameter(name, Plain(value))


# --- where steps and attachments go: Allure, or a recording --------------------
# The scheduler works on cases in background threads, where allure-pytest has no
# test (a thread without one writes into whatever test the main thread runs). There
# every step, attachment, tag and label is recorded, and the case's test replays
# the recording into its own result.

@dataclass
class _Node:
    kind: str  # "step", "attach", "dynamic"
    args: tuple
    children: list = field(default_factory=list)
    failure: BaseException | None = None


class Recording:
    """What a case wrote to the report while it ran elsewhere, in order."""

    def __init__(self) -> None:
        self.root = _Node("step", ("",))
        self._open = [self.root]
        self.checks: list = []  # the verdict's checks (record_checks), for the summary file

    def add(self, kind: str, *args) -> _Node:
        node = _Node(kind, args)
        self._open[-1].children.append(node)
        return node

    def replay(self) -> None:
        """Into the current test, as if it had run here."""
        for node in self.root.children:
            _replay(node)


def _replay(node: _Node) -> None:
    if node.kind == "attach":
        allure.attach(*node.args[:2], attachment_type=node.args[2])
    elif node.kind == "dynamic":
        getattr(allure.dynamic, node.args[0])(*node.args[1:])
    else:
        step_ = allure.step(node.args[0])
        step_.__enter__()
        for child in node.children:
            _replay(child)
        failure = node.failure
        step_.__exit__(type(failure) if failure else None, failure, None)


_here = threading.local()


@contextlib.contextmanager
def recording(into: Recording):
    """Within this block (this thread), the report is written into `into`."""
    before = getattr(_here, "recording", None)
    _here.recording = into
    try:
        yield into
    finally:
        _here.recording = before


def _recording() -> Recording | None:
    return getattr(_here, "recording", None)


@contextlib.contextmanager
def step(title: str):
    rec = _recording()
    if rec is None:
        with allure.step(title):
            yield
        return
    node = rec.add("step", title)
    rec._open.append(node)
    try:
        yield
    except BaseException as err:
        node.failure = err
        raise
    finally:
        rec._open.pop()


def _failed_step(title: str, failure: BaseException | None) -> None:
    """A step that ended with `failure` (None: passed), without raising here."""
    rec = _recording()
    if rec is not None:
        rec.add("step", title).failure = failure
        return
    step_ = allure.step(title)
    step_.__enter__()
    step_.__exit__(type(failure) if failure else None, failure, None)


def _attach(body, name: str, attachment_type) -> None:
    if body is None:  # allure-pytest cannot write None (an API answer with no body)
        body = "(nothing)"
    rec = _recording()
    if rec is not None:
        rec.add("attach", body, name, attachment_type)
    else:
        allure.attach(body, name=name, attachment_type=attachment_type)


def dynamic(what: str, *args) -> None:
    """allure.dynamic.<what>(*args) for the test this case belongs to."""
    rec = _recording()
    if rec is not None:
        rec.add("dynamic", what, *args)
    else:
        getattr(allure.dynamic, what)(*args)


def attach_text(name: str, text: str) -> None:
    _attach(text, name, allure.attachment_type.TEXT)


def attach_yaml(name: str, obj) -> None:
    _attach(yaml.safe_dump_all(obj if isinstance(obj, list) else [obj], sort_keys=False)
            if not isinstance(obj, str) else obj, name, allure.attachment_type.YAML)


def attach_json(name: str, data) -> None:
    _attach(json.dumps(data, indent=1, sort_keys=True), name, allure.attachment_type.JSON)


def attach_object(name: str, api_obj, api_client) -> None:
    """An object as the API server stores it (sanitized to plain data, redacted)."""
    attach_yaml(name, redact(api_client.sanitize_for_serialization(api_obj)))


def attach_caps(status) -> None:
    attach_text("capabilities (PID 1, decoded)", caps.table({
        "CapInh": status.cap_inh, "CapPrm": status.cap_prm, "CapEff": status.cap_eff,
        "CapBnd": status.cap_bnd, "CapAmb": status.cap_amb}))


def record_checks(checks, recipe_claim: str | None = None) -> None:
    """One step per check (verdict.Check), failed steps marked, one table attachment,
    then where the recipe's claim differs."""
    rec = _recording()
    if rec is not None:
        rec.checks = list(checks)
    for check in checks:
        # A failed step carries its line alone: an exception raised here would add a
        # Python traceback (this function's frame) to the step in the report.
        _failed_step(check.line(), None if check.ok else
                     pytest.fail.Exception(check.line(), pytrace=False))
    attach_text("observed vs expected", "\n".join(c.line() for c in checks))
    note_recipe_claim(recipe_claim)


RECIPE_CLAIM_TAG = "recipe claim differs"


def note_recipe_claim(case_claim: str | None) -> None:
    """A step and a tag (filterable in the report) where the recipe is wrong."""
    if case_claim:
        dynamic("tag", RECIPE_CLAIM_TAG)
        with step("RECIPE CLAIM DIFFERS: " + case_claim[:200]):
            attach_text("recipe claim vs Kubernetes", case_claim)


def write_results_files(results: Path, environment: dict[str, str]) -> None:
    results.mkdir(parents=True, exist_ok=True)
    lines = [f"{k}={_escape(v)}" for k, v in sorted(environment.items())]
    (results / "environment.properties").write_text("\n".join(lines) + "\n")
    (results / "categories.json").write_text(json.dumps(CATEGORIES, indent=2))
    (results / "executor.json").write_text(json.dumps(executor(), indent=2))


def executor() -> dict:
    """Who ran the suite: the CI system's name, build and URL when known."""
    if os.environ.get("GITHUB_ACTIONS") == "true":
        server = os.environ.get("GITHUB_SERVER_URL", "https://github.com")
        repo, run = os.environ.get("GITHUB_REPOSITORY", ""), os.environ.get("GITHUB_RUN_ID", "")
        return {"name": "GitHub Actions", "type": "github", "buildName":
                f"{os.environ.get('GITHUB_WORKFLOW', '')} #{os.environ.get('GITHUB_RUN_NUMBER', '')}",
                "buildOrder": int(os.environ.get("GITHUB_RUN_NUMBER", "0") or 0),
                "buildUrl": f"{server}/{repo}/actions/runs/{run}", "reportUrl": ""}
    if os.environ.get("CI"):
        return {"name": os.environ.get("CI_NAME", "CI"), "type": "ci",
                "buildName": os.environ.get("CI_BUILD_ID", "local CI run")}
    return {"name": "local", "type": "local", "buildName": os.uname().nodename}


def _escape(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n")
