"""The oracle: what the kernel must show for one container of a pod spec.

The rules are those of Kubernetes with the node's CRI implementation (containerd's
CRI plugin or CRI-O, each rule citing its source) and runc or crun, not what
tutorials say. Each expected value comes with a one-sentence reason, so a
failing test's report says why the value was expected. A value of None means
"cannot be known from the spec and node facts given": tests skip asserting it.

Pod specs are plain dicts as loaded from YAML (camelCase keys); a whole Pod
manifest is accepted too.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

# The node's view is a leaf of its own: refusals reads it too, and expect imports refusals.
from ..cases import EXPECT_FIELDS, SKIP_FEATURES, Case, Outcome, Status, minor_version
from ..core import caps, categories, podspec
from .nodeview import CONTAINERD, CRIO, NodeEnvironment, NodeFacts
from .refusals import node_refusal


@dataclass
class ImageUser:
    """The image's default user (its USER, resolved through its /etc/passwd and /etc/group)."""
    uid: int
    gid: int
    groups: list[int] = field(default_factory=list)
    source: str = "the image's default user"

    @classmethod
    def from_config(cls, user: str | None, files: ImageFiles | None = None) -> ImageUser | None:
        """From the image config's USER ("" for root, "uid", "name", "uid:gid"), a name
        resolved through the image's /etc/passwd; None when it cannot be known.

        The kubelet passes the runtime only the uid (or the name) of USER; the runtime
        then takes the primary group from /etc/passwd (gid 0 without an entry), so a
        ":gid" in USER is ignored."""
        if user is None:
            return None
        name = user.partition(":")[0] or "0"
        if name.isdigit():
            uid = int(name)
        elif files and files.passwd is not None:
            uid = next((e.uid for e in files.passwd.values() if e.name == name), None)
            if uid is None:
                return None
        else:
            return None
        gid = files.primary_gid(uid) if files else None
        return cls(uid, 0 if gid is None else gid, (files.memberships(uid) or []) if files else [])


@dataclass(frozen=True)
class ImageFiles:
    """The container's own /etc/passwd and /etc/group (observe.PasswdEntry, GroupEntry);
    None where the file is absent."""
    passwd: dict | None
    groups: list | None

    def primary_gid(self, uid: int) -> int | None:
        """The runtime's primary group for uid: its /etc/passwd entry's, else 0."""
        if self.passwd is None:
            return None
        entry = self.passwd.get(uid)
        return entry.gid if entry else 0

    def memberships(self, uid: int, cri: str = CONTAINERD) -> list[int] | None:
        """The groups /etc/group lists the uid's user name in (the runtime adds these).
        containerd leaves out a group named like the user: pkg/oci/spec_opts.go
        WithAdditionalGIDs takes "only supplemental groups" (g.Name == username is
        skipped), so Alpine's root:x:0:root does not give root gid 0 under a runAsGroup.
        CRI-O keeps it: server/container_create.go setupContainerUser -> utils.GetUserInfo
        -> moby/sys/user GetExecUser, whose group filter matches every group listing the
        user's name."""
        if self.passwd is None:
            return None
        entry = self.passwd.get(uid)
        if entry is None or self.groups is None:
            return []
        return sorted({g.gid for g in self.groups
                       if entry.name in g.members and (cri == CRIO or g.name != entry.name)})


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


def _pick(container_sc: dict, pod_sc: dict, key: str) -> tuple[object, str]:
    """A field the container securityContext may override, with where it came from."""
    if container_sc.get(key) is not None:
        return container_sc[key], "container securityContext"
    if pod_sc.get(key) is not None:
        return pod_sc[key], "pod securityContext"
    return None, ""


def _cri_capability_bit(name: str, cri: str = CONTAINERD) -> int | None:
    # containerd turns a pod-spec name into "CAP_" + name.upper(), and runc ignores
    # names it does not know. So "CAP_NET_RAW" in a pod spec becomes
    # CAP_CAP_NET_RAW and has no effect. CRI-O prefixes only a name without "cap_"
    # (internal/factory/container/container.go SpecSetupCapabilities toCAPPrefixed):
    # there "CAP_NET_RAW" is NET_RAW.
    upper = str(name).upper()
    if cri == CRIO and upper.startswith("CAP_"):
        upper = upper[len("CAP_"):]
    if upper in caps.CAPABILITIES:
        return 1 << caps.CAPABILITIES.index(upper)
    return None


