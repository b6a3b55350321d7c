"""Observations as data: one JSON document per run, and the field-by-field diff of two.

The document (schema: `schema/observations.schema.json`, described for platform
engineers in `docs/observations.md`) holds what the kernel showed for each case's
container under test, each case's outcome, the PSA verdict of each manifest per
level, and the environment of the run. Everything here is pure: `case_entry`
and `admission_entry` turn what a test observed into plain data, `Collector`
gathers a session's entries (the plugin writes its `document()`), `merge` joins
the partial documents of pytest-xdist workers, `diff` compares two documents and
`classify` marks each change as a regression (less strict than before), a
relaxation (stricter) or a neutral change, naming the rule it used.
"""
from __future__ import annotations

import datetime
import json
import re
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jsonschema

from ..cases import STOPPED, Status
from ..core import caps, paths, podspec, steps
from ..oracle.expect import HOST_IDS, classify_id_map, pod_range

if TYPE_CHECKING:  # types only: observe records into this module's Collector
    from collections.abc import Callable

    from ..observe import Mount, Observation, Observed, ProcStatus
    from ..oracle.expect import Learned

SCHEMA_VERSION = 1
SCHEMA_PATH = paths.OBSERVATIONS_SCHEMA
RUNTIME_HANDLER = "default"  # the environment is the default handler's; each case names its own (`runtime`)
# The Allure label that ties a test result to its entry in the document (the matrix links by it).
ALLURE_LABEL = "secctx.observation"

# /proc/<pid>/status line -> observe.ProcStatus attribute
CAP_SETS = {"CapInh": "cap_inh", "CapPrm": "cap_prm", "CapEff": "cap_eff", "CapBnd": "cap_bnd",
            "CapAmb": "cap_amb"}
SECCOMP_NAMES = {0: "disabled", 1: "strict", 2: "filtered"}
PSA_LEVELS = ("baseline", "restricted")


class DocumentError(Exception):
    """An observation file that cannot be read or is not valid; the message says why and the fix."""


# --- building -----------------------------------------------------------------------

_UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")
_CONTAINER_ID = re.compile(r"\b[0-9a-f]{64}\b")
_NAMESPACE = re.compile(r"(?<![a-z0-9-])secctx-[a-z0-9-]+-[0-9a-f]{6}(?![a-z0-9-])")
_REPLICA_POD = re.compile(r"\b([a-z0-9]+(?:-[a-z0-9]+)*)-[0-9a-f]{6,10}-[a-z0-9]{5}\b")
_TIMESTAMP = re.compile(r"\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?")


def normalize_message(text: str | None) -> str | None:
    """A kubelet, runtime or API message without what changes from run to run: pod
    UIDs, container IDs, the run's namespace names, a Deployment's pod-name suffix
    and timestamps become <uid>, <container-id>, <namespace>, <name>-<pod> and <time>."""
    if text is None:
        return None
    text = _UUID.sub("<uid>", text)
    text = _CONTAINER_ID.sub("<container-id>", text)
    text = _NAMESPACE.sub("<namespace>", text)
    text = _REPLICA_POD.sub(r"\1-<pod>", text)
    return _TIMESTAMP.sub("<time>", text).strip()


# Volumes the API server names with a random suffix (the service-account token's).
_GENERATED_VOLUME = re.compile(r"^(kube-api-access)-[a-z0-9]{5}$")


def volume_name(name: str | None) -> str | None:
    """A volume's name without the suffix the API server generates (kube-api-access-xxxxx)."""
    return _GENERATED_VOLUME.sub(r"\1-<generated>", name) if name else name


