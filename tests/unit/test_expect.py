"""secctx.oracle.expect: the oracle, on the recipe's pods and on the rules it must get right."""
import pytest
import yaml

from secctx.core import caps
from secctx.oracle.expect import ImageUser, NodeFacts, expect_process, expect_volume

NET_BIND_SERVICE = 1 << 10
NET_ADMIN = 1 << 12
NET_RAW = 1 << 13
SYS_RESOURCE = 1 << 24
# A host whose bounding set lacks CAP_SYS_RESOURCE (some sandboxes).
SHORT_HOST = 0x000001FFFEFFFFFF

# The recipe's pods, re-indented (the recipe lost its indentation).
SECURE_POD = yaml.safe_load("""
apiVersion: v1
kind: Pod
metadata:
  name: secure-pod
spec:
  securityContext:
    runAsUser: 1000
    runAsGroup: 3000
    fsGroup: 2000
  containers:
  - name: app
    image: nginx:1.25
    securityContext:
      runAsNonRoot: true
      allowPrivilegeEscalation: false
    volumeMounts:
    - name: data
      mountPath: /data
  volumes:
  - name: data
    emptyDir: {}
""")

HARDENED_POD = yaml.safe_load("""
apiVersion: v1
kind: Pod
metadata:
  name: hardened-pod
spec:
  securityContext:
    runAsUser: 1000
    runAsGroup: 1000
    fsGroup: 1000
    fsGroupChangePolicy: "OnRootMismatch"
    supplementalGroups: [4000]
    seccompProfile:
      type: RuntimeDefault
  containers:
  - name: app
    image: myapp:1.0
    securityContext:
      runAsNonRoot: true
      readOnlyRootFilesystem: true
      allowPrivilegeEscalation: false
      capabilities:
        drop:
        - ALL
        add:
        - NET_BIND_SERVICE
      seccompProfile:
        type: RuntimeDefault
    volumeMounts:
    - name: tmp
      mountPath: /tmp
  volumes:
  - name: tmp
    emptyDir: {}
  automountServiceAccountToken: false
""")

NETWORK_DEBUG_POD = yaml.safe_load("""
apiVersion: v1
kind: Pod
metadata:
  name: network-debug-pod
spec:
  containers:
  - name: debug
    image: nicolaka/netshoot:latest
    securityContext:
      runAsNonRoot: false
      capabilities:
        drop:
        - ALL
        add:
        - NET_RAW
        - NET_ADMIN
    command: ["sleep", "infinity"]
""")

# netshoot (Alpine) runs as root, a member of these groups in its /etc/group.
NETSHOOT_ROOT = ImageUser(uid=0, gid=0, groups=[0, 1, 2, 3, 4, 6, 10, 11, 20, 26, 27])

FSGROUP_DEMO = yaml.safe_load("""
spec:
  securityContext:
    runAsUser: 1000
    runAsGroup: 1000
    fsGroup: 2000
  containers:
  - name: app
    image: busybox:1.36
  volumes:
  - name: data
    persistentVolumeClaim:
      claimName: my-pvc
  - name: host
    hostPath:
      path: /var/lib/demo
  - name: config
    configMap:
      name: app-config
  - name: token
    projected:
      sources: []
""")


def pod(container_sc: dict | None = None, pod_sc: dict | None = None) -> dict:
    """A one-container pod spec with the given security contexts."""
    container = {"name": "app", "image": "busybox:1.36"}
    if container_sc is not None:
        container["securityContext"] = container_sc
    spec = {"containers": [container]}
    if pod_sc is not None:
        spec["securityContext"] = pod_sc
    return spec


NODE = NodeFacts()


# --- the recipe's pods --------------------------------------------------------

def test_secure_pod():
    exp = expect_process(SECURE_POD, "app", NODE)
    assert (exp.uid, exp.gid, exp.groups) == (1000, 3000, [2000, 3000])
    assert exp.no_new_privs == 1
    assert exp.cap_bnd == caps.RUNTIME_DEFAULT
    # Non-root: the default set stays in the bounding set but is not usable.
    assert exp.cap_eff == exp.cap_prm == 0
    assert exp.cap_inh == exp.cap_amb == 0
    assert exp.seccomp == 0  # no profile and seccompDefault off
    assert not exp.root_read_only and not exp.privileged
    assert exp.reasons["uid"] == "runAsUser 1000 from pod securityContext"
    assert "not root" in exp.reasons["cap_eff"]