def _bounding(capabilities: dict, node: NodeFacts) -> tuple[int, str]:
    """The bounding set of an unprivileged container, in the CRI's order.

    containerd applies "add ALL", then "drop ALL", then each named add, then
    each named drop: a name in both lists ends up dropped. CRI-O the same
    (internal/factory/container/container.go SpecSetupCapabilities: its default set
    joins the adds unless add or drop is ALL; add ALL, drop ALL, named adds, named
    drops), but it refuses a named add it does not know ("unknown capability").
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
    for names, keep in ((add, True), (drop, False)):
        for name in names:
            if name.upper() == "ALL":
                continue
            bit = _cri_capability_bit(name, node.cri)
            if bit is None:
                ignored.append(name)
            else:
                mask = mask | bit if keep else mask & ~bit
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


def seccomp_profile(container_sc: dict, pod_sc: dict, privileged: bool,
                    node: NodeFacts) -> tuple[str, str]:
    """The profile the runtime applies (privileged, RuntimeDefault, Localhost or
    Unconfined), and why."""
    if privileged:
        return "privileged", ("privileged: containerd applies no seccomp profile, whatever "
                              "seccompProfile says")
    profile, where = _pick(container_sc, pod_sc, "seccompProfile")
    kind = profile.get("type") if isinstance(profile, dict) else None
    if kind in ("RuntimeDefault", "Localhost", "Unconfined"):
        return kind, f"seccompProfile {kind} from {where}"
    if kind is not None:
        raise ValueError(f"unknown seccompProfile type {kind!r}")
    if node.seccomp_default:
        return "RuntimeDefault", "seccompProfile unset and kubelet seccompDefault is on: RuntimeDefault"
    return "Unconfined", "seccompProfile unset and kubelet seccompDefault is off: Unconfined"


# containerd's CRI plugin loads its own profile under this name (internal/cri/server
# service_linux.go appArmorDefaultProfileName) from contrib/apparmor/template.go.
CONTAINERD_APPARMOR_PROFILE = "cri-containerd.apparmor.d"


def apparmor_label(spec: dict, container: str, node: NodeFacts) -> tuple[str | None, str]:
    """The AppArmor label the container's process must carry (/proc/<pid>/attr/current,
    a regular expression) and why; None where it cannot be asserted.

    The kubelet passes the container's appArmorProfile (the API server copied the
    deprecated annotation into it) to the CRI, or none (pkg/kubelet/kuberuntime
    security_context.go -> apparmor.GetProfile). containerd (internal/cri/sputil
    GenerateApparmorSpecOpts): no profile is its default profile; RuntimeDefault is its
    default profile except for a privileged container (none); Unconfined sets none;
    Localhost sets the named profile, which the kernel runs in the mode it was loaded in."""
    if not node.apparmor:
        return None, "the node has no AppArmor: no label to assert"
    if node.handler == "runsc":
        return None, ("gVisor's sentry serves the container's /proc itself (no host LSM "
                      "label inside): not asserted")
    container_sc = podspec.container(spec, container).get("securityContext") or {}
    profile, where = _pick(container_sc, spec.get("securityContext") or {}, "appArmorProfile")
    kind = profile.get("type") if isinstance(profile, dict) else None
    if kind == "Unconfined":
        return "unconfined", f"appArmorProfile Unconfined from {where}: no profile"
    if kind == "Localhost":
        name = profile.get("localhostProfile") or ""
        loaded = next((p for p in node.apparmor_profiles if p.rpartition(" (")[0] == name), None)
        if loaded is None:
            return None, f"Localhost profile {name} is not loaded on the node"
        return re.escape(loaded), f"appArmorProfile Localhost {name} from {where}, loaded as {loaded}"
    if container_sc.get("privileged") and node.cri == CONTAINERD:
        return "unconfined", ("privileged: containerd sets no AppArmor profile "
                              f"({'RuntimeDefault' if kind else 'no appArmorProfile'})")
    what = f"appArmorProfile RuntimeDefault from {where}" if kind else "no appArmorProfile"
    if node.cri != CONTAINERD:
        return r"\S+ \(enforce\)", f"{what}: the runtime's default profile, enforced ({node.cri})"
    return (re.escape(f"{CONTAINERD_APPARMOR_PROFILE} (enforce)"),
            f"{what}: containerd's default profile {CONTAINERD_APPARMOR_PROFILE}, enforced")


def _seccomp(container_sc: dict, pod_sc: dict, privileged: bool,
             node: NodeFacts) -> tuple[int | None, str]:
    kind, why = seccomp_profile(container_sc, pod_sc, privileged, node)
    # containerd internal/cri/sputil/seccomp_linux.go GenerateSeccompSpecOpts: "Do not set
    # seccomp profile when container is privileged"; CRI-O server/container_create.go
    # createSandboxContainer calls Seccomp().Setup only `if !ctr.Privileged()` (and
    # runtime-tools SetupPrivileged clears Linux.Seccomp).
    if kind == "privileged" and node.unknown_cri("no seccomp filter when privileged"):
        return None, node.unknown_cri("no seccomp filter when privileged")
    if kind in ("RuntimeDefault", "Localhost"):
        return 2, why if "seccompDefault" in why else f"{why}: a filter is installed"
    return 0, why


def expect_process(pod_spec: dict, container_name: str, node: NodeFacts,
                   image_user: ImageUser | None = None,
                   files: ImageFiles | None = None) -> ExpectedProcess:
    """What /proc/<pid>/status must show for a process of container_name.

    Holds for the container's main process and for exec'd processes, as long
    as their binaries carry no file capabilities and no setuid bit.
    """
    spec = podspec.pod_spec(pod_spec)
    container = podspec.container(spec, container_name)
    pod_sc = spec.get("securityContext") or {}
    container_sc = container.get("securityContext") or {}
    reasons: dict[str, str] = {}

    uid, reasons["uid"] = _uid(container_sc, pod_sc, image_user)
    # When uid is the image's user, the image's passwd and group entries apply.
    image_user = image_user if image_user is not None and uid == image_user.uid else None
    files = files if files is not None and files.passwd is not None and uid is not None else None
    gid, reasons["gid"] = _gid(container_sc, pod_sc, node, uid, image_user, files)
    groups, reasons["groups"] = _groups(pod_sc, node, uid, gid, image_user, files)

    privileged = bool(container_sc.get("privileged"))
    reasons["privileged"] = ("privileged: true in container securityContext" if privileged
                             else "privileged unset or false")
    cap_bnd, reasons["cap_bnd"] = _bounding_set(container_sc, privileged, node)
    # CRI-O gives a privileged container every capability in all five sets, ambient and
    # inheritable too (internal/factory/container/container.go SpecSetPrivileges ->
    # runtime-tools generate.go SetupPrivileged); ambient capabilities survive execve of a
    # file without file capabilities or set-id bits and fill permitted and effective
    # whatever the uid (capabilities(7)).
    crio_privileged = privileged and node.cri == CRIO
    cap_eff, reasons["cap_eff"] = _effective(uid, cap_bnd, reasons["cap_bnd"], crio_privileged)
    cap_prm, reasons["cap_prm"] = cap_eff, reasons["cap_eff"]
    cap_inh, reasons["cap_inh"] = _inheritable(node, cap_bnd, crio_privileged)
    cap_amb, reasons["cap_amb"] = 0, "Kubernetes has no field for ambient capabilities"
    if crio_privileged:
        cap_amb, reasons["cap_amb"] = cap_bnd, reasons["cap_inh"]
    no_new_privs, reasons["no_new_privs"] = _no_new_privs(container_sc, privileged)
    seccomp, reasons["seccomp"] = _seccomp(container_sc, pod_sc, privileged, node)
    root_read_only = container_sc.get("readOnlyRootFilesystem") is True
    reasons["root_read_only"] = ("readOnlyRootFilesystem true in container securityContext"
                                 if root_read_only else "readOnlyRootFilesystem unset or false")

    return ExpectedProcess(uid=uid, gid=gid, groups=groups, cap_bnd=cap_bnd, cap_eff=cap_eff,
                           cap_prm=cap_prm, cap_inh=cap_inh, cap_amb=cap_amb,
                           no_new_privs=no_new_privs, seccomp=seccomp,
                           root_read_only=root_read_only, privileged=privileged, reasons=reasons)


def _uid(container_sc: dict, pod_sc: dict, image_user: ImageUser | None) -> tuple[int | None, str]:
    run_as_user, where = _pick(container_sc, pod_sc, "runAsUser")
    if run_as_user is not None:
        return int(run_as_user), f"runAsUser {int(run_as_user)} from {where}"
    if image_user is not None:
        return image_user.uid, f"runAsUser unset: {image_user.source} {image_user.uid}"
    return None, "runAsUser unset and the image's user is not known: not asserted"


def _gid(container_sc: dict, pod_sc: dict, node: NodeFacts, uid: int | None,
         image_user: ImageUser | None, files: ImageFiles | None) -> tuple[int | None, str]:
    """`image_user` and `files` only where they apply to `uid` (else None)."""
    run_as_group, where = _pick(container_sc, pod_sc, "runAsGroup")
    # runAsGroup unset is the "runtime default" (the API); containerd's is the uid's
    # /etc/passwd group, 0 without an entry (pkg/oci/spec_opts.go WithUser -> WithUserID);
    # CRI-O's the same (server/container_create.go setupContainerUser -> utils.GetUserInfo
    # -> moby/sys/user GetExecUser: the entry's gid, the default 0 without one).
    other_cri = node.unknown_cri("the primary group from the image's /etc/passwd")
    if run_as_group is not None:
        return int(run_as_group), f"runAsGroup {int(run_as_group)} from {where}"
    if other_cri:
        return None, f"runAsGroup unset: {other_cri}"
    if files is not None:
        gid = files.primary_gid(uid)
        return gid, (f"runAsGroup unset: primary group {gid} of uid {uid} in the image's "
                     "/etc/passwd" if uid in files.passwd else
                     f"runAsGroup unset and uid {uid} has no entry in the image's "
                     "/etc/passwd: gid 0")
    if image_user is not None:
        return image_user.gid, (f"runAsGroup unset: primary group {image_user.gid} of the "
                                f"image's user {uid}")
    return None, ("runAsGroup unset: the primary group comes from the image's "
                  "/etc/passwd entry for the uid, which is not known: not asserted")


def _groups(pod_sc: dict, node: NodeFacts, uid: int | None, gid: int | None,
            image_user: ImageUser | None, files: ImageFiles | None) -> tuple[list[int] | None, str]:
    if gid is None:
        return None, "primary gid unknown: not asserted"
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
    other_cri = node.unknown_cri("the memberships from the image's /etc/group")
    if pod_sc.get("supplementalGroupsPolicy") == "Strict":
        parts.append("image /etc/group ignored (supplementalGroupsPolicy Strict)")
    elif other_cri:
        return None, other_cri
    elif files is not None:
        extra = files.memberships(uid, node.cri)
        members.update(extra)
        parts.append(f"the image's /etc/group lists uid {uid}'s user in {extra}" if extra
                     else f"the image's /etc/group lists uid {uid} in no group")
    elif image_user is not None:
        if image_user.groups:
            members.update(image_user.groups)
            parts.append(f"image /etc/group memberships {sorted(image_user.groups)}")
    else:
        who = "the user" if uid is None else f"uid {uid}"
        parts.append(f"assumes {who} belongs to no group in the image's /etc/group")
    return sorted(members), "; ".join(parts)


def _bounding_set(container_sc: dict, privileged: bool, node: NodeFacts) -> tuple[int | None, str]:
    capabilities = container_sc.get("capabilities") or {}
    other_cri = node.unknown_cri("the order of capabilities add and drop")
    if privileged:
        return node.grantable_caps, (
            ("privileged: containerd's own capabilities (WithPrivileged)" if node.cri == CONTAINERD
             else "privileged: every capability the kernel has, within CRI-O's bounding set "
                  "(SetupPrivileged)" if node.cri == CRIO
             else "privileged: what the node helper's privileged container holds")
            + ", as far as the handler's kernel has them; capabilities add/drop are ignored")
    if other_cri and (capabilities.get("add") or capabilities.get("drop")):
        return None, other_cri
    return _bounding(capabilities, node)


def _effective(uid: int | None, cap_bnd: int | None, bnd_reason: str,
               crio_privileged: bool) -> tuple[int | None, str]:
    """The effective set, which the permitted set equals."""
    if crio_privileged:
        return cap_bnd, ("privileged on CRI-O: the ambient set holds every capability of the "
                         "bounding set, so any uid keeps them across execve")
    if uid is None:
        return None, "uid unknown: not asserted"
    if uid == 0 and cap_bnd is None:
        return None, f"uid 0, bounding set: {bnd_reason}"
    if uid == 0:
        return cap_bnd, "uid 0: equal to the bounding set"
    return 0, (f"uid {uid} is not root: execve clears permitted and effective (no file "
               "capabilities, no ambient set), whatever capabilities.add says")


def _inheritable(node: NodeFacts, cap_bnd: int | None,
                 crio_privileged: bool) -> tuple[int | None, str]:
    # containerd pkg/oci/spec_opts.go WithCapabilities sets bounding, effective and
    # permitted only (the default spec's inheritable set is empty). CRI-O sets the
    # inheritable set of an unprivileged container only with add_inheritable_capabilities
    # (SpecSetupCapabilities), which a plain container on the node shows: learned.
    if crio_privileged:
        return cap_bnd, "privileged on CRI-O: SetupPrivileged fills the inheritable and ambient sets too"
    if node.cri == CRIO and node.runtime_default_inh:
        return None, ("a plain container on this CRI-O node has inheritable capabilities "
                      "(add_inheritable_capabilities): which ones a spec gets is not asserted")
    if node.cri == CRIO:
        return 0, ("CRI-O sets no inheritable capabilities (a plain container on the node has "
                   "none: add_inheritable_capabilities is off)")
    if node.unknown_cri("an empty inheritable set"):
        return None, node.unknown_cri("an empty inheritable set")
    return 0, "containerd sets no inheritable capabilities"


def _no_new_privs(container_sc: dict, privileged: bool) -> tuple[int, str]:
    allow_escalation = container_sc.get("allowPrivilegeEscalation")
    if privileged:
        return 0, "privileged: no_new_privs is never set"
    if allow_escalation is False:
        return 1, "allowPrivilegeEscalation false in container securityContext"
    return 0, ("allowPrivilegeEscalation true" if allow_escalation
               else "allowPrivilegeEscalation unset, which means true")


# Volume types whose contents kubelet itself creates, so it always applies fsGroup.
KUBELET_OWNED_VOLUMES = ("emptyDir", "configMap", "secret", "projected", "downwardAPI")


def expect_volume(pod_spec: dict, volume_name: str, ownership_managed: bool) -> ExpectedVolume:
    """Ownership of a volume's directory as seen from the container.

    ownership_managed: the volume's plugin lets kubelet apply fsGroup (a `local`
    PV, or a CSI driver whose fsGroupPolicy allows it). False for hostPath-backed
    PVs. Ignored for hostPath and for the kubelet-owned types above.
    """
    spec = podspec.pod_spec(pod_spec)
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


@dataclass(frozen=True)
class ClaimFacts:
    """The PersistentVolume a claim is bound to, as far as fsGroup is concerned."""
    kind: str                          # its volume source: local, csi, hostPath, nfs, ...
    fs_group_policy: str | None = None  # CSI: its CSIDriver's spec.fsGroupPolicy
    fs_type: str | None = None         # CSI: spec.csi.fsType
    access_modes: tuple[str, ...] = ()
    gid: int | None = None             # annotation pv.beta.kubernetes.io/gid


RWO_MODES = {"ReadWriteOnce", "ReadWriteOncePod"}


def fsgroup_managed(volume: dict, claim: ClaimFacts | None, read_only: bool) -> tuple[bool, str]:
    """Whether the kubelet applies fsGroup to this volume (beyond the kubelet-owned
    types), and why: the rules of the volume plugins.

    read_only: the volume's own (volume_read_only: a claim's readOnly), not a volumeMount's.
    kubelet pkg/volume/local/local.go localVolumeMounter.SetUpAt changes ownership only
    `if !m.readOnly` (volume.Spec.ReadOnly); pkg/volume/csi/csi_mounter.go supportsFSGroup
    returns false when c.readOnly. A read-only volumeMount changes neither."""
    kind = next(k for k in volume if k != "name")
    if kind == "nfs":
        return False, "inline nfs volume: the NFS plugin does not manage ownership"
    if kind == "csi" and read_only:
        return False, ("inline csi volume with readOnly: true: the csi plugin changes no "
                       "ownership (csi_mounter supportsFSGroup)")
    if kind == "image":
        # kubelet pkg/volume/image/image.go: imageMounter.SetUpAt does nothing (the
        # runtime mounts the image), so no SetVolumeOwnership: its files keep their owners.
        return False, "image volume: the kubelet does not set it up (pkg/volume/image)"
    if kind in ("persistentVolumeClaim", "ephemeral"):
        if claim is None:
            return False, f"{kind} volume whose PersistentVolume is not known"
        via = f"{kind} bound to a {claim.kind} PV"
        if read_only and claim.kind in ("local", "csi"):
            return False, (f"{via} with readOnly: true on the claim: the {claim.kind} plugin "
                           "changes no ownership")
        if claim.kind == "local":
            return True, f"{via}: the local plugin applies fsGroup"
        if claim.kind == "csi":
            policy = claim.fs_group_policy or "ReadWriteOnceWithFSType"
            if policy == "None":
                return False, f"{via} whose CSIDriver has fsGroupPolicy None"
            if policy == "File":
                return True, f"{via} whose CSIDriver has fsGroupPolicy File"
            if not claim.fs_type or not set(claim.access_modes) <= RWO_MODES:
                return False, (f"{via}, fsGroupPolicy {policy}: needs an fsType and only "
                               f"ReadWriteOnce access (fsType {claim.fs_type!r}, "
                               f"access {list(claim.access_modes)})")
            return True, f"{via}, fsGroupPolicy {policy}, fsType {claim.fs_type}, ReadWriteOnce"
        return False, f"{via}: its plugin does not manage ownership (e.g. hostPath, nfs)"
    return kind != "hostPath", f"{kind} volume"


# --- one case: everything expected from it ----------------------------------------------

def show(field: str, value: Any) -> str:
    """A value as the report shows it: capability sets also by name."""
    if field.rpartition(": ")[2].startswith("Cap") and isinstance(value, int) \
            and not isinstance(value, bool):
        return f"{caps.to_hex(value)} [{','.join(caps.decode(value)) or 'none'}]"
    return repr(value)


@dataclass(frozen=True)
class Want:
    """One expected value and why; value None means "not asserted" (the reason says why)."""
    value: Any
    reason: str

    @property
    def asserted(self) -> bool:
        return self.value is not None


@dataclass(frozen=True)
class ExpectedMount:
    path: str
    read_only: bool       # mounted read-only (readOnly, or a kubelet-written volume type)
    mounted_ro: Want      # the mount's own `ro` flag
    writable: Want
    group: Want           # group owning the mount's directory
    setgid: Want | None   # None: not checked
    submounts_ro: Want | None = None  # recursiveReadOnly: every mount below it read-only too
    owner: Want | None = None  # user owning the mount's directory; None: not checked
    mode: Want | None = None   # its permission bits with setuid/setgid/sticky (stat %a)
    # The modes of the files the kubelet writes in it, by name (EVERY_FILE: each file found
    # that no item names); None: not checked.
    files: dict[str, Want] | None = None


@dataclass(frozen=True)
class Learned:
    """What the expectations depend on that only the cluster knows (observe.collect reads it)."""
    pod_spec: dict                    # the pod spec as stored after admission
    image_user: ImageUser | None      # the image's default user, None if unknown
    files: ImageFiles | None = None   # the container's /etc/passwd and /etc/group
    # status.containerStatuses[].user.linux (by default from Kubernetes 1.33): (uid, gid, groups)
    kubelet_user: tuple[int, int, list[int]] | None = None
    config_user: str | None = None    # the image config's USER as written, None if unknown
    stats: dict = field(default_factory=dict)  # mountPath -> observe.FileStat of its directory
    claims: dict[str, ClaimFacts] = field(default_factory=dict)  # claim name -> its PV's facts
    pod_name: str | None = None
    node: str | None = None           # the node the pod ran on

    @property
    def storage_kinds(self) -> dict[str, str]:
        """claim -> the volume source kind of its PV (hostPath, local, csi, nfs, other)."""
        return {claim: facts.kind for claim, facts in self.claims.items()}


@dataclass(frozen=True)
class Expected:
    outcome: Any                      # cases.Outcome: running, rejected or crashing
    process: dict[str, Want] = field(default_factory=dict)  # check field -> Want; running only
    mounts: list[ExpectedMount] = field(default_factory=list)
    pod: dict[str, Want] = field(default_factory=dict)      # pod-level checks (network, token)
    lsm_label: str | None = None      # regular expression for /proc/1/attr/current
    lsm_reason: str = "case file pins the label"
    commands: list = field(default_factory=list)            # cases.Command
    cannot_enforce: str | None = None  # the node lacks a feature: checked what holds, then skip
    reported_user: Want | None = None  # what the kubelet must report as the process's user
    proc_paths: ExpectedProcPaths | None = None  # masked and read-only /proc, /sys paths


# Check field -> attribute of ExpectedProcess (also the key of its reasons).
PROCESS_FIELDS = {"uid": "uid", "gid": "gid", "groups": "groups", "CapEff": "cap_eff",
                  "CapPrm": "cap_prm", "CapBnd": "cap_bnd", "CapInh": "cap_inh",
                  "CapAmb": "cap_amb", "NoNewPrivs": "no_new_privs", "Seccomp": "seccomp",
                  "root read-only": "root_read_only"}


def not_available(case: Case, kubernetes_version: str) -> str | None:
    """Why the case does not apply to this Kubernetes version (its `kubernetes.since`), or
    None: a report line for the "Not available in this version" category."""
    if case.available and case.available.lacks(kubernetes_version):
        return categories.not_available(kubernetes_version, case.available.why)
    return None


def outcome_for(case: Case, env: NodeEnvironment) -> tuple[Outcome, str | None]:
    """The outcome Kubernetes promises for the case on this environment (the facts of the
    node and handler its pod runs on), and, where the node lacks the case's feature and
    the case promises nothing else, why its label checks cannot be made.

    A case that would run is refused where the node's facts make the kubelet refuse its
    spec (refusals.node_refusal: hostUsers false under a handler without user namespaces,
    say), whether or not the case declares `skip_unless`."""
    feature = case.skip_unless
    if feature and not env.supports(feature):
        if case.when_unsupported:
            return case.when_unsupported, None
        return case.outcome, SKIP_FEATURES[feature]
    if case.outcome.status in (Status.RUNNING, Status.CRASHING):
        refused = node_refusal(case.pod_spec(), case.container, env.node_facts())
        if refused:
            return refused, None
    return case.outcome, None


def for_case(case: Case, env: NodeEnvironment, learned: Learned | None) -> Expected:
    """Everything the case must show on this environment, each value with its reason.

    Pure: `env` gives the node facts and features, `learned` what only the cluster
    knows (None when the workload never ran). Case pins replace computed values
    and say what the oracle computed.
    """
    if learned is not None and learned.node and hasattr(env, "on"):
        env = env.on(learned.node)  # the facts of the node the pod ran on
    outcome, cannot_enforce = outcome_for(case, env)
    if outcome.status in (Status.REJECTED, Status.INVALID) or learned is None:
        return Expected(outcome, cannot_enforce=cannot_enforce)
    pins = case.expectations(next(iter(learned.storage_kinds.values()), None))
    spec = podspec.pod_spec(learned.pod_spec)
    process = expect_process(spec, case.container, env.node_facts(), learned.image_user,
                             learned.files)
    wants = {name: Want(getattr(process, attr), process.reasons.get(attr, ""))
             for name, attr in PROCESS_FIELDS.items()}
    for key, (_, check) in _pinned_fields(pins).items():
        wants[check] = _pinned(check, wants.get(check), pins[key])
    volume_gids = sorted({c.gid for c in learned.claims.values() if c.gid is not None})
    if volume_gids and wants["groups"].value is not None:
        wants["groups"] = Want(sorted(set(wants["groups"].value) | set(volume_gids)),
                               f"{wants['groups'].reason}; the PV annotation "
                               f"pv.beta.kubernetes.io/gid adds {volume_gids}")
    reported = _reported_user(wants, learned)
    wants.update(_behaviour(spec, case.container, env, wants))
    wants.update(id_maps(spec, env.node_facts().userns_ids_per_pod))
    if outcome.status == Status.CRASHING:  # the process is gone: its twin's, and the kubelet's report
        return Expected(outcome, process=wants, cannot_enforce=cannot_enforce,
                        reported_user=reported)
    return Expected(
        outcome, process=wants,
        mounts=_mounts(spec, case.container, learned, pins, wants, env.supports(RRO_FEATURE)),
        pod=_pod_level(spec), **_lsm_label(spec, case.container, env.node_facts(), pins,
                                           cannot_enforce),
        commands=list(case.commands), cannot_enforce=cannot_enforce, reported_user=reported,
        proc_paths=proc_paths(spec, case.container, env.node_facts(),
                              getattr(env, "kubernetes_version", "")))


def _lsm_label(spec: dict, container: str, node: NodeFacts, pins: dict,
               cannot_enforce: str | None) -> dict:
    """The LSM label check: the case's pin, else the AppArmor label the oracle derives."""
    if cannot_enforce:
        return {"lsm_label": None}
    if pins.get("lsm_label"):
        return {"lsm_label": pins["lsm_label"]}
    pattern, why = apparmor_label(spec, container, node)
    return {"lsm_label": pattern, "lsm_reason": why} if pattern else {"lsm_label": None}


