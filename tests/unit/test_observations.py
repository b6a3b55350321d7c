"""secctx.observations and secctx.matrix: the observation document, its schema, the
field-by-field diff with its classification rules, the xdist merge, the plugin's
end-of-session writing, and the version matrix (JSON, text, HTML, the `run` command)."""
from __future__ import annotations

import copy
import hashlib
import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from jsonschema import Draft202012Validator

from secctx import matrix, observations, observe
from secctx.core import caps
from secctx.matrix import commands as matrix_commands
from secctx.observations import Change, classify, diff, recording
from secctx.oracle.expect import ClaimFacts, ImageUser, Learned

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "observations.md"

# /proc/1/status of hardened-pod's container on a 6.8 kernel: uid 1000, gid 3000,
# fsGroup 2000, drop ALL + add NET_BIND_SERVICE (only in the bounding set for a
# non-root process), allowPrivilegeEscalation false, RuntimeDefault seccomp.
STATUS = """\
Name:\tsleep
Umask:\t0022
State:\tS (sleeping)
Tgid:\t1
Pid:\t1
PPid:\t0
Uid:\t1000\t1000\t1000\t1000
Gid:\t3000\t3000\t3000\t3000
FDSize:\t64
Groups:\t3000 2000 
Threads:\t1
CapInh:\t0000000000000000
CapPrm:\t0000000000000000
CapEff:\t0000000000000000
CapBnd:\t0000000000000400
CapAmb:\t0000000000000000
NoNewPrivs:\t1
Seccomp:\t2
Seccomp_filters:\t1
Speculation_Store_Bypass:\tthread force mitigated
"""

MOUNTS = """\
overlay / overlay ro,relatime,lowerdir=/var/lib/containerd/snapshots/12/fs,upperdir=/var/lib/containerd/snapshots/13/fs,workdir=/var/lib/containerd/snapshots/13/work 0 0
proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0
tmpfs /dev tmpfs rw,nosuid,size=65536k,mode=755,inode64 0 0
/dev/sda1 /data ext4 rw,relatime,discard,errors=remount-ro 0 0
tmpfs /tmp tmpfs rw,nosuid,nodev,relatime,size=8047960k,inode64 0 0
/dev/sda1 /etc/hosts ext4 rw,relatime,discard,errors=remount-ro 0 0
"""

POD_SPEC = {
    "securityContext": {"runAsUser": 1000, "runAsGroup": 3000, "fsGroup": 2000},
    "containers": [{"name": "app", "image": "busybox:1.36",
                    "volumeMounts": [{"name": "data", "mountPath": "/data"},
                                     {"name": "tmp", "mountPath": "/tmp"},
                                     {"name": "config", "mountPath": "/etc/app", "readOnly": True}]}],
    "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "my-pvc"}},
                {"name": "tmp", "emptyDir": {}}, {"name": "config", "configMap": {"name": "c"}}],
}


def section(name: str, text: str, rc: int = 0) -> str:
    return f"### secctx:begin {name}\n{text}\n### secctx:end {name} rc={rc}\n"


def probe_output(status: str = STATUS, mounts: str = MOUNTS, root_write_rc: int = 1,
                 label: str = "cri-containerd.apparmor.d (enforce)") -> str:
    return "".join([
        section("pid1-status", status),
        section("self-status", status.replace("Name:\tsleep", "Name:\tcat")),
        section("id", "uid=1000 gid=3000 groups=2000,3000\n"),
        section("id-G", "3000 2000\n"),
        section("mounts", mounts),
        section("attr-current", label + "\n"),
        section("attr-apparmor", "cat: can't open '/proc/1/attr/apparmor/current': No such file\n", 1),
        section("stat", "/data|0|2000|2777|drwxrwsrwx\n/data/.secctx-probe|1000|2000|644|-rw-r--r--\n"
                        "/tmp|0|2000|1777|drwxrwxrwt\n/tmp/.secctx-probe|1000|3000|644|-rw-r--r--\n"
                        "/etc/app|0|2000|3777|drwxrwsrwt\n"),
        section("write", "/data|ok\n/tmp|ok\n"),
        section("root-write", "touch: /test.txt: Read-only file system\n" if root_write_rc else "",
                root_write_rc),
    ])


def running(**probe) -> observe.Observed:
    return observe.Observed("running", Learned(POD_SPEC, ImageUser(0, 0, []),
                                                          claims={"my-pvc": ClaimFacts("local")}),
                            probe=observe.parse(probe_output(**probe)))


REFUSED = observe.Observed("rejected", refusal=observe.Refusal(
    "CreateContainerConfigError",
    'container app: CreateContainerConfigError: container has runAsNonRoot and image will run as '
    'root (pod: "troubleshooting-root-image_secctx-troubleshooting-root-image-1a2b3c'
    '(0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0)", container: app)'))
CRASHED = observe.Observed("crashing", crash=observe.Crash(
    reason="Error", message="", exit_code=1,
    logs='nginx: [emerg] mkdir() "/var/cache/nginx/client_temp" failed (13: Permission denied)'))

PROPERTIES = {  # nodefacts.Environment.properties() of an offline kind cluster
    "kubernetes_version": "v1.36.3", "nodes": "secctx-control-plane", "kernel": "6.8.0-79-generic",
    "os_image": "Debian GNU/Linux 12 (bookworm)", "container_runtime": "containerd://2.1.4",
    "cgroup_version": "2", "lsms": "lockdown,capability,landlock,yama,apparmor", "apparmor": "True",
    "selinux": "False", "seccomp_default": "False", "grantable_caps": "000001fffeffffff",
    "mode": "offline", "mode_reason": "no registry", "node_image": "secctx.local/kind-node:v1.36.3",
    "runc": "runc version 1.3.0", "containerd": "containerd v2.1.4", "kind": "kind v0.33.0",
}
PSA_REFUSAL = json.dumps({
    "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Forbidden", "code": 403,
    "message": 'pods "secure-pod" is forbidden: violates PodSecurity "restricted:latest": '
               'unrestricted capabilities (container "app" must set securityContext.capabilities.'
               'drop=["ALL"]), seccompProfile (pod or container "app" must set '
               'securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")'})


