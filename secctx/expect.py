"""The oracle: what the kernel must show for one container of a pod spec.

The rules are those of Kubernetes with containerd's CRI plugin and runc, not
what tutorials say. Each expected value comes with a one-sentence reason, so a
failing test's report says why the value was expected. A value of None means
"cannot be known from the spec and node facts given": tests skip asserting it.

Pod specs are plain dicts as loaded from YAML (camelCase keys); a whole Pod
manifest is accepted too.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from . import caps


@dataclass
class NodeFacts:
    seccomp_default: bool = False  # kubelet --seccomp-default / seccompDefault
    runtime_default_caps: int = caps.RUNTIME_DEFAULT
    # The node's bounding set: a container can never hold more than this.
    grantable_caps: int = caps.ALL_CAPS
    apparmor_enabled: bool = False
    selinux_enabled: bool = False


@dataclass
class ImageUser:
    """The image's default user (its USER, resolved through its /etc/passwd and /etc/group)."""
    uid: int
    gid: int
    groups: list[int] = field(default_factory=list)


@dataclass
class ExpectedProcess:
    uid: int | None
    gid: int | None
    groups: list[int] | None  # sorted; the kernel's Groups: line, also sorted
    cap_bnd: int
    cap_eff: int | None
    cap_prm: int | None
    cap_inh: int
    cap_amb: int
    no_new_privs: int
    seccomp: int  # 0 disabled, 2 filter
    root_read_only: bool
    privileged: bool
    reasons: dict[str, str]  # field name -> why that value is expected


@dataclass
class ExpectedVolume:
    gid: int | None  # group owning the volume's directory; None: not changed by kubelet
    setgid: bool
    reason: str


def _spec(pod: dict) -> dict:
    # A whole Pod manifest has its containers under "spec".
    if "containers" not in pod and isinstance(pod.get("spec"), dict):
        return pod["spec"]
    return pod


def _container(spec: dict, name: str) -> dict:
    candidates = [*(spec.get("containers") or []), *(spec.get("initContainers") or []),
                  *(spec.get("ephemeralContainers") or [])]
    for container in candidates:
        if container.get("name") == name:
            return container
    raise ValueError(f"no container {name!r} in pod spec; it has {[c.get('name') for c in candidates]}")


def _pick(container_sc: dict, pod_sc: dict, key: str) -> tuple[object, str]:
    """A field the container securityContext may override, with where it came from."""
    if container_sc.get(key) is not None:
        return container_sc[key], "container securityContext"
    if pod_sc.get(key) is not None:
        return pod_sc[key], "pod securityContext"
    return None, ""


def _cri_capability_bit(name: str) -> int | None:
    # containerd turns a pod-spec name into "CAP_" + name.upper(), and runc ignores
    # names it does not know. So "CAP_NET_RAW" in a pod spec becomes
    # CAP_CAP_NET_RAW and has no effect.
    upper = str(name).upper()
    if upper in caps.CAPABILITIES:
        return 1 << caps.CAPABILITIES.index(upper)
    return None


def _bounding(capabilities: dict, node: NodeFacts) -> tuple[int, str]:
    """The bounding set of an unprivileged container, in containerd's order.

    containerd applies "add ALL", then "drop ALL", then each named add, then
    each named drop: a name in both lists ends up dropped.
    """
    add = [str(c) for c in capabilities.get("add") or []]
    drop = [str(c) for c in capabilities.get("drop") or []]
    mask = node.runtime_default_caps
    steps = ["the runtime default set"]
    if any(c.upper() == "ALL" for c in add):
        mask, steps = node.grantable_caps, ["add ALL"]
    if any(c.upper() == "ALL" for c in drop):
        mask, steps = 0, ["drop ALL"]
    ignored = []
    for name in add:
        if name.upper() != "ALL":
            bit = _cri_capability_bit(name)
            if bit is None:
                ignored.append(name)
            else:
                mask |= bit
    for name in drop:
        if name.upper() != "ALL":
            bit = _cri_capability_bit(name)
            if bit is None:
                ignored.append(name)
            else:
                mask &= ~bit
    not_grantable = mask & ~node.grantable_caps
    mask &= node.grantable_caps

    named_adds = [c for c in add if c.upper() != "ALL"]
    named_drops = [c for c in drop if c.upper() != "ALL"]
    if named_adds:
        steps.append(f"add {','.join(named_adds)}")
    if named_drops:
        steps.append(f"drop {','.join(named_drops)}")
    reason = f"{', then '.join(steps)}: {','.join(caps.decode(mask)) or 'no capabilities'}"
    if ignored:
        reason += f"; ignored names runc does not know (pod specs omit CAP_): {','.join(ignored)}"
    if not_grantable:
        reason += f"; the node cannot grant {','.join(caps.decode(not_grantable))}"
    return mask, reason