def environment(properties: dict[str, str]) -> dict:
    """The run's environment from `nodefacts.Environment.properties()` (all strings)."""
    def text(key: str) -> str | None:
        value = properties.get(key)
        return value if value not in (None, "") else None
    cgroup = text("cgroup_version")
    return {
        "kubernetes_version": text("kubernetes_version"),
        "container_runtime": text("container_runtime"),
        "runtime_handler": RUNTIME_HANDLER,
        "node_image": text("node_image"),
        "os_image": text("os_image"),
        "kernel": text("kernel"),
        "cgroup_version": int(cgroup) if cgroup and cgroup.isdigit() else None,
        "mode": text("mode"),
        "runc": text("runc"),
        "seccomp_default": properties.get("seccomp_default") == "True",
        "lsms": [x for x in (properties.get("lsms") or "").split(",") if x],
    }


def _ids(values: tuple[int, int, int, int]) -> dict:
    real, effective, saved, fs = values
    return {"real": real, "effective": effective, "saved": saved, "fs": fs}


def capability_set(mask: int) -> dict:
    return {"hex": caps.to_hex(mask), "names": caps.decode(mask)}


def _flags(options: list[str]) -> list[str]:
    # Options with a value (size=, lowerdir=, mode=) change from run to run; flags do not.
    return sorted(o for o in options if "=" not in o)


def process_entry(status: ProcStatus, lsm_label: str | None, apparmor_label: str | None,
                  id_maps: tuple | None = None) -> dict:
    """One process (observe.ProcStatus) as data; `id_maps` its (uid_map, gid_map)."""
    entry = {
        "uid": _ids(status.uid),
        "gid": _ids(status.gid),
        "groups": sorted(status.groups),
        "capabilities": {name: capability_set(getattr(status, attr))
                         for name, attr in CAP_SETS.items()},
        "no_new_privs": bool(status.no_new_privs),
        "seccomp": {"mode": SECCOMP_NAMES.get(status.seccomp, str(status.seccomp)),
                    "filters": status.seccomp_filters},
        "lsm": {"current": lsm_label, "apparmor": apparmor_label},
    }
    if id_maps and None not in id_maps:
        entry["user_namespace"] = dict(zip(("uid_map", "gid_map"), map(id_map_entry, id_maps)))
    return entry


def id_map_entry(entries: list[tuple[int, int, int]]) -> str:
    """`host`, `pod-range` or the map itself (the host base of a pod range changes every run)."""
    kind = classify_id_map(entries)
    if kind == HOST_IDS:
        return "host"
    return "pod-range" if len(entries) == 1 and kind == pod_range(entries[0][2]) else kind


def image_entry(image: str | None, learned: Learned | None, uid: int) -> dict:
    """What the container's image brings to its identity: the reference it ran, its
    config USER, and the groups its /etc/group lists the process's user in."""
    files = learned.files if learned else None
    return {"reference": image, "config_user": learned.config_user if learned else None,
            "memberships": files.memberships(uid) if files else None}


def container_entry(probe: Observation, volume_mounts: list[dict], image: dict | None = None) -> dict:
    """The container under test (an observe.Observation of it): PID 1, the root file
    system, each volume mount of its spec, and its image (image_entry)."""
    def last_mount(path: str) -> Mount | None:
        found = [m for m in probe.mounts if m.mountpoint == path]
        return found[-1] if found else None  # a later mount on the same point hides earlier ones
    root = last_mount("/")
    mounts = {}
    for vm in volume_mounts:
        path = vm["mountPath"]
        mount, stat, write = last_mount(path), probe.stats.get(path), probe.writes.get(path)
        new_file = probe.stat_of_new_file(path)
        mounts[path] = {
            "volume": volume_name(vm.get("name")),
            "fstype": mount.fstype if mount else None,
            "read_only": mount.read_only if mount else None,
            "options": _flags(mount.options) if mount else [],
            "owner": stat.uid if stat else None,
            "group": stat.gid if stat else None,
            "mode": f"{stat.mode:04o}" if stat else None,
            "writable": write.ok if write else None,
            "new_file_group": new_file.gid if new_file else None,
        }
    entry = {
        "process": process_entry(probe.pid1, probe.lsm_label, probe.apparmor_label,
                                 (probe.uid_map, probe.gid_map)),
        "root": {"read_only": probe.root_read_only, "writable": probe.root_write.ok,
                 "options": _flags(root.options) if root else []},
        "mounts": mounts,
    }
    if image is not None:
        entry["image"] = image
    return entry