def collector(version: str = "v1.36.3") -> observations.Collector:
    c = observations.Collector()
    c.environment = observations.environment({**PROPERTIES, "kubernetes_version": version})
    c.record_case("hardened-pod", "app", running())
    c.record_case("fsgroup-demo[local-storage]", "app", running())
    c.record_case("troubleshooting-root-image", "app", REFUSED)
    c.record_case("secure-pod", "app", CRASHED)
    c.record_admission("secure-pod.yaml", "baseline", None)
    c.record_admission("secure-pod.yaml", "restricted", PSA_REFUSAL)
    return c


def build(version: str = "v1.36.3") -> dict:
    return collector(version).document()


# --- the document ------------------------------------------------------------------------

def test_a_running_case_records_every_field_of_its_container():
    entry = observations.case_entry(running(), "app")
    assert entry["outcome"] == {"status": "running", "reason": None, "message": None, "exit_code": None}
    assert entry["storage_kinds"] == {"my-pvc": "local"}
    app = entry["containers"]["app"]
    proc = app["process"]
    assert proc["uid"] == {"real": 1000, "effective": 1000, "saved": 1000, "fs": 1000}
    assert proc["gid"] == {"real": 3000, "effective": 3000, "saved": 3000, "fs": 3000}
    assert proc["groups"] == [2000, 3000]
    assert proc["capabilities"]["CapBnd"] == {"hex": "0000000000000400", "names": ["NET_BIND_SERVICE"]}
    assert all(proc["capabilities"][s] == {"hex": "0" * 16, "names": []}
               for s in ("CapInh", "CapPrm", "CapEff", "CapAmb"))
    assert proc["no_new_privs"] is True
    assert proc["seccomp"] == {"mode": "filtered", "filters": 1}
    assert proc["lsm"] == {"current": "cri-containerd.apparmor.d (enforce)", "apparmor": None}
    # The root: read-only, the write refused; flags only (no lowerdir= paths that change per run).
    assert app["root"] == {"read_only": True, "writable": False, "options": ["relatime", "ro"]}
    assert app["mounts"]["/data"] == {
        "volume": "data", "fstype": "ext4", "read_only": False, "options": ["discard", "relatime", "rw"],
        "owner": 0, "group": 2000, "mode": "2777", "writable": True, "new_file_group": 2000}
    assert app["mounts"]["/tmp"]["options"] == ["inode64", "nodev", "nosuid", "relatime", "rw"]
    assert app["mounts"]["/tmp"]["new_file_group"] == 3000
    # A readOnly mount with no mount line (a configMap shown through a symlinked dir): not tried.
    assert app["mounts"]["/etc/app"]["read_only"] is None
    assert app["mounts"]["/etc/app"]["writable"] is None
    assert app["mounts"]["/etc/app"]["mode"] == "3777"


def test_a_case_read_back_from_its_record_gives_the_same_entry():
    observed = running()
    again = observe.from_record(observe.to_record(observed), SimpleNamespace(commands=[]))
    assert observations.case_entry(again, "app") == observations.case_entry(observed, "app")


def test_refused_and_crashing_cases_record_their_outcome_without_run_specific_names():
    refused = observations.case_entry(REFUSED, "app")
    assert refused["containers"] == {}
    assert refused["outcome"]["status"] == "rejected"
    assert refused["outcome"]["reason"] == "CreateContainerConfigError"
    assert refused["outcome"]["message"] == (
        "container app: CreateContainerConfigError: container has runAsNonRoot and image will run "
        'as root (pod: "troubleshooting-root-image_<namespace>(<uid>)", container: app)')
    crashed = observations.case_entry(CRASHED, "app")
    assert crashed["outcome"] == {"status": "crashing", "reason": "Error", "message": None,
                                  "exit_code": 1}


@pytest.mark.parametrize("text, expected", [
    ("pod secure-app-7d9f8b6c4-x2x9z in secctx-deployment-0a1b2c", "pod secure-app-<pod> in <namespace>"),
    ("failed to start container " + "ab" * 32 + ": exit status 1",
     "failed to start container <container-id>: exit status 1"),
    ("at 2026-03-01T02:17:44Z: Back-off", "at <time>: Back-off"),
    ("plain message", "plain message"),
])
def test_messages_are_normalized(text, expected):
    assert observations.normalize_message(text) == expected


def test_admission_records_the_status_message_of_a_refusal():
    assert observations.admission_entry(None) == {"admitted": True, "message": None}
    refused = observations.admission_entry(PSA_REFUSAL)
    assert refused["admitted"] is False
    assert refused["message"].startswith('pods "secure-pod" is forbidden: violates PodSecurity')


def test_a_manifest_is_refused_when_any_of_its_pods_is():
    c = observations.Collector()
    c.record_admission("two-pods.yaml", "restricted", PSA_REFUSAL)
    c.record_admission("two-pods.yaml", "restricted", None)
    assert c.admission["two-pods.yaml"]["restricted"]["admitted"] is False


def test_the_document_has_environment_cases_and_admission():
    doc = build()
    assert list(doc) == ["schema_version", "label", "created", "environment", "cases", "admission"]
    assert doc["schema_version"] == 1 and doc["label"] == "v1.36.3"
    assert doc["environment"] == {
        "kubernetes_version": "v1.36.3", "container_runtime": "containerd://2.1.4",
        "runtime_handler": "default", "node_image": "secctx.local/kind-node:v1.36.3",
        "os_image": "Debian GNU/Linux 12 (bookworm)", "kernel": "6.8.0-79-generic",
        "cgroup_version": 2, "mode": "offline", "runc": "runc version 1.3.0",
        "seccomp_default": False, "lsms": ["lockdown", "capability", "landlock", "yama", "apparmor"]}
    assert set(doc["cases"]) == {"hardened-pod", "fsgroup-demo[local-storage]",
                                 "troubleshooting-root-image", "secure-pod"}
    assert doc["admission"]["secure-pod.yaml"]["baseline"] == {"admitted": True, "message": None}


def test_the_schema_is_draft_2020_12_and_describes_every_field():
    schema = observations.schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)
    undescribed = []

    def walk(node, where):
        if isinstance(node, dict):
            for name, sub in (node.get("properties") or {}).items():
                target = schema["$defs"][sub["$ref"].split("/")[-1]] if "$ref" in sub else {}
                if "description" not in sub and "description" not in target:
                    undescribed.append(f"{where}.{name}")
            for key, sub in node.items():
                walk(sub, f"{where}.{key}")
        elif isinstance(node, list):
            for i, sub in enumerate(node):
                walk(sub, f"{where}[{i}]")
    walk(schema, "$")
    for name, definition in schema["$defs"].items():
        if "description" not in definition:
            undescribed.append(f"$defs.{name}")
    assert not undescribed