def _seccomp(container_sc: dict, pod_sc: dict, privileged: bool, node: NodeFacts) -> tuple[int, str]:
    if privileged:
        return 0, "privileged: containerd applies no seccomp profile, whatever seccompProfile says"
    profile, where = _pick(container_sc, pod_sc, "seccompProfile")
    kind = profile.get("type") if isinstance(profile, dict) else None
    if kind in ("RuntimeDefault", "Localhost"):
        return 2, f"seccompProfile {kind} from {where}: a filter is installed"
    if kind == "Unconfined":
        return 0, f"seccompProfile Unconfined from {where}"
    if kind is not None:
        raise ValueError(f"unknown seccompProfile type {kind!r}")
    if node.seccomp_default:
        return 2, "seccompProfile unset and kubelet seccompDefault is on: RuntimeDefault"
    return 0, "seccompProfile unset and kubelet seccompDefault is off: Unconfined"


def expect_process(pod_spec: dict, container_name: str, node: NodeFacts,
                   image_user: ImageUser | None = None) -> ExpectedProcess:
    """What /proc/<pid>/status must show for a process of container_name.

    Holds for the container's main process and for exec'd processes, as long
    as their binaries carry no file capabilities and no setuid bit.
    """
    spec = _spec(pod_spec)
    container = _container(spec, container_name)
    pod_sc = spec.get("securityContext") or {}
    container_sc = container.get("securityContext") or {}
    reasons: dict[str, str] = {}

    run_as_user, where = _pick(container_sc, pod_sc, "runAsUser")
    if run_as_user is not None:
        uid = int(run_as_user)
        reasons["uid"] = f"runAsUser {uid} from {where}"
    elif image_user is not None:
        uid = image_user.uid
        reasons["uid"] = f"runAsUser unset: the image's default user {uid}"
    else:
        uid = None
        reasons["uid"] = "runAsUser unset and the image's user is not known: not asserted"

    # When uid is the image's user, the image's passwd and group entries apply.
    image_user_applies = image_user is not None and uid == image_user.uid

    run_as_group, where = _pick(container_sc, pod_sc, "runAsGroup")
    if run_as_group is not None:
        gid = int(run_as_group)
        reasons["gid"] = f"runAsGroup {gid} from {where}"
    elif image_user_applies:
        gid = image_user.gid
        reasons["gid"] = f"runAsGroup unset: primary group {gid} of the image's user {uid}"
    else:
        gid = None
        reasons["gid"] = ("runAsGroup unset: the primary group comes from the image's "
                          "/etc/passwd entry for the uid, which is not known: not asserted")

    if gid is None:
        groups = None
        reasons["groups"] = "primary gid unknown: not asserted"
    else:
        members = {gid}
        parts = [f"primary gid {gid}"]
        fs_group = pod_sc.get("fsGroup")
        if fs_group is not None:
            members.add(int(fs_group))
            parts.append(f"fsGroup {fs_group}")
        supplemental = [int(g) for g in pod_sc.get("supplementalGroups") or []]
        if supplemental:
            members.update(supplemental)
            parts.append(f"supplementalGroups {supplemental}")
        if pod_sc.get("supplementalGroupsPolicy") == "Strict":
            parts.append("image /etc/group ignored (supplementalGroupsPolicy Strict)")
        elif image_user_applies:
            if image_user.groups:
                members.update(image_user.groups)
                parts.append(f"image /etc/group memberships {sorted(image_user.groups)}")
        else:
            who = "the user" if uid is None else f"uid {uid}"
            parts.append(f"assumes {who} belongs to no group in the image's /etc/group")
        groups = sorted(members)
        reasons["groups"] = "; ".join(parts)

    privileged = bool(container_sc.get("privileged"))
    reasons["privileged"] = ("privileged: true in container securityContext" if privileged
                             else "privileged unset or false")

    if privileged:
        cap_bnd = node.grantable_caps
        reasons["cap_bnd"] = ("privileged: every capability the node can grant; "
                              "capabilities add/drop are ignored")
    else:
        cap_bnd, reasons["cap_bnd"] = _bounding(container_sc.get("capabilities") or {}, node)

    if uid is None:
        cap_eff = cap_prm = None
        reasons["cap_eff"] = reasons["cap_prm"] = "uid unknown: not asserted"
    elif uid == 0:
        cap_eff = cap_prm = cap_bnd
        reasons["cap_eff"] = reasons["cap_prm"] = "uid 0: equal to the bounding set"
    else:
        cap_eff = cap_prm = 0
        reasons["cap_eff"] = reasons["cap_prm"] = (
            f"uid {uid} is not root: execve clears permitted and effective (no file "
            "capabilities, no ambient set), whatever capabilities.add says")
    cap_inh, reasons["cap_inh"] = 0, "containerd sets no inheritable capabilities"
    cap_amb, reasons["cap_amb"] = 0, "Kubernetes has no field for ambient capabilities"

    allow_escalation = container_sc.get("allowPrivilegeEscalation")
    if privileged:
        no_new_privs, reasons["no_new_privs"] = 0, "privileged: no_new_privs is never set"
    elif allow_escalation is False:
        no_new_privs = 1
        reasons["no_new_privs"] = "allowPrivilegeEscalation false in container securityContext"
    else:
        no_new_privs = 0
        reasons["no_new_privs"] = ("allowPrivilegeEscalation true" if allow_escalation
                                   else "allowPrivilegeEscalation unset, which means true")

    seccomp, reasons["seccomp"] = _seccomp(container_sc, pod_sc, privileged, node)

    root_read_only = container_sc.get("readOnlyRootFilesystem") is True
    reasons["root_read_only"] = ("readOnlyRootFilesystem true in container securityContext"
                                 if root_read_only else "readOnlyRootFilesystem unset or false")

    return ExpectedProcess(uid=uid, gid=gid, groups=groups, cap_bnd=cap_bnd, cap_eff=cap_eff,
                           cap_prm=cap_prm, cap_inh=cap_inh, cap_amb=cap_amb,
                           no_new_privs=no_new_privs, seccomp=seccomp,
                           root_read_only=root_read_only, privileged=privileged, reasons=reasons)