def case_entry(observed: Observed, container: str) -> dict:
    """One case (an observe.Observed) as data; `container` is the container under test."""
    refusal = observed.crash or observed.refusal
    containers = {}
    if observed.probe is not None:
        spec = observed.learned.pod_spec if observed.learned else {}
        try:
            spec_container = podspec.container(spec, container)
        except ValueError:
            spec_container = {}
        image = image_entry(spec_container.get("image"), observed.learned,
                            observed.probe.pid1.uid[0])
        containers[container] = container_entry(observed.probe,
                                                spec_container.get("volumeMounts") or [], image)
    learned = observed.learned
    return {
        "container": container,
        "outcome": {
            "status": observed.status,
            "reason": (refusal.reason or None) if refusal else None,
            "message": normalize_message(refusal.message or None) if refusal else None,
            "exit_code": observed.crash.exit_code if observed.crash else None,
        },
        "storage_kinds": dict(sorted((learned.storage_kinds or {}).items())) if learned else {},
        "containers": containers,
    }


def _api_message(message: str) -> str:
    # The API server's refusal is a Status object (JSON); its `message` is what a person reads.
    try:
        return json.loads(message)["message"]
    except (ValueError, TypeError, KeyError):
        return message


def admission_entry(message: str | None) -> dict:
    """One PSA dry-run: admitted (no message) or refused with the API server's message."""
    return {"admitted": message is None,
            "message": None if message is None else normalize_message(_api_message(message))}


def document(env: dict | None, cases: dict, admission: dict, label: str | None = None,
             created: str | None = None) -> dict:
    env = env or environment({})
    return {
        "schema_version": SCHEMA_VERSION,
        "label": label or env.get("kubernetes_version") or "unknown",
        "created": created or datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "environment": env,
        "cases": dict(sorted(cases.items())),
        "admission": {m: dict(sorted(levels.items())) for m, levels in sorted(admission.items())},
    }


def _label_test(value: str) -> None:
    steps.label(ALLURE_LABEL, value)


def admission_key(manifest: str, level: str) -> str:
    return f"admission/{manifest}/{level}"


class Collector:
    """What one pytest process observed. The suite fixture sets `environment`; tests
    record through `suite.observations`; the plugin writes `document()`."""

    def __init__(self) -> None:
        self.environment: dict | None = None
        self.cases: dict[str, dict] = {}
        self.admission: dict[str, dict[str, dict]] = {}
        self.parts: list[dict] = []  # documents of pytest-xdist workers (controller only)

    def record_case(self, key: str, container: str, observed: Observed, runtime: str = "default") -> None:
        self.cases[key] = {**case_entry(observed, container), "runtime": runtime}
        _label_test(key)

    def record_admission(self, manifest: str, level: str, message: str | None) -> None:
        """One pod's verdict; a manifest with several pods is refused if any one is."""
        entry = admission_entry(message)
        before = self.admission.setdefault(manifest, {}).get(level)
        if before and not before["admitted"]:
            entry = {"admitted": False, "message": "\n".join(
                m for m in (before["message"], entry["message"]) if m)}
        self.admission[manifest][level] = entry
        _label_test(admission_key(manifest, level))

    def observed_anything(self) -> bool:
        return bool(self.environment or self.cases or self.admission or self.parts)

    def own_document(self) -> dict:
        return document(self.environment, self.cases, self.admission)

    def document(self) -> dict:
        own = [self.own_document()] if self.environment or self.cases or self.admission else []
        return merge(self.parts + own)


def merge(docs: list[dict]) -> dict:
    """One document from the partial documents of several processes of one run (pytest-xdist
    workers): cases and verdicts united, the environment of the first that has one."""
    envs = [d["environment"] for d in docs if d.get("environment", {}).get("kubernetes_version")]
    cases: dict = {}
    admission: dict = {}
    for d in docs:
        cases.update(d.get("cases", {}))
        for manifest, levels in d.get("admission", {}).items():
            admission.setdefault(manifest, {}).update(levels)
    created = max((d["created"] for d in docs if d.get("created")), default=None)
    labels = [d["label"] for d in docs if d.get("label") not in (None, "unknown")]
    return document(envs[0] if envs else None, cases, admission, labels[0] if labels else None,
                    created)