def _reported_user(wants: dict[str, Want], learned: Learned) -> Want:
    """The kubelet reports the process's user (status.containerStatuses[].user.linux)."""
    if learned.kubelet_user is None:
        return Want(None, "the kubelet reports no user for the container (it does where "
                          "SupplementalGroupsPolicy is on: by default from v1.33): not asserted")
    value = tuple(wants[k].value for k in ("uid", "gid", "groups"))
    if None in value:
        return Want(None, "the process's uid, gid or groups are not known: not asserted")
    return Want(value, "status.containerStatuses[].user.linux must name the uid, gid and "
                       f"groups the process gets ({wants['uid'].reason}; {wants['gid'].reason})")


SYS_ADMIN = 1 << caps.CAPABILITIES.index("SYS_ADMIN")


def _behaviour(spec: dict, container: str, env, wants: dict[str, Want]) -> dict[str, Want]:
    """Seccomp by what it does, not only by the `Seccomp:` line: a filter that allows
    everything shows `Seccomp: 2` too."""
    container_sc = podspec.container(spec, container).get("securityContext") or {}
    privileged = bool(container_sc.get("privileged"))
    kind, why = seccomp_profile(container_sc, spec.get("securityContext") or {}, privileged,
                                env.node_facts())
    seccomp = wants["Seccomp"].value
    filters = Want(None if seccomp is None else "none" if seccomp == 0 else "at least 1",
                   f"Seccomp {seccomp}: {why}")
    # CRI-O's default profile gates clone/clone3/unshare of namespaces on CAP_SYS_ADMIN as
    # containerd's does (internal/config/seccomp/seccomp.go DefaultProfile), checked
    # against the bounding set too (containers/common pkg/seccomp/seccomp_linux.go
    # setupSeccomp: Includes.Caps in Process.Capabilities.Bounding).
    other_cri = env.node_facts().unknown_cri("what the runtime's default profile allows")
    # containerd writes its default profile from the container's bounding set, not from
    # what the process holds: CAP_SYS_ADMIN there opens unshare(CLONE_NEWUSER) even to a
    # non-root process with an empty CapEff (found by secctx.generated).
    cap_bnd = wants["CapBnd"].value
    if other_cri and kind in ("RuntimeDefault", "privileged"):
        unshare = Want(None, other_cri)
    elif kind == "RuntimeDefault" and cap_bnd is not None and not cap_bnd & SYS_ADMIN:
        unshare = Want(True, f"{why}: the runtime's default profile (containerd's, CRI-O's) "
                             "allows unshare(CLONE_NEWUSER) only when CAP_SYS_ADMIN is in the "
                             "bounding set, which lacks it")
    elif kind == "RuntimeDefault" and cap_bnd is not None and env.userns_unconfined:
        unshare = Want(False, f"{why}: CAP_SYS_ADMIN is in the bounding set, so the runtime's "
                              "default profile allows unshare(CLONE_NEWUSER), and a plain "
                              "container on this node creates a user namespace")
    elif kind in ("Unconfined", "privileged") and env.userns_unconfined:
        unshare = Want(False, f"{why}: no filter, and a plain container on this node creates a "
                              "user namespace")
    elif kind == "Localhost":
        unshare = Want(None, "what a Localhost profile allows is the profile's: not asserted")
    else:
        unshare = Want(None, "the node refuses user namespaces even without seccomp, or "
                             "CAP_SYS_ADMIN is effective: not asserted")
    return {"Seccomp_filters": filters, "unshare(CLONE_NEWUSER) refused": unshare}