def test_secure_pod_with_seccomp_default():
    exp = expect_process(SECURE_POD, "app", NodeFacts(seccomp_default=True))
    assert exp.seccomp == 2
    assert "seccompDefault" in exp.reasons["seccomp"]


def test_hardened_pod():
    exp = expect_process(HARDENED_POD, "app", NODE)
    assert (exp.uid, exp.gid, exp.groups) == (1000, 1000, [1000, 4000])
    assert exp.cap_bnd == NET_BIND_SERVICE == 0x400
    assert exp.cap_eff == exp.cap_prm == 0  # add does not make a non-root process capable
    assert exp.seccomp == 2
    assert exp.root_read_only
    assert exp.no_new_privs == 1
    assert "NET_BIND_SERVICE" in exp.reasons["cap_bnd"]
    assert "container securityContext" in exp.reasons["seccomp"]


def test_network_debug_pod_as_root():
    exp = expect_process(NETWORK_DEBUG_POD, "debug", NODE, image_user=NETSHOOT_ROOT)
    assert exp.uid == 0 and exp.gid == 0
    assert exp.groups == [0, 1, 2, 3, 4, 6, 10, 11, 20, 26, 27]
    assert exp.cap_bnd == exp.cap_eff == exp.cap_prm == NET_RAW | NET_ADMIN
    assert exp.no_new_privs == 0
    assert "image's default user" in exp.reasons["uid"]


def test_network_debug_pod_with_unknown_image_user():
    exp = expect_process(NETWORK_DEBUG_POD, "debug", NODE)
    assert exp.uid is None and exp.gid is None and exp.groups is None
    assert exp.cap_eff is None and exp.cap_prm is None
    assert exp.cap_bnd == NET_RAW | NET_ADMIN  # does not depend on the user
    assert "not asserted" in exp.reasons["uid"]


def test_every_field_has_a_reason():
    exp = expect_process(HARDENED_POD, "app", NODE)
    fields = {"uid", "gid", "groups", "cap_bnd", "cap_eff", "cap_prm", "cap_inh", "cap_amb",
              "no_new_privs", "seccomp", "root_read_only", "privileged"}
    assert set(exp.reasons) == fields
    assert all(exp.reasons.values())


def test_spec_or_whole_manifest():
    assert expect_process(SECURE_POD["spec"], "app", NODE) == expect_process(SECURE_POD, "app", NODE)


def test_unknown_container():
    with pytest.raises(ValueError, match="'nope'"):
        expect_process(SECURE_POD, "nope", NODE)


def test_init_container_is_found():
    spec = pod()
    spec["initContainers"] = [{"name": "init", "securityContext": {"runAsUser": 0}}]
    assert expect_process(spec, "init", NODE).uid == 0


# --- users and groups ---------------------------------------------------------

def test_container_run_as_user_overrides_pod():
    exp = expect_process(pod({"runAsUser": 2000}, {"runAsUser": 1000, "runAsGroup": 3000}), "app", NODE)
    assert exp.uid == 2000 and exp.gid == 3000
    assert exp.reasons["uid"] == "runAsUser 2000 from container securityContext"
    assert exp.reasons["gid"] == "runAsGroup 3000 from pod securityContext"


def test_run_as_user_zero_is_not_unset():
    exp = expect_process(pod({"runAsUser": 0}, {"runAsUser": 1000}), "app", NODE)
    assert exp.uid == 0


def test_gid_from_image_user_when_run_as_group_unset():
    image = ImageUser(uid=101, gid=101, groups=[101, 5])
    exp = expect_process(pod(), "app", NODE, image_user=image)
    assert (exp.uid, exp.gid, exp.groups) == (101, 101, [5, 101])


def test_gid_unknown_when_run_as_user_is_not_the_image_user():
    image = ImageUser(uid=0, gid=0, groups=[0, 1, 2])
    exp = expect_process(pod(None, {"runAsUser": 1000}), "app", NODE, image_user=image)
    assert exp.uid == 1000 and exp.gid is None and exp.groups is None