# --- reading and writing ---------------------------------------------------------------

@cache
def schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text())


def validation_errors(doc: Any) -> list[str]:
    """Each way `doc` breaks the schema, as `path: message`; empty when valid."""
    return schema_errors(schema(), doc)


def schema_errors(json_schema: dict, doc: Any) -> list[str]:
    """Each way `doc` breaks `json_schema` (draft 2020-12), as `path: message`, in path
    order; empty when valid (also for secctx.report.summary's file)."""
    validator = jsonschema.Draft202012Validator(json_schema)
    return [f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}"
            for e in sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))]


def load(path: Path) -> dict:
    """A valid observation document from `path`, or DocumentError (cause and fix)."""
    path = Path(path)
    if not path.is_file():
        raise DocumentError(f"{path} is not a file" + (" (it is a directory)" if path.exists() else
                                                       " (it does not exist)")
                            + ": pass an observation file a run wrote with --secctx-observations")
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise DocumentError(f"{path} is not JSON ({err}): pass an observation file a run wrote "
                            "with --secctx-observations") from None
    if isinstance(doc, dict) and doc.get("schema_version") not in (None, SCHEMA_VERSION):
        raise DocumentError(f"{path} has schema_version {doc.get('schema_version')!r}; this suite "
                            f"reads version {SCHEMA_VERSION}: make the file again with this suite")
    errors = validation_errors(doc)
    if errors:
        raise DocumentError(f"{path} is not a valid observation file ({errors[0]}"
                            + (f"; {len(errors) - 1} more problem(s)" if len(errors) > 1 else "")
                            + f"): see {SCHEMA_PATH.name}")
    return doc


def write(path: Path, doc: dict) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1, sort_keys=False) + "\n")
    tmp.replace(path)
    return path


def _without_generated_names(doc: dict) -> dict:
    """The document with generated volume names replaced (documents written before
    the builder did it have them), so that they are no change."""
    doc = json.loads(json.dumps(doc))
    for case in doc.get("cases", {}).values():
        for container in (case.get("containers") or {}).values():
            for mount in (container.get("mounts") or {}).values():
                if isinstance(mount, dict) and "volume" in mount:
                    mount["volume"] = volume_name(mount["volume"])
    return doc


def diff_path(observations: Path, suffix: str = ".diff.json") -> Path:
    """Where --secctx-compare-to writes the diff (`.diff.json`) and its summary (`.diff.txt`):
    next to the observation file."""
    observations = Path(observations)
    stem = observations.name[:-len(".json")] if observations.name.endswith(".json") else observations.name
    return observations.with_name(stem + suffix)


# --- comparing ---------------------------------------------------------------------------

@dataclass
class Change:
    """One field that differs between two runs. `container` is None for a case's own fields
    (outcome, storage) and for admission verdicts (where `case` is the manifest)."""
    case: str
    container: str | None
    field: str
    old: Any
    new: Any
    old_run: str  # label of the older run (its Kubernetes version unless set otherwise)
    new_run: str
    kind: str = "neutral"  # regression | relaxation | neutral
    rule: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    def line(self) -> str:
        where = self.case + (f" / {self.container}" if self.container else "")
        return f"{self.kind.upper():<10}  {where}  {self.field}: {format_change(self)}  [{self.rule}]"


REGRESSION, RELAXATION, NEUTRAL = "regression", "relaxation", "neutral"

