"""Allure: labels, steps and attachments of a case, and the results-directory files.

Categories (categories.json) key on message prefixes the suite controls:
"NOT ENFORCED" (product defects), "INFRASTRUCTURE", "TIMEOUT"; skips carry
"ENVIRONMENT CANNOT ENFORCE". Cases where the recipe's claim is wrong carry
the tag "recipe claim differs" and a step that says how.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
from pathlib import Path

import allure
import yaml

from . import caps
from .verdict import Check, table

SEVERITY = {"blocker": allure.severity_level.BLOCKER, "critical": allure.severity_level.CRITICAL,
            "normal": allure.severity_level.NORMAL, "minor": allure.severity_level.MINOR}
ENVIRONMENT_CANNOT_ENFORCE = "ENVIRONMENT CANNOT ENFORCE"
INFRASTRUCTURE = "INFRASTRUCTURE"
TIMEOUT = "TIMEOUT"

# Regexes work in Allure 2 (Java) and Allure 3 (JavaScript): no inline flags.
CATEGORIES = [
    {"name": "Runtime did not enforce", "matchedStatuses": ["failed"],
     "messageRegex": r"[\s\S]*NOT ENFORCED[\s\S]*",
     "description": "An observed value differs from what Kubernetes promises: a product defect."},
    {"name": "Environment cannot enforce", "matchedStatuses": ["skipped"],
     "messageRegex": r"[\s\S]*ENVIRONMENT CANNOT ENFORCE[\s\S]*",
     "description": "The node lacks the kernel feature (SELinux, AppArmor); the reason says which."},
    {"name": "Timeouts", "matchedStatuses": ["failed", "broken"],
     "messageRegex": r"[\s\S]*(TIMEOUT|WaitTimeout|Timeout|timed out)[\s\S]*"},
    {"name": "Infrastructure", "matchedStatuses": ["broken", "failed"],
     "messageRegex": r"[\s\S]*(INFRASTRUCTURE|ClusterError|EngineError|ApiException|"
                     r"ErrImagePull|ImagePullBackOff|ErrImageNeverPull|MaxRetryError)[\s\S]*"},
]

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


def label_case(case, kubernetes_version: str, variant: str | None = None) -> None:
    label_test(case.section, case.field, case.name, kubernetes_version, case.severity,
               [(up.name, up.url) for up in case.upstream])
    if variant:
        allure.dynamic.parameter("storage", variant)
    allure.dynamic.description(
        f"Case file: {case.source}\nManifests: {', '.join(str(m) for m in case.manifests)}\n"
        f"Field under test: {case.field}\n"
        + (f"\nRecipe claim: {case.recipe_claim}\n" if case.recipe_claim else ""))


def label_test(epic: str, feature: str, story: str, kubernetes_version: str,
               severity: str = "normal", upstream: list[tuple[str, str]] = ()) -> None:
    """epic = recipe section, feature = field, story = manifest; version as a parameter."""
    allure.dynamic.epic(epic)
    allure.dynamic.feature(feature)
    allure.dynamic.story(story)
    allure.dynamic.severity(SEVERITY[severity])
    allure.dynamic.parameter("Kubernetes", kubernetes_version)
    for name, url in upstream:
        allure.dynamic.tag(name[:120])
        allure.dynamic.link(url, name=name[:80])


def step(title: str):
    return allure.step(title)


def attach_text(name: str, text: str) -> None:
    allure.attach(text, name=name, attachment_type=allure.attachment_type.TEXT)


def attach_yaml(name: str, obj) -> None:
    allure.attach(yaml.safe_dump_all(obj if isinstance(obj, list) else [obj], sort_keys=False)
                  if not isinstance(obj, str) else obj,
                  name=name, attachment_type=allure.attachment_type.YAML)


def attach_object(name: str, api_obj, api_client) -> None:
    """An object as the API server stores it (sanitized to plain data, redacted)."""
    attach_yaml(name, redact(api_client.sanitize_for_serialization(api_obj)))


def attach_caps(status) -> None:
    attach_text("capabilities (PID 1, decoded)", caps.table({
        "CapInh": status.cap_inh, "CapPrm": status.cap_prm, "CapEff": status.cap_eff,
        "CapBnd": status.cap_bnd, "CapAmb": status.cap_amb}))


def record_checks(checks: list[Check]) -> None:
    """One step per check, failed steps marked, then one table attachment."""
    for check in checks:
        with contextlib.suppress(AssertionError):
            with allure.step(check.line()):
                if not check.ok:
                    raise AssertionError(check.line())
    attach_text("observed vs expected", table(checks))


RECIPE_CLAIM_TAG = "recipe claim differs"


def note_recipe_claim(case_claim: str | None) -> None:
    """A step and a tag (filterable in the report) where the recipe is wrong."""
    if case_claim:
        allure.dynamic.tag(RECIPE_CLAIM_TAG)
        with allure.step("RECIPE CLAIM DIFFERS: " + case_claim[:200]):
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