# The paths the kubelet asks the runtime to mask and to make read-only for procMount
# Default: kubelet pkg/securitycontext/util.go defaultMaskedPaths / defaultReadonlyPaths,
# sent in the CRI request by ConvertToRuntimeMaskedPaths / ConvertToRuntimeReadonlyPaths
# (and [] for procMount Unmasked). containerd internal/cri/server/container_create.go
# replaces its own defaults (pkg/oci/spec.go populateDefaultUnixSpec) by exactly these.
MASKED_PATHS = ("/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
                "/sys/firmware", "/sys/devices/virtual/powercap")
# Added with moby's GHSA-6fw5-f8r9-fgfm fix (the thermal_throttle directory of each CPU that
# has one on the node): read in v1.37.2's util.go; which earlier releases have them is not
# known here, so there they are asserted neither way.
MASKED_SINCE_V1_37 = ("/proc/interrupts", "/sys/devices/system/cpu/cpu*/thermal_throttle")
READ_ONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")
# Every path the probe looks for (patterns: shell globs, fnmatch here).
PROC_PATHS = MASKED_PATHS + MASKED_SINCE_V1_37 + READ_ONLY_PATHS


@dataclass(frozen=True)
class ExpectedProcPaths:
    """What procMount promises, over the paths of PROC_PATHS this kernel has."""
    masked: Want     # value: the patterns of the paths that must be masked
    read_only: Want  # value: those that must be read-only, on a mount of their own
    unknown: tuple[str, ...] = ()  # patterns asserted neither way


