"""The oracle's rules for what depends on the image, the node and the storage
(issue 14): each rule with the case that would be wrong without it."""
from __future__ import annotations

import pytest

from secctx import observe
from secctx.oracle.expect import ClaimFacts, ImageFiles, ImageUser, NodeFacts, expect_process, fsgroup_managed

NODE = NodeFacts()
# Like upstream's agnhost test image: uid 1000 in /etc/passwd, and in group 50000.
AGNHOST = ImageFiles(observe.parse_passwd("root:x:0:0:root:/root:/bin/sh\n"
                                          "app:x:1000:1000::/home/app:/bin/sh\n"),
                     observe.parse_group("root:x:0:\nwheel:x:10:root\napp:x:1000:\n"
                                         "extra:x:50000:app\n"))


def pod(pod_sc=None, container_sc=None):
    return {"securityContext": pod_sc or {},
            "containers": [{"name": "app", "image": "x", "securityContext": container_sc or {}}]}


def test_root_gets_the_wheel_group_the_image_lists_it_in():
    # The official busybox image: wheel:x:10:root. Expecting [0] would be a false fail.
    exp = expect_process(pod(), "app", NODE, ImageUser.from_config("", AGNHOST), AGNHOST)
    assert (exp.uid, exp.gid, exp.groups) == (0, 0, [0, 10])


def test_run_as_user_1000_gets_its_passwd_group_and_memberships_with_merge():
    exp = expect_process(pod({"runAsUser": 1000, "supplementalGroups": [60000]}), "app", NODE,
                         None, AGNHOST)
    assert (exp.gid, exp.groups) == (1000, [1000, 50000, 60000])


def test_strict_policy_drops_the_image_memberships():
    exp = expect_process(pod({"runAsUser": 1000, "supplementalGroups": [60000],
                              "supplementalGroupsPolicy": "Strict"}), "app", NODE, None, AGNHOST)
    assert exp.groups == [1000, 60000]


def test_a_uid_without_passwd_entry_runs_with_gid_0():
    exp = expect_process(pod({"runAsUser": 4321}), "app", NODE, None, AGNHOST)
    assert (exp.gid, exp.groups) == (0, [0])


@pytest.mark.parametrize("user, uid, gid", [("1000", 1000, 1000), ("app", 1000, 1000),
                                            ("1000:2000", 1000, 1000), ("root", 0, 0),
                                            ("", 0, 0), ("nobody-here", None, None)])
def test_image_user_forms(user, uid, gid):
    # USER 1000:2000: the kubelet passes only the uid; the gid comes from /etc/passwd.
    got = ImageUser.from_config(user, AGNHOST)
    assert (got.uid, got.gid) == (uid, gid) if uid is not None else got is None


def test_a_name_without_the_image_files_is_not_known():
    assert ImageUser.from_config("app") is None and ImageUser.from_config(None) is None


PVC = {"name": "data", "persistentVolumeClaim": {"claimName": "data"}}


@pytest.mark.parametrize("volume, claim, read_only, managed", [
    (PVC, ClaimFacts("local"), False, True),
    (PVC, ClaimFacts("local"), True, False),          # a claim with readOnly: true
    (PVC, ClaimFacts("csi", "File", None, ("ReadWriteMany",)), True, False),
    ({"name": "data", "csi": {"driver": "d", "readOnly": True}}, None, True, False),
    (PVC, ClaimFacts("hostPath"), False, False),
    (PVC, ClaimFacts("nfs"), False, False),
    (PVC, ClaimFacts("csi", "None", "ext4", ("ReadWriteOnce",)), False, False),
    (PVC, ClaimFacts("csi", "File", None, ("ReadWriteMany",)), False, True),
    (PVC, ClaimFacts("csi", None, "ext4", ("ReadWriteOnce",)), False, True),
    (PVC, ClaimFacts("csi", None, None, ("ReadWriteOnce",)), False, False),   # no fsType
    (PVC, ClaimFacts("csi", None, "ext4", ("ReadWriteMany",)), False, False),  # not RWO
    ({"name": "data", "ephemeral": {}}, ClaimFacts("local"), False, True),
    ({"name": "data", "nfs": {"server": "x", "path": "/"}}, None, False, False),
    (PVC, None, False, False),
])
def test_where_the_kubelet_applies_fsGroup(volume, claim, read_only, managed):
    got, why = fsgroup_managed(volume, claim, read_only)
    assert got is managed, why


