"""The case schema is the one definition of the case format: the loader's lists,
the README's tables and the editors' checks all come from it."""
from __future__ import annotations

import importlib
import json
import shutil
import sys
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator

from secctx import cases
from secctx.cases import schemadoc
from secctx.core import caps

ROOT = Path(__file__).resolve().parents[2]
CASES_DIR = ROOT / "fixtures" / "cases"
README = CASES_DIR / "README.md"
SCHEMA_LINE = "# yaml-language-server: $schema=../../secctx/schema/case.schema.json"


def test_schema_is_valid_draft_2020_12():
    assert cases.SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(cases.SCHEMA)


def test_every_object_refuses_unknown_keys():
    def objects(node):
        if isinstance(node, dict):
            if "properties" in node:
                yield node
            for value in node.values():
                yield from objects(value)
        elif isinstance(node, list):
            for value in node:
                yield from objects(value)
    found = [o for o in objects(cases.SCHEMA) if "x-key-name" in o or o is cases.SCHEMA]
    assert len(found) >= 8
    for node in found:
        assert node.get("additionalProperties") is False, node.get("title")


def test_lists_come_from_the_schema():
    assert cases.SECTIONS == ("Run as non-root", "Hardened pod", "Capabilities", "fsGroup", "Read-only root",
                              "Seccomp", "SELinux", "AppArmor", "Deployment", "Troubleshooting", "PID namespace",
                              "User namespaces", "Mounts")
    assert cases.SEVERITIES == ("blocker", "critical", "normal", "minor")
    assert cases.OUTCOMES == ("running", "rejected", "crashing", "invalid")
    assert cases.STORAGE_KINDS == ("hostPath", "local", "csi", "nfs")
    assert cases.SECCOMP_MODES == {"disabled": 0, "strict": 1, "filtered": 2}
    assert cases.SKIP_FEATURES.keys() >= {"user_namespaces", "recursive_read_only_mounts",
                                          "supplemental_groups_policy"}
    assert {k: v for k, v in cases.SKIP_FEATURES.items() if k in ("apparmor", "selinux")} == {
        "apparmor": "AppArmor is not enabled on the node",
        "selinux": "SELinux is disabled on the node: the kubelet passes seLinuxOptions to the runtime, "
                   "which silently ignores them, so there is no label to assert",
    }


def test_expect_fields_name_their_kind_and_check():
    # At least these; a new key is a schema edit only, so it is not listed here.
    assert cases.EXPECT_FIELDS.items() >= {
        "uid": ("id", "uid"), "gid": ("id", "gid"), "groups": ("ids", "groups"),
        "no_new_privs": ("bool", "NoNewPrivs"), "seccomp": ("seccomp", "Seccomp"),
        "cap_eff": ("caps", "CapEff"), "cap_bnd": ("caps", "CapBnd"),
        "root_read_only": ("bool", "root read-only"), "lsm_label": ("regex", "LSM label"),
        "volumes": ("volumes", "volumes"),
    }.items()
    for key, (kind, _) in cases.EXPECT_FIELDS.items():
        assert kind in cases.CONVERTERS, f"expect.{key}: no converter for x-kind {kind!r}"
        assert cases.resolve(cases.SCHEMA["$defs"]["expect"]["properties"][key]).get("description"), key


def test_capability_names_are_those_of_caps_py():
    assert tuple(cases.definition("capability")["enum"]) == caps.CAPABILITIES


def test_every_case_file_names_the_schema():
    for path in sorted(CASES_DIR.glob("*.yaml")):
        assert path.read_text().splitlines()[0] == SCHEMA_LINE, path.name
    assert (CASES_DIR / SCHEMA_LINE.split("=", 1)[1]).resolve() == cases.SCHEMA_PATH
    assert SCHEMA_LINE in README.read_text()


def test_real_cases_are_valid_for_the_plain_schema():
    """What editors check is what the loader checks first."""
    validator = Draft202012Validator(cases.SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER)
    for path in sorted(CASES_DIR.glob("*.yaml")):
        assert list(validator.iter_errors(yaml.safe_load(path.read_text()))) == [], path.name


