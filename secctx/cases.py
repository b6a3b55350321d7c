"""Case files: a recipe manifest plus the observations expected from it.

A platform team adds a case by writing YAML, not Python; the schema is in
fixtures/cases/README.md. `load_cases` validates every file and explains each
problem as file:line, and a bad file never stops the good ones from loading.
"""
from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field as dataclass_field
from pathlib import Path
from typing import Any

import yaml

from .caps import CAPABILITIES

SECTIONS = ("Run as non-root", "Hardened pod", "Capabilities", "fsGroup", "Read-only root",
            "Seccomp", "SELinux", "AppArmor", "Deployment", "Troubleshooting")
SEVERITIES = ("blocker", "critical", "normal", "minor")
OUTCOMES = ("running", "rejected", "crashing")
SKIP_FEATURES = ("apparmor", "selinux")
# Volume source of the PersistentVolume bound to a claim: it decides whether the
# kubelet applies fsGroup (it never does for hostPath).
STORAGE_KINDS = ("hostPath", "local", "csi", "nfs")
# The "Seccomp:" line of /proc/<pid>/status.
SECCOMP_MODES = {"disabled": 0, "strict": 1, "filtered": 2}

CASE_KEYS = ("name", "section", "field", "manifest", "pod", "container", "severity", "upstream",
             "outcome", "expect", "recipe_claim", "skip_unless", "when_unsupported", "variants",
             "seccomp_profiles", "commands")
REQUIRED_KEYS = ("name", "section", "field", "manifest", "pod", "container", "severity")
EXPECT_KEYS = ("uid", "gid", "groups", "no_new_privs", "seccomp", "cap_eff", "cap_bnd",
               "root_read_only", "lsm_label", "volumes")
VOLUME_KEYS = ("gid", "setgid", "writable")
OUTCOME_KEYS = ("status", "reason", "message", "logs")
UPSTREAM_KEYS = ("name", "url")
VARIANT_KEYS = ("name", "storage", "expect", "recipe_claim")
COMMAND_KEYS = ("run", "exit", "output", "why")

_NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")

KeyPath = tuple  # e.g. ("expect", "volumes", "/data", "gid") or ("upstream", 0, "url")


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


@dataclass(frozen=True)
class Outcome:
    """What the container does: keeps running, is never started, or starts and dies."""
    status: str = "running"
    reason: str | None = None   # substring of a waiting/terminated reason or the pod's reason
    message: str | None = None  # substring of the matching message
    logs: str | None = None     # substring of the (previous) container log; crashing only


@dataclass(frozen=True)
class Command:
    """A shell command run in the container, with the result the case expects."""
    run: str
    exit: int = 0
    output: str | None = None  # substring of stdout+stderr
    why: str = ""


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
    skip_unless: str | None = None
    # What Kubernetes promises on a node without the skip_unless feature (e.g. a
    # fail-closed rejection for AppArmor); None: only the label checks are skipped.
    when_unsupported: Outcome | None = None
    variants: list[Variant] = dataclass_field(default_factory=list)
    seccomp_profiles: dict[str, Path] = dataclass_field(default_factory=dict)  # localhostProfile -> file
    commands: list[Command] = dataclass_field(default_factory=list)
    objects: list[dict] = dataclass_field(default_factory=list)

    def workload(self) -> dict:
        """The Pod, or the Deployment, the case is about."""
        kind, name = ("Deployment", self.deployment) if self.deployment else ("Pod", self.pod)
        for obj in self.objects:
            if obj.get("kind") == kind and obj["metadata"]["name"] == name:
                return obj
        raise LookupError(f"case {self.name}: no {kind} {name!r} in {self.manifests}")

    def pod_spec(self) -> dict:
        """The pod spec: the Pod's own, or the Deployment's template spec."""
        obj = self.workload()
        return obj["spec"]["template"]["spec"] if self.deployment else obj["spec"]

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
    for path in sorted(p for d in dirs for p in Path(d).glob("*.yaml")):
        case, case_errors, lines = _read_case(path)
        if case and case.name in first_file_by_name:
            case_errors.append(CaseError(path, lines.get(("name",)), f"duplicate case name {case.name!r}; "
                                         f"already used by {first_file_by_name[case.name]}"))
        errors.extend(case_errors)
        if case and not case_errors:
            first_file_by_name[case.name] = path
            cases.append(case)
    return cases, errors


def load_case(path: Path) -> tuple[Case | None, list[CaseError]]:
    """One case file; None and the reasons if anything in it is wrong."""
    case, errors, _ = _read_case(path)
    return case, errors