def mounts_of(volume: dict, stat=None, uid=1000, groups=(1000,), cap_eff=0, read_only=None):
    from secctx.oracle.expect import Learned, Want, _mounts
    mount = {"name": "v", "mountPath": "/v", **({"readOnly": read_only} if read_only is not None else {})}
    spec = {"containers": [{"name": "app", "volumeMounts": [mount]}],
            "volumes": [{"name": "v", **volume}]}
    wants = {"uid": Want(uid, ""), "groups": Want(list(groups), ""), "CapEff": Want(cap_eff, "")}
    [m] = _mounts(spec, "app", Learned(spec, None, stats={"/v": stat} if stat else {}), {}, wants)
    return m


@pytest.mark.parametrize("kind", ["configMap", "secret", "downwardAPI", "projected"])
def test_kubelet_written_volumes_are_read_only_whatever_readOnly_says(kind):
    m = mounts_of({kind: {}}, read_only=False)
    assert (m.mounted_ro.value, m.writable.value) == (True, False)
    assert "always mounted read-only" in m.writable.reason


@pytest.mark.parametrize("volume, why", [
    ({"persistentVolumeClaim": {"claimName": "c", "readOnly": True}}, "persistentVolumeClaim source"),
    ({"csi": {"driver": "d", "readOnly": True}}, "csi source"),
    ({"nfs": {"server": "s", "path": "/", "readOnly": True}}, "nfs source"),
])
def test_readOnly_on_the_volume_source_mounts_it_read_only(volume, why):
    # kubelet makeMounts: ReadOnly = mount.ReadOnly || the mounter's GetAttributes().ReadOnly,
    # which a claim's readOnly (any PV kind) and an inline csi or nfs readOnly set.
    m = mounts_of(volume, read_only=False)
    assert (m.mounted_ro.value, m.writable.value) == (True, False), m.writable.reason
    assert why in m.mounted_ro.reason


def test_an_ephemeral_volumes_claim_is_not_read_only():
    m = mounts_of({"ephemeral": {"volumeClaimTemplate": {}}})
    assert m.mounted_ro.value is False


@pytest.mark.parametrize("claim_ro, mount_ro, group", [
    (False, True, 2000),   # a read-only volumeMount: the local plugin still applies fsGroup
    (True, False, None),   # readOnly on the claim: it does not
])
def test_local_volume_ownership_follows_the_claims_readOnly_not_the_mounts(claim_ro, mount_ro, group):
    # kubelet pkg/volume/local localVolumeMounter.SetUpAt: SetVolumeOwnership `if !m.readOnly`,
    # m.readOnly being volume.Spec.ReadOnly (the claim's), set up once for all mounts.
    from secctx.oracle.expect import Learned, Want, _mounts
    spec = {"securityContext": {"fsGroup": 2000},
            "containers": [{"name": "app", "volumeMounts": [
                {"name": "v", "mountPath": "/v", "readOnly": mount_ro}]}],
            "volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": "c",
                                                                "readOnly": claim_ro}}]}
    wants = {"uid": Want(1000, ""), "groups": Want([1000, 2000], ""), "CapEff": Want(0, "")}
    [m] = _mounts(spec, "app", Learned(spec, None, claims={"c": ClaimFacts("local")}), {}, wants)
    assert m.group.value == group and m.mounted_ro.value is True, m.group.reason


HOST_DIR = {"hostPath": {"path": "/srv/data"}}  # the node's directory: owner and mode not predicted


def test_a_writable_mount_is_writable_only_where_owner_and_mode_allow():
    root_dir = observe.FileStat("/v", 0, 0, 0o755, "drwxr-xr-x")
    assert mounts_of(HOST_DIR, root_dir).writable.value is False
    assert mounts_of(HOST_DIR, root_dir, uid=0, groups=(0,),
                     cap_eff=1 << 1).writable.value is True  # CAP_DAC_OVERRIDE
    group_dir = observe.FileStat("/v", 0, 2000, 0o2775, "drwxrwsr-x")
    assert mounts_of(HOST_DIR, group_dir, groups=(1000, 2000)).writable.value is True


