"""Case files: a recipe manifest plus the observations expected from it.

A platform team adds a case by writing YAML, not Python. The format has one
definition, the JSON Schema secctx/schema/case.schema.json: `load_cases`
validates every file with it, this module reads its lists (sections, skip
features, expect keys, ...) from it, and fixtures/cases/README.md's reference
part is generated from it (`python -m secctx.cases.schemadoc --write`). Each problem
is explained as file:line, and a bad file never stops the good ones from
loading. What a schema cannot say (files exist, names exist in the manifests,
no key twice) is checked here, after it.
"""
from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from enum import StrEnum
from pathlib import Path
from string import Template
from typing import Any

import yaml
from jsonschema import Draft202012Validator, ValidationError

from ..core import paths, podspec

SCHEMA_PATH = paths.CASE_SCHEMA
SCHEMA: dict[str, Any] = json.loads(SCHEMA_PATH.read_text())
_VALIDATOR = Draft202012Validator(SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER)

KeyPath = tuple  # e.g. ("expect", "volumes", "/data", "gid") or ("upstream", 0, "url")


# --- reading the schema ------------------------------------------------------

def resolve(node: dict) -> dict:
    """`node` with its local $ref followed; the node's own keywords win."""
    while isinstance(node, dict) and "$ref" in node:
        target: Any = SCHEMA
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def definition(name: str) -> dict:
    return resolve(SCHEMA["$defs"][name])


def options(node: dict) -> list[dict]:
    """The allowed values of a choice node (enum, or oneOf/anyOf of consts), as
    {const, description, ...}; [] if the node is not a choice."""
    node = resolve(node)
    if "enum" in node:
        return [{"const": value} for value in node["enum"]]
    branches = node.get("oneOf") or node.get("anyOf") or []
    if branches and all("const" in b for b in branches):
        return branches
    return []


def choices(node: dict) -> tuple:
    return tuple(option["const"] for option in options(node))


SECTIONS: tuple[str, ...] = choices(definition("section"))
SEVERITIES: tuple[str, ...] = choices(definition("severity"))
OUTCOMES: tuple[str, ...] = choices(definition("status"))
# Volume source of the PersistentVolume bound to a claim: it decides whether the
# kubelet applies fsGroup (it never does for hostPath).
STORAGE_KINDS: tuple[str, ...] = choices(definition("storage_kind"))
# skip_unless feature -> the reason shown when the node lacks it.
SKIP_FEATURES: dict[str, str] = {o["const"]: o["description"] for o in options(definition("skip_feature"))}
# The "Seccomp:" line of /proc/<pid>/status.
SECCOMP_MODES: dict[str, int] = {o["const"]: o["x-value"] for o in options(definition("seccomp_mode"))
                                 if "x-value" in o}
_EXPECT_PROPERTIES: dict[str, dict] = definition("expect")["properties"]
# expect key -> (x-kind: how the loader converts it, x-check: the verdict's check it is compared with).
EXPECT_FIELDS: dict[str, tuple[str, str]] = {key: (prop["x-kind"], prop["x-check"])
                                             for key, prop in _EXPECT_PROPERTIES.items()}


@dataclass(frozen=True)
class CaseError:
    path: Path
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else str(self.path)
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class Upstream:
    name: str
    url: str


class Status(StrEnum):
    """Where a case's workload ends (the schema's `outcome.status`)."""
    RUNNING = "running"    # the container runs: the probe reads what the kernel applied
    REJECTED = "rejected"  # the kubelet or runtime never starts it (a reason, a message)
    CRASHING = "crashing"  # it starts and exits (its logs, its exit)
    INVALID = "invalid"    # the API server refuses the object (its answer)

    def __repr__(self) -> str:  # checks and reports print the value, as before
        return repr(self.value)


STOPPED = (Status.REJECTED, Status.CRASHING, Status.INVALID)  # never observed running