def test_image_groups_only_for_the_image_user():
    image = ImageUser(uid=0, gid=0, groups=[0, 1, 2])
    exp = expect_process(pod(None, {"runAsUser": 1000, "runAsGroup": 1000}), "app", NODE,
                         image_user=image)
    assert exp.groups == [1000]


def test_supplemental_groups_policy_strict_ignores_image_groups():
    image = ImageUser(uid=1000, gid=1000, groups=[50000])
    merge = expect_process(pod(None, {"supplementalGroups": [4000]}), "app", NODE, image_user=image)
    strict = expect_process(pod(None, {"supplementalGroups": [4000], "supplementalGroupsPolicy": "Strict"}),
                            "app", NODE, image_user=image)
    assert merge.groups == [1000, 4000, 50000]
    assert strict.groups == [1000, 4000]


# --- capabilities -------------------------------------------------------------

def test_no_capabilities_field_gives_runtime_default():
    exp = expect_process(pod({"runAsUser": 0}), "app", NODE)
    assert exp.cap_bnd == exp.cap_eff == exp.cap_prm == caps.RUNTIME_DEFAULT


def test_add_is_applied_after_drop_all():
    exp = expect_process(pod({"runAsUser": 0, "capabilities": {"drop": ["ALL"], "add": ["SYS_TIME"]}}),
                         "app", NODE)
    assert exp.cap_bnd == exp.cap_eff == caps.encode(["SYS_TIME"])


def test_drop_and_add_on_the_default_set():
    exp = expect_process(pod({"runAsUser": 0, "capabilities": {"drop": ["NET_RAW", "MKNOD"],
                                                              "add": ["SYS_PTRACE"]}}), "app", NODE)
    assert exp.cap_bnd == (caps.RUNTIME_DEFAULT & ~caps.encode(["NET_RAW", "MKNOD"])) | caps.encode(["SYS_PTRACE"])


def test_a_name_in_both_add_and_drop_is_dropped():
    # containerd applies named adds first, then named drops.
    exp = expect_process(pod({"capabilities": {"drop": ["NET_ADMIN"], "add": ["NET_ADMIN"]}}), "app", NODE)
    assert exp.cap_bnd == caps.RUNTIME_DEFAULT


def test_add_all_then_drop_one():
    exp = expect_process(pod({"capabilities": {"add": ["ALL"], "drop": ["CHOWN"]}}), "app", NODE)
    assert exp.cap_bnd == caps.ALL_CAPS & ~1


def test_drop_all_lowercase():
    exp = expect_process(pod({"capabilities": {"drop": ["all"]}}), "app", NODE)
    assert exp.cap_bnd == 0


def test_cap_prefixed_names_are_ignored_like_containerd_does():
    exp = expect_process(pod({"capabilities": {"drop": ["ALL"], "add": ["CAP_NET_ADMIN", "NET_RAW"]}}),
                         "app", NODE)
    assert exp.cap_bnd == NET_RAW
    assert "CAP_NET_ADMIN" in exp.reasons["cap_bnd"]


def test_bounding_is_limited_to_what_the_node_can_grant():
    node = NodeFacts(grantable_caps=SHORT_HOST)
    exp = expect_process(pod({"runAsUser": 0, "capabilities": {"add": ["SYS_RESOURCE", "SYS_TIME"]}}),
                         "app", node)
    assert exp.cap_bnd & SYS_RESOURCE == 0
    assert exp.cap_bnd == caps.RUNTIME_DEFAULT | caps.encode(["SYS_TIME"])
    assert "cannot grant SYS_RESOURCE" in exp.reasons["cap_bnd"]


def test_custom_runtime_default():
    node = NodeFacts(runtime_default_caps=caps.RUNTIME_DEFAULT & ~NET_RAW)
    assert expect_process(pod(), "app", node).cap_bnd == caps.RUNTIME_DEFAULT & ~NET_RAW


# --- privileged -----------------------------------------------------------------

def test_privileged_root():
    node = NodeFacts(grantable_caps=SHORT_HOST, seccomp_default=True)
    spec = pod({"privileged": True, "capabilities": {"drop": ["ALL"]},
                "seccompProfile": {"type": "RuntimeDefault"}}, {"runAsUser": 0})
    exp = expect_process(spec, "app", node)
    assert exp.privileged
    assert exp.cap_bnd == exp.cap_eff == exp.cap_prm == SHORT_HOST  # drop is ignored
    assert exp.seccomp == 0
    assert exp.no_new_privs == 0