def with_fs_group(volume: dict, fs_group: int | None = None, **kw):
    from secctx.oracle.expect import Learned, Want, _mounts
    spec = {"securityContext": {"fsGroup": fs_group} if fs_group is not None else {},
            "containers": [{"name": "app", "volumeMounts": [{"name": "v", "mountPath": "/v"}]}],
            "volumes": [{"name": "v", **volume}], **kw}
    wants = {"uid": Want(1000, ""), "groups": Want([1000], ""), "CapEff": Want(0, "")}
    [m] = _mounts(spec, "app", Learned(spec, None), {}, wants)
    return m


@pytest.mark.parametrize("volume, fs_group, mode", [
    # kubelet pkg/volume/emptydir setupDir: 0777; a tmpfs root is 1777; fsGroup adds setgid.
    ({"emptyDir": {}}, None, 0o777), ({"emptyDir": {}}, 2000, 0o2777),
    ({"emptyDir": {"medium": "Memory"}}, None, 0o1777), ({"emptyDir": {"medium": "Memory"}}, 2000, 0o3777),
    ({"configMap": {"name": "c"}}, None, 0o777), ({"configMap": {"name": "c"}}, 2000, 0o2777),
    ({"secret": {"secretName": "s"}}, 2000, 0o3777), ({"projected": {"sources": []}}, None, 0o1777),
    ({"downwardAPI": {"items": []}}, None, 0o1777),
    ({"emptyDir": {"stickyBit": True}}, None, 0o1777), ({"emptyDir": {"stickyBit": True}}, 2000, 0o3777),
])
def test_a_kubelet_made_volume_directory_has_a_predicted_owner_group_and_mode(volume, fs_group, mode):
    m = with_fs_group(volume, fs_group)
    assert (m.owner.value, m.group.value, m.mode.value) == (0, fs_group or 0, mode), m.mode.reason


def test_writable_follows_the_predicted_owner_and_mode_not_the_observed_ones():
    # A runtime that hands an emptyDir to the process (chown 1000, 0700): the mount is still
    # predicted writable from the kubelet's 0777, and the owner and mode checks fail.
    from secctx.oracle.expect import Learned, Want, _mounts
    spec = {"containers": [{"name": "app", "volumeMounts": [{"name": "v", "mountPath": "/v"}]}],
            "volumes": [{"name": "v", "emptyDir": {}}]}
    lied = observe.FileStat("/v", 1000, 0, 0o700, "drwx------")
    wants = {"uid": Want(1000, ""), "groups": Want([1000], ""), "CapEff": Want(0, "")}
    [m] = _mounts(spec, "app", Learned(spec, None, stats={"/v": lied}), {}, wants)
    assert m.writable.value is True and "mode 777, owner 0:0" in m.writable.reason


@pytest.mark.parametrize("volume, extra, who", [
    ({"emptyDir": {}}, {"initContainers": [{"name": "fix", "securityContext": {"runAsUser": 0},
                                            "volumeMounts": [{"name": "v", "mountPath": "/d"}]}]},
     "container fix mounts it writable as uid 0"),
    ({"emptyDir": {}}, {"initContainers": [{"name": "fix",
                                            "volumeMounts": [{"name": "v", "mountPath": "/d"}]}]},
     "container fix mounts it writable as a uid not known"),
    ({"persistentVolumeClaim": {"claimName": "c"}}, {}, "a persistentVolumeClaim volume comes"),
    ({"emptyDir": {"medium": "HugePages"}}, {}, "emptyDir medium HugePages"),
])
def test_owner_and_mode_are_not_asserted_where_the_kubelet_is_not_their_only_author(
        volume, extra, who):
    m = with_fs_group(volume, 2000, **extra)
    assert not m.owner.asserted and not m.mode.asserted and who in m.mode.reason


def test_a_volume_directory_given_to_the_process_fails_the_owner_and_mode_checks():
    from secctx import verdict
    m = with_fs_group({"emptyDir": {}}, 2000)
    obs = observe.parse(observe_output("root:x:0:0::/:/bin/sh\n", "root:x:0:\n"))
    obs.stats["/v"] = observe.FileStat("/v", 1000, 2000, 0o777, "drwxrwxrwx")
    lines = [c.line() for c in verdict.mount_checks(obs, m) if not c.ok]
    assert any(ln.startswith("FAIL /v owner: expected 0, observed 1000") for ln in lines), lines
    assert any(ln.startswith("FAIL /v mode: expected '2777', observed '777'") for ln in lines), lines