@dataclass(frozen=True)
class Outcome:
    """What the container does: keeps running, is never started, or starts and dies."""
    status: Status = Status.RUNNING
    reason: str | None = None   # substring of a waiting/terminated reason or the pod's reason
    message: str | None = None  # substring of the matching message
    logs: str | None = None     # substring of the (previous) container log; crashing only

    def __post_init__(self):
        object.__setattr__(self, "status", Status(self.status))  # a bad name fails here


@dataclass(frozen=True)
class Command:
    """A shell command run in the container, with the result the case expects."""
    run: str
    exit: int = 0
    output: str | None = None  # substring of stdout+stderr
    why: str = ""


@dataclass(frozen=True)
class Availability:
    """The Kubernetes versions where a case applies: from minor version `since` on."""
    since: str  # "v1.35"
    why: str    # why not before (feature gate and stage)

    def lacks(self, kubernetes_version: str) -> bool:
        """`kubernetes_version` (v1.34.4, v1.34.4+k3s1) is older than `since`."""
        return minor_version(kubernetes_version) < minor_version(self.since)


def minor_version(version: str) -> tuple[int, int]:
    """(1, 34) of v1.34, v1.34.4 or v1.34.4+k3s1."""
    major, minor = version.lstrip("v").split(".")[:2]
    return int(major), int("".join(ch for ch in minor if ch.isdigit()) or 0)


@dataclass(frozen=True)
class Variant:
    """Expectations that hold only on one storage kind (see STORAGE_KINDS)."""
    name: str
    storage: str | None  # None: any storage kind
    expect: dict[str, Any]
    recipe_claim: str | None


@dataclass
class Case:
    source: Path
    name: str
    section: str
    field: str
    manifests: list[Path]
    pod: str | None         # name of the Pod under test, or
    deployment: str | None  # name of the Deployment whose pods are under test
    container: str
    severity: str
    upstream: list[Upstream] = dataclass_field(default_factory=list)
    outcome: Outcome = Outcome()
    expect: dict[str, Any] = dataclass_field(default_factory=dict)
    recipe_claim: str | None = None
    available: Availability | None = None  # None: every version the suite runs on
    skip_unless: str | None = None
    # What Kubernetes promises on a node without the skip_unless feature (e.g. a
    # fail-closed rejection for AppArmor); None: only the label checks are skipped.
    when_unsupported: Outcome | None = None
    variants: list[Variant] = dataclass_field(default_factory=list)
    seccomp_profiles: dict[str, Path] = dataclass_field(default_factory=dict)  # localhostProfile -> file
    # Localhost profiles the pod names that are meant to be absent from the nodes.
    missing_seccomp_profiles: set[str] = dataclass_field(default_factory=set)
    apparmor_profiles: dict[str, Path] = dataclass_field(default_factory=dict)  # name -> file
    commands: list[Command] = dataclass_field(default_factory=list)
    objects: list[dict] = dataclass_field(default_factory=list)

    def __repr__(self) -> str:  # short: a traceback's frames print their arguments
        return f"<case {self.name} ({self.source.name})>"

    def workload(self) -> dict:
        """The Pod, or the Deployment, the case is about."""
        kind, name = ("Deployment", self.deployment) if self.deployment else ("Pod", self.pod)
        for obj in self.objects:
            if obj.get("kind") == kind and obj["metadata"]["name"] == name:
                return obj
        raise LookupError(f"case {self.name}: no {kind} {name!r} in {self.manifests}")

    @property
    def claims(self) -> list[dict]:
        """The case's PersistentVolumeClaims (a case with any runs once per storage kind)."""
        return [o for o in self.objects if o.get("kind") == "PersistentVolumeClaim"]

    def pod_spec(self) -> dict:
        """The pod spec: the Pod's own, or the Deployment's template spec."""
        return podspec.pod_spec(self.workload())

    def container_spec(self) -> dict:
        return next(c for c in self.pod_spec().get("containers", []) if c.get("name") == self.container)

    def variant_for(self, storage: str | None) -> Variant | None:
        """The first variant for this storage kind, else the first that names none."""
        for variant in self.variants:
            if variant.storage == storage:
                return variant
        return next((v for v in self.variants if v.storage is None), None)

    def expectations(self, storage: str | None = None) -> dict[str, Any]:
        """The case's overrides with the matching variant's laid over them."""
        merged = dict(self.expect)
        variant = self.variant_for(storage) if self.variants else None
        if variant:
            volumes = {**self.expect.get("volumes", {}), **variant.expect.get("volumes", {})}
            merged.update(variant.expect)
            if volumes:
                merged["volumes"] = volumes
        return merged