def test_a_built_document_is_valid():
    assert observations.validation_errors(build()) == []
    assert observations.validation_errors(observations.Collector().document()) == []


def test_an_invalid_document_is_reported_by_path():
    doc = build()
    doc["cases"]["hardened-pod"]["containers"]["app"]["process"]["uid"]["effective"] = "root"
    errors = observations.validation_errors(doc)
    assert errors and errors[0].startswith("cases/hardened-pod/containers/app/process/uid/effective:")


@pytest.mark.parametrize("content, needle", [
    (None, "does not exist"),
    ("{not json", "is not JSON"),
    (json.dumps({"schema_version": 99}), "schema_version 99"),
    (json.dumps({"schema_version": 1, "cases": {}}), "is not a valid observation file"),
])
def test_load_refuses_what_is_not_an_observation_file(tmp_path, content, needle):
    path = tmp_path / "baseline.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(observations.DocumentError) as err:
        observations.load(path)
    assert needle in str(err.value) and "\n" not in str(err.value)


# --- pytest-xdist and the plugin -------------------------------------------------------------

def test_worker_parts_merge_into_one_document():
    gw0, gw1 = observations.Collector(), observations.Collector()
    for c in (gw0, gw1):
        c.environment = observations.environment(PROPERTIES)
    gw0.record_case("hardened-pod", "app", running())
    gw0.record_admission("secure-pod.yaml", "baseline", None)
    gw1.record_case("secure-pod", "app", CRASHED)
    gw1.record_admission("secure-pod.yaml", "restricted", PSA_REFUSAL)
    merged = observations.merge([gw0.own_document(), gw1.own_document()])
    assert set(merged["cases"]) == {"hardened-pod", "secure-pod"}
    assert set(merged["admission"]["secure-pod.yaml"]) == {"baseline", "restricted"}
    assert merged["environment"]["kubernetes_version"] == "v1.36.3"
    assert merged["label"] == "v1.36.3"
    assert observations.validation_errors(merged) == []
    assert json.loads(json.dumps(merged)) == merged  # plain data: execnet carries it


def fake_config(tmp_path, worker: str | None = None, **options):
    config = SimpleNamespace(stash=pytest.Stash(), invocation_params=SimpleNamespace(dir=tmp_path),
                             getoption=lambda name: options.get(name))
    if worker:
        config.workerinput = {"workerid": worker}
        config.workeroutput = {}
    return config


def test_xdist_workers_send_parts_and_the_controller_writes_and_compares(tmp_path):
    baseline = tmp_path / "last-night.json"
    observations.write(baseline, build())
    workers = []
    for name, case, observed in (("gw0", "hardened-pod", running()), ("gw1", "secure-pod", CRASHED)):
        config = fake_config(tmp_path, name)
        suite = SimpleNamespace(env=SimpleNamespace(properties=lambda: PROPERTIES))
        recording.attach(config, suite)
        suite.observations.record_case(case, "app", observed)
        recording.Recorder(config).pytest_sessionfinish(None)
        workers.append(config.workeroutput)
    assert not (tmp_path / "reports").exists(), "workers write no file"

    controller = fake_config(tmp_path, compare_to=baseline)
    recorder = recording.Recorder(controller)
    for out in workers:
        recorder.pytest_testnodedown(SimpleNamespace(workeroutput=out), None)
    recorder.pytest_sessionfinish(None)
    written = observations.load(tmp_path / "reports" / "observations.json")
    assert set(written["cases"]) == {"hardened-pod", "secure-pod"}
    diff_file = tmp_path / "reports" / "observations.diff.json"
    assert json.loads(diff_file.read_text())["counts"]["neutral"] >= 1  # cases not run this time
    assert any("written to" in line for line in recorder.lines)
    assert any("case-removed" in line for line in recorder.lines)

    lines = []
    recorder.pytest_terminal_summary(SimpleNamespace(write_sep=lambda *a: lines.append(a[1]),
                                                     write_line=lines.append))
    assert lines[0] == "observations" and lines[1:] == recorder.lines


def test_a_session_that_observed_nothing_writes_nothing(tmp_path):
    assert recording.finish(observations.Collector(), tmp_path / "o.json", None) == []
    lines = recording.finish(observations.Collector(), tmp_path / "o.json", tmp_path / "b.json")
    assert "nothing observed" in lines[0]
    assert not (tmp_path / "o.json").exists()


def test_a_session_that_observed_only_the_environment_keeps_the_last_runs_file(tmp_path):
    earlier = build()  # (one document: each carries the second it was created in)
    last = observations.write(tmp_path / "o.json", earlier)
    c = observations.Collector()
    c.environment = dict(earlier["environment"])
    [line] = recording.finish(c, last, None)
    assert line.startswith("no case observed in this run (only the environment)"), line
    assert observations.load(last) == earlier, "a run of the floor or cluster tests alone " \
        "must not overwrite what the last run observed (--secctx-compare-to reads it)"


def test_compare_to_with_the_same_observations_says_no_change(tmp_path):
    baseline = observations.write(tmp_path / "baseline.json", build())
    lines = recording.finish(collector(), tmp_path / "now.json", baseline)
    assert any(line.endswith(": no change") for line in lines), lines
    assert json.loads((tmp_path / "now.diff.json").read_text())["changes"] == []
    assert (tmp_path / "now.diff.txt").read_text().rstrip().endswith(": no change")


def test_observations_path_defaults_under_the_invocation_directory(tmp_path):
    assert recording.observations_path(fake_config(tmp_path)) == tmp_path / "reports" / "observations.json"
    assert recording.observations_path(fake_config(tmp_path, observations=Path("/x/o.json"))) == \
        Path("/x/o.json")


def test_a_bad_compare_to_file_is_an_option_problem(tmp_path):
    from secctx.run.plugin import option_problem
    defaults = {"cases_dir": [], "image_map": None, "kind_bin": None, "existing_cluster": False,
                "kube_context": None}
    assert option_problem(lambda name: {**defaults, "compare_to": None}.get(name)) is None
    problem = option_problem(lambda name: {**defaults, "compare_to": tmp_path / "nope.json"}.get(name))
    assert problem.startswith(f"--secctx-compare-to {tmp_path / 'nope.json'} is not a file (it does not exist)")
    good = observations.write(tmp_path / "good.json", build())
    assert option_problem(lambda name: {**defaults, "compare_to": good}.get(name)) is None