def _read_case(path: Path) -> tuple[Case | None, list[CaseError], dict[KeyPath, int]]:
    try:
        data, lines, duplicates = _load_with_lines(path.read_text())
    except yaml.MarkedYAMLError as exc:
        return None, [_yaml_error(path, exc)], {}
    except (OSError, UnicodeDecodeError) as exc:
        return None, [CaseError(path, None, f"cannot read: {exc}")], {}
    reader = _Reader(path, lines)
    for key_path, line in duplicates:
        # YAML would silently keep the last value; a case author meant one of them.
        reader.errors.append(CaseError(path, line, f"duplicate key {key_path[-1]!r}"))
    if not isinstance(data, dict):
        reader.error((), "a case file must be one YAML mapping (see fixtures/cases/README.md)")
        return None, reader.errors, lines
    case = reader.case(data)
    errors = sorted(reader.errors, key=lambda e: (e.path != path, e.line or 0))
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
            key_path = at + (key_node.value,)
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


def _known(choices, got: str) -> str:
    """'; known: a, b, c' plus a did-you-mean when one is close."""
    text = "; known: " + ", ".join(str(c) for c in choices)
    close = difflib.get_close_matches(str(got), [str(c) for c in choices], n=1)
    return text + (f" (did you mean {close[0]!r}?)" if close else "")


# --- validation --------------------------------------------------------------