def load_cases(dirs: list[Path]) -> tuple[list[Case], list[CaseError]]:
    """Every *.yaml in dirs, sorted; the valid cases, and the errors of the others."""
    cases: list[Case] = []
    errors: list[CaseError] = []
    first_file_by_name: dict[str, Path] = {}
    installed_by: dict[str, Path] = {}  # localhostProfile -> the first case file that installs it
    missing_by: dict[str, Path] = {}    # localhostProfile -> the first case file that needs it missing
    for path in sorted(p for d in dirs for p in Path(d).glob("*.yaml")):
        case, case_errors, lines = _read_case(path)
        if case and case.name in first_file_by_name:
            case_errors.append(CaseError(path, lines.get(("name",)), f"duplicate case name {case.name!r}; "
                                         f"already used by {first_file_by_name[case.name]}"))
        if case and not case_errors:
            case_errors += _profile_conflicts(case, lines, installed_by, missing_by)
        errors.extend(case_errors)
        if case and not case_errors:
            first_file_by_name[case.name] = path
            for profile in case.seccomp_profiles:
                installed_by.setdefault(profile, path)
            for profile in case.missing_seccomp_profiles:
                missing_by.setdefault(profile, path)
            cases.append(case)
    return cases, errors


def _profile_conflicts(case: Case, lines: dict[KeyPath, int], installed_by: dict[str, Path],
                       missing_by: dict[str, Path]) -> list[CaseError]:
    """The suite installs every case's profiles on every node, so a profile one
    case needs missing cannot be one another case installs."""
    errors = []
    for profile in sorted(case.missing_seccomp_profiles & installed_by.keys()):
        errors.append(CaseError(case.source, lines.get(("seccomp_profiles", profile)),
                                f"seccomp profile {profile!r} is meant to be missing, but "
                                f"{installed_by[profile]} installs it on every node"))
    for profile in sorted(case.seccomp_profiles.keys() & missing_by.keys()):
        errors.append(CaseError(case.source, lines.get(("seccomp_profiles", profile)),
                                f"seccomp profile {profile!r} is installed on every node, but "
                                f"{missing_by[profile]} needs it to be missing"))
    return errors


def _read_case(path: Path) -> tuple[Case | None, list[CaseError], dict[KeyPath, int]]:
    try:
        data, lines, duplicates = _load_with_lines(path.read_text())
    except yaml.MarkedYAMLError as exc:
        return None, [_yaml_error(path, exc)], {}
    except (OSError, UnicodeDecodeError) as exc:
        return None, [CaseError(path, None, f"cannot read: {exc}")], {}
    checker = _Checker(path, lines)
    for key_path, line in duplicates:
        # YAML would silently keep the last value; a case author meant one of them.
        checker.errors.append(CaseError(path, line, f"duplicate key {key_path[-1]!r}"))
    if not isinstance(data, dict):
        checker.error((), "a case file must be one YAML mapping (see fixtures/cases/README.md)")
        return None, checker.errors, lines
    case = checker.check(data)
    errors = sorted(checker.errors, key=lambda e: (e.path != path, e.line or 0))
    return (None if errors else case), errors, lines


# --- YAML with line numbers -------------------------------------------------