# rule -> (class, what it means), one a line. `classify` applies them, first match wins;
# docs/observations.md lists them in this order.
RULES: dict[str, tuple[str, str]] = {
    name.strip(): (cls.strip(), text.strip())
    for name, cls, text in (line.split("|", 2) for line in """
outcome-now-runs      | regression | a case that was refused or crashing now runs
outcome-now-stopped   | relaxation | a case that ran is now refused or crashing
id-became-root        | regression | a uid or gid (real, effective, saved or fs) became 0
id-left-root          | relaxation | a uid or gid that was 0 is no longer 0
groups-from-image     | neutral    | every supplementary group gained or lost is one the image's /etc/group gained or lost for the user (another image, not another enforcement)
groups-gained         | regression | the process has supplementary groups it did not have
groups-lost           | relaxation | the process lost supplementary groups and gained none
caps-added            | regression | bits were added to a capability set (CapEff, CapPrm, CapBnd, CapAmb or CapInh)
caps-removed          | relaxation | bits were removed from a capability set and none added
nnp-cleared           | regression | NoNewPrivs went from 1 to 0
nnp-set               | relaxation | NoNewPrivs went from 0 to 1
seccomp-weaker        | regression | the seccomp mode is less strict (strict > filtered > disabled)
seccomp-stronger      | relaxation | the seccomp mode is stricter
seccomp-fewer-filters | regression | fewer seccomp filters are installed
seccomp-more-filters  | relaxation | more seccomp filters are installed
now-writable          | regression | the root or a mount became writable (read_only true to false, or the write test now succeeds)
now-read-only         | relaxation | the root or a mount became read-only or not writable
mount-flags-dropped   | regression | nosuid, nodev or noexec was removed from a mount
mount-flags-added     | relaxation | nosuid, nodev or noexec was added to a mount, none removed
mode-widened          | regression | a volume's mode gained write for others or the setuid bit
mode-narrowed         | relaxation | a volume's mode lost write for others or setuid, gained none
lsm-unconfined        | regression | the LSM label became absent, unconfined (AppArmor unconfined or complain mode, SELinux spc_t or unconfined_t)
lsm-confined          | relaxation | an absent or unconfined LSM label became a confining one
psa-now-admits        | regression | a Pod Security level now admits a pod it refused
psa-now-refuses       | relaxation | a Pod Security level now refuses a pod it admitted
userns-left           | regression | a process that had a user namespace of its own (pod-range) no longer has one
userns-entered        | relaxation | a process now has a user namespace of its own (pod-range)
case-added            | neutral    | a case observed only in the newer run
case-removed          | neutral    | a case observed only in the older run (not run, or it failed before its observation)
presence              | neutral    | a container, mount or verdict observed in one run only
other                 | neutral    | any other change: a message or reason text, ownership, an LSM label replaced by another confining one, a value that is not weaker
""".strip().splitlines())
}

_HARDENING_FLAGS = {"nosuid", "nodev", "noexec"}
_SECCOMP_STRICTNESS = {"disabled": 0, "filtered": 1, "strict": 2}
_MODE_WIDENING = 0o4002  # setuid, write for others (group write is what fsGroup grants)


def _grew(old, new) -> str | None:
    """'grew', 'shrank' or None for two collections (set-wise)."""
    old, new = set(old or ()), set(new or ())
    if new - old:
        return "grew"
    if old - new:
        return "shrank"
    return None


def _unconfined(label: str | None) -> bool:
    """No LSM label, AppArmor's `unconfined` or a profile in complain mode, or an
    unconfined SELinux type (spc_t, unconfined_t)."""
    if label is None or label.startswith("unconfined") or label.endswith("(complain)"):
        return True
    fields = label.split(":")
    return len(fields) >= 3 and fields[2] in ("spc_t", "unconfined_t")


