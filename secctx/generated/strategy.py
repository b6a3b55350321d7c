"""Hypothesis strategies over pod specs the oracle can judge.

One example is one Pod: a pod securityContext, volumes, and 1-3 containers, each with
its own securityContext, image and mounts. Each container is judged as its own case
(the pod-level context is shared, which is what batching relies on). The values stay
inside what the API's types accept; combinations the API server refuses (privileged
with allowPrivilegeEscalation false, procMount Unmasked in the host's user namespace,
CAP_SYS_ADMIN with allowPrivilegeEscalation false, recursiveReadOnly without readOnly) and
those the node refuses (an AppArmor profile without AppArmor) are generated on purpose: the
refusal is an outcome the oracle must predict too.
"""
from __future__ import annotations

import json

from hypothesis import strategies as st

# The suite's test images (images/README.md): each has sh, id, cat, stat and
# `sleep infinity` as its command, and users and groups of its own.
IMAGES = ("busybox:1.36", "secctx/identity:named-user", "secctx/identity:uid-with-passwd",
          "secctx/identity:uid-gid", "secctx/identity:root-in-wheel", "secctx/escalation:1")
# The Localhost profile the suite installs for seccomp-allowlist-probe (every syscall
# but mkdir and mkdirat): a filter that lets the probe run.
LOCALHOST_PROFILE = "profiles/allowlist-probe-profile.json"
# Namespaced sysctls Kubernetes calls safe (allowed without kubelet flags), with valid values.
SAFE_SYSCTLS = {"kernel.shm_rmid_forced": ("0", "1"),
                "net.ipv4.ip_unprivileged_port_start": ("0", "80", "1024"),
                "net.ipv4.tcp_syncookies": ("0", "1"),
                "net.ipv4.ping_group_range": ("0 2147483647", "1 0")}
# Capabilities as the API takes them: names without CAP_ (containerd adds it), a few
# with CAP_ (which containerd then does not know), and ALL.
CAPABILITIES = ("ALL", "NET_RAW", "NET_ADMIN", "NET_BIND_SERVICE", "CHOWN", "DAC_OVERRIDE",
                "SETUID", "SETGID", "SYS_ADMIN", "SYS_PTRACE", "KILL", "FOWNER", "MKNOD",
                "CAP_NET_RAW", "CAP_SYS_ADMIN")
HOST_PATH = "/tmp/secctx-generated"

ids = st.one_of(st.sampled_from([0, 1, 1000, 2000, 3000, 50000, 65534]),
                st.integers(min_value=0, max_value=65535))


def maybe(strategy):
    """An optional field: absent (None) or a value."""
    return st.one_of(st.none(), strategy)


seccomp_profiles = st.sampled_from([
    {"type": "RuntimeDefault"}, {"type": "Unconfined"},
    {"type": "Localhost", "localhostProfile": LOCALHOST_PROFILE}])


# AppArmor: on a node without it the kubelet refuses any profile but Unconfined, a
# pod-level one even where every container says Unconfined (refusals.apparmor_required);
# drawn one time in four so that most pods still run.
apparmor_profiles = st.sampled_from([{"type": "RuntimeDefault"}, {"type": "Unconfined"}])
seldom_apparmor = st.one_of(st.none(), st.none(), st.none(), apparmor_profiles)
# recursiveReadOnly: IfPossible and Enabled need readOnly true (API validation), Enabled
# needs the handler's support (the kubelet's refusal); drawn whatever readOnly is.
recursive_read_only = st.one_of(st.none(), st.none(), st.sampled_from(["Disabled", "IfPossible",
                                                                        "Enabled"]))


def _compact(mapping: dict) -> dict:
    return {k: v for k, v in mapping.items() if v is not None and v != [] and v != {}}


@st.composite
def capabilities(draw):
    add = draw(st.lists(st.sampled_from(CAPABILITIES), max_size=3, unique=True))
    drop = draw(st.lists(st.sampled_from(CAPABILITIES), max_size=3, unique=True))
    return _compact({"add": add, "drop": drop}) or None


@st.composite
def container_security_context(draw, host_users: bool) -> dict:
    proc_mounts = st.sampled_from(["Default", "Unmasked"])
    return _compact({
        "runAsUser": draw(maybe(ids)),
        "runAsGroup": draw(maybe(ids)),
        "runAsNonRoot": draw(maybe(st.booleans())),
        "privileged": draw(maybe(st.booleans())),
        "allowPrivilegeEscalation": draw(maybe(st.booleans())),
        "readOnlyRootFilesystem": draw(maybe(st.booleans())),
        "capabilities": draw(maybe(capabilities())),
        "seccompProfile": draw(maybe(seccomp_profiles)),
        "appArmorProfile": draw(seldom_apparmor),
        # Unmasked needs hostUsers false; generated with it mostly, sometimes without.
        "procMount": draw(maybe(proc_mounts) if not host_users else
                          st.one_of(st.none(), st.none(), st.none(), proc_mounts)),
    })