def _load_with_lines(text: str) -> tuple[Any, dict[KeyPath, int], list[tuple[KeyPath, int]]]:
    """The document, the 1-based line of every mapping key and list item in it,
    and the keys that appear twice in one mapping."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()  # more than one document is an error here
        data = loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()
    lines: dict[KeyPath, int] = {}
    duplicates: list[tuple[KeyPath, int]] = []
    if node is not None:
        lines[()] = node.start_mark.line + 1
        _record_lines(node, (), lines, duplicates)
    return data, lines, duplicates


def _record_lines(node: yaml.Node, at: KeyPath, lines: dict[KeyPath, int],
                  duplicates: list[tuple[KeyPath, int]]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:str":
                key = yaml.safe_load(key)  # 1:, true: are keys 1 and True in the document
            key_path = at + (key,)
            if key_path in lines:
                duplicates.append((key_path, key_node.start_mark.line + 1))
            lines[key_path] = key_node.start_mark.line + 1
            _record_lines(value_node, key_path, lines, duplicates)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[at + (index,)] = item.start_mark.line + 1
            _record_lines(item, at + (index,), lines, duplicates)


def _yaml_error(path: Path, exc: yaml.MarkedYAMLError) -> CaseError:
    mark = exc.problem_mark or exc.context_mark
    message = f"malformed YAML: {exc.problem or exc.context}"
    if exc.problem and exc.context and exc.context_mark:
        message += f" ({exc.context} at line {exc.context_mark.line + 1})"
    return CaseError(path, mark.line + 1 if mark else None, message)


def _close(choices, got) -> str | None:
    """The choice `got` is probably a typo of, if any (case is ignored)."""
    by_folded = {str(c).casefold(): str(c) for c in choices}
    close = difflib.get_close_matches(str(got).casefold(), list(by_folded), n=1)
    return by_folded[close[0]] if close else None


def _known(choices, got) -> str:
    """'; known: a, b, c' plus a did-you-mean when one is close."""
    text = "; known: " + ", ".join(str(c) for c in choices)
    close = _close(choices, got)
    return text + (f" (did you mean {close!r}?)" if close else "")


# --- schema errors as messages ---------------------------------------------

def schema_problems(data: Any) -> list[tuple[KeyPath, str]]:
    """(key path, message) for every way `data` breaks the case schema, one per problem."""
    found: list[tuple[KeyPath, str]] = []
    for error in _VALIDATOR.iter_errors(data):
        for problem in _explain(error):
            if problem not in found:
                found.append(problem)
    return found


def _where(at: KeyPath) -> str:
    return ".".join(str(k) for k in at) or "the case"


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _keys(node: dict) -> list[str]:
    """The keys a node's mappings take: its properties, or its items' or branches'."""
    node = resolve(node)
    if "properties" in node:
        return list(node["properties"])
    for sub in [node.get("items"), node.get("additionalProperties")]:
        if isinstance(sub, dict):
            return _keys(sub)
    return [k for branch in node.get("anyOf", []) + node.get("oneOf", []) for k in _keys(branch)]


def _message(node: dict, at: KeyPath, value: Any, fallback: str) -> str:
    template = node.get("x-message")
    if not template:
        return fallback
    return Template(template).safe_substitute(where=_where(at), key=at[-1] if at else "",
                                              value=_show(value), keys=", ".join(_keys(node)))


def _choice_message(node: dict, at: KeyPath, value: Any, allowed: list) -> str:
    """'bad severity 'urgent'; known: ...', or for a list item
    'bad capability 'X' in expect.cap_bnd; known: ...'."""
    in_list = bool(at) and isinstance(at[-1], int)
    hints = node.get("x-hints", {})
    hint = hints.get(value) if isinstance(value, str) else None
    if hint:
        return f"{value!r} in {_where(at[:-1] if in_list else at)} {hint}"
    if in_list:
        return f"bad {node.get('title', 'value')} {value!r} in {_where(at[:-1])}{_known(allowed, value)}"
    return f"bad {_where(at)} {value!r}{_known(allowed, value)}"


