"""A generated pod as ordinary case files, read back through secctx.cases.

Layout (the same as fixtures/, so a finding is copied in as is):

    ROOT/cases/<pod>-<container>.yaml         one case per container
    ROOT/manifests/generated/<pod>.yaml       the Pod (and the ConfigMap, Secret it mounts)
    ROOT/manifests/allowlist-probe-profile.json  the Localhost profile, when used
"""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import yaml

from .. import cases
from ..cases import Outcome, Status
from ..core import paths, podspec
from .strategy import LOCALHOST_PROFILE

PROFILE_FILE = paths.FIXTURES / "manifests" / "allowlist-probe-profile.json"
CONFIG_MAP = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "generated-config"},
              "data": {"greeting": "hello"}}
SECRET = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "generated-secret"},
          "stringData": {"token": "t0ken"}}
IMAGE_VOLUMES = {"since": "v1.35", "why": "ImageVolume is beta and off by default before v1.35"}
# The section a generated case is filed under: its most telling field.
SECTION_BY_FIELD = (("procMount", "User namespaces"), ("seccompProfile", "Seccomp"),
                    ("capabilities", "Capabilities"), ("privileged", "Capabilities"),
                    ("readOnlyRootFilesystem", "Read-only root"), ("fsGroup", "fsGroup"),
                    ("appArmorProfile", "AppArmor"))


def spec_key(spec: dict) -> str:
    return json.dumps(spec, sort_keys=True)


def pod_name(spec: dict) -> str:
    """A name that is the spec's own: the same spec always gets the same name."""
    digest = hashlib.sha256(spec_key(spec).encode()).hexdigest()[:10]
    return f"gen-{digest}"


def manifest(spec: dict) -> list[dict]:
    """The objects to apply: the Pod, and the ConfigMap and Secret its volumes name."""
    name = pod_name(spec)
    # A host directory of the pod's own: probes of other pods write into it too.
    volumes = [{**v, "hostPath": {**v["hostPath"], "path": f"{v['hostPath']['path']}/{name}"}}
               if "hostPath" in v else v for v in spec.get("volumes") or []]
    spec = {**spec, "volumes": volumes} if volumes else spec
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}
    kinds = {k for v in spec.get("volumes") or [] for k in v}
    return ([CONFIG_MAP] if "configMap" in kinds else []) + \
        ([SECRET] if "secret" in kinds else []) + [pod]


def _section(spec: dict, container: dict) -> str:
    contexts = [container.get("securityContext") or {}, spec.get("securityContext") or {}]
    for key, section in SECTION_BY_FIELD:
        if any(key in sc for sc in contexts):
            return section
    return "User namespaces" if spec.get("hostUsers") is False else "Run as non-root"


def _outcome_field(outcome: Outcome):
    if outcome.status == Status.RUNNING:
        return None
    return {k: v for k, v in (("status", outcome.status.value), ("reason", outcome.reason),
                              ("message", outcome.message)) if v}


def case_document(spec: dict, container: str, outcome: Outcome) -> dict:
    name = pod_name(spec)
    document = {"name": f"{name}-{container}", "section": _section(spec, podspec.container(spec, container)),
                "field": "generated securityContext", "manifest": f"../manifests/generated/{name}.yaml",
                "pod": name, "container": container, "severity": "normal"}
    if _outcome_field(outcome):
        document["outcome"] = _outcome_field(outcome)
    if LOCALHOST_PROFILE in json.dumps(spec):
        document["seccomp_profiles"] = {LOCALHOST_PROFILE: "../manifests/allowlist-probe-profile.json"}
    if any("image" in v for v in spec.get("volumes") or []):
        document["kubernetes"] = dict(IMAGE_VOLUMES)
    return document


def write(root: Path, spec: dict, outcomes: dict[str, Outcome],
          comments: dict[str, str] | None = None) -> list[Path]:
    """Write the pod's manifest and one case file per container (its predicted outcome);
    `comments`: container -> text put at the top of its case file. Returns the case files."""
    name = pod_name(spec)
    (root / "manifests" / "generated").mkdir(parents=True, exist_ok=True)
    (root / "cases").mkdir(parents=True, exist_ok=True)
    (root / "manifests" / "generated" / f"{name}.yaml").write_text(
        yaml.safe_dump_all(manifest(spec), sort_keys=False))
    if LOCALHOST_PROFILE in json.dumps(spec):
        shutil.copyfile(PROFILE_FILE, root / "manifests" / PROFILE_FILE.name)
    written = []
    for container in [c["name"] for c in podspec.containers(spec)]:
        path = root / "cases" / f"{name}-{container}.yaml"
        header = "# yaml-language-server: $schema=../../secctx/schema/case.schema.json\n"
        for line in (comments or {}).get(container, "").splitlines():
            header += f"# {line}".rstrip() + "\n"
        path.write_text(header + yaml.safe_dump(case_document(spec, container, outcomes[container]),
                                                sort_keys=False, width=100))
        written.append(path)
    return written


def load(paths_: list[Path]) -> list[cases.Case]:
    """The cases of the given files, through the one loader; a bad file is a bug here."""
    loaded, errors = cases.load_cases(sorted({p.parent for p in paths_}))
    if errors:
        raise ValueError("generated case files do not load: " + "; ".join(map(str, errors)))
    wanted = {p.resolve() for p in paths_}
    return [c for c in loaded if c.source.resolve() in wanted]