@st.composite
def pod_security_context(draw) -> dict:
    return _compact({
        "runAsUser": draw(maybe(ids)),
        "runAsGroup": draw(maybe(ids)),
        "runAsNonRoot": draw(maybe(st.booleans())),
        "fsGroup": draw(maybe(ids)),
        "fsGroupChangePolicy": draw(maybe(st.sampled_from(["Always", "OnRootMismatch"]))),
        "supplementalGroups": draw(st.lists(ids, max_size=3, unique=True)),
        "supplementalGroupsPolicy": draw(maybe(st.sampled_from(["Merge", "Strict"]))),
        "seccompProfile": draw(maybe(seccomp_profiles)),
        "appArmorProfile": draw(seldom_apparmor),
        "sysctls": [{"name": name, "value": draw(st.sampled_from(SAFE_SYSCTLS[name]))}
                    for name in draw(st.lists(st.sampled_from(sorted(SAFE_SYSCTLS)), max_size=2,
                                              unique=True))],
    })


# Volume kinds the oracle knows: kubelet-owned (fsGroup applied, some always read-only),
# hostPath (fsGroup never applied) and image volumes (never set up by the kubelet: no
# fsGroup either; casefile makes their cases need v1.35).
VOLUME_SOURCES = {
    "emptydir": {"emptyDir": {}},
    "configmap": {"configMap": {"name": "generated-config"}},
    "secret": {"secret": {"secretName": "generated-secret"}},
    "downward": {"downwardAPI": {"items": [{"path": "labels",
                                           "fieldRef": {"fieldPath": "metadata.labels"}}]}},
    "hostpath": {"hostPath": {"path": HOST_PATH, "type": "DirectoryOrCreate"}},
    "image": {"image": {"reference": "secctx/identity:named-user", "pullPolicy": "IfNotPresent"}},
}
# File modes to draw for defaultMode and items[].mode: with and without group and other
# bits (fsGroup adds group read to each).
FILE_MODES = (0o400, 0o440, 0o600, 0o644, 0o755, 0o500)


@st.composite
def volume_source(draw, name: str) -> dict:
    """The named volume, with a drawn defaultMode and items[].mode where it has files."""
    volume = json.loads(json.dumps(VOLUME_SOURCES[name]))
    kind = next(iter(volume))
    if kind in ("configMap", "secret", "downwardAPI"):
        volume[kind] = _compact({**volume[kind], "defaultMode": draw(maybe(st.sampled_from(FILE_MODES)))})
    if kind == "secret" and draw(st.booleans()):
        volume[kind]["items"] = [_compact({"key": "token", "path": "token",
                                           "mode": draw(maybe(st.sampled_from(FILE_MODES)))})]
    if kind == "downwardAPI":
        volume[kind]["items"] = [_compact({**item, "mode": draw(maybe(st.sampled_from(FILE_MODES)))})
                                 for item in volume[kind]["items"]]
    return volume


@st.composite
def containers(draw, volumes: list[str], host_users: bool) -> list[dict]:
    count = draw(st.integers(min_value=1, max_value=3))
    result = []
    for index in range(count):
        mounts = [_compact({"name": name, "mountPath": f"/mnt/{name}",
                            "readOnly": draw(maybe(st.booleans())),
                            "recursiveReadOnly": draw(recursive_read_only)})
                  for name in draw(st.lists(st.sampled_from(volumes), unique=True))] \
            if volumes else []
        result.append(_compact({
            "name": f"c{index}",
            "image": draw(st.sampled_from(IMAGES)),
            "command": ["sleep", "infinity"],  # busybox's own command is a shell that exits
            "securityContext": draw(maybe(container_security_context(host_users))) or {},
            "volumeMounts": mounts,
        }))
    return result


@st.composite
def pod_specs(draw) -> dict:
    """The spec of one Pod (no metadata: casefile names it)."""
    host_users = draw(st.sampled_from([True, True, True, False]))
    volumes = draw(st.lists(st.sampled_from(sorted(VOLUME_SOURCES)), max_size=2, unique=True))
    spec = {"terminationGracePeriodSeconds": 0,
            "securityContext": draw(pod_security_context()),
            "containers": draw(containers(volumes, host_users)),
            "volumes": [{"name": name, **draw(volume_source(name))} for name in volumes]}
    if not host_users:
        spec["hostUsers"] = False
    # A copy of its own: sampled_from hands out shared dicts (YAML would write them
    # as anchors and aliases).
    return json.loads(json.dumps(_compact(spec) | {"containers": spec["containers"]}))