def _is_shape_error(error: ValidationError, at: KeyPath) -> bool:
    """The value at `at` is of another kind than the branch wants."""
    return tuple(error.absolute_path) == at and error.validator in ("type", "const", "enum")


def _explain(error: ValidationError) -> Iterator[tuple[KeyPath, str]]:
    at = tuple(error.absolute_path)
    node, value, keyword = error.schema, error.instance, error.validator
    if "propertyNames" in error.relative_schema_path:
        # The instance is a key of the mapping at `at`.
        yield at + (value,), _message(node, at + (value,), value, f"bad key {value!r} in {_where(at)}")
    elif keyword == "additionalProperties" and node.get("additionalProperties") is False:
        known = list(node.get("properties", {}))
        for key in value:
            if key not in known:
                yield at + (key,), f"unknown {node.get('x-key-name', 'key')} {key!r}{_known(known, key)}"
    elif keyword == "required":
        known = list(node.get("properties", {}))
        typos = {_close(known, key) for key in value if key not in known}
        for key in error.validator_value:
            if key not in value and key not in typos:  # a typo of it is reported as unknown
                yield at, f"missing required key {key!r}" + (f" in {_where(at)}" if at else "")
    elif keyword == "dependentRequired":
        for key, needs in error.validator_value.items():
            for other in needs:
                if key in value and other not in value:
                    yield at + (key,), f"{_where(at + (key,))} needs {other}"
    elif keyword in ("enum", "const"):
        allowed = list(error.validator_value) if keyword == "enum" else [error.validator_value]
        yield at, _message(node, at, value, _choice_message(node, at, value, allowed))
    elif keyword in ("anyOf", "oneOf"):
        yield from _explain_alternatives(error, at)
    else:
        message = _message(node, at, value, f"{_where(at)}: {error.message}")
        if keyword == "format" and error.cause:
            message += f": {error.cause}"
        yield at, message


def _explain_alternatives(error: ValidationError, at: KeyPath) -> Iterator[tuple[KeyPath, str]]:
    """anyOf/oneOf: if the value has the shape of exactly one alternative,
    what is wrong inside it; else the node's own message."""
    node, value = error.schema, error.instance
    allowed = choices(node)
    if allowed and not node.get("x-message"):
        yield at, _choice_message(node, at, value, list(allowed))
        return
    by_branch: dict[int, list[ValidationError]] = {}
    for sub in error.context or []:
        by_branch.setdefault(sub.relative_schema_path[0], []).append(sub)
    shaped = [errors for errors in by_branch.values() if not any(_is_shape_error(e, at) for e in errors)]
    if len(shaped) == 1 and len(by_branch) == len(node.get(error.validator, [])):
        for sub in shaped[0]:
            yield from _explain(sub)
        return
    yield at, _message(node, at, value, f"{_where(at)}: {error.message}")


# --- converting a valid document -------------------------------------------

def _seccomp(value: Any, node: dict) -> int:
    for option in options(node):
        if option["const"] == value and type(option["const"]) is type(value):
            return option.get("x-value", value)
    return value


# x-kind of an expect key -> (value, its resolved schema) -> what Case.expect holds.
CONVERTERS: dict[str, Callable[[Any, dict], Any]] = {
    "id": lambda value, node: int(value),
    "ids": lambda value, node: sorted(int(v) for v in value),
    "bool": lambda value, node: value,
    "seccomp": _seccomp,
    "caps": lambda value, node: frozenset(value),
    "regex": lambda value, node: value,
    "volumes": lambda value, node: {path: dict(checks) for path, checks in value.items()},
}


def _expect(raw: dict) -> dict[str, Any]:
    return {key: CONVERTERS[EXPECT_FIELDS[key][0]](value, resolve(_EXPECT_PROPERTIES[key]))
            for key, value in raw.items()}