def proc_paths(spec: dict, container: str, node: NodeFacts,
               kubernetes_version: str = "") -> ExpectedProcPaths:
    """The masked and read-only paths of the container's /proc and /sys (procMount)."""
    container_sc = podspec.container(spec, container).get("securityContext") or {}
    mount = container_sc.get("procMount") or "Default"
    later = () if kubernetes_version and minor_version(kubernetes_version) >= (1, 37) \
        else MASKED_SINCE_V1_37
    if container_sc.get("privileged"):
        # containerd pkg/oci/spec_opts.go WithPrivileged (applied after the kubelet's
        # lists, container_create.go) sets both to nil; CRI-O adds them only when not
        # privileged (internal/factory/container/container.go SpecSetPrivileges) and
        # clears both (server/container_create_linux.go setOCIBindMountsPrivileged).
        other = node.unknown_cri("no masked or read-only paths when privileged")
        why = other or "privileged: the runtime clears the masked and read-only paths"
        return ExpectedProcPaths(Want(None if other else (), why),
                                 Want(None if other else (), why), later)
    if mount == "Unmasked":
        why = "procMount Unmasked: the kubelet asks the runtime to mask nothing and make nothing read-only"
        return ExpectedProcPaths(Want((), why), Want((), why), later)
    masked = MASKED_PATHS + (() if later else MASKED_SINCE_V1_37)
    return ExpectedProcPaths(
        Want(masked, f"procMount {mount}: the kubelet's default masked paths"
                     + ("" if later else ", with /proc/interrupts and thermal_throttle (v1.37+)")),
        Want(READ_ONLY_PATHS, f"procMount {mount}: the kubelet's default read-only paths"), later)


