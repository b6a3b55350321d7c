"""Node kinds as a parameter (a VM node beside the kind node): ids, the placement of
every pod, facts per node, and the AppArmor label the oracle derives per node."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from test_oracle_rules import NODE_SCRIPT

from secctx.oracle import expect, nodefacts, refusals
from secctx.oracle.expect import NodeFacts
from secctx.oracle.nodefacts import DEFAULT_NODE_KIND, NODE_KIND_LABEL, Environment, _merge_node_script
from secctx.run import plugin, runner


def config(**more):
    opts = {"runtime_class": ["default"], "cases_dir": [], "existing_cluster": False,
            "mode": "offline", **more}
    return SimpleNamespace(getoption=lambda name, default=None: opts.get(name, default))


def test_with_a_vm_node_every_case_also_runs_there_and_only_its_ids_say_so():
    before = [p.id for p in plugin.case_params(config())]
    params = plugin.case_params(config(vm_node="apparmor"))
    on_vm = [p.id for p in params if p.node == "vm-apparmor"]
    assert [p.id for p in params if p.node == DEFAULT_NODE_KIND] == before, "ids of before"
    assert "secure-pod@vm-apparmor" in on_vm and "fsgroup-demo[local-storage]@vm-apparmor" in on_vm
    assert len(on_vm) == len(before)
    crun = plugin.case_params(config(vm_node="apparmor", runtime_class=["crun"]))
    assert "secure-pod@crun@vm-apparmor" in {p.id for p in crun}


@pytest.mark.parametrize("options, says", [
    ({"existing_cluster": True}, "cannot go with --secctx-existing-cluster"),
    ({"mode": "online"}, "cannot go with --secctx-mode online"),
    ({"kind_image": "kindest/node:v1.37.2"}, "cannot go with --kind-image"),
])
def test_vm_node_with_a_cluster_it_cannot_join_is_one_line(options, says):
    opts = {"vm_node": "apparmor", "mode": "auto", **options}
    problem = plugin.vm_node_problem(lambda name: opts.get(name))
    assert says in problem and "\n" not in problem


def test_a_case_on_the_vm_is_pinned_by_its_label_and_tolerates_its_taint_the_default_is_not():
    spec = {"containers": [{"name": "app"}], "tolerations": [{"operator": "Exists", "key": "x"}]}
    runner.place(spec, "default", "vm-apparmor")
    assert spec["nodeSelector"] == {NODE_KIND_LABEL: "vm-apparmor"}
    assert {"key": NODE_KIND_LABEL, "operator": "Equal", "value": "vm-apparmor",
            "effect": "NoSchedule"} in spec["tolerations"] and len(spec["tolerations"]) == 2
    plain = {"containers": [{"name": "app"}]}
    runner.place(plain, "default", DEFAULT_NODE_KIND)
    assert plain == {"containers": [{"name": "app"}]}, "the default node kind: spec as written"


KIND = NODE_SCRIPT.format(helper="0000003ffeffffff", containerd="") + "lsm=capability\n"
# busybox's stat on a cgroup2 mount (seen in a container on the VM node): no name for it.
VM = (NODE_SCRIPT.replace("cgroupfs=tmpfs", "cgroupfs=UNKNOWN\ncgroupfs_magic=63677270").format(
    helper="000001ffffffffff", containerd="")
    + "lsm=lockdown,capability,landlock,yama,apparmor,tomoyo,bpf\napparmor=Y\n"
      "apparmor_profiles=cri-containerd.apparmor.d (enforce);secctx-deny-etc-write (enforce);\n"
      "seccomp=kill_process kill_thread trap errno user_notif trace log allow\n"
      "max_user_namespaces=15000\n")


def two_nodes() -> Environment:
    env = Environment(nodes=["c-control-plane", "c-vm"], node_kinds={"c-vm": "vm-apparmor"})
    _merge_node_script(env, KIND, "c-control-plane")
    _merge_node_script(env, VM, "c-vm")
    return env


def test_each_node_has_its_own_kernel_facts_and_a_case_is_placed_with_its_kinds():
    env = two_nodes()
    kind, vm = env.on("c-control-plane"), env.on("c-vm")
    assert (kind.cgroup_version, kind.apparmor, kind.lsms) == (1, False, ["capability"])
    assert (vm.cgroup_version, vm.apparmor, vm.max_user_namespaces) == (2, True, 15000)
    assert vm.apparmor_profiles == ["cri-containerd.apparmor.d (enforce)",
                                    "secctx-deny-etc-write (enforce)"]
    assert not env.placed(DEFAULT_NODE_KIND).apparmor, "the kind node's own facts, not any node's"
    assert env.placed("vm-apparmor").apparmor
    props = env.properties()
    assert props["cgroup_version (c-control-plane)"] == "1" and props["cgroup_version (c-vm)"] == "2"
    assert props["node kind (c-vm)"] == "vm-apparmor"
    with pytest.raises(KeyError):
        env.placed("vm-selinux")


def test_without_labelled_nodes_the_default_kind_is_the_whole_cluster():
    env = Environment(nodes=["a", "b"])
    _merge_node_script(env, KIND, "a")
    _merge_node_script(env, VM, "b")
    assert env.placed(DEFAULT_NODE_KIND) is env


def test_apparmor_pod_on_the_kind_node_is_still_refused_fail_closed_and_runs_on_the_vm():
    case = next(c for c in plugin._load(config())[0] if c.name == "apparmor-pod")
    env = two_nodes()
    assert expect.outcome_for(case, env.placed(DEFAULT_NODE_KIND))[0].status == "rejected"
    assert expect.outcome_for(case, env.placed("vm-apparmor"))[0].status == "running"


def spec(container_sc=None, pod_sc=None):
    return {"securityContext": pod_sc or {},
            "containers": [{"name": "app", "securityContext": container_sc or {}}]}


APPARMOR = NodeFacts(apparmor=True, apparmor_profiles=("cri-containerd.apparmor.d (enforce)",
                                                         "secctx-deny-etc-write (complain)"))


@pytest.mark.parametrize("container_sc, label", [
    # containerd internal/cri/sputil GenerateApparmorSpecOpts
    ({}, r"cri\-containerd\.apparmor\.d\ \(enforce\)"),  # none given: its default profile
    ({"appArmorProfile": {"type": "RuntimeDefault"}}, r"cri\-containerd\.apparmor\.d\ \(enforce\)"),
    ({"appArmorProfile": {"type": "Unconfined"}}, "unconfined"),
    ({"privileged": True}, "unconfined"),
    ({"privileged": True, "appArmorProfile": {"type": "RuntimeDefault"}}, "unconfined"),
    # the mode the profile was loaded in
    ({"appArmorProfile": {"type": "Localhost", "localhostProfile": "secctx-deny-etc-write"}},
     r"secctx\-deny\-etc\-write\ \(complain\)"),
])
def test_the_apparmor_label_follows_containerds_rules(container_sc, label):
    assert expect.apparmor_label(spec(container_sc), "app", APPARMOR)[0] == label


def test_the_pods_profile_applies_where_the_container_sets_none():
    pod = spec(pod_sc={"appArmorProfile": {"type": "Unconfined"}})
    pattern, why = expect.apparmor_label(pod, "app", APPARMOR)
    assert pattern == "unconfined" and "pod securityContext" in why


@pytest.mark.parametrize("node, why", [
    (NodeFacts(apparmor=False), "no AppArmor"),
    (NodeFacts(apparmor=True, handler="runsc"), "gVisor"),
])
def test_no_apparmor_label_is_asserted_where_none_can_be_seen(node, why):
    pattern, reason = expect.apparmor_label(spec(), "app", node)
    assert pattern is None and why in reason


def test_a_localhost_profile_not_loaded_has_no_label_to_assert():
    pod = spec({"appArmorProfile": {"type": "Localhost", "localhostProfile": "absent"}})
    pattern, why = expect.apparmor_label(pod, "app", APPARMOR)
    assert pattern is None and "not loaded" in why


def test_another_cri_promises_its_own_default_profile_enforced():
    other = NodeFacts(apparmor=True, cri="cri-o")
    assert expect.apparmor_label(spec(), "app", other)[0] == r"\S+ \(enforce\)"


@pytest.mark.parametrize("kernel, able", [
    ("6.1.0-57-amd64", False),     # the VM node's Debian bookworm kernel
    ("6.3.0", True),               # tmpfs idmapped mounts from Linux 6.3 (mm/shmem.c)
    ("6.18.44-fc-v1300", True),    # this host's, the kind nodes'
    ("5.15.0-91-generic", False),
    ("", True),                    # not reported: assumed able, the run shows it
])
def test_tmpfs_idmap_follows_the_kernel_version(kernel, able):
    assert nodefacts.tmpfs_idmap(kernel) is able


def test_userns_root_on_a_kernel_without_tmpfs_idmap_is_refused_at_container_creation():
    # Seen on the VM node (6.1): runc "failed to set MOUNT_ATTR_IDMAP on
    # .../kube-api-access-...: invalid argument", RunContainerError, retried.
    case = next(c for c in plugin._load(config())[0] if c.name == "userns-root")
    env = two_nodes()
    for node in env.nodes:  # both report user namespaces for the handler
        env.per_node[node]["user_namespaces"] = True
    env.per_node["c-vm"]["tmpfs_idmap"] = False
    refused = expect.outcome_for(case, env.placed("vm-apparmor"))[0]
    assert (refused.status, refused.reason, refused.message) == (
        "rejected", "RunContainerError", "MOUNT_ATTR_IDMAP")
    assert expect.outcome_for(case, env.placed(DEFAULT_NODE_KIND))[0].status == "running"


@pytest.mark.parametrize("pod, tmpfs", [
    ({}, True),  # the service-account token: a projected volume the admission plugin adds
    ({"automountServiceAccountToken": False}, False),
    ({"automountServiceAccountToken": False, "volumes": [{"name": "s", "secret": {}}]}, True),
    ({"automountServiceAccountToken": False,
      "volumes": [{"name": "m", "emptyDir": {"medium": "Memory"}}]}, True),
    ({"automountServiceAccountToken": False, "volumes": [{"name": "d", "emptyDir": {}}]}, False),
])
def test_a_pod_has_tmpfs_volumes_by_its_kinds_and_the_token(pod, tmpfs):
    assert refusals.tmpfs_volumes(pod) is tmpfs
