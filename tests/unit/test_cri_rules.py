"""The oracle's rules that depend on the node's CRI implementation (issue 25): each
asserted on containerd and on CRI-O with its own source, and not asserted elsewhere."""
from __future__ import annotations

from secctx import observe
from secctx.core import caps
from secctx.oracle.expect import CONTAINERD, CRIO, ImageFiles, NodeFacts, expect_process
from secctx.oracle.refusals import sandbox_refusal

# Alpine's group file: root is listed in a group named like it (root:x:0:root).
ALPINE = ImageFiles(observe.parse_passwd("root:x:0:0:root:/root:/bin/sh\n"
                                         "app:x:1000:1000::/home/app:/bin/sh\n"),
                    observe.parse_group("root:x:0:root\nwheel:x:10:root\napp:x:1000:app\n"))


def pod(pod_sc=None, container_sc=None):
    return {"securityContext": pod_sc or {},
            "containers": [{"name": "app", "image": "x", "securityContext": container_sc or {}}]}


def test_containerd_leaves_out_the_group_named_like_the_user_and_crio_keeps_it():
    """runAsGroup 3000 as root: containerd's WithAdditionalGIDs skips root:x:0:root, CRI-O's
    GetExecUser (moby/sys/user) keeps it, so root also holds gid 0 there."""
    spec = pod({"runAsUser": 0, "runAsGroup": 3000})
    on_containerd = expect_process(spec, "app", NodeFacts(cri=CONTAINERD), None, ALPINE)
    on_crio = expect_process(spec, "app", NodeFacts(cri=CRIO), None, ALPINE)
    assert on_containerd.groups == [10, 3000]
    assert on_crio.groups == [0, 10, 3000]


def test_primary_group_and_memberships_are_asserted_on_crio_and_not_on_an_unknown_cri():
    spec = pod({"runAsUser": 1000})
    assert expect_process(spec, "app", NodeFacts(cri=CRIO), None, ALPINE).groups == [1000]
    other = expect_process(spec, "app", NodeFacts(cri="frakti"), None, ALPINE)
    assert other.gid is None and "frakti: not asserted" in other.reasons["gid"]


def test_a_cap_prefixed_name_is_ignored_by_containerd_and_added_by_crio():
    spec = pod(container_sc={"capabilities": {"drop": ["ALL"], "add": ["CAP_NET_RAW"]}})
    net_raw = caps.encode(["NET_RAW"])
    assert expect_process(spec, "app", NodeFacts(cri=CONTAINERD), None, ALPINE).cap_bnd == 0
    assert expect_process(spec, "app", NodeFacts(cri=CRIO), None, ALPINE).cap_bnd == net_raw


def test_pod_run_as_group_without_user_refuses_the_sandbox_on_containerd_only():
    spec = pod({"runAsGroup": 3000})
    assert sandbox_refusal(spec, NodeFacts(cri=CONTAINERD)).reason == "FailedCreatePodSandBox"
    assert sandbox_refusal(spec, NodeFacts(cri=CRIO)) is None


def test_privileged_on_crio_holds_every_capability_in_all_five_sets_whatever_the_uid():
    """SetupPrivileged fills ambient and inheritable too: uid 1000 keeps them (containerd:
    CapEff 0 for a non-root uid, empty inheritable and ambient sets)."""
    spec = pod({"runAsUser": 1000}, {"privileged": True})
    grantable = caps.encode(["CHOWN", "SYS_ADMIN", "NET_RAW"])
    crio = expect_process(spec, "app", NodeFacts(cri=CRIO, grantable_caps=grantable), None, ALPINE)
    assert (crio.cap_bnd, crio.cap_eff, crio.cap_prm, crio.cap_inh, crio.cap_amb) == (grantable,) * 5
    ctrd = expect_process(spec, "app", NodeFacts(cri=CONTAINERD, grantable_caps=grantable), None,
                          ALPINE)
    assert (ctrd.cap_bnd, ctrd.cap_eff, ctrd.cap_inh, ctrd.cap_amb) == (grantable, 0, 0, 0)


def test_crio_inheritable_set_is_learned_from_a_plain_container():
    spec = pod({"runAsUser": 0})
    assert expect_process(spec, "app", NodeFacts(cri=CRIO), None, ALPINE).cap_inh == 0
    configured = NodeFacts(cri=CRIO, runtime_default_inh=caps.encode(["CHOWN"]))
    assert expect_process(spec, "app", configured, None, ALPINE).cap_inh is None


def test_unshare_refused_by_either_default_profile_and_by_nothing_else():
    from secctx.verdict import unshare_refused
    assert unshare_refused(False, "unshare: unshare(0x10000000): Operation not permitted")
    assert unshare_refused(False, "unshare: unshare(0x10000000): Function not implemented")
    assert not unshare_refused(True, "")
    assert not unshare_refused(False, "unshare: unshare(0x10000000): Invalid argument")


def test_privileged_in_a_user_namespace_refuses_the_sandbox_on_containerd_only():
    spec = {**pod(container_sc={"privileged": True}), "hostUsers": False}
    assert "sysfs" in sandbox_refusal(spec, NodeFacts(cri=CONTAINERD)).message
    assert sandbox_refusal(spec, NodeFacts(cri=CRIO)) is None