def _outcome(raw: Any) -> Outcome:
    if not isinstance(raw, dict):  # absent, or "running"
        return Outcome()
    return Outcome(Status(raw["status"]), raw.get("reason"), raw.get("message"), raw.get("logs"))


# --- the checks a schema cannot make ----------------------------------------

class _Checker:
    """Validates one case document; every error points at the line it is about."""

    def __init__(self, path: Path, lines: dict[KeyPath, int]):
        self.path = path
        self.lines = lines
        self.errors: list[CaseError] = []
        self.invalid: list[KeyPath] = []  # where the schema found problems

    def line(self, at: KeyPath) -> int | None:
        while at and at not in self.lines:
            at = at[:-1]
        return self.lines.get(at)

    def error(self, at: KeyPath, message: str) -> None:
        self.errors.append(CaseError(self.path, self.line(at), message))

    def shaped(self, at: KeyPath) -> bool:
        """The schema found nothing wrong with the value at `at` or its parents
        (missing keys of the case itself aside)."""
        return not any(bad and at[:len(bad)] == bad for bad in self.invalid)

    def valid(self, at: KeyPath) -> bool:
        """The schema found nothing wrong at, above or under `at`."""
        return self.shaped(at) and not any(bad[:len(at)] == at for bad in self.invalid)

    def check(self, data: dict) -> Case | None:
        for at, message in schema_problems(data):
            self.invalid.append(at)
            self.error(at, message)
        manifests = self.manifest_paths(data.get("manifest"))
        objects = self.objects(manifests)
        profiles, missing = self.seccomp_profiles(data.get("seccomp_profiles", {}))
        self.variant_names(data.get("variants", []))
        if self.errors:
            return None
        pod = data["pod"]
        case = Case(
            source=self.path,
            name=data["name"],
            section=data["section"],
            field=data["field"],
            manifests=manifests,
            pod=None if isinstance(pod, dict) else pod,
            deployment=pod["deployment"] if isinstance(pod, dict) else None,
            container=data["container"],
            severity=data["severity"],
            upstream=[Upstream(u["name"], u["url"]) for u in data.get("upstream", [])],
            outcome=_outcome(data.get("outcome")),
            expect=_expect(data.get("expect", {})),
            recipe_claim=data.get("recipe_claim"),
            available=Availability(**data["kubernetes"]) if "kubernetes" in data else None,
            skip_unless=data.get("skip_unless"),
            when_unsupported=_outcome(data["when_unsupported"]) if "when_unsupported" in data else None,
            variants=[Variant(v["name"], v.get("storage"), _expect(v.get("expect", {})), v.get("recipe_claim"))
                      for v in data.get("variants", [])],
            seccomp_profiles=profiles,
            missing_seccomp_profiles=missing,
            apparmor_profiles=self.apparmor_profiles(data.get("apparmor_profiles", {})),
            commands=[Command(c["run"], int(c.get("exit", 0)), c.get("output"), c.get("why", ""))
                      for c in data.get("commands", [])],
            objects=objects,
        )
        self.cross_check(case)
        return case

    def manifest_paths(self, value: Any) -> list[Path]:
        if value is None or not self.shaped(("manifest",)):
            return []
        paths = []
        for index, entry in enumerate([value] if isinstance(value, str) else value):
            at = ("manifest",) if isinstance(value, str) else ("manifest", index)
            if not self.valid(at):
                continue
            path = (self.path.parent / entry).resolve()
            if not path.is_file():
                self.error(at, f"manifest file not found: {entry} (looked for {path})")
                continue
            paths.append(path)
        return paths

    def objects(self, manifests: list[Path]) -> list[dict]:
        """Documents of the manifests; their errors point into the manifest files."""
        objects = []
        for path in manifests:
            try:
                documents = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
            except yaml.MarkedYAMLError as exc:
                self.errors.append(_yaml_error(path, exc))
                continue
            for number, doc in enumerate(documents, 1):
                name = doc.get("metadata", {}).get("name") if isinstance(doc, dict) else None
                if not (isinstance(doc, dict) and doc.get("apiVersion") and doc.get("kind") and name):
                    self.errors.append(CaseError(path, None, f"document {number} needs apiVersion, kind "
                                                             "and metadata.name"))
                    continue
                objects.append(doc)
        return objects

    def seccomp_profiles(self, value: Any) -> tuple[dict[str, Path], set[str]]:
        """The files to install, by localhostProfile, and the profiles meant to be missing."""
        files: dict[str, Path] = {}
        missing: set[str] = set()
        if not self.shaped(("seccomp_profiles",)):
            return files, missing
        for profile, entry in value.items():
            at = ("seccomp_profiles", profile)
            if not self.valid(at):
                continue
            if isinstance(entry, dict):  # {missing: true}
                missing.add(profile)
                continue
            path = (self.path.parent / entry).resolve()
            try:
                json.loads(path.read_text())
            except OSError:
                self.error(at, f"seccomp profile file not found: {entry} (looked for {path})")
                continue
            except json.JSONDecodeError as exc:
                self.error(at, f"seccomp profile {entry} is not valid JSON: {exc}")
                continue
            files[profile] = path
        return files, missing

    def apparmor_profiles(self, value: Any) -> dict[str, Path]:
        """The AppArmor profile files to load, by profile name."""
        files: dict[str, Path] = {}
        if not self.shaped(("apparmor_profiles",)):
            return files
        for profile, entry in value.items():
            at = ("apparmor_profiles", profile)
            if not self.valid(at):
                continue
            path = (self.path.parent / entry).resolve()
            if not path.is_file():
                self.error(at, f"AppArmor profile file not found: {entry} (looked for {path})")
                continue
            files[profile] = path
        return files

    def variant_names(self, variants: Any) -> None:
        seen = set()
        for index, variant in enumerate(variants if self.shaped(("variants",)) else []):
            if not self.valid(("variants", index, "name")):
                continue
            if variant["name"] in seen:
                self.error(("variants", index, "name"), f"duplicate variant name {variant['name']!r}")
            seen.add(variant["name"])

    def cross_check(self, case: Case) -> None:
        """The names the case uses must exist in its manifests."""
        try:
            spec = case.pod_spec()
        except LookupError:
            kind, name = ("Deployment", case.deployment) if case.deployment else ("Pod", case.pod)
            self.error(("pod",), f"no {kind} named {name!r} in the manifests")
            return
        containers = [c.get("name") for c in spec.get("containers", [])]
        if case.container not in containers:
            self.error(("container",), f"no container {case.container!r} in the pod{_known(containers, case.container)}")
            return
        mounts = [m.get("mountPath") for m in case.container_spec().get("volumeMounts", [])]
        expectations = [(("expect",), case.expect)] + [
            (("variants", i, "expect"), v.expect) for i, v in enumerate(case.variants)]
        for at, expect in expectations:
            for mount_path in expect.get("volumes", {}):
                if mount_path not in mounts:
                    self.error(at + ("volumes", mount_path),
                               f"{mount_path} is not a mountPath of container {case.container}{_known(mounts, mount_path)}")
        for profile in _localhost_profiles(spec):
            if profile not in case.seccomp_profiles and profile not in case.missing_seccomp_profiles:
                self.error(("seccomp_profiles",), f"the pod uses Localhost seccomp profile {profile!r}; "
                           "map it to its JSON file under seccomp_profiles (or to {missing: true} if it "
                           "is meant to be absent from the nodes)")


def _localhost_profiles(spec: dict) -> list[str]:
    contexts = [spec.get("securityContext") or {}]
    contexts += [c.get("securityContext") or {} for c in spec.get("initContainers", []) + spec.get("containers", [])]
    return [ctx["seccompProfile"]["localhostProfile"] for ctx in contexts
            if (ctx.get("seccompProfile") or {}).get("type") == "Localhost"]