def classify(change: Change) -> tuple[str, str]:
    """(regression | relaxation | neutral, rule name) for one change; RULES says what each
    rule means. Regression = the newer run is less strict than the older one."""
    def rule(name: str) -> tuple[str, str]:
        return RULES[name][0], name
    field, old, new = change.field, change.old, change.new
    parts = field.split(".")
    last = parts[-1]
    if field == "(case)":
        return rule("case-added" if old is None else "case-removed")
    if old is None and isinstance(new, dict) or new is None and isinstance(old, dict):
        return rule("presence")
    if field == "outcome.status":
        if new == Status.RUNNING and old in STOPPED:
            return rule("outcome-now-runs")
        if old == Status.RUNNING and new in STOPPED:
            return rule("outcome-now-stopped")
    elif parts[0] == "admission" and last == "admitted":
        return rule("psa-now-admits" if new else "psa-now-refuses")
    elif parts[0] == "process":
        return rule(_process_rule(field, parts, old, new) or "other")
    elif parts[0] in ("root", "mounts"):
        return rule(_mount_rule(parts, last, old, new) or "other")
    return rule("other")


def _process_rule(field: str, parts: list[str], old: Any, new: Any) -> str | None:
    """The rule of a change under process.*, None when none names it."""
    if parts[:2] == ["process", "uid"] or parts[:2] == ["process", "gid"]:
        if new == 0 and old != 0:
            return "id-became-root"
        if old == 0 and new != 0:
            return "id-left-root"
    elif field == "process.groups":
        grew = _grew(old, new)
        if grew:
            return "groups-gained" if grew == "grew" else "groups-lost"
    elif parts[:2] == ["process", "capabilities"]:
        old_mask, new_mask = int(old["hex"], 16), int(new["hex"], 16)
        if new_mask & ~old_mask:
            return "caps-added"
        if old_mask & ~new_mask:
            return "caps-removed"
    elif parts[:2] == ["process", "user_namespace"]:
        if old == "pod-range" and new != "pod-range":
            return "userns-left"
        if new == "pod-range" and old != "pod-range":
            return "userns-entered"
    elif field == "process.no_new_privs":
        return "nnp-cleared" if old and not new else "nnp-set"
    elif field == "process.seccomp.mode":
        before, after = _SECCOMP_STRICTNESS.get(old), _SECCOMP_STRICTNESS.get(new)
        if before is not None and after is not None and before != after:
            return "seccomp-weaker" if after < before else "seccomp-stronger"
    elif field == "process.seccomp.filters":
        if isinstance(old, int) and isinstance(new, int):
            return "seccomp-fewer-filters" if new < old else "seccomp-more-filters"
    elif parts[:2] == ["process", "lsm"]:
        if _unconfined(new) and not _unconfined(old):
            return "lsm-unconfined"
        if _unconfined(old) and not _unconfined(new):
            return "lsm-confined"
    return None


def _mount_rule(parts: list[str], last: str, old: Any, new: Any) -> str | None:
    """The rule of a change under root.* or mounts.*, None when none names it."""
    if last == "read_only":
        if old is True and new is False:
            return "now-writable"
        if old is False and new is True:
            return "now-read-only"
    elif last == "writable":
        if old is not True and new is True:
            return "now-writable"
        if old is True and new is False:
            return "now-read-only"
    elif last == "options":
        before, after = set(old or ()) & _HARDENING_FLAGS, set(new or ()) & _HARDENING_FLAGS
        if before - after:
            return "mount-flags-dropped"
        if after - before:
            return "mount-flags-added"
    elif parts[0] == "mounts" and last == "mode" and old and new:
        before, after = int(old, 8) & _MODE_WIDENING, int(new, 8) & _MODE_WIDENING
        if after & ~before:
            return "mode-widened"
        if before & ~after:
            return "mode-narrowed"
    return None


def is_leaf(value: Any) -> bool:
    # A capability set is one value (hex and names together), not two fields.
    return not isinstance(value, dict) or set(value) == {"hex", "names"}


def _walk(old: dict, new: dict, path: tuple[str, ...] = ()):
    """(path, old, new) for each leaf that differs; a key present on one side only is one
    difference at that key (its whole subtree against None)."""
    for key in sorted(set(old) | set(new)):
        here = (*path, key)
        if key not in old or key not in new:
            yield here, old.get(key), new.get(key)
        elif not is_leaf(old[key]) and not is_leaf(new[key]):
            yield from _walk(old[key], new[key], here)
        elif old[key] != new[key]:
            yield here, old[key], new[key]