def test_readme_tables_are_generated_from_the_schema():
    part = schemadoc.generated_part(README.read_text())
    assert part is not None, f"{README} lost its {schemadoc.BEGIN} ... {schemadoc.END} markers"
    assert part == schemadoc.render(), (
        f"{README.relative_to(ROOT)} is out of date with the case schema: "
        f"run `python -m {schemadoc.__name__} --write` to update")


def test_schemadoc_write_and_check(tmp_path: Path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{schemadoc.BEGIN}\nstale\n{schemadoc.END}\noutro\n")
    assert schemadoc.main(["--readme", str(readme), "--check"]) == 1
    assert "run `python -m secctx.cases.schemadoc --write`" in capsys.readouterr().err
    assert schemadoc.main(["--readme", str(readme), "--write"]) == 0
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith(f"{schemadoc.END}\noutro\n")
    assert schemadoc.main(["--readme", str(readme), "--check"]) == 0


# --- a new expect key or skip feature is a schema edit ----------------------

@pytest.fixture
def edited_schema(tmp_path: Path, monkeypatch):
    """A copy of the secctx package whose schema the test edits, imported as its own package."""
    package = tmp_path / "secctx_edited"
    shutil.copytree(Path(cases.__file__).parents[1], package, ignore=shutil.ignore_patterns("__pycache__"))
    schema_path = package / "schema" / "case.schema.json"
    schema = json.loads(schema_path.read_text())
    monkeypatch.syspath_prepend(str(tmp_path))

    def load(edit):
        edit(schema)
        schema_path.write_text(json.dumps(schema))
        return (importlib.import_module("secctx_edited.cases"), importlib.import_module("secctx_edited.cases.schemadoc"))
    yield load
    for name in [n for n in sys.modules if n == "secctx_edited" or n.startswith("secctx_edited.")]:
        del sys.modules[name]


POD_CASE = """\
name: demo
section: Capabilities
field: capabilities
manifest: ../pod.yaml
pod: demo
container: app
severity: normal
{extra}
"""
POD = "apiVersion: v1\nkind: Pod\nmetadata: {name: demo}\nspec:\n  containers: [{name: app, image: busybox}]\n"


def _load_one(module, tmp_path: Path, extra: str):
    directory = tmp_path / "cases"
    directory.mkdir(exist_ok=True)
    (tmp_path / "pod.yaml").write_text(POD)
    (directory / "demo.yaml").write_text(POD_CASE.format(extra=extra))
    return module.load_cases([directory])


def test_a_new_expect_key_is_one_schema_edit(edited_schema, tmp_path: Path):
    def add_cap_amb(schema):
        schema["$defs"]["expect"]["properties"]["cap_amb"] = {
            "description": "Ambient capabilities (`CapAmb:` decoded); `[]` for none.",
            "$ref": "#/$defs/capabilities", "x-kind": "caps", "x-check": "CapAmb"}
    edited, doc = edited_schema(add_cap_amb)
    assert edited.EXPECT_FIELDS["cap_amb"] == ("caps", "CapAmb")
    [case], errors = _load_one(edited, tmp_path, "expect: {cap_amb: [NET_RAW]}")
    assert errors == [] and case.expect == {"cap_amb": frozenset({"NET_RAW"})}
    _, errors = _load_one(edited, tmp_path, "expect: {cap_amb: [NET_RAWW]}")
    assert "bad capability 'NET_RAWW' in expect.cap_amb" in errors[0].message
    assert "| `cap_amb` |  | list of [capabilities](#capability) | `CapAmb` | Ambient capabilities" in doc.render()
    # The real package is untouched.
    assert "cap_amb" not in cases.EXPECT_FIELDS


def test_a_new_skip_feature_is_one_schema_edit(edited_schema, tmp_path: Path):
    reason = "the node has no Landlock LSM"
    edited, doc = edited_schema(lambda schema: schema["$defs"]["skip_feature"]["oneOf"].append(
        {"const": "landlock", "description": reason}))
    assert edited.SKIP_FEATURES["landlock"] == reason
    [case], errors = _load_one(edited, tmp_path, "skip_unless: landlock")
    assert errors == [] and case.skip_unless == "landlock"
    assert f"| `landlock` | {reason} |" in doc.render()
