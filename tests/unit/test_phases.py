"""The case pipeline on recorded observations: expect.for_case and verdict.compare.

tests/unit/recorded/ holds what the suite observed on a real offline v1.37.2
cluster (the probe's raw output, refusals, crashes), as `observe.to_record`
writes it. Every recorded case must meet the oracle; and each lie a runtime
could tell, planted in a recording, must turn exactly the right check red.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from secctx import cases, observe, verdict
from secctx.cases import load_cases
from secctx.core import caps
from secctx.core.paths import CASES
from secctx.oracle import expect, refusals
from secctx.oracle.nodefacts import REPORTED_FEATURES, Environment

RECORDED = json.loads((Path(__file__).parent / "recorded" / "v1.37.2-offline.json").read_text())
# The same cluster's cases of user namespaces, procMount, recursive read-only mounts and image
# volumes (recorded later, with uid_map and gid_map in the probe).
NEW_FIELDS = json.loads((Path(__file__).parent / "recorded" / "v1.37.2-offline-new-fields.json")
                        .read_text())
assert not NEW_FIELDS["cases"].keys() & RECORDED["cases"].keys()
RECORDED["cases"].update(NEW_FIELDS["cases"])
# Its cases of file modes, readOnly claims and image volumes under fsGroup (issue 23), with
# the probe's volume-files section.
VOLUMES = json.loads((Path(__file__).parent / "recorded" / "v1.37.2-offline-volumes.json")
                     .read_text())
assert not VOLUMES["cases"].keys() & RECORDED["cases"].keys()
RECORDED["cases"].update(VOLUMES["cases"])
ENV = RECORDED["environment"]
ENVIRONMENT = Environment(kubernetes_version=ENV["kubernetes_version"],
                          container_runtime=ENV["container_runtime"],
                          seccomp_default=ENV["seccomp_default"] == "True",
                          grantable_caps=int(ENV["grantable_caps"], 16),
                          kernel_caps=int(ENV["kernel_caps"], 16),
                          runtime_default_caps=int(ENV["runtime_default_caps"], 16),
                          userns_unconfined=ENV["userns_unconfined"] == "True",
                          apparmor=ENV["apparmor"] == "True", selinux=ENV["selinux"] == "True",
                          # Older recordings predate these; their v1.37.2 node reports all three.
                          **{f: ENV.get(f, "True") == "True" for f in REPORTED_FEATURES})
CASE_BY_NAME = {c.name: c for c in load_cases([CASES])[0]}


def case_of(case_id: str):
    return CASE_BY_NAME[case_id.split("[")[0]]


def judge(case_id: str, edit=None, env: Environment = ENVIRONMENT):
    """The checks of one recorded case; `edit` may first change the record (a lie)."""
    record = json.loads(json.dumps(RECORDED["cases"][case_id]))
    if edit:
        edit(record)
    case = case_of(case_id)
    observed = observe.from_record(record, case)
    expected = expect.for_case(case, env, observed.learned)
    return expected, verdict.compare(expected, observed)


def failed(checks) -> dict[str, verdict.Check]:
    return {c.field: c for c in verdict.failures(checks)}


def probe_edit(old: str, new: str):
    def edit(record):
        assert old in record["probe_output"], f"{old!r} not in the recorded probe"
        record["probe_output"] = record["probe_output"].replace(old, new)
    return edit


@pytest.mark.parametrize("case_id", sorted(RECORDED["cases"]))
def test_every_recorded_case_meets_the_oracle(case_id):
    expected, checks = judge(case_id)
    assert not verdict.failures(checks), verdict.table(verdict.failures(checks))
    assert checks[0].field == "outcome" and checks[0].ok
    if expected.outcome.status == "running":
        assert len(checks) > 10, "a running case is judged field by field"


def test_runtime_that_drops_no_new_privs_fails_NoNewPrivs():
    # hardened-pod: allowPrivilegeEscalation false, so PID 1 must carry NoNewPrivs 1.
    _, checks = judge("hardened-pod", probe_edit("NoNewPrivs:\t1", "NoNewPrivs:\t0"))
    assert set(failed(checks)) == {"NoNewPrivs"}
    assert failed(checks)["NoNewPrivs"].expected == 1


def test_runtime_that_keeps_a_capability_fails_CapBnd_with_both_values():
    # hardened-pod drops ALL and adds NET_BIND_SERVICE: 0x400. A runtime that keeps NET_RAW.
    _, checks = judge("hardened-pod", probe_edit("CapBnd:\t0000000000000400",
                                                 "CapBnd:\t0000000000002400"))
    bad = failed(checks)["CapBnd"]
    assert (bad.expected, bad.observed) == (0x400, 0x2400)
    assert "NET_RAW" in bad.line() and bad.reason.startswith("drop ALL, then add NET_BIND_SERVICE")


def test_runtime_that_ignores_readOnlyRootFilesystem_fails_two_checks():
    def writable_root(record):
        out = record["probe_output"]
        start = out.index("### secctx:begin mounts")
        end = out.index("### secctx:end mounts")
        mounts = out[start:end].replace("overlay / overlay ro,", "overlay / overlay rw,")
        out = out[:start] + mounts + out[end:]
        begin = out.index("### secctx:begin root-write\n") + len("### secctx:begin root-write\n")
        finish = out.index("### secctx:end root-write")
        record["probe_output"] = out[:begin] + "\n" + out[finish:].replace("rc=1", "rc=0", 1)
    _, checks = judge("readonly-root-pod", writable_root)
    assert set(failed(checks)) == {"root read-only", "write to / fails with EROFS"}


def test_runtime_that_ignores_fsGroup_on_a_local_volume_fails_group_and_setgid():
    def no_fsgroup(record):
        record["probe_output"] = (record["probe_output"]
                                  .replace("/data|0|2000|2777|", "/data|0|0|777|")
                                  .replace("/data|0|2000|2775|", "/data|0|0|775|"))
    _, checks = judge("fsgroup-demo[local-storage]", no_fsgroup)
    assert {"/data group", "/data setgid bit"} <= set(failed(checks)), verdict.table(checks)


def test_a_refusal_for_another_reason_fails_the_refusal_reason():
    def other_reason(record):
        record["refusal"]["reason"] = "CreateContainerError"
    _, checks = judge("apparmor-pod", other_reason)
    assert set(failed(checks)) == {"refusal reason"}


def test_the_refusal_message_is_matched_whatever_its_case_and_fails_on_another_errno():
    # custom-seccomp-pod: message "operation not permitted" (EPERM). crun prints strerror's
    # "Operation not permitted"; a runtime that fails with another errno must still fail.
    def crun_spelling(record):
        record["refusal"]["message"] = record["refusal"]["message"].replace(
            "operation not permitted", "Operation not permitted")
    _, checks = judge("custom-seccomp-pod", crun_spelling)
    assert not failed(checks)

    def other_errno(record):
        record["refusal"]["message"] = record["refusal"]["message"].replace(
            "operation not permitted", "invalid argument")
    _, checks = judge("custom-seccomp-pod", other_errno)
    assert set(failed(checks)) == {"refusal message"}


@pytest.mark.parametrize("case_id, running, refused_by", [
    ("troubleshooting-root-image", "seccomp-default-pod", "rejected"),  # the kubelet
    ("userns-host-network", "userns-root", "invalid"),  # the API server: hostNetwork, hostUsers false
])
def test_a_pod_that_runs_where_it_must_be_refused_fails_the_outcome_and_stops(
        case_id, running, refused_by):
    def runs(record):
        record.update(RECORDED["cases"][running])
    _, checks = judge(case_id, runs)
    assert [c.field for c in checks] == ["outcome"]
    assert (checks[0].expected, checks[0].observed) == (refused_by, "running")


def test_a_crash_without_the_promised_log_fails_the_container_log():
    def quiet(record):
        record["crash"]["logs"] = "nginx started\n"
    _, checks = judge("secure-pod", quiet)
    assert set(failed(checks)) == {"container log"}


def test_what_the_node_cannot_enforce_is_checked_then_skipped_with_the_reason():
    expected, checks = judge("selinux-pod")
    assert expected.cannot_enforce and "SELinux is disabled" in expected.cannot_enforce
    assert not any(c.field.startswith("LSM label") for c in checks), "no label to assert"
    with pytest.raises(pytest.skip.Exception, match="ENVIRONMENT CANNOT ENFORCE: SELinux"):
        verdict.assert_holds(expected, checks)


def test_on_a_node_with_seccompDefault_an_unset_profile_expects_a_filter():
    env = Environment(seccomp_default=True, grantable_caps=ENVIRONMENT.grantable_caps)
    _, checks = judge("minimal-capabilities-pod", env=env)
    bad = failed(checks)["Seccomp"]
    assert (bad.expected, bad.observed) == (2, 0) and "seccompDefault is on" in bad.reason


def test_failure_message_leads_with_the_verdict_of_each_differing_check():
    expected, checks = judge("hardened-pod", probe_edit("NoNewPrivs:\t1", "NoNewPrivs:\t0"))
    with pytest.raises(BaseException) as failure:
        verdict.assert_holds(expected, checks)
    message = str(failure.value)
    assert message.startswith("NOT ENFORCED: 1 of ") and "FAIL NoNewPrivs: expected 1, observed 0" \
        in message


def test_record_round_trip_keeps_every_value():
    record = RECORDED["cases"]["hardened-pod"]
    observed = observe.from_record(record, case_of("hardened-pod"))
    assert observe.to_record(observed) == record
    assert caps.decode(observed.probe.pid1.cap_bnd) == ["NET_BIND_SERVICE"]


def test_a_new_expect_key_is_one_schema_entry_cap_prm_pins_CapPrm(monkeypatch):
    # cap_prm was added to secctx/schema/case.schema.json only (x-kind caps, x-check CapPrm).
    case = case_of("network-debug-pod")
    monkeypatch.setitem(case.expect, "cap_prm", frozenset({"NET_RAW"}))
    _, checks = judge("network-debug-pod")
    bad = failed(checks)["CapPrm"]
    assert (bad.expected, bad.observed) == (1 << 13, (1 << 12) | (1 << 13))
    assert bad.reason.startswith("case file pins it (computed: 0000000000003000 [NET_ADMIN,NET_RAW]")


def test_runtime_that_leaves_the_saved_uid_root_fails_uid():
    # An effective-uid check alone passes this: PID 1 could setuid(0) back.
    _, checks = judge("hardened-pod", probe_edit("Uid:\t1000\t1000\t1000\t1000",
                                                 "Uid:\t1000\t1000\t0\t1000"))
    bad = failed(checks)["uid"]
    assert (bad.expected, bad.observed) == ((1000,) * 4, (1000, 1000, 0, 1000))


def test_runtime_with_an_allow_everything_filter_fails_the_unshare_check():
    # Seccomp: 2 with one filter, but the filter lets unshare(CLONE_NEWUSER) through.
    def allow_all(record):
        out = record["probe_output"]
        start = out.index("### secctx:begin unshare-user\n")
        end = out.index("### secctx:end unshare-user rc=1")
        record["probe_output"] = (out[:start] + "### secctx:begin unshare-user\n\n"
                                  "### secctx:end unshare-user rc=0" + out[end + 32:])
    _, checks = judge("hardened-pod", allow_all)
    assert set(failed(checks)) == {"unshare(CLONE_NEWUSER) refused"}


def test_runtime_that_mounts_a_configMap_writable_fails_flag_and_write():
    def writable(record):
        out = record["probe_output"]
        line = next(x for x in out.splitlines() if " /etc/app/config " in x)
        out = out.replace(line, line.replace(" ro,", " rw,", 1))
        out = out.replace("/etc/app/config|fail|touch: /etc/app/config/.secctx-probe: "
                          "Read-only file system", "/etc/app/config|ok")
        record["probe_output"] = out
    _, checks = judge("secure-app", writable)
    assert set(failed(checks)) == {"/etc/app/config writable", "/etc/app/config mounted read-only"}


def test_a_crash_under_another_identity_fails_the_kubelet_reported_user():
    # secure-pod never stays up; the kubelet's report is what shows its user.
    def other_group(record):
        record["kubelet_user"] = [1000, 0, [0, 2000]]
    _, checks = judge("secure-pod", other_group)
    bad = failed(checks)["kubelet-reported user (uid, gid, groups)"]
    assert bad.expected == (1000, 3000, [2000, 3000])


@pytest.mark.parametrize("case_id", ["host-pid", "shared-pid-namespace"])
def test_pid_1_is_not_the_workload_and_the_probe_found_the_main_process(case_id):
    record = RECORDED["cases"][case_id]
    seen = observe.parse(record["probe_output"])
    assert seen.main_pid != 1 and seen.pid1.uid == (1000,) * 4
    # Judging PID 1 instead (the node's init, or the pause process) would be a false fail.
    root = seen.raw["pid1-status"].replace("Uid:\t1000\t1000\t1000\t1000", "Uid:\t0\t0\t0\t0")
    _, checks = judge(case_id, probe_edit(seen.raw["pid1-status"], root))
    assert "uid" in failed(checks)


def test_a_pv_gid_annotation_adds_its_group():
    def annotated(record):
        record["claims"]["my-pvc"]["gid"] = 5555
    _, checks = judge("fsgroup-demo[local-storage]", annotated)
    bad = failed(checks)["groups"]
    assert bad.expected == [1000, 2000, 5555] and "pv.beta.kubernetes.io/gid" in bad.reason


# --- the CRI implementation the node reports ------------------------------------------

def test_cri_rules_are_keyed_on_the_cri_the_node_reports():
    # hardened-pod recorded on containerd: drop ALL, add NET_BIND_SERVICE, an image group.
    # The CRI's rules (add/drop order, memberships from /etc/group, the inheritable set,
    # the default profile) are asserted on containerd and CRI-O, each with its source; on
    # a CRI the oracle does not know they are not, with why; Kubernetes' own (uid,
    # runAsGroup, CapEff of a non-root uid, NoNewPrivs) still are.
    other = dataclasses.replace(ENVIRONMENT, container_runtime="frakti://1.0")
    expected, checks = judge("hardened-pod", env=other)
    by_field = {c.field: c for c in checks}
    for name in ("CapBnd", "CapInh", "groups", "unshare(CLONE_NEWUSER) refused"):
        assert not by_field[name].asserted, name
        assert "and the node's CRI is frakti: not asserted" in expected.process[name].reason
    assert all(by_field[n].asserted for n in ("uid", "gid", "CapEff", "NoNewPrivs", "Seccomp"))
    # A kept NET_RAW is caught on containerd and on CRI-O, not on the unknown CRI.
    crio = dataclasses.replace(ENVIRONMENT, container_runtime="cri-o://1.34.0")
    lie = probe_edit("CapBnd:\t0000000000000400", "CapBnd:\t0000000000002400")
    assert "CapBnd" in failed(judge("hardened-pod", lie)[1])
    assert "CapBnd" in failed(judge("hardened-pod", lie, env=crio)[1])
    assert "CapBnd" not in failed(judge("hardened-pod", lie, env=other)[1])


def test_each_node_is_judged_by_its_own_cri():
    env = dataclasses.replace(ENVIRONMENT, per_node={
        "a": {"container_runtime": "containerd://2.3.4"}, "b": {"container_runtime": "cri-o://1.34.1"}})
    assert (env.on("a").node_facts().cri, env.on("b").node_facts().cri) == ("containerd", "cri-o")
    assert Environment().node_facts().cri == "not known"


# --- user namespaces, procMount, recursive read-only mounts, image volumes ---------------

def test_runtime_that_ignores_hostUsers_false_fails_uid_map_and_gid_map():
    # The pod runs in the host's user namespace: its root is the host's root.
    host_ids = "         0          0 4294967295"
    _, checks = judge("userns-root", probe_edit("         0 1823145984      65536", host_ids))
    assert set(failed(checks)) == {"uid_map", "gid_map"}
    assert failed(checks)["uid_map"].observed == expect.HOST_IDS


def test_a_user_namespace_that_maps_the_hosts_root_fails_uid_map():
    _, checks = judge("userns-root", probe_edit(
        "uid-map\n         0 1823145984      65536", "uid-map\n         0          0      65536"))
    assert set(failed(checks)) == {"uid_map"}
    assert failed(checks)["uid_map"].observed == "0 0 65536"


def test_a_pod_in_a_user_namespace_where_none_was_asked_fails_uid_map():
    _, checks = judge("recursive-read-only", probe_edit(
        "uid-map\n         0          0 4294967295", "uid-map\n         0  131072      65536"))
    assert set(failed(checks)) == {"uid_map"}
    assert failed(checks)["uid_map"].observed == expect.POD_RANGE


def test_on_a_kubelet_with_idsPerPod_131072_a_pod_gets_131072_ids_and_65536_is_a_lie():
    # userns-root was recorded on a default kubelet (65536 ids). A kubelet configured with
    # userNamespaces.idsPerPod 131072 maps 131072 ids at a multiple of 131072.
    node = dataclasses.replace(ENVIRONMENT, userns_ids_per_pod=131072)
    wide = probe_edit("         0 1823145984      65536", "         0 1823080448     131072")
    _, checks = judge("userns-root", wide, env=node)
    assert not verdict.failures(checks), verdict.table(verdict.failures(checks))
    # 65536 ids on that node, or 131072 on a default one, fail both maps.
    for bad_checks in (judge("userns-root", env=node)[1],
                       judge("userns-root", wide)[1]):
        assert set(failed(bad_checks)) == {"uid_map", "gid_map"}, verdict.table(bad_checks)
    assert "0-131071" in failed(judge("userns-root", env=node)[1])["uid_map"].expected


def test_idsPerPod_comes_from_the_kubelets_configuration():
    from secctx.oracle.nodefacts import kubelet_config_facts
    assert kubelet_config_facts({"seccompDefault": True, "userNamespaces": {"idsPerPod": 131072}}) \
        == {"seccomp_default": True, "userns_ids_per_pod": 131072}
    assert kubelet_config_facts({}) == {"seccomp_default": False, "userns_ids_per_pod": 65536}


def test_runtime_that_leaves_a_submount_writable_fails_the_recursive_read_only_check():
    _, checks = judge("recursive-read-only", probe_edit(
        "shm /rro/shm tmpfs ro,", "shm /rro/shm tmpfs rw,"))
    bad = failed(checks)["/rro submounts read-only (writable ones)"]
    assert (bad.expected, bad.observed) == ([], ["/rro/shm"])
    assert set(failed(checks)) == {"/rro submounts read-only (writable ones)"}


def test_plain_readOnly_promises_nothing_about_submounts():
    # /ro's submounts are writable in the recording, and that is no failure: only
    # recursiveReadOnly promises them read-only.
    expected, checks = judge("recursive-read-only")
    ro = next(m for m in expected.mounts if m.path == "/ro")
    assert ro.submounts_ro is None
    assert not any(c.field.startswith("/ro submounts") for c in checks)


def test_runtime_that_mounts_an_image_volume_writable_fails_two_checks():
    def writable(record):
        probe_edit(" /image overlay ro,", " /image overlay rw,")(record)
        record["probe_output"] = record["probe_output"].replace(
            "/image|fail|touch: /image/.secctx-probe: Read-only file system", "/image|ok")
    _, checks = judge("image-volume", writable)
    assert set(failed(checks)) == {"/image writable", "/image mounted read-only"}


def test_a_refusal_for_another_field_fails_the_api_servers_answer():
    def other(record):
        record["refusal"]["message"] = record["refusal"]["message"].replace("HostPID", "HostIPC")
    _, checks = judge("userns-host-pid", other)
    assert set(failed(checks)) == {"API server's answer"}


@pytest.mark.parametrize("case_id, feature, reason", [
    ("supplemental-groups-strict", "supplemental_groups_policy", "SupplementalGroupsPolicyNotSupported"),
    ("recursive-read-only", "recursive_read_only_mounts", "CreateContainerConfigError"),
])
def test_a_node_without_the_feature_must_refuse_the_pod(case_id, feature, reason):
    # The node reports no support: the kubelet must refuse the pod. It ran: red.
    node = dataclasses.replace(ENVIRONMENT, **{feature: False})
    expected, checks = judge(case_id, env=node)
    assert (expected.outcome.status, expected.outcome.reason) == ("rejected", reason)
    assert [c.field for c in verdict.failures(checks)] == ["outcome"]


def test_a_user_namespace_case_on_a_handler_without_them_expects_the_kubelets_refusal():
    # crun 1.8.1 on v1.37.2: runtimeHandlers[name=crun].features.userNamespaces is false, and
    # the kubelet refuses the sandbox (measured; the message is the kubelet's).
    node = dataclasses.replace(ENVIRONMENT, user_namespaces=False)

    def refused(record):
        record.update(status="rejected", probe_output="", refusal={
            "reason": "FailedCreatePodSandBox",
            "message": "pod ns/userns-root: FailedCreatePodSandBox: Failed to create pod sandbox: "
                       "can't set `spec.hostUsers: false`, RuntimeClass handler \"crun\" does "
                       "not support user namespaces"})
    expected, checks = judge("userns-root", refused, env=node)
    assert (expected.outcome.status, expected.outcome.reason) == ("rejected",
                                                                  "FailedCreatePodSandBox")
    assert not failed(checks), verdict.table(checks)
    # A handler that says it has none and runs the pod anyway is caught.
    _, checks = judge("userns-root", env=node)
    assert "outcome" in failed(checks)


def test_a_case_that_declares_nothing_is_refused_where_the_handler_has_no_user_namespaces(
        monkeypatch):
    # A team's case with hostUsers: false and no skip_unless/when_unsupported, under crun
    # (no user namespaces here): a promised refusal, not a 60 s wait for Ready.
    bare = dataclasses.replace(case_of("userns-root"), skip_unless=None, when_unsupported=None)
    monkeypatch.setitem(CASE_BY_NAME, "userns-root", bare)
    crun = dataclasses.replace(ENVIRONMENT, user_namespaces=False)
    assert expect.outcome_for(bare, crun) == (cases.Outcome(
        "rejected", "FailedCreatePodSandBox", "does not support user namespaces"), None)
    assert expect.outcome_for(bare, ENVIRONMENT)[0].status == "running"
    _, checks = judge("userns-root", env=crun)
    assert [c.field for c in verdict.failures(checks)] == ["outcome"]  # it ran: red


@pytest.mark.parametrize("case_id", sorted(c.name for c in CASE_BY_NAME.values()
                                           if c.when_unsupported and c.skip_unless in REPORTED_FEATURES))
def test_what_a_case_declares_without_its_feature_is_what_the_oracle_derives(case_id):
    # One home: refusals.node_refusal says what the case files say by hand.
    case = case_of(case_id)
    node = dataclasses.replace(ENVIRONMENT, **{case.skip_unless: False}).node_facts()
    assert refusals.node_refusal(case.pod_spec(), case.container, node) == case.when_unsupported


@pytest.mark.parametrize("case_id", sorted(c.name for c in CASE_BY_NAME.values()
                                           if c.skip_unless == "apparmor"
                                           and "appArmorProfile" in json.dumps(c.pod_spec())))
def test_an_apparmor_case_declares_the_refusal_the_oracle_derives_without_apparmor(case_id):
    case = case_of(case_id)
    node = dataclasses.replace(ENVIRONMENT, apparmor=False).node_facts()
    assert refusals.node_refusal(case.pod_spec(), case.container, node) == case.when_unsupported


@pytest.mark.parametrize("case_id, version, available", [
    ("image-volume", "v1.34.4", False), ("image-volume", "v1.35.4", True),
    ("userns-root", "v1.34.4", True), ("hardened-pod", "v1.20.0", True),
])
def test_a_case_says_where_it_is_not_available(case_id, version, available):
    line = expect.not_available(case_of(case_id), version)
    if available:
        assert line is None
    else:
        assert line == ("NOT AVAILABLE: not available in v1.34 (ImageVolume is beta and off by "
                        "default before v1.35 (on by default from v1.35, GA in v1.36))")


# --- a second kubelet configuration: seccompDefault: true (--kubelet-seccomp-default) ----

SECCOMP_DEFAULT = json.loads((Path(__file__).parent / "recorded" / "v1.37.2-offline-seccomp-default.json")
                             .read_text())
SD_ENVIRONMENT = dataclasses.replace(ENVIRONMENT, seccomp_default=True)


def judge_seccomp_default(case_id: str, edit=None, env: Environment = SD_ENVIRONMENT):
    record = json.loads(json.dumps(SECCOMP_DEFAULT["cases"][case_id]))
    if edit:
        edit(record)
    case = case_of(case_id)
    observed = observe.from_record(record, case)
    expected = expect.for_case(case, env, observed.learned)
    return expected, verdict.compare(expected, observed)


def test_the_recording_is_of_a_kubelet_with_seccompDefault():
    assert SECCOMP_DEFAULT["environment"]["seccomp_default"] == "True"


@pytest.mark.parametrize("case_id", sorted(SECCOMP_DEFAULT["cases"]))
def test_every_case_recorded_with_seccompDefault_meets_the_oracle(case_id):
    _, checks = judge_seccomp_default(case_id)
    assert not verdict.failures(checks), verdict.table(verdict.failures(checks))


@pytest.mark.parametrize("case_id", ["readonly-root-pod", "userns-root"])
def test_a_pod_without_a_profile_has_a_filter_there_that_the_default_config_would_call_a_lie(case_id):
    # The same observation judged as if seccompDefault were off: a filter nobody asked for.
    _, checks = judge_seccomp_default(case_id, env=ENVIRONMENT)
    bad = failed(checks)["Seccomp"]
    assert (bad.expected, bad.observed) == (0, 2)


def test_a_runtime_that_filters_an_Unconfined_pod_under_seccompDefault_fails_Seccomp():
    def filtered(record):
        record["probe_output"] = record["probe_output"].replace(
            "Seccomp:\t0\nSeccomp_filters:\t0", "Seccomp:\t2\nSeccomp_filters:\t1")
    _, checks = judge_seccomp_default("seccomp-unconfined", filtered)
    assert {"Seccomp", "Seccomp_filters"} <= set(failed(checks))
    assert "Unconfined" in failed(checks)["Seccomp"].reason


def test_a_kubelet_or_runtime_that_ignores_defaultMode_fails_the_file_mode_checks():
    # volume-file-modes: configMap defaultMode 0400 under fsGroup 3000: 0440, recorded. A
    # kubelet that writes 0644 whatever defaultMode says (or a runtime that chmods it back).
    _, checks = judge("volume-file-modes", probe_edit("/cfg/a.conf|0|3000|440|-r--r-----",
                                                      "/cfg/a.conf|0|3000|644|-rw-r--r--"))
    bad = failed(checks)
    assert set(bad) == {"/cfg/a.conf mode"}, verdict.table(checks)
    assert (bad["/cfg/a.conf mode"].expected, bad["/cfg/a.conf mode"].observed) == ("440", "644")
    assert "defaultMode 0400" in bad["/cfg/a.conf mode"].reason


def test_an_items_mode_that_is_not_applied_fails_that_files_mode():
    _, checks = judge("volume-file-modes", probe_edit("/sec/key|0|3000|640|", "/sec/key|0|3000|540|"))
    assert set(failed(checks)) == {"/sec/key mode"}
    assert "items[key].mode 0600" in failed(checks)["/sec/key mode"].reason


def test_a_file_the_kubelet_should_have_written_and_did_not_fails():
    def no_labels(record):
        out = record["probe_output"]
        record["probe_output"] = "".join(ln for ln in out.splitlines(keepends=True)
                                         if not ln.startswith("/info/labels|"))
    _, checks = judge("volume-file-modes", no_labels)
    assert set(failed(checks)) == {"/info/labels mode"}


def test_a_runtime_that_hands_an_emptyDir_to_the_process_fails_owner_and_mode():
    # hardened-pod: /tmp an emptyDir under fsGroup 1000, 0:1000 2777 as the kubelet makes it.
    # A runtime that chowns it to the process and makes it 0700 keeps it writable: only the
    # owner and mode checks see it.
    _, checks = judge("hardened-pod", probe_edit("/tmp|0|1000|2777|drwxrwsrwx",
                                                 "/tmp|1000|1000|2700|drwx--S---"))
    assert set(failed(checks)) == {"/tmp owner", "/tmp mode"}, verdict.table(checks)


def test_a_runtime_that_drops_the_sticky_bit_of_a_tmpfs_volume_fails_its_mode():
    # volume-file-modes: /sec, a secret, is a tmpfs (root 1777) with setgid under fsGroup: 3777.
    _, checks = judge("volume-file-modes", probe_edit("/sec|0|3000|3777|", "/sec|0|3000|2777|"))
    assert set(failed(checks)) == {"/sec mode"}


# --- the image's /etc/group as containerd reads it ------------------------------------------

# nicolaka/netshoot's (Alpine's) /etc/group, as secctx.local/faithful/netshoot has it: root
# is listed in the group named root.
ALPINE_GROUP = ("root:x:0:root\nbin:x:1:root,bin,daemon\ndaemon:x:2:root,bin,daemon\n"
                "sys:x:3:root,bin\nadm:x:4:root,daemon\ntty:x:5:\ndisk:x:6:root\nwheel:x:10:root\n"
                "floppy:x:11:root\ndialout:x:20:root\ntape:x:26:root\nvideo:x:27:root\n"
                "users:x:100:games\n")
ALPINE_ROOT_GROUPS = [1, 2, 3, 4, 6, 10, 11, 20, 26, 27]  # root's, but the group named root


def alpine_root_under_run_as_group(groups: list[int]):
    """network-debug-pod (root) with runAsGroup 3000 on an Alpine /etc/group, the process
    holding `groups`."""
    def edit(record):
        record["pod_spec"]["securityContext"]["runAsGroup"] = 3000
        out = record["probe_output"]
        start = out.index("### secctx:begin etc-group\n") + len("### secctx:begin etc-group\n")
        out = out[:start] + ALPINE_GROUP + out[out.index("### secctx:end etc-group"):]
        line = " ".join(map(str, groups))
        out = (out.replace("Gid:\t0\t0\t0\t0", "Gid:\t3000\t3000\t3000\t3000")
               .replace("Groups:\t0 ", f"Groups:\t{line} ")
               .replace("uid=0(root) gid=0(root) groups=0(root)",
                        f"uid=0(root) gid=3000 groups={','.join(map(str, groups))}")
               .replace("### secctx:begin id-G\n0\n", f"### secctx:begin id-G\n{line}\n"))
        record["probe_output"] = out
        record["kubelet_user"] = [0, 3000, groups]
    return edit


def test_a_group_named_like_the_user_is_not_added_alpine_root_under_runAsGroup():
    # containerd's WithAdditionalGIDs skips root:x:0:root: the process has runAsGroup 3000
    # and root's other groups, not gid 0 (expecting 0 was a false fail online).
    expected, checks = judge("network-debug-pod",
                             alpine_root_under_run_as_group(ALPINE_ROOT_GROUPS + [3000]))
    assert not verdict.failures(checks), verdict.table(verdict.failures(checks))
    assert expected.process["groups"].value == ALPINE_ROOT_GROUPS + [3000]
    # A runtime that adds the group named root too is caught.
    _, checks = judge("network-debug-pod",
                      alpine_root_under_run_as_group([0] + ALPINE_ROOT_GROUPS + [3000]))
    assert "groups" in failed(checks), verdict.table(checks)


# --- procMount: the masked and read-only paths (issue 23 item 10) ------------------------
# What the probe's proc-paths section lists on the recording's node (its kernel has no
# /proc/kcore, /proc/sysrq-trigger, ...): the recordings predate the section.
NODE_PROC_PATHS = ("/proc/acpi", "/proc/interrupts", "/proc/keys", "/proc/timer_list",
                   "/sys/firmware", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys")
MASKED_HERE = ["/proc/acpi", "/proc/interrupts", "/proc/keys", "/proc/timer_list", "/sys/firmware"]
READ_ONLY_HERE = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys"]
PROC_CHECKS = ("masked /proc and /sys paths", "read-only /proc and /sys paths")


def with_proc_paths(*lies: tuple[str, str]):
    """The record with the proc-paths section, after each (old, new) replacement."""
    def edit(record):
        section = ("### secctx:begin proc-paths\n" + "\n".join(NODE_PROC_PATHS)
                   + "\n\n### secctx:end proc-paths rc=0\n")
        out = record["probe_output"].replace("### secctx:begin mounts",
                                             section + "### secctx:begin mounts", 1)
        for old, new in lies:
            assert old in out, f"{old!r} not in the recorded probe"
            out = out.replace(old, new, 1)
        record["probe_output"] = out
    return edit


def proc_checks(checks) -> dict[str, verdict.Check]:
    return {c.field: c for c in checks if c.field in PROC_CHECKS}


@pytest.mark.parametrize("case_id", ["procmount-default", "hardened-pod"])
def test_procMount_Default_masks_and_makes_read_only_the_kubelets_paths_the_kernel_has(case_id):
    _, checks = judge(case_id, with_proc_paths())
    assert not verdict.failures(checks), verdict.table(verdict.failures(checks))
    seen = proc_checks(checks)
    assert seen[PROC_CHECKS[0]].expected == MASKED_HERE and seen[PROC_CHECKS[0]].asserted
    assert seen[PROC_CHECKS[1]].expected == READ_ONLY_HERE and seen[PROC_CHECKS[1]].asserted


def test_a_runtime_that_does_not_mask_proc_keys_fails_the_masked_paths():
    _, checks = judge("procmount-default", with_proc_paths(
        ("tmpfs /proc/keys tmpfs rw,nosuid,size=65536k,mode=755 0 0\n", "")))
    assert set(failed(checks)) == {PROC_CHECKS[0]}
    assert "/proc/keys" not in failed(checks)[PROC_CHECKS[0]].observed


def test_a_runtime_that_leaves_proc_sys_writable_fails_the_read_only_paths():
    _, checks = judge("procmount-default", with_proc_paths(
        ("proc /proc/sys proc ro,", "proc /proc/sys proc rw,")))
    assert set(failed(checks)) == {PROC_CHECKS[1]}


def test_a_runtime_that_masks_under_procMount_Unmasked_fails_the_masked_paths():
    expected, checks = judge("procmount-unmasked", with_proc_paths())
    assert not verdict.failures(checks), verdict.table(verdict.failures(checks))
    assert expected.proc_paths.masked.value == () and expected.proc_paths.read_only.value == ()
    _, checks = judge("procmount-unmasked", with_proc_paths(
        ("proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0\n",
         "proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0\n"
         "tmpfs /proc/kcore tmpfs rw,nosuid,size=65536k,mode=755 0 0\n"
         "proc /proc/sys proc ro,nosuid,nodev,noexec,relatime 0 0\n")))
    # /proc/kcore is not on this kernel: only /proc/sys counts.
    assert set(failed(checks)) == {PROC_CHECKS[1]}
    assert failed(checks)[PROC_CHECKS[1]].observed == ["/proc/sys"]


def test_proc_interrupts_is_asserted_from_v1_37_only():
    # Not masked: a lie on v1.37.2, whose kubelet asks for it; before v1.37 not known here.
    unmasked = with_proc_paths(("tmpfs /proc/interrupts tmpfs rw,nosuid,size=65536k,mode=755 0 0\n", ""))
    _, checks = judge("procmount-default", unmasked)
    assert set(failed(checks)) == {PROC_CHECKS[0]}
    older = dataclasses.replace(ENVIRONMENT, kubernetes_version="v1.36.4")
    _, checks = judge("procmount-default", unmasked, env=older)
    assert not verdict.failures(checks)
    assert "/proc/interrupts" not in proc_checks(checks)[PROC_CHECKS[0]].expected


def test_a_privileged_container_gets_no_masks_from_containerd_or_cri_o_and_elsewhere_nothing_is_asserted():
    spec = {"containers": [{"name": "c", "securityContext": {"privileged": True}}]}
    for cri in ("containerd", "cri-o"):  # WithPrivileged; SpecSetPrivileges/setOCIBindMountsPrivileged
        paths = expect.proc_paths(spec, "c", expect.NodeFacts(cri=cri), "v1.37.2")
        assert (paths.masked.value, paths.read_only.value) == ((), ()) and paths.masked.asserted, cri
    paths = expect.proc_paths(spec, "c", expect.NodeFacts(cri="kata"), "v1.37.2")
    assert not paths.masked.asserted and "kata" in paths.masked.reason