# --- diff and classify --------------------------------------------------------------------

def change(field: str, old, new, container: str | None = "app") -> Change:
    return Change("case", container, field, old, new, "v1.36.3", "v1.37.2")


def capset(*names: str) -> dict:
    return observations.capability_set(caps.encode(names))


@pytest.mark.parametrize("field, old, new, kind, rule", [
    ("outcome.status", "rejected", "running", "regression", "outcome-now-runs"),
    ("outcome.status", "crashing", "running", "regression", "outcome-now-runs"),
    ("outcome.status", "running", "rejected", "relaxation", "outcome-now-stopped"),
    ("outcome.status", "rejected", "crashing", "neutral", "other"),
    ("outcome.message", "image will run as root", "image runs as root", "neutral", "other"),
    ("process.uid.effective", 1000, 0, "regression", "id-became-root"),
    ("process.uid.saved", 1000, 0, "regression", "id-became-root"),
    ("process.gid.fs", 3000, 0, "regression", "id-became-root"),
    ("process.uid.real", 0, 1000, "relaxation", "id-left-root"),
    ("process.uid.effective", 1000, 2000, "neutral", "other"),
    ("process.groups", [2000], [0, 2000], "regression", "groups-gained"),
    ("process.groups", [2000, 3000], [2000], "relaxation", "groups-lost"),
    ("process.groups", [2000], [3000], "regression", "groups-gained"),
    ("process.capabilities.CapEff", capset(), capset("NET_RAW"), "regression", "caps-added"),
    ("process.capabilities.CapBnd", capset("CHOWN"), capset("NET_RAW"), "regression", "caps-added"),
    ("process.capabilities.CapAmb", capset(), capset("SYS_ADMIN"), "regression", "caps-added"),
    ("process.capabilities.CapPrm", capset("NET_RAW", "CHOWN"), capset("CHOWN"), "relaxation",
     "caps-removed"),
    ("process.no_new_privs", True, False, "regression", "nnp-cleared"),
    ("process.no_new_privs", False, True, "relaxation", "nnp-set"),
    ("process.seccomp.mode", "filtered", "disabled", "regression", "seccomp-weaker"),
    ("process.seccomp.mode", "strict", "filtered", "regression", "seccomp-weaker"),
    ("process.seccomp.mode", "disabled", "filtered", "relaxation", "seccomp-stronger"),
    ("process.seccomp.filters", 2, 1, "regression", "seccomp-fewer-filters"),
    ("process.seccomp.filters", 1, 2, "relaxation", "seccomp-more-filters"),
    ("process.seccomp.filters", None, 1, "neutral", "other"),
    ("root.read_only", True, False, "regression", "now-writable"),
    ("root.writable", False, True, "regression", "now-writable"),
    ("mounts./data.read_only", True, False, "regression", "now-writable"),
    ("mounts./data.writable", None, True, "regression", "now-writable"),
    ("mounts./data.writable", True, False, "relaxation", "now-read-only"),
    ("root.read_only", False, True, "relaxation", "now-read-only"),
    ("mounts./tmp.options", ["nodev", "nosuid", "rw"], ["nosuid", "rw"], "regression",
     "mount-flags-dropped"),
    ("mounts./tmp.options", ["rw"], ["noexec", "rw"], "relaxation", "mount-flags-added"),
    ("mounts./tmp.options", ["relatime", "rw"], ["rw"], "neutral", "other"),
    ("mounts./data.mode", "2775", "2777", "regression", "mode-widened"),
    ("mounts./data.mode", "0755", "2775", "neutral", "other"),  # fsGroup's group write
    ("mounts./data.mode", "0777", "0755", "relaxation", "mode-narrowed"),
    ("mounts./data.group", 0, 2000, "neutral", "other"),
    ("process.lsm.current", "cri-containerd.apparmor.d (enforce)", "unconfined", "regression",
     "lsm-unconfined"),
    ("process.lsm.current", "system_u:system_r:container_t:s0:c1,c2", "system_u:system_r:spc_t:s0",
     "regression", "lsm-unconfined"),
    ("process.lsm.current", None, "cri-containerd.apparmor.d (enforce)", "relaxation", "lsm-confined"),
    ("process.lsm.current", "system_u:system_r:container_t:s0:c1,c2",
     "system_u:system_r:container_t:s0:c3,c4", "neutral", "other"),
    ("admission.restricted.admitted", False, True, "regression", "psa-now-admits"),
    ("admission.baseline.admitted", True, False, "relaxation", "psa-now-refuses"),
    ("admission.restricted.message", "a", "b", "neutral", "other"),
    ("process.user_namespace.uid_map", "pod-range", "host", "regression", "userns-left"),
    ("process.user_namespace.gid_map", "pod-range", "0 0 65536", "regression", "userns-left"),
    ("process.user_namespace.uid_map", "host", "pod-range", "relaxation", "userns-entered"),
])
def test_classify(field, old, new, kind, rule):
    assert classify(change(field, old, new)) == (kind, rule)
    assert observations.RULES[rule][0] == kind


def test_every_rule_is_documented_for_platform_engineers():
    text = DOCS.read_text()
    missing = [name for name in observations.RULES if f"`{name}`" not in text]
    assert not missing


def test_identical_documents_have_no_change():
    assert diff(build(), build("v1.36.3")) == []
    assert observations.summary([], build(), build()).rstrip().endswith(": no change")


def plant_net_raw(doc: dict, case: str = "hardened-pod") -> dict:
    """A copy of doc in which the container of `case` holds NET_RAW in CapEff."""
    doc = copy.deepcopy(doc)
    cap_eff = doc["cases"][case]["containers"]["app"]["process"]["capabilities"]["CapEff"]
    cap_eff.update(observations.capability_set(caps.encode(cap_eff["names"] + ["NET_RAW"])))
    return doc