def test_privileged_non_root_has_no_usable_capabilities():
    exp = expect_process(pod({"privileged": True, "runAsUser": 1000}), "app", NODE)
    assert exp.cap_bnd == caps.ALL_CAPS
    assert exp.cap_eff == exp.cap_prm == 0


# --- no_new_privs and seccomp ---------------------------------------------------

@pytest.mark.parametrize("container_sc, expected", [
    ({}, 0),
    ({"allowPrivilegeEscalation": True}, 0),
    ({"allowPrivilegeEscalation": False}, 1),
])
def test_no_new_privs(container_sc, expected):
    assert expect_process(pod(container_sc), "app", NODE).no_new_privs == expected


def test_allow_privilege_escalation_is_not_read_from_the_pod():
    # There is no pod-level field; a stray one must not count.
    assert expect_process(pod({}, {"allowPrivilegeEscalation": False}), "app", NODE).no_new_privs == 0


@pytest.mark.parametrize("seccomp_default, expected", [(False, 0), (True, 2)])
def test_seccomp_unset_follows_kubelet_default(seccomp_default, expected):
    exp = expect_process(pod(), "app", NodeFacts(seccomp_default=seccomp_default))
    assert exp.seccomp == expected


@pytest.mark.parametrize("container_profile, pod_profile, seccomp_default, expected", [
    ({"type": "Unconfined"}, {"type": "RuntimeDefault"}, True, 0),
    ({"type": "RuntimeDefault"}, {"type": "Unconfined"}, False, 2),
    (None, {"type": "Localhost", "localhostProfile": "profiles/custom-profile.json"}, False, 2),
    (None, {"type": "Unconfined"}, True, 0),
])
def test_seccomp_container_overrides_pod(container_profile, pod_profile, seccomp_default, expected):
    container_sc = {"seccompProfile": container_profile} if container_profile else {}
    exp = expect_process(pod(container_sc, {"seccompProfile": pod_profile}), "app",
                         NodeFacts(seccomp_default=seccomp_default))
    assert exp.seccomp == expected


def test_seccomp_annotations_are_ignored():
    manifest = {"metadata": {"annotations": {
        "seccomp.security.alpha.kubernetes.io/pod": "runtime/default"}}, "spec": pod()}
    assert expect_process(manifest, "app", NODE).seccomp == 0


def test_unknown_seccomp_type():
    with pytest.raises(ValueError, match="Bogus"):
        expect_process(pod({"seccompProfile": {"type": "Bogus"}}), "app", NODE)


# --- volumes --------------------------------------------------------------------

def test_empty_dir_gets_fs_group():
    vol = expect_volume(SECURE_POD, "data", ownership_managed=False)
    assert vol.gid == 2000 and vol.setgid
    assert "emptyDir" in vol.reason


@pytest.mark.parametrize("name", ["config", "token"])
def test_kubelet_owned_volumes_get_fs_group(name):
    vol = expect_volume(FSGROUP_DEMO, name, ownership_managed=False)
    assert vol.gid == 2000 and vol.setgid


def test_pvc_follows_ownership_management():
    managed = expect_volume(FSGROUP_DEMO, "data", ownership_managed=True)
    host_backed = expect_volume(FSGROUP_DEMO, "data", ownership_managed=False)
    assert managed.gid == 2000 and managed.setgid
    assert host_backed.gid is None and not host_backed.setgid
    assert "not applied" in host_backed.reason


def test_host_path_is_never_chowned():
    vol = expect_volume(FSGROUP_DEMO, "host", ownership_managed=True)
    assert vol.gid is None and not vol.setgid
    assert "hostPath" in vol.reason


def test_no_fs_group_changes_nothing():
    vol = expect_volume(NETWORK_DEBUG_POD | {"spec": {**NETWORK_DEBUG_POD["spec"],
                                                      "volumes": [{"name": "v", "emptyDir": {}}]}},
                        "v", ownership_managed=True)
    assert vol.gid is None and not vol.setgid
    assert "no fsGroup" in vol.reason


def test_unknown_volume():
    with pytest.raises(ValueError, match="'nope'"):
        expect_volume(SECURE_POD, "nope", ownership_managed=True)