# /proc/<pid>/uid_map and gid_map, as classify_id_map names them.
HOST_IDS = "the host's own ids (0 0 4294967295)"
# kubelet pkg/kubelet/userns/userns_manager.go MakeUserNsManager: each pod gets
# userNamespaces.idsPerPod ids (KubeletConfiguration, v1.33+), a multiple of 65536
# (userNsUnitLength), 65536 by default; createUserNs maps container id 0 at a host id
# that is a nonzero multiple of that length.
USERNS_UNIT = 65536


def pod_range(ids: int) -> str:
    """A pod's own range of `ids` ids, as the kubelet allocates it."""
    return f"a range of its own: container ids 0-{ids - 1} at a host id >= {ids}, a multiple of {ids}"


POD_RANGE = pod_range(USERNS_UNIT)


def classify_id_map(entries: list[tuple[int, int, int]]) -> str:
    """What an id map is: the host's, a pod range as the kubelet allocates it (of its
    length), or the map itself (anything else)."""
    if entries == [(0, 0, 4294967295)]:
        return HOST_IDS
    if len(entries) == 1:
        inside, outside, count = entries[0]
        if inside == 0 and count and count % USERNS_UNIT == 0 and outside >= count \
                and outside % count == 0:
            return pod_range(count)
    return "; ".join(" ".join(map(str, e)) for e in entries) or "empty"


def id_maps(spec: dict, ids_per_pod: int = USERNS_UNIT) -> dict[str, Want]:
    """hostUsers: false gives the pod a user namespace of its own: the `ids_per_pod` ids
    (the node's kubelet userNamespaces.idsPerPod) the kubelet allocates (KEP-127);
    otherwise the process is in the host's user namespace."""
    if spec.get("hostUsers") is False:
        want = Want(pod_range(ids_per_pod),
                    f"hostUsers: false: the kubelet maps the pod's ids 0-{ids_per_pod - 1} to "
                    f"{ids_per_pod} host ids of its own (its userNamespaces.idsPerPod), never "
                    "the host's root")
    else:
        want = Want(HOST_IDS, "hostUsers unset or true: the pod shares the host's user namespace")
    return {"uid_map": want, "gid_map": want}


def _pinned_fields(pins: dict) -> dict[str, tuple[str, str]]:
    """The pinned expect keys that name a process field (the schema's x-check)."""
    return {k: EXPECT_FIELDS[k] for k in pins
            if k in EXPECT_FIELDS and EXPECT_FIELDS[k][1] in PROCESS_FIELDS}


def _pinned(check: str, computed: Want | None, value: Any) -> Want:
    if isinstance(value, (set, frozenset)):
        value = caps.encode(value)
    elif isinstance(value, list):
        value = sorted(value)
    elif isinstance(value, bool) and computed is not None and type(computed.value) is int:
        value = int(value)
    if computed is None:
        return Want(value, "case file pins it")
    return Want(value, f"case file pins it (computed: {show(check, computed.value)}; "
                       f"{computed.reason})")


# Volume types the kubelet always mounts read-only, whatever volumeMounts say.
KUBELET_READ_ONLY = ("configMap", "secret", "downwardAPI", "projected", "image")
DAC_OVERRIDE = 1 << caps.CAPABILITIES.index("DAC_OVERRIDE")


RRO_FEATURE = "recursive_read_only_mounts"