def test_planted_capability_is_reported_as_a_regression_with_case_field_and_versions():
    old = build("v1.36.3")
    new = plant_net_raw(build("v1.37.2"))
    changes = diff(old, new)
    assert len(changes) == 1, [c.line() for c in changes]
    [c] = changes
    assert (c.case, c.container, c.field) == ("hardened-pod", "app", "process.capabilities.CapEff")
    assert (c.old_run, c.new_run) == ("v1.36.3", "v1.37.2")
    assert (c.kind, c.rule) == ("regression", "caps-added")
    assert c.old == {"hex": "0000000000000000", "names": []}
    assert c.new == {"hex": "0000000000002000", "names": ["NET_RAW"]}
    text = observations.summary(changes, old, new)
    assert "1 regression(s), 0 relaxation(s), 0 neutral" in text
    assert "\nREGRESSION  hardened-pod / app  process.capabilities.CapEff: " \
           "0000000000000000 → 0000000000002000 (+NET_RAW)  [caps-added]\n" in text
    assert text.splitlines()[-1] == f"rules: caps-added = {observations.RULES['caps-added'][1]}"


def test_diff_reports_outcome_admission_and_presence_changes():
    old, new = build(), build("v1.37.2")
    new["cases"]["troubleshooting-root-image"] = copy.deepcopy(new["cases"]["hardened-pod"])
    new["admission"]["secure-pod.yaml"]["restricted"] = {"admitted": True, "message": None}
    del new["cases"]["secure-pod"]
    got = {(c.case, c.container, c.field): (c.kind, c.rule) for c in diff(old, new)}
    assert got[("troubleshooting-root-image", None, "outcome.status")] == ("regression", "outcome-now-runs")
    assert got[("troubleshooting-root-image", "app", "(container)")] == ("neutral", "presence")
    assert got[("secure-pod.yaml", None, "admission.restricted.admitted")] == ("regression",
                                                                               "psa-now-admits")
    assert got[("secure-pod.yaml", None, "admission.restricted.message")] == ("neutral", "other")
    assert got[("secure-pod", None, "(case)")] == ("neutral", "case-removed")


def test_root_becoming_writable_and_uid_0_are_regressions_end_to_end():
    old = build()
    c = observations.Collector()
    c.environment = observations.environment({**PROPERTIES, "kubernetes_version": "v1.37.2"})
    c.cases = copy.deepcopy(old["cases"])
    root_status = STATUS.replace("Uid:\t1000\t1000\t1000\t1000", "Uid:\t1000\t0\t0\t0")
    c.record_case("hardened-pod", "app", running(status=root_status, root_write_rc=0,
                                                 mounts=MOUNTS.replace("overlay ro,", "overlay rw,")))
    c.admission = copy.deepcopy(old["admission"])
    got = {c.field: (c.kind, c.rule) for c in diff(old, c.document())}
    assert got == {"process.uid.effective": ("regression", "id-became-root"),
                   "process.uid.saved": ("regression", "id-became-root"),
                   "process.uid.fs": ("regression", "id-became-root"),
                   "root.read_only": ("regression", "now-writable"),
                   "root.writable": ("regression", "now-writable"),
                   "root.options": ("neutral", "other")}


# --- the matrix -----------------------------------------------------------------------------

VERSIONS = ["v1.34.4", "v1.35.4", "v1.36.3", "v1.37.2"]


def write_runs(tmp_path, planted_in: str | None = "v1.37.2") -> list[Path]:
    files = []
    for version in VERSIONS:
        doc = build(version)
        if version == planted_in:
            doc = plant_net_raw(doc)
        files.append(observations.write(tmp_path / f"{version}.json", doc))
    return files


def allure_results(directory: Path, version: str, key: str, uuid: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{uuid}-result.json").write_text(json.dumps({
        "uuid": uuid, "name": "hardened-pod: runAsUser 1000", "status": "passed", "stop": 2,
        "fullName": "suites.test_recipe_cases#test_recipe_case",
        "labels": [{"name": "epic", "value": "Capabilities"},
                   {"name": observations.ALLURE_LABEL, "value": key}],
        "parameters": [{"name": "Kubernetes", "value": f"'{version}'"}]}))


def test_matrix_of_four_versions_reports_the_planted_regression(tmp_path):
    files = write_runs(tmp_path)
    results = tmp_path / "allure-results"
    allure_results(results, "v1.37.2", "hardened-pod", "5d41402a-bc4b-4a76-b971-9d911017c592")
    written = matrix.compare(files, tmp_path / "matrix", "../html/index.html", [results])
    assert set(written) == {"matrix", "diff", "summary", "html"}

    data = json.loads(written["matrix"].read_text())
    assert [r["label"] for r in data["runs"]] == VERSIONS
    [row] = [r for r in data["rows"] if r["changes"]]
    assert (row["case"], row["container"], row["field"]) == ("hardened-pod", "app",
                                                             "process.capabilities.CapEff")
    assert row["values"]["v1.36.3"]["names"] == [] and row["values"]["v1.37.2"]["names"] == ["NET_RAW"]
    assert row["changes"] == {"v1.37.2": {"class": "regression", "rule": "caps-added",
                                          "change": "0000000000000000 → 0000000000002000 (+NET_RAW)"}}

    pairs = json.loads(written["diff"].read_text())["pairs"]
    assert [(p["old"]["label"], p["new"]["label"]) for p in pairs] == list(zip(VERSIONS, VERSIONS[1:]))
    assert [p["counts"]["regression"] for p in pairs] == [0, 0, 1]
    assert pairs[2]["changes"][0]["field"] == "process.capabilities.CapEff"

    summary = written["summary"].read_text()
    assert summary.splitlines()[0] == "1 change(s) across v1.34.4 → v1.35.4 → v1.36.3 → v1.37.2"
    assert "v1.35.4 (containerd://2.1.4, 6.8.0-79-generic) → v1.36.3 (containerd://2.1.4, " \
           "6.8.0-79-generic): no change" in summary
    assert "REGRESSION  hardened-pod / app  process.capabilities.CapEff" in summary

    page = written["html"].read_text()
    assert "<script" not in page and not re.search(r"(src|href)=\"(https?:)?//", page)
    cell = re.search(r'<td class="cell changed regression"[^>]*data-run="v1.37.2">(.*?)</td>', page)
    assert cell, "the changed cell is highlighted as a regression"
    page_id = hashlib.md5(b"5d41402a-bc4b-4a76-b971-9d911017c592").hexdigest()
    assert f'href="../html/index.html#{page_id}"' in cell.group(1)
    assert "NET_RAW" in cell.group(1) and 'class="badge regression"' in cell.group(1)
    # The same case in a version without a result links to its observation in the page.
    older = re.search(r'<tr class="changed-row">.*?data-run="v1.36.3"><a href="([^"]+)"', page)
    assert older and older.group(1) == "#obs-2-hardened-pod"
    assert 'id="obs-2-hardened-pod"' in page
    assert page.count('class="cell changed') == 1
    assert '<input type="checkbox" id="only-changed" checked>' in page