def run_label(doc: dict) -> str:
    return doc.get("label") or doc.get("environment", {}).get("kubernetes_version") or "unknown"


def _change(case: str, path: tuple[str, ...], old, new, old_run: str, new_run: str) -> Change:
    if path and path[0] == "containers" and len(path) >= 2:
        container, field = path[1], ".".join(path[2:]) or "(container)"
    else:
        container, field = None, ".".join(path) or "(case)"
    change = Change(case, container, field, old, new, old_run, new_run)
    change.kind, change.rule = classify(change)
    return change


def diff(old: dict, new: dict) -> list[Change]:
    """Every field that differs between two observation documents, classified."""
    old, new = _without_generated_names(old), _without_generated_names(new)
    a, b = run_label(old), run_label(new)
    changes = []
    old_cases, new_cases = old.get("cases", {}), new.get("cases", {})
    for case in sorted(set(old_cases) | set(new_cases)):
        if case not in old_cases or case not in new_cases:
            changes.append(_change(case, (), old_cases.get(case), new_cases.get(case), a, b))
            continue
        case_changes = [_change(case, path, x, y, a, b)
                        for path, x, y in _walk(old_cases[case], new_cases[case])]
        changes += _explained_by_the_image(case_changes)
    old_psa, new_psa = old.get("admission", {}), new.get("admission", {})
    for manifest in sorted(set(old_psa) | set(new_psa)):
        for path, x, y in _walk(old_psa.get(manifest) or {}, new_psa.get(manifest) or {}):
            changes.append(_change(manifest, ("admission", *path), x, y, a, b))
    return changes


def _explained_by_the_image(changes: list[Change]) -> list[Change]:
    """A process.groups change that the image's memberships explain (every group gained
    is one the image's /etc/group added for the user, every group lost one it
    removed) is neutral."""
    memberships = {c.container: c for c in changes if c.field == "image.memberships"}
    for c in changes:
        m = memberships.get(c.container)
        if c.field == "process.groups" and m is not None:
            old_groups, new_groups = set(c.old or ()), set(c.new or ())
            old_m, new_m = set(m.old or ()), set(m.new or ())
            if new_groups - old_groups <= new_m - old_m and old_groups - new_groups <= old_m - new_m:
                c.kind, c.rule = RULES["groups-from-image"][0], "groups-from-image"
    return changes


def counts(changes: list[Change]) -> dict[str, int]:
    return {kind: sum(c.kind == kind for c in changes) for kind in (REGRESSION, RELAXATION, NEUTRAL)}


def _subtree(value: Any) -> bool:
    return isinstance(value, dict) and not is_leaf(value)


def format_value(value: Any, limit: int = 80) -> str:
    if isinstance(value, dict) and set(value) == {"hex", "names"}:
        return ",".join(value["names"]) or "(none)"
    if value is None:
        return "(none)"
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def format_change(change: Change, limit: int = 80) -> str:
    old, new = change.old, change.new
    if old is None and _subtree(new) or new is None and _subtree(old):
        return "observed → not observed" if new is None else "not observed → observed"
    if isinstance(old, dict) and isinstance(new, dict) and {"hex", "names"} == set(old) == set(new):
        added = [n for n in new["names"] if n not in old["names"]]
        removed = [n for n in old["names"] if n not in new["names"]]
        delta = " ".join([f"+{n}" for n in added] + [f"-{n}" for n in removed])
        return f"{old['hex']} → {new['hex']} ({delta})"
    return f"{format_value(old, limit)} → {format_value(new, limit)}"


def _run_text(doc: dict) -> str:
    env = doc.get("environment", {})
    extra = ", ".join(x for x in (env.get("container_runtime"), env.get("kernel")) if x)
    return run_label(doc) + (f" ({extra})" if extra else "")