def recursive_read_only(mount: dict, supported: bool) -> Want | None:
    """recursiveReadOnly (v1.33 GA): Enabled makes every submount read-only (the kubelet
    refuses the pod where the runtime cannot); IfPossible does so where it can."""
    mode = mount.get("recursiveReadOnly")
    if mode == "Enabled":
        return Want(True, "recursiveReadOnly: Enabled: the runtime makes the mount read-only "
                          "recursively (mount_setattr MOUNT_ATTR_RDONLY with AT_RECURSIVE)")
    if mode == "IfPossible":
        return Want(True, "recursiveReadOnly: IfPossible, and the node's runtime handler reports "
                          "recursiveReadOnlyMounts") if supported else \
            Want(None, "recursiveReadOnly: IfPossible on a runtime without recursive read-only "
                       "mounts: falls back to a plain read-only mount, submounts not asserted")
    return None  # Disabled or unset: submounts keep their own flags


def volume_read_only(volume: dict) -> str | None:
    """Why the volume itself is read-only (its plugin's GetAttributes().ReadOnly), or None.

    kubelet pkg/kubelet/kubelet_pods.go makeMounts mounts read-only when the volumeMount
    says so or the volume's mounter does. The mounter's flag: the kinds in KUBELET_READ_ONLY
    always; a claim's `readOnly` for every PV kind (the populator's getPVSpec passes it as
    volume.Spec.ReadOnly, which csi, local, nfs and hostPath mounters take for a PV; an
    ephemeral volume's claim is not read-only); an inline source's own `readOnly` (csi
    NewMounter: `*volSrc.ReadOnly`; nfs getVolumeSource: `NFS.ReadOnly`)."""
    kind = next(k for k in volume if k != "name")
    if kind in KUBELET_READ_ONLY:
        return f"{kind} volumes are always mounted read-only"
    if kind == "ephemeral":
        return None
    if (volume.get(kind) or {}).get("readOnly") is True:
        return f"readOnly: true in the volume's {kind} source"
    return None


def _mounts(spec: dict, container: str, learned: Learned, pins: dict,
            wants: dict[str, Want], rro_supported: bool = False) -> list[ExpectedMount]:
    """Writability and fsGroup ownership of each mount, case pins laid over the oracle.

    A claim's volume is ownership-managed when its PV is `local` or CSI; inline
    volumes are, except hostPath.
    """
    pinned = pins.get("volumes") or {}
    mounts = []
    for mount in podspec.container(spec, container).get("volumeMounts") or []:
        path, asked_ro = mount["mountPath"], bool(mount.get("readOnly"))
        volume = next(v for v in spec.get("volumes") or [] if v["name"] == mount["name"])
        kind = next(k for k in volume if k != "name")
        volume_ro = volume_read_only(volume)
        read_only = asked_ro or volume_ro is not None
        # The volume's own readOnly, not the mount's: the plugins skip ownership on it.
        managed, why = fsgroup_managed(volume, learned.claims.get(_claim_name(spec, volume, learned)),
                                       volume_ro is not None)
        computed = expect_volume(spec, mount["name"], managed)
        if kind not in KUBELET_OWNED_VOLUMES and kind != "hostPath" and computed.gid is None \
                and (spec.get("securityContext") or {}).get("fsGroup") is not None:
            computed = ExpectedVolume(None, False, f"{why}: fsGroup is not applied")
        pin = pinned.get(path, {})
        setgid = computed.setgid if computed.gid is not None else None
        ro_why = ("readOnly: true in volumeMounts" if asked_ro else volume_ro or
                  "readOnly unset in volumeMounts and in the volume")
        owner, mode = volume_directory(spec, container, mount, volume, wants["uid"].value)
        group = Want(computed.gid, computed.reason)
        if group.value is None and owner.asserted and computed.reason.startswith("no fsGroup"):
            group = Want(0, f"{computed.reason}: the group the kubelet (root) creates it with")
        writable = (Want(False, ro_why) if read_only else
                    _dac_writable(_predicted_stat(learned.stats.get(path), owner, group, mode),
                                  wants, ro_why))
        mounts.append(ExpectedMount(
            path, read_only, Want(read_only, ro_why),
            writable=_pinned("writable", writable, pin["writable"]) if "writable" in pin
            else writable,
            group=_pinned("group", Want(computed.gid, computed.reason), pin["gid"])
            if "gid" in pin else group,
            setgid=_pinned("setgid", Want(setgid, computed.reason), pin["setgid"])
            if "setgid" in pin else (None if setgid is None else Want(setgid, computed.reason)),
            submounts_ro=recursive_read_only(mount, rro_supported), owner=owner, mode=mode,
            files=None if mount.get("subPath") or mount.get("subPathExpr") else
            volume_file_modes(spec, volume)))
    return mounts


EVERY_FILE = "*"
API_DEFAULT_MODE = 0o644  # pkg/apis/core/v1/defaults.go: SetDefaults_{ConfigMap,Secret,DownwardAPI}VolumeSource


def volume_file_modes(spec: dict, volume: dict) -> dict[str, Want] | None:
    """The mode of each file the kubelet writes in a configMap, secret or downwardAPI
    volume: items[].mode, else defaultMode (MakePayload in pkg/volume/{configmap,secret,
    downwardapi}; the AtomicWriter chmods each file to it); with fsGroup,
    pkg/volume/volume_linux.go changeFilePermission adds roMask 0440 (these mounters are
    read-only). Files below a subdirectory (items[].path with '/') are not checked;
    projected volumes (the token's mode depends on fsGroup and runAsUser) neither."""
    kind = next(k for k in volume if k != "name")
    if kind not in ("configMap", "secret", "downwardAPI"):
        return None
    source = volume.get(kind) or {}
    fs_group = (spec.get("securityContext") or {}).get("fsGroup")
    default = source.get("defaultMode")
    default_why = (f"defaultMode {default:04o}" if default is not None else
                   f"defaultMode unset: the API default {API_DEFAULT_MODE:04o}")
    default = API_DEFAULT_MODE if default is None else int(default)

    def want(mode: int, why: str) -> Want:
        if fs_group is not None:
            mode = fsgroup_mode(mode, False, True)
            why += f"; fsGroup {fs_group} adds group read (0440): {mode:04o}"
        return Want(mode, f"{kind} volume: {why}")

    items = source.get("items")
    if kind == "downwardAPI" or items:
        optional = source.get("optional") is True
        files = {}
        for item in items or []:
            path = str(item.get("path", ""))
            if "/" in path or not path:
                continue
            mode = item.get("mode")
            why = (f"items[{path}].mode {int(mode):04o}" if mode is not None
                   else f"items[{path}] has no mode: {default_why}")
            files[path] = want(default if mode is None else int(mode), why)
            if optional:  # an optional source's missing key writes no file
                files[path] = Want(None, f"{files[path].reason}; optional: only if present")
        return files
    return {EVERY_FILE: want(default, f"every key's file gets {default_why}")}