def test_matrix_without_changes_says_no_change_plainly(tmp_path):
    written = matrix.compare(write_runs(tmp_path, planted_in=None), tmp_path / "m")
    summary = written["summary"].read_text()
    assert summary.splitlines()[0] == "no change across v1.34.4 → v1.35.4 → v1.36.3 → v1.37.2"
    assert all(line.endswith(": no change") for line in summary.splitlines()[1:])
    assert '<p class="nochange" id="verdict">no change</p>' in written["html"].read_text()
    assert all(not p["changes"] for p in json.loads(written["diff"].read_text())["pairs"])


def test_two_runs_of_one_version_get_distinct_columns(tmp_path):
    a = observations.write(tmp_path / "last-night.json", build())
    b = observations.write(tmp_path / "tonight.json", plant_net_raw(build()))
    runs = matrix.load_runs([a, b])
    assert [r.label for r in runs] == ["v1.36.3 (last-night)", "v1.36.3 (tonight)"]


def test_a_containerd_and_a_crio_run_of_one_version_are_told_apart_and_each_difference_judged(
        tmp_path):
    """Two CRIs, one version: the columns are named by CRI, every difference is listed
    classified, and with each run's allure-results the case says whether the difference
    is promised (both tests passed) or not (a test failed: its FAIL line)."""
    containerd = observations.write(tmp_path / "containerd.json", build("v1.37.2"))
    crio_doc = plant_net_raw(build("v1.37.2"))
    crio_doc["environment"]["container_runtime"] = "cri-o://1.34.0"
    crio = observations.write(tmp_path / "crio.json", crio_doc)
    assert [r.label for r in matrix.load_runs([containerd, crio])] == [
        "v1.37.2 (containerd://2.1.4)", "v1.37.2 (cri-o://1.34.0)"]
    for name in ("containerd", "crio"):
        allure_results(tmp_path / name, "v1.37.2", "hardened-pod", f"u-{name}")
    summary = matrix.compare([containerd, crio], tmp_path / "m",
                             results=[tmp_path / "containerd", tmp_path / "crio"])["summary"].read_text()
    assert "REGRESSION  hardened-pod / app  process.capabilities.CapEff" in summary
    assert "  hardened-pod: as promised: its test passed in both runs" in summary
    assert "    process.capabilities.CapEff: 0000000000000000 → 0000000000002000 (+NET_RAW)  " \
           "[regression caps-added]" in summary
    failed = json.loads((tmp_path / "crio" / "u-crio-result.json").read_text())
    failed |= {"status": "failed", "statusDetails": {"message": "NOT ENFORCED: 1 of 9 checks differ:\n"
                                                                "FAIL CapEff: expected 0, observed 2000"}}
    (tmp_path / "crio" / "u-crio-result.json").write_text(json.dumps(failed))
    summary = matrix.compare([containerd, crio], tmp_path / "m",
                             results=[tmp_path / "containerd", tmp_path / "crio"])["summary"].read_text()
    assert "  hardened-pod: NOT PROMISED: its test failed in v1.37.2 (cri-o://1.34.0): " \
           "FAIL CapEff: expected 0, observed 2000" in summary
    (tmp_path / "crio" / "u-crio-result.json").write_text(json.dumps(
        failed | {"status": "skipped", "statusDetails": {"message": "Skipped: no crun here"}}))
    summary = matrix.compare([containerd, crio], tmp_path / "m",
                             results=[tmp_path / "containerd", tmp_path / "crio"])["summary"].read_text()
    assert "  hardened-pod: not judged: its test was skipped in v1.37.2 (cri-o://1.34.0) " \
           "(Skipped: no crun here)" in summary
    summary = matrix.compare([containerd, crio], tmp_path / "m",
                             results=[tmp_path / "containerd"])["summary"].read_text()
    assert "per case" not in summary  # one results directory for two runs: not judged


def test_results_are_matched_by_kubernetes_version_or_position(tmp_path):
    allure_results(tmp_path / "all", "v1.36.3", "hardened-pod", "u1")
    allure_results(tmp_path / "all", "v1.37.2", "hardened-pod", "u2")
    allure_results(tmp_path / "all", "v1.37.2", observations.admission_key("secure-pod.yaml",
                                                                           "restricted"), "u3")
    runs = matrix.load_runs(write_runs(tmp_path)[2:])
    by_version = matrix.link_table(runs, [tmp_path / "all"])
    assert by_version[0] == {"hardened-pod": matrix.allure_page_id("u1")}
    assert by_version[1]["admission/secure-pod.yaml/restricted"] == matrix.allure_page_id("u3")
    allure_results(tmp_path / "other", "v9.9.9", "hardened-pod", "u4")
    by_position = matrix.link_table(runs, [tmp_path / "all", tmp_path / "other"])
    assert by_position[1] == {"hardened-pod": matrix.allure_page_id("u4")}


def test_results_without_the_label_are_matched_by_parameters(tmp_path):
    d = tmp_path / "r"
    d.mkdir()
    (d / "a-result.json").write_text(json.dumps({
        "uuid": "a", "parameters": [{"name": "recipe_case", "value": "fsgroup-demo[local-storage]"},
                                    {"name": "Kubernetes", "value": "'v1.36.3'"}]}))
    (d / "b-result.json").write_text(json.dumps({
        "uuid": "b", "parameters": [{"name": "manifest", "value": "'secure-pod.yaml'"},
                                    {"name": "level", "value": "'baseline'"}]}))
    (d / "c-result.json").write_text(json.dumps({
        "uuid": "c", "status": "skipped", "statusDetails": {"message": "Skipped: crun cannot run here"},
        "parameters": [{"name": "secctx_recipe_case", "value": "hardened-pod@crun"}]}))
    index = matrix.results_index(d)
    assert index[(None, "hardened-pod@crun")] == matrix.allure_page_id("c")
    assert matrix.outcomes(d)["hardened-pod@crun"] == ("skipped", "Skipped: crun cannot run here")
    assert index[("v1.36.3", "fsgroup-demo[local-storage]")] == matrix.allure_page_id("a")
    assert index[(None, "admission/secure-pod.yaml/baseline")] == matrix.allure_page_id("b")