def test_an_image_volume_is_not_given_the_fsGroup():
    # kubelet pkg/volume/image: SetUpAt does nothing, so no SetVolumeOwnership; the image's
    # files keep their group (seen: /image 0:0 755 on v1.37). Predicting group 2000 and
    # setgid would fail every such pod.
    m = with_fs_group({"image": {"reference": "x"}}, 2000)
    assert not m.group.asserted and m.setgid is None, m.group.reason
    assert "pkg/volume/image" in m.group.reason
    assert fsgroup_managed({"name": "v", "image": {"reference": "x"}}, None, True)[0] is False


def test_fsgroup_adds_group_read_to_files_of_read_only_volumes_and_read_write_elsewhere():
    from secctx.oracle.expect import fsgroup_mode
    assert fsgroup_mode(0o400, False, True) == 0o440   # a configMap key with defaultMode 0400
    assert fsgroup_mode(0o600, False, False) == 0o660  # a file in an emptyDir
    assert fsgroup_mode(0o755, True, True) == 0o2755   # a directory: exec and setgid too


def test_without_an_image_config_the_user_is_the_one_the_kubelet_reports():
    # An existing cluster: no local engine to read the image's USER from.
    seen = observe.parse(observe_output(passwd="app:x:1000:1000::/:/bin/sh\n",
                                        group="extra:x:50000:app\n"))
    learned = observe.learn({"containers": [{"name": "app"}]}, None, seen, {}, (1000, 1000, [1000]))
    assert (learned.image_user.uid, learned.image_user.gid, learned.image_user.groups) == \
        (1000, 1000, [50000])
    assert "kubelet reports" in learned.image_user.source


def test_the_runtime_default_set_is_the_measured_one():
    # CRI-O's default set is smaller than containerd's: no NET_RAW, SYS_CHROOT, MKNOD, AUDIT_WRITE.
    crio = NodeFacts(runtime_default_caps=0x000005FB)
    exp = expect_process(pod(), "app", crio, ImageUser(0, 0, []))
    assert exp.cap_bnd == exp.cap_eff == 0x000005FB
    assert "the runtime default set" in exp.reasons["cap_bnd"]


NODE_SCRIPT = ("capbnd={helper}\ninit_capbnd=000001ffffffffff\n{containerd}cap_last_cap=40\n"
               "default_capbnd=00000000a80425fb\nuserns_unconfined=yes\ncgroupfs=tmpfs\n")


def test_a_privileged_container_gets_containerds_own_capabilities_not_the_node_inits():
    # containerd's WithPrivileged grants cap.Current(), containerd's own CapEff: here it
    # lacks SYS_RESOURCE and 38-40 while the node's init holds all 41.
    from secctx.oracle.nodefacts import Environment, _merge_node_script
    env = Environment(runtime_default_caps=(1 << 64) - 1)
    _merge_node_script(env, NODE_SCRIPT.format(helper="0000003ffeffffff",
                                               containerd="containerd_capeff=0000003ffeffffff\n"),
                       "node-a")
    assert env.grantable_caps == 0x3ffeffffff and env.kernel_caps == (1 << 41) - 1
    assert env.properties()["host_cannot_grant"] == "SYS_RESOURCE,PERFMON,BPF,CHECKPOINT_RESTORE"
    assert env.on("node-a").runtime_default_caps == 0xA80425FB and env.on("node-a").userns_unconfined
    exp = expect_process(pod(container_sc={"privileged": True}), "app", env.node_facts(),
                         ImageUser(0, 0, []))
    assert exp.cap_bnd == exp.cap_eff == 0x3ffeffffff


def test_a_runtime_that_withholds_a_capability_from_privileged_containers_does_not_set_the_expectation():
    # The lie: the privileged helper itself lacks NET_ADMIN. containerd asked for it, so a
    # privileged container without it must still fail; only without a containerd process
    # in sight is the helper's own set taken.
    from secctx.oracle.nodefacts import Environment, _merge_node_script
    net_admin = 1 << 12
    lying = Environment()
    _merge_node_script(lying, NODE_SCRIPT.format(helper=f"{0x3ffeffffff & ~net_admin:016x}",
                                                 containerd="containerd_capeff=0000003ffeffffff\n"))
    assert lying.grantable_caps & net_admin
    other_cri = Environment()
    _merge_node_script(other_cri, NODE_SCRIPT.format(helper="0000003ffeffffff", containerd=""))
    assert other_cri.grantable_caps == 0x3ffeffffff