def _predicted_stat(seen, owner: Want, group: Want, mode: Want):
    """The directory's owner, group and mode as predicted where they are (writability then
    follows from the kubelet's word, not from what a runtime may have changed), else as seen."""
    if seen is None or not (owner.asserted and group.asserted and mode.asserted):
        return seen
    return replace(seen, uid=owner.value, gid=group.value, mode=mode.value)


# The mode of the directory a kubelet-made volume starts with, by kind: kubelet
# pkg/volume/emptydir/empty_dir.go setupDir makes it 0777 (const perm, chmod past the
# umask); on medium Memory setupTmpfs mounts a tmpfs over it without a mode= option, and a
# tmpfs root is 1777 (mm/shmem.c). configMap wraps a disk emptyDir, secret, downwardAPI and
# projected a Memory one (wrappedVolumeSpec in pkg/volume/{configmap,secret,downwardapi,
# projected}).
_WRAPPED_MEDIUM = {"configMap": "", "secret": "Memory", "downwardAPI": "Memory",
                   "projected": "Memory"}
_START_MODE = {"": 0o777, "Memory": 0o1777}
# pkg/volume/volume_linux.go changeFilePermission: with fsGroup every file and directory
# gets |rwMask (0660), |roMask (0440) where the plugin's attributes are read-only (these
# four kinds), and a directory also |execMask (0110) and the setgid bit.
RW_MASK, RO_MASK, EXEC_MASK, SETGID = 0o660, 0o440, 0o110, 0o2000


def fsgroup_mode(mode: int, is_dir: bool, read_only_volume: bool) -> int:
    """A file's or directory's mode once the kubelet applied fsGroup to its volume."""
    mask = RO_MASK if read_only_volume else RW_MASK
    return mode | mask | ((EXEC_MASK | SETGID) if is_dir else 0)


def volume_directory(spec: dict, container: str, mount: dict, volume: dict,
                     uid: int | None) -> tuple[Want, Want]:
    """Owner and mode of a mount's directory as the kubelet makes it, each on its own: a
    runtime that hands the directory to the process (chown, chmod) to make it writable is
    caught here, not only by the write. Known for the volumes the kubelet creates itself;
    `uid` is the process's uid in `container`."""
    kind = next(k for k in volume if k != "name")
    if kind == "emptyDir":
        medium = (volume.get("emptyDir") or {}).get("medium") or ""
    else:
        medium = _WRAPPED_MEDIUM.get(kind)
    if medium not in _START_MODE:
        why = (f"emptyDir medium {medium}" if kind == "emptyDir" else
               f"the directory of a {kind} volume comes from the node, its provisioner or image")
        return (Want(None, f"{why}: owner not asserted"), Want(None, f"{why}: mode not asserted"))
    if mount.get("subPath") or mount.get("subPathExpr"):
        why = "a subPath's directory is made by whoever wrote the volume"
        return (Want(None, f"{why}: owner not asserted"), Want(None, f"{why}: mode not asserted"))
    changer = _may_change(spec, container, volume["name"], uid)
    if changer:
        why = f"{changer}: it may have changed the directory's owner and mode"
        return (Want(None, f"{why}: owner not asserted"), Want(None, f"{why}: mode not asserted"))
    mode = _START_MODE[medium]
    what = (f"{kind} volume ({'tmpfs' if medium else 'a directory on the node disk'}): the "
            f"kubelet creates it with mode {mode:o}")
    if kind == "emptyDir" and (volume.get("emptyDir") or {}).get("stickyBit") is True:
        mode |= 0o1000  # setupDir: perm |= stickyBitMode (the API server drops it without its gate)
        what += f", stickyBit: true makes it {mode:o}"
    fs_group = (spec.get("securityContext") or {}).get("fsGroup")
    if fs_group is not None:
        mode = fsgroup_mode(mode, True, kind in _WRAPPED_MEDIUM)
        what += f", and fsGroup {fs_group} adds group bits and setgid: {mode:o}"
    return (Want(0, f"{kind} volume: the kubelet (root) creates its directory; no container "
                    "of the pod can change it"), Want(mode, what))


def _may_change(spec: dict, container: str, volume: str, uid: int | None) -> str | None:
    """A container of the pod whose process may chown or chmod the volume's root-owned
    directory: one that mounts it writable as uid 0 (the owner) or as a uid not known."""
    pod_sc = spec.get("securityContext") or {}
    for kind in ("initContainers", "containers"):
        for c in spec.get(kind) or []:
            mounts = [m for m in c.get("volumeMounts") or []
                      if m.get("name") == volume and not m.get("readOnly")]
            if not mounts:
                continue
            who = uid if c.get("name") == container else _pick(
                c.get("securityContext") or {}, pod_sc, "runAsUser")[0]
            if who is None or int(who) == 0:
                return (f"container {c.get('name')} mounts it writable as "
                        f"{'a uid not known' if who is None else 'uid 0'}")
    return None


def _claim_name(spec: dict, volume: dict, learned: Learned) -> str | None:
    """The claim behind a volume: its own, or the one an ephemeral volume makes
    (named <pod>-<volume>)."""
    if "persistentVolumeClaim" in volume:
        return volume["persistentVolumeClaim"].get("claimName")
    if "ephemeral" in volume:
        return f"{learned.pod_name}-{volume['name']}" if learned.pod_name else None
    return None


def _dac_writable(stat, wants: dict[str, Want], why: str) -> Want:
    """A writable mount lets the process write where the directory's owner, group and
    mode allow it (root with CAP_DAC_OVERRIDE anywhere)."""
    uid, groups, cap_eff = (wants[k].value for k in ("uid", "groups", "CapEff"))
    if stat is None or uid is None or groups is None or cap_eff is None:
        return Want(True, f"{why} (owner and mode not known: writable assumed)")
    if cap_eff & DAC_OVERRIDE:
        return Want(True, f"{why}; CAP_DAC_OVERRIDE is effective")
    bit, who = ((0o200, f"uid {uid} owns it") if stat.uid == uid else
                (0o020, f"group {stat.gid} is one of the process's") if stat.gid in groups else
                (0o002, "neither owner nor group"))
    allowed = bool(stat.mode & bit)
    return Want(allowed, f"{why}; mode {stat.mode & 0o7777:o}, owner {stat.uid}:{stat.gid}: "
                         f"{who}, {'with' if allowed else 'without'} write permission")


TOKEN_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


def _pod_level(spec: dict) -> dict[str, Want]:
    """hostNetwork and automountServiceAccountToken, as seen from the container."""
    wants = {}
    if not spec.get("hostNetwork"):
        wants["pod IP differs from node IP"] = Want(
            True, "hostNetwork false: the pod has its own network namespace")
    automount = spec.get("automountServiceAccountToken")
    if automount is not None:
        wants["service-account token mounted"] = Want(
            automount, f"automountServiceAccountToken: {str(automount).lower()} in pod spec")
    return wants