def test_compare_cli_fails_with_one_line_on_a_bad_file(tmp_path, capsys):
    assert matrix_commands.main(["compare", str(tmp_path / "missing.json"), "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not exist" in err


def test_compare_cli_can_fail_on_regression(tmp_path, capsys):
    files = [str(f) for f in write_runs(tmp_path)]
    assert matrix_commands.main(["compare", *files, "--out", str(tmp_path / "m")]) == 0
    assert matrix_commands.main(["compare", *files, "--out", str(tmp_path / "m"), "--fail-on-regression"]) == 3
    assert "1 change(s) across" in capsys.readouterr().out


def test_run_builds_one_suite_command_per_version_then_compares(tmp_path):
    out = tmp_path / "matrix"
    (out).mkdir()
    (out / "v1.35.4.json").write_text("stale")  # an older run's file is not compared again
    seen = []

    def execute(cmd):
        seen.append(cmd)
        version = cmd[cmd.index("--secctx-kubernetes-version") + 1]
        if version != "v1.35.4":  # this one fails before the cluster: no observations
            observations.write(Path(cmd[cmd.index("--secctx-observations") + 1]), build(version))
        return 0 if version != "v1.35.4" else 3

    done = matrix_commands.run_versions(VERSIONS, out, ["-n", "2", "-k", "fsgroup"], execute)
    assert [r.version for r in done] == VERSIONS
    assert [r.observations is not None for r in done] == [True, False, True, True]
    cmd = seen[0]
    assert cmd[1:4] == ["-m", "pytest", "suites"]
    assert cmd[4:] == ["--secctx-kubernetes-version", "v1.34.4", "--secctx-observations", str(out / "v1.34.4.json"),
                       "--alluredir", str(out / "allure-results" / "v1.34.4"), "--clean-alluredir",
                       "-n", "2", "-k", "fsgroup"]
    runs = json.loads((out / "runs.json").read_text())
    assert [r["exit_code"] for r in runs] == [0, 3, 0, 0]


def test_run_passes_unknown_options_and_what_follows_double_dash_to_pytest(tmp_path, monkeypatch):
    got = {}
    monkeypatch.setattr(matrix_commands, "_run_command", lambda args, extra: got.update(
        versions=args.versions, extra=extra, no_report=args.no_report) or 0)
    assert matrix_commands.main(["run", "--versions", "v1.36.3", "v1.37.2", "--no-report", "-n", "2", "--",
                        "-k", "fsgroup"]) == 0
    assert got == {"versions": ["v1.36.3", "v1.37.2"], "extra": ["-n", "2", "-k", "fsgroup"],
                   "no_report": True}


def test_nightly_publishes_the_observations_diff_and_the_version_matrix():
    # which baseline is compared and when it moves: tests/unit/test_workflows.py
    import yaml
    wf = yaml.safe_load((ROOT / ".github" / "workflows" / "nightly.yml").read_text())
    steps = wf["jobs"]["conformance"]["steps"]
    by_name = {s["name"].split(" (")[0]: s for s in steps if "name" in s}
    summary = by_name["Observations diff in the job summary"]["run"]
    assert "reports/observations.diff.txt" in summary and "$GITHUB_STEP_SUMMARY" in summary
    upload = by_name["Upload observations and diff"]
    assert upload["if"] == "always()"
    assert "reports/observations.diff.json" in upload["with"]["path"]
    report = [s.get("run", "") for s in wf["jobs"]["report"]["steps"]]
    assert any("python -m secctx.matrix compare" in r for r in report)


XDIST_CONFTEST = '''
from types import SimpleNamespace

import pytest

from secctx.observations import recording


@pytest.fixture(scope="session")
def suite(request):  # the plugin's fixture without a cluster: the same hand-over
    s = SimpleNamespace(env=SimpleNamespace(properties=lambda: {"kubernetes_version": "v1.36.3",
                                                                "cgroup_version": "2"}))
    recording.attach(request.config, s)
    return s
'''
XDIST_TESTS = '''
import pytest

from secctx import observe


@pytest.mark.parametrize("case", ["a", "b", "c", "d"])
def test_case(case, suite):
    suite.observations.record_case(case, "app", observe.Observed(
        "rejected", refusal=observe.Refusal("CreateContainerConfigError", f"refused {case}")))


@pytest.mark.parametrize("level", ["baseline", "restricted"])
def test_psa(level, suite):
    suite.observations.record_admission("m.yaml", level, None if level == "baseline" else "no")
'''


def test_real_xdist_workers_hand_their_parts_to_the_controller(tmp_path):
    """`pytest -n 2` for real: each worker records, the controller writes one merged file."""
    import subprocess
    import sys
    (tmp_path / "conftest.py").write_text(XDIST_CONFTEST)
    (tmp_path / "test_fake_cases.py").write_text(XDIST_TESTS)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    baseline = tmp_path / "baseline.json"
    doc = observations.document(observations.environment({"kubernetes_version": "v1.36.3"}), {}, {})
    observations.write(baseline, doc)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-n", "2", "-p", "no:cacheprovider",
                           "--secctx-compare-to", str(baseline), "test_fake_cases.py"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    written = observations.load(tmp_path / "reports" / "observations.json")
    assert set(written["cases"]) == {"a", "b", "c", "d"}
    assert written["admission"]["m.yaml"] == {"baseline": {"admitted": True, "message": None},
                                              "restricted": {"admitted": False, "message": "no"}}
    assert "observations of v1.36.3 (4 case(s), 1 manifest(s) under admission)" in proc.stdout
    assert "6 change(s): 0 regression(s), 0 relaxation(s), 6 neutral" in proc.stdout
    assert (tmp_path / "reports" / "observations.diff.json").is_file()


def test_run_command_compares_what_the_runs_wrote(tmp_path, monkeypatch, capsys):
    def fake_run(cmd):
        version = cmd[cmd.index("--secctx-kubernetes-version") + 1]
        doc = build(version)
        observations.write(Path(cmd[cmd.index("--secctx-observations") + 1]),
                           plant_net_raw(doc) if version == "v1.37.2" else doc)
        return SimpleNamespace(returncode=1 if version == "v1.37.2" else 0)
    monkeypatch.setattr(matrix_commands.subprocess, "run", fake_run)
    out = tmp_path / "m"
    code = matrix_commands.main(["run", "--versions", "v1.36.3", "v1.37.2", "--out", str(out), "--no-report"])
    assert code == 1  # one suite run failed; the matrix is still written
    summary = (out / "summary.txt").read_text()
    assert summary.startswith("1 change(s) across v1.36.3 → v1.37.2")
    assert re.search(r"^runs: v1.36.3 exit 0 in \d+s, v1.37.2 exit 1 in \d+s; total \d+s$", summary, re.M)
    assert 'class="cell changed regression"' in (out / "matrix.html").read_text()
    assert "REGRESSION" in capsys.readouterr().out


def test_report_pages_of_a_matrix_and_a_baseline_diff_link_cells_to_the_reports_tests(tmp_path):
    """What python -m secctx.report.html --matrix DIR --diff FILE puts beside index.html."""
    results = tmp_path / "allure-results"
    allure_results(results, "v1.37.2", "hardened-pod", "u1")
    # Made without --results: the report's own results give the links.
    matrix.compare(write_runs(tmp_path), tmp_path / "m", "elsewhere/index.html")
    page = matrix.matrix_page(tmp_path / "m", [results])
    assert (page.file, page.title, page.runs) == ("matrix.html", "Version matrix", " → ".join(VERSIONS))
    assert page.counts == {"regression": 1, "relaxation": 0, "neutral": 0}
    cell = re.search(r'<td class="cell changed regression"[^>]*data-run="v1.37.2">(.*?)</td>', page.html)
    assert cell and f'href="index.html#{matrix.allure_page_id("u1")}"' in cell.group(1)
    assert '<a href="index.html" id="back">' in page.html and "elsewhere" not in page.html
    assert 'id="obs-0-hardened-pod"' in page.html, "the runs' observation files are read back"

    tonight = tmp_path / "reports" / "observations.json"
    observations.compare(build("v1.37.2"), plant_net_raw(build("v1.37.2")), tonight)
    page = matrix.diff_page(observations.diff_path(tonight), [results])
    assert (page.file, page.title, page.runs) == ("baseline-diff.html", "Changes since the baseline",
                                                  "v1.37.2 → v1.37.2")
    assert page.counts == {"regression": 1, "relaxation": 0, "neutral": 0}
    assert "<th>v1.37.2 (baseline)</th><th>v1.37.2 (this run)</th>" in page.html
    cell = re.search(r'<td class="cell changed regression" title="([^"]*)" '
                     r'data-run="v1.37.2 \(this run\)">(.*?)</td>', page.html)
    assert cell and "caps-added" in cell.group(1) and "+NET_RAW" in cell.group(1)
    assert f'href="index.html#{matrix.allure_page_id("u1")}"' in cell.group(2)
    assert "<summary>Text summary</summary>" in page.html and "REGRESSION  hardened-pod" in page.html
    assert "<h2>Observations</h2>" not in page.html, "a diff holds no whole observations"

    with pytest.raises(observations.DocumentError, match="not a diff that --secctx-compare-to wrote"):
        matrix.diff_page(tmp_path / "none.diff.json", [results])
    with pytest.raises(observations.DocumentError, match="matrix.json is missing"):
        matrix.matrix_page(tmp_path, [results])


def test_a_generated_volume_name_is_no_change():
    # The API server names the service-account token volume kube-api-access-<random>.
    import copy

    from secctx import observations
    old = {"label": "a", "cases": {"c": {"containers": {"app": {"mounts": {
        "/var/run/secrets/kubernetes.io/serviceaccount": {"volume": "kube-api-access-ab12c",
                                                          "read_only": True}}}}}}}
    new = copy.deepcopy(old)
    new["label"] = "b"
    mount = new["cases"]["c"]["containers"]["app"]["mounts"]
    mount["/var/run/secrets/kubernetes.io/serviceaccount"]["volume"] = "kube-api-access-zz9yx"
    assert observations.diff(old, new) == []
    assert observations.volume_name("kube-api-access-zz9yx") == "kube-api-access-<generated>"


def _with_image_groups(doc: dict, groups: list[int], memberships: list[int]) -> dict:
    import copy
    doc = copy.deepcopy(doc)
    for case in doc["cases"].values():
        for container in case["containers"].values():
            container["process"]["groups"] = groups
            container["image"] = {"reference": "x", "config_user": "", "memberships": memberships}
    return doc


def test_groups_that_changed_with_the_images_memberships_are_neutral():
    old = _with_image_groups(build(), [0], [])
    new = _with_image_groups(build("v1.36.3"), [0, 10], [10])
    groups = [c for c in diff(old, new) if c.field == "process.groups"]
    assert groups and all((c.kind, c.rule) == ("neutral", "groups-from-image") for c in groups)


def test_memberships_that_include_the_primary_group_still_explain_the_change():
    # netshoot's Alpine /etc/group lists root in group 0 too ("root:x:0:root")
    old = _with_image_groups(build(), [0], [])
    new = _with_image_groups(build("v1.36.3"), [0, 1, 10], [0, 1, 10])
    groups = [c for c in diff(old, new) if c.field == "process.groups"]
    assert groups and all(c.rule == "groups-from-image" for c in groups)


def test_groups_gained_beyond_the_images_memberships_stay_a_regression():
    old = _with_image_groups(build(), [0], [])
    new = _with_image_groups(build("v1.36.3"), [0, 10, 20], [10])  # 20 comes from nowhere
    groups = [c for c in diff(old, new) if c.field == "process.groups"]
    assert groups and all((c.kind, c.rule) == ("regression", "groups-gained") for c in groups)


@pytest.mark.parametrize("case_id, kind", [("userns-root", "pod-range"), ("image-volume", "host")])
def test_the_document_says_whether_the_process_has_a_user_namespace_of_its_own(case_id, kind):
    from secctx.cases import load_cases
    from secctx.core.paths import CASES
    recorded = json.loads((Path(__file__).parent / "recorded" / "v1.37.2-offline-new-fields.json")
                          .read_text())["cases"][case_id]
    case = next(c for c in load_cases([CASES])[0] if c.name == case_id)
    entry = observations.case_entry(observe.from_record(recorded, case), "app")
    assert entry["containers"]["app"]["process"]["user_namespace"] == {"uid_map": kind,
                                                                       "gid_map": kind}