# Volume types whose contents kubelet itself creates, so it always applies fsGroup.
KUBELET_OWNED_VOLUMES = ("emptyDir", "configMap", "secret", "projected", "downwardAPI")


def expect_volume(pod_spec: dict, volume_name: str, ownership_managed: bool) -> ExpectedVolume:
    """Ownership of a volume's directory as seen from the container.

    ownership_managed: the volume's plugin lets kubelet apply fsGroup (a `local`
    PV, or a CSI driver whose fsGroupPolicy allows it). False for hostPath-backed
    PVs. Ignored for hostPath and for the kubelet-owned types above.
    """
    spec = _spec(pod_spec)
    volumes = spec.get("volumes") or []
    volume = next((v for v in volumes if v.get("name") == volume_name), None)
    if volume is None:
        raise ValueError(f"no volume {volume_name!r} in pod spec; it has {[v.get('name') for v in volumes]}")
    kinds = [k for k in volume if k != "name"]
    if len(kinds) != 1:
        raise ValueError(f"volume {volume_name!r} must have exactly one source, has {kinds}")
    kind = kinds[0]

    fs_group = (spec.get("securityContext") or {}).get("fsGroup")
    if fs_group is None:
        return ExpectedVolume(None, False, "no fsGroup in pod securityContext: ownership is not changed")
    fs_group = int(fs_group)
    if kind == "hostPath":
        return ExpectedVolume(None, False, f"{kind} volume: kubelet never applies fsGroup to host paths")
    if kind in KUBELET_OWNED_VOLUMES:
        return ExpectedVolume(fs_group, True,
                              f"{kind} volume: kubelet sets group {fs_group} and the setgid bit")
    if ownership_managed:
        return ExpectedVolume(fs_group, True, f"{kind} volume whose plugin supports fsGroup: "
                                              f"kubelet sets group {fs_group} and the setgid bit")
    return ExpectedVolume(None, False, f"{kind} volume whose plugin does not manage ownership "
                                       "(e.g. a hostPath-backed PV): fsGroup is not applied")