class _Reader:
    """Validates one case document; every error points at the line it is about."""

    def __init__(self, path: Path, lines: dict[KeyPath, int]):
        self.path = path
        self.lines = lines
        self.errors: list[CaseError] = []

    def line(self, at: KeyPath) -> int | None:
        while at and at not in self.lines:
            at = at[:-1]
        return self.lines.get(at)

    def error(self, at: KeyPath, message: str) -> None:
        self.errors.append(CaseError(self.path, self.line(at), message))

    def where(self, at: KeyPath) -> str:
        return ".".join(str(k) for k in at)

    def unknown_keys(self, data: dict, known: tuple, at: KeyPath, what: str) -> None:
        for key in data:
            if key not in known:
                self.error(at + (key,), f"unknown {what} {key!r}{_known(known, key)}")

    def text(self, data: dict, key: str, at: KeyPath = ()) -> str | None:
        value = data.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            self.error(at + (key,), f"{self.where(at + (key,))} must be a non-empty string, not {value!r}")
            return None
        return value

    def choice(self, data: dict, key: str, choices: tuple, at: KeyPath = ()) -> str | None:
        value = data.get(key)
        if value is not None and value not in choices:
            self.error(at + (key,), f"bad {self.where(at + (key,))} {value!r}{_known(choices, value)}")
            return None
        return value

    # The case as a whole.
    def case(self, data: dict) -> Case | None:
        self.unknown_keys(data, CASE_KEYS, (), "key")
        for key in REQUIRED_KEYS:
            if key not in data:
                self.error((), f"missing required key {key!r}")
        name = self.text(data, "name")
        if name and not _NAME_RE.match(name):
            self.error(("name",), f"name {name!r} must be lower-case letters, digits and '-'")
        pod, deployment = self.pod(data.get("pod"))
        manifests = self.manifest_paths(data.get("manifest"))
        case = Case(
            source=self.path,
            name=name or "",
            section=self.choice(data, "section", SECTIONS) or "",
            field=self.text(data, "field") or "",
            manifests=manifests,
            pod=pod,
            deployment=deployment,
            container=self.text(data, "container") or "",
            severity=self.choice(data, "severity", SEVERITIES) or "",
            upstream=self.upstream(data.get("upstream")),
            outcome=self.outcome(data.get("outcome")),
            expect=self.expect(data.get("expect"), ("expect",)),
            recipe_claim=self.text(data, "recipe_claim"),
            skip_unless=self.choice(data, "skip_unless", SKIP_FEATURES),
            when_unsupported=(self.outcome(data["when_unsupported"], ("when_unsupported",))
                              if "when_unsupported" in data else None),
            variants=self.variants(data.get("variants")),
            seccomp_profiles=self.seccomp_profiles(data.get("seccomp_profiles")),
            commands=self.commands(data.get("commands")),
        )
        case.objects = self.objects(manifests)
        if not self.errors:
            self.cross_check(case)
        return case

    def pod(self, value) -> tuple[str | None, str | None]:
        if isinstance(value, str) and value:
            return value, None
        if isinstance(value, dict) and list(value) == ["deployment"] and isinstance(value["deployment"], str):
            return None, value["deployment"]
        if value is not None:
            self.error(("pod",), f"pod must be a pod name or {{deployment: <name>}}, not {value!r}")
        return None, None

    def manifest_paths(self, value) -> list[Path]:
        if value is None:
            return []
        entries = [value] if isinstance(value, str) else value
        if not isinstance(entries, list) or not entries:
            self.error(("manifest",), "manifest must be a path or a non-empty list of paths "
                       "(relative to the case file)")
            return []
        paths = []
        for index, entry in enumerate(entries):
            at = ("manifest",) if isinstance(value, str) else ("manifest", index)
            if not isinstance(entry, str):
                self.error(at, f"manifest path must be a string, not {entry!r}")
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

    def upstream(self, value) -> list[Upstream]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.error(("upstream",), "upstream must be a list of {name, url}")
            return []
        result = []
        for index, entry in enumerate(value):
            at = ("upstream", index)
            if not isinstance(entry, dict):
                self.error(at, "each upstream entry must be a mapping {name, url}")
                continue
            self.unknown_keys(entry, UPSTREAM_KEYS, at, "upstream key")
            name, url = self.text(entry, "name", at), self.text(entry, "url", at)
            if not (name and url):
                self.error(at, "each upstream entry needs a name and a url")
            elif not url.startswith("https://"):
                self.error(at + ("url",), f"upstream url must start with https://, not {url!r}")
            else:
                result.append(Upstream(name, url))
        return result

    def outcome(self, value, at: KeyPath = ("outcome",)) -> Outcome:
        if value is None or value == "running":
            return Outcome()
        if isinstance(value, str):
            self.error(at, f"outcome {value!r} needs the mapping form {{status, reason, message, logs}}"
                       if value in OUTCOMES else f"bad outcome {value!r}{_known(OUTCOMES, value)}")
            return Outcome()
        if not isinstance(value, dict):
            self.error(at, "outcome must be 'running' or a mapping {status, reason, message, logs}")
            return Outcome()
        self.unknown_keys(value, OUTCOME_KEYS, at, "outcome key")
        status = self.choice(value, "status", OUTCOMES, at)
        if status is None:
            if "status" not in value:
                self.error(at, f"outcome needs a status; known: {', '.join(OUTCOMES)}")
            return Outcome()
        outcome = Outcome(status, self.text(value, "reason", at), self.text(value, "message", at),
                          self.text(value, "logs", at))
        if status == "running" and (outcome.reason or outcome.message or outcome.logs):
            self.error(at, "a running outcome takes no reason, message or logs")
        if status == "rejected" and not (outcome.reason or outcome.message):
            self.error(at, "a rejected outcome needs a reason or a message substring")
        if status == "rejected" and outcome.logs:
            self.error(at + ("logs",), "a rejected container never ran, so it has no logs")
        if status == "crashing" and not (outcome.reason or outcome.message or outcome.logs):
            self.error(at, "a crashing outcome needs a reason, message or logs substring")
        return outcome

    def expect(self, value, at: KeyPath) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.error(at, f"{self.where(at)} must be a mapping of expectations; known: {', '.join(EXPECT_KEYS)}")
            return {}
        self.unknown_keys(value, EXPECT_KEYS, at, "expectation")
        result: dict[str, Any] = {}
        for key, raw in value.items():
            spot = at + (key,)
            if key in ("uid", "gid"):
                if self.is_id(raw, spot):
                    result[key] = raw
            elif key == "groups":
                if isinstance(raw, list) and all(self.is_id(g, spot + (i,)) for i, g in enumerate(raw)):
                    result[key] = sorted(raw)
                elif not isinstance(raw, list):
                    self.error(spot, f"{self.where(spot)} must be a list of group IDs, not {raw!r}")
            elif key in ("no_new_privs", "root_read_only"):
                if isinstance(raw, bool):
                    result[key] = raw
                else:
                    self.error(spot, f"{self.where(spot)} must be true or false, not {raw!r}")
            elif key == "seccomp":
                if raw in SECCOMP_MODES:
                    result[key] = SECCOMP_MODES[raw]
                elif raw in SECCOMP_MODES.values() and not isinstance(raw, bool):
                    result[key] = raw
                else:
                    self.error(spot, f"bad {self.where(spot)} {raw!r}; known: disabled, strict, filtered "
                               "(or 0, 1, 2 as in /proc/<pid>/status)")
            elif key in ("cap_eff", "cap_bnd"):
                caps = self.capabilities(raw, spot)
                if caps is not None:
                    result[key] = caps
            elif key == "lsm_label":
                try:
                    re.compile(raw)
                    result[key] = raw
                except (TypeError, re.error) as exc:
                    self.error(spot, f"{self.where(spot)} must be a regular expression: {exc}")
            elif key == "volumes":
                result[key] = self.volumes(raw, spot)
        return result

    def is_id(self, raw, at: KeyPath) -> bool:
        if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0:
            return True
        self.error(at, f"{self.where(at)} must be a non-negative integer ID, not {raw!r}")
        return False

    def capabilities(self, raw, at: KeyPath) -> frozenset[str] | None:
        if not isinstance(raw, list):
            self.error(at, f"{self.where(at)} must be a list of capability names ([] for none), not {raw!r}")
            return None
        names = set()
        for index, entry in enumerate(raw):
            name = entry.upper().removeprefix("CAP_") if isinstance(entry, str) else entry
            if name == "ALL":
                self.error(at + (index,), f"'ALL' in {self.where(at)} is a pod-spec keyword, not a "
                           "capability: list the capabilities expected ([] for none)")
                continue
            if name not in CAPABILITIES:
                self.error(at + (index,), f"bad capability {entry!r} in {self.where(at)}"
                           f"{_known(CAPABILITIES, name)}")
                continue
            names.add(name)
        return frozenset(names)

    def volumes(self, raw, at: KeyPath) -> dict[str, dict]:
        if not isinstance(raw, dict):
            self.error(at, f"{self.where(at)} must map a mountPath to {{gid, setgid, writable}}")
            return {}
        result = {}
        for mount_path, checks in raw.items():
            spot = at + (mount_path,)
            if not isinstance(mount_path, str) or not mount_path.startswith("/"):
                self.error(spot, f"volume key {mount_path!r} must be an absolute mountPath")
                continue
            if not isinstance(checks, dict) or not checks:
                self.error(spot, f"volume {mount_path} needs at least one of {', '.join(VOLUME_KEYS)}")
                continue
            self.unknown_keys(checks, VOLUME_KEYS, spot, "volume expectation")
            volume = {}
            if "gid" in checks and (checks["gid"] is None or self.is_id(checks["gid"], spot + ("gid",))):
                volume["gid"] = checks["gid"]
            for flag in ("setgid", "writable"):
                if flag in checks:
                    if isinstance(checks[flag], bool):
                        volume[flag] = checks[flag]
                    else:
                        self.error(spot + (flag,), f"{flag} must be true or false, not {checks[flag]!r}")
            result[mount_path] = volume
        return result

    def variants(self, value) -> list[Variant]:
        if value is None:
            return []
        if not isinstance(value, list) or not value:
            self.error(("variants",), "variants must be a non-empty list of {name, storage, expect, recipe_claim}")
            return []
        result, seen = [], set()
        for index, entry in enumerate(value):
            at = ("variants", index)
            if not isinstance(entry, dict):
                self.error(at, "each variant must be a mapping {name, storage, expect, recipe_claim}")
                continue
            self.unknown_keys(entry, VARIANT_KEYS, at, "variant key")
            name = self.text(entry, "name", at)
            if not name:
                self.error(at, "each variant needs a name")
            elif name in seen:
                self.error(at + ("name",), f"duplicate variant name {name!r}")
            seen.add(name)
            result.append(Variant(name or "", self.choice(entry, "storage", STORAGE_KINDS, at),
                                  self.expect(entry.get("expect"), at + ("expect",)),
                                  self.text(entry, "recipe_claim", at)))
        return result

    def commands(self, value) -> list[Command]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.error(("commands",), "commands must be a list of {run, exit, output, why}")
            return []
        result = []
        for i, entry in enumerate(value):
            at = ("commands", i)
            if not isinstance(entry, dict) or not isinstance(entry.get("run"), str):
                self.error(at, "a command needs `run: <shell command>`")
                continue
            self.unknown_keys(entry, COMMAND_KEYS, at, "command key")
            code = entry.get("exit", 0)
            if not isinstance(code, int) or isinstance(code, bool):
                self.error(at + ("exit",), f"exit must be an integer exit code, not {code!r}")
                continue
            result.append(Command(entry["run"], code, self.text(entry, "output", at),
                                  self.text(entry, "why", at) or ""))
        return result

    def seccomp_profiles(self, value) -> dict[str, Path]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.error(("seccomp_profiles",), "seccomp_profiles must map a localhostProfile to a JSON file")
            return {}
        result = {}
        for profile, entry in value.items():
            at = ("seccomp_profiles", profile)
            path = (self.path.parent / str(entry)).resolve()
            try:
                json.loads(path.read_text())
            except OSError:
                self.error(at, f"seccomp profile file not found: {entry} (looked for {path})")
                continue
            except json.JSONDecodeError as exc:
                self.error(at, f"seccomp profile {entry} is not valid JSON: {exc}")
                continue
            result[str(profile)] = path
        return result

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
            if profile not in case.seccomp_profiles:
                self.error(("seccomp_profiles",), f"the pod uses Localhost seccomp profile {profile!r}; "
                           "map it to its JSON file under seccomp_profiles")


def _localhost_profiles(spec: dict) -> list[str]:
    contexts = [spec.get("securityContext") or {}]
    contexts += [c.get("securityContext") or {} for c in spec.get("initContainers", []) + spec.get("containers", [])]
    return [ctx["seccompProfile"]["localhostProfile"] for ctx in contexts
            if (ctx.get("seccompProfile") or {}).get("type") == "Localhost"]