def observe_output(passwd: str, group: str) -> str:
    status = ("Name:\tsleep\nUid:\t1000\t1000\t1000\t1000\nGid:\t1000\t1000\t1000\t1000\n"
              "Groups:\t1000 50000\nCapInh:\t0\nCapPrm:\t0\nCapEff:\t0\nCapBnd:\t0\nCapAmb:\t0\n"
              "NoNewPrivs:\t0\nSeccomp:\t0\n")
    sections = {"pid1-status": status, "self-status": status, "id": "uid=1000 gid=1000\n",
                "id-G": "1000 50000\n", "mounts": "overlay / overlay rw 0 0\n", "stat": "",
                "write": "", "root-write": "", "etc-passwd": passwd, "etc-group": group}
    return "".join(f"### secctx:begin {k}\n{v}\n### secctx:end {k} rc=0\n" for k, v in sections.items())


def test_a_psa_verdict_keyed_by_version_takes_the_newest_key_not_above_the_cluster():
    from suites.test_pod_security_admission import verdict_for
    keyed = {"v1.35": "admitted", "v1.0": ["runAsNonRoot != true"]}
    assert verdict_for(keyed, "v1.34.4") == ["runAsNonRoot != true"]
    assert verdict_for(keyed, "v1.35.4") == "admitted"
    assert verdict_for(keyed, "v1.37.2") == "admitted"
    assert verdict_for(["seccompProfile"], "v1.34.4") == ["seccompProfile"]


def test_runtime_default_opens_unshare_by_the_bounding_set_not_by_what_the_process_holds():
    # Found by secctx.generated (docs/generated-findings.md): uid 1 with capabilities.add
    # ALL has an empty CapEff, yet containerd's profile, written from the bounding set,
    # lets unshare(CLONE_NEWUSER) through, and the node allows unprivileged user namespaces.
    from secctx.core import caps
    from secctx.oracle.expect import Want, _behaviour
    from secctx.oracle.nodefacts import Environment
    env = Environment(userns_unconfined=True, container_runtime="containerd://2.3.4")

    def unshare(add: list[str], cap_bnd: int):
        spec = {"containers": [{"name": "app", "securityContext": {
            "seccompProfile": {"type": "RuntimeDefault"}, "capabilities": {"add": add}}}]}
        wants = {"Seccomp": Want(2, ""), "CapEff": Want(0, ""), "CapBnd": Want(cap_bnd, "")}
        return _behaviour(spec, "app", env, wants)["unshare(CLONE_NEWUSER) refused"].value
    sys_admin = 1 << caps.CAPABILITIES.index("SYS_ADMIN")
    assert unshare(["ALL"], caps.ALL_CAPS) is False
    assert unshare([], caps.RUNTIME_DEFAULT) is True
    assert not caps.RUNTIME_DEFAULT & sys_admin


@pytest.mark.parametrize("volume, fs_group, files", [
    # MakePayload: items[].mode, else defaultMode (the API defaults it to 0644).
    ({"configMap": {"name": "c"}}, None, {"*": 0o644}),
    ({"secret": {"secretName": "s", "defaultMode": 0o400}}, 2000, {"*": 0o440}),
    ({"secret": {"secretName": "s", "defaultMode": 0o400,
                 "items": [{"key": "k", "path": "k", "mode": 0o600}, {"key": "j", "path": "d/j"}]}},
     None, {"k": 0o600}),  # a file below a subdirectory is not checked
    ({"downwardAPI": {"items": [{"path": "labels"}]}}, 2000, {"labels": 0o644}),
])
def test_the_kubelet_writes_each_file_with_its_mode_and_group_read_under_fsGroup(volume, fs_group, files):
    from secctx.oracle.expect import volume_file_modes
    spec = {"securityContext": {"fsGroup": fs_group} if fs_group else {}}
    got = volume_file_modes(spec, {"name": "v", **volume})
    assert {k: w.value for k, w in got.items()} == files


def test_no_file_modes_for_volumes_whose_files_the_kubelet_does_not_write():
    from secctx.oracle.expect import volume_file_modes
    assert volume_file_modes({}, {"name": "v", "emptyDir": {}}) is None
    assert volume_file_modes({}, {"name": "v", "projected": {"sources": []}}) is None