def summary(changes: list[Change], old: dict, new: dict) -> str:
    """A short text for CI logs: "no change" plainly, else counts per class and one line
    per change, regressions first."""
    head = f"observations {_run_text(old)} → {_run_text(new)}:"
    if not changes:
        return f"{head} no change\n"
    n = counts(changes)
    lines = [f"{head} {len(changes)} change(s): {n[REGRESSION]} regression(s), "
             f"{n[RELAXATION]} relaxation(s), {n[NEUTRAL]} neutral"]
    order = {REGRESSION: 0, RELAXATION: 1, NEUTRAL: 2}
    lines += [c.line() for c in sorted(changes, key=lambda c: order[c.kind])]
    used = sorted({c.rule for c in changes}, key=list(RULES).index)
    lines += ["rules: " + "; ".join(f"{name} = {RULES[name][1]}" for name in used)]
    return "\n".join(lines) + "\n"


def diff_document(changes: list[Change], old: dict, new: dict) -> dict:
    """The diff as data (what --secctx-compare-to and the matrix write)."""
    return {"schema_version": SCHEMA_VERSION,
            "old": {"label": run_label(old), "created": old.get("created"),
                    "environment": old.get("environment")},
            "new": {"label": run_label(new), "created": new.get("created"),
                    "environment": new.get("environment")},
            "counts": counts(changes),
            "rules": {name: {"class": kind, "meaning": text} for name, (kind, text) in RULES.items()},
            "changes": [c.to_dict() for c in changes]}


def compare(baseline: dict, current: dict, observations_path: Path) -> tuple[list[Change], str, Path]:
    """What --secctx-compare-to does at the end of a session: diff, the summary, the diff file
    (the summary goes beside it, for CI job summaries)."""
    changes = diff(baseline, current)
    path = write(diff_path(observations_path), diff_document(changes, baseline, current))
    text = summary(changes, baseline, current)
    diff_path(observations_path, ".diff.txt").write_text(text)
    return changes, text, path


def by_case(changes: list[Change]) -> dict[str, list[Change]]:
    out: dict[str, list[Change]] = {}
    for c in changes:
        out.setdefault(c.case, []).append(c)
    return out


def case_lines(changes: list[Change], verdict: Callable[[str], str],
               name: Callable[[str], str] = lambda case: case, rules: bool = False) -> list[str]:
    """The changes case by case: "  <name(case)>: <verdict(case)>", then each field that
    differs with its whole values (two runtimes' messages often differ only past the
    first words) and, with `rules`, its class and rule. The per-runtime comparison
    (secctx.observations.recording) and the comparison of two runs (secctx.matrix) both say it so."""
    lines = []
    for case, fields in sorted(by_case(changes).items()):
        lines.append(f"  {name(case)}: {verdict(case)}")
        lines += [f"    {c.field}: {format_change(c, limit=400)}"
                  + (f"  [{c.kind} {c.rule}]" if rules else "") for c in fields]
    return lines


def by_runtime(doc: dict) -> dict[str, dict]:
    """The run's document split per runtime: {runtime: a document of its cases, keyed by
    the case's id without "@runtime"}, each labelled with the runtime."""
    docs: dict[str, dict] = {}
    for key, entry in doc.get("cases", {}).items():
        runtime = entry.get("runtime", RUNTIME_HANDLER)
        base = key.removesuffix(f"@{runtime}")
        part = docs.setdefault(runtime, {**doc, "label": runtime, "cases": {}, "admission": {}})
        part["cases"][base] = {k: v for k, v in entry.items() if k != "runtime"}
    return docs


def runtime_differences(doc: dict) -> dict[str, list[Change]]:
    """For each runtime but the default: every field its cases showed differently from the
    same cases under the default runtime (cases run under only one of them are left out)."""
    docs = by_runtime(doc)
    default = docs.get(RUNTIME_HANDLER)
    out = {}
    for runtime, part in sorted(docs.items()):
        if runtime == RUNTIME_HANDLER or default is None:
            continue
        shared = set(part["cases"]) & set(default["cases"])
        out[runtime] = diff({**default, "cases": {k: default["cases"][k] for k in shared}},
                            {**part, "cases": {k: part["cases"][k] for k in shared}})
    return out
