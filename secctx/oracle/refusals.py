"""The oracle's outcome of a spec: what the API server and the kubelet refuse before the
container's process runs, and with which words; otherwise the container runs.

Hand-written case files state their outcome; generated specs have it predicted here
(secctx.generated), with the same meaning as a case's `outcome`.
"""
from __future__ import annotations

from ..cases import Outcome, Status
from ..core import podspec
from .nodeview import NodeFacts

RUNNING = Outcome()


def _effective(container_sc: dict, pod_sc: dict, key: str):
    return container_sc[key] if container_sc.get(key) is not None else pod_sc.get(key)


def api_refusal(spec: dict) -> Outcome | None:
    """The pod's validation error (outcome invalid, a substring of the API server's
    answer), or None when the API server accepts the pod."""
    spec = podspec.pod_spec(spec)
    for container in podspec.containers(spec):
        sc = container.get("securityContext") or {}
        if sc.get("allowPrivilegeEscalation") is False:
            if sc.get("privileged"):
                return Outcome(Status.INVALID, message="cannot set `allowPrivilegeEscalation` to false "
                                                  "and `privileged` to true")
            # The API compares the literal string: "SYS_ADMIN" passes.
            if "CAP_SYS_ADMIN" in ((sc.get("capabilities") or {}).get("add") or []):
                return Outcome(Status.INVALID, message="cannot set `allowPrivilegeEscalation` to false "
                                                  "and `capabilities.Add` CAP_SYS_ADMIN")
        if sc.get("procMount") == "Unmasked" and spec.get("hostUsers") is not False:
            return Outcome(Status.INVALID, message="procMount")
        for mount in container.get("volumeMounts") or []:
            refused = recursive_read_only_invalid(mount)
            if refused:
                return refused
    return None


RECURSIVE_READ_ONLY = ("Disabled", "IfPossible", "Enabled")


def recursive_read_only_invalid(mount: dict) -> Outcome | None:
    """pkg/apis/core/validation/validation.go validateMountRecursiveReadOnly: IfPossible
    and Enabled only with readOnly true and mountPropagation None or unset; no other value."""
    rro = mount.get("recursiveReadOnly")
    if rro is None or rro == "Disabled":
        return None
    if rro not in RECURSIVE_READ_ONLY:
        return Outcome(Status.INVALID, message="Unsupported value")
    if not mount.get("readOnly"):
        return Outcome(Status.INVALID, message="may only be specified when readOnly is true")
    if mount.get("mountPropagation") not in (None, "None"):
        return Outcome(Status.INVALID, message="may only be specified when mountPropagation is None")
    return None


def admission_refusal(spec: dict, node: NodeFacts) -> Outcome | None:
    """The kubelet's admission refusal (the pod Failed) by what the node reports, or None:
    supplementalGroupsPolicy Strict on a node without the feature (kubelet
    pkg/kubelet/lifecycle/predicate.go, the SupplementalGroupsPolicy admission check), an
    AppArmor profile on a node without AppArmor (lifecycle/handlers.go
    NewAppArmorAdmitHandler -> pkg/security/apparmor validate.go Validate)."""
    spec = podspec.pod_spec(spec)
    if (spec.get("securityContext") or {}).get("supplementalGroupsPolicy") == "Strict" \
            and not node.supplemental_groups_policy:
        return Outcome(Status.REJECTED, "SupplementalGroupsPolicyNotSupported",
                       "SupplementalGroupsPolicy=Strict is not supported in this node")
    # The AppArmor admit handler comes after the predicate one (kubelet.go NewMainKubelet).
    if apparmor_required(spec) and not node.apparmor:
        return Outcome(Status.REJECTED, "AppArmor",
                       "Cannot enforce AppArmor: AppArmor is not enabled on the host")
    return None


def apparmor_required(spec: dict) -> bool:
    """Whether the kubelet's AppArmor admission needs AppArmor on the node
    (pkg/security/apparmor/helpers.go isRequired): a pod-level profile other than
    Unconfined counts even when every container overrides it, then any container's. (The
    beta annotations it also reads become these fields when the API server creates the pod,
    registry/core/pod/strategy.go applyAppArmorVersionSkew; a case written with them
    declares its refusal.)"""
    spec = podspec.pod_spec(spec)
    pod_profile = (spec.get("securityContext") or {}).get("appArmorProfile")
    if pod_profile and pod_profile.get("type") != "Unconfined":
        return True
    return any(((c.get("securityContext") or {}).get("appArmorProfile") or {}).get("type")
               not in (None, "Unconfined") for c in podspec.containers(spec))


def userns_refusal(spec: dict, node: NodeFacts) -> Outcome | None:
    """hostUsers false under a handler that reports no user namespaces: the kubelet makes
    no sandbox config (pkg/kubelet/userns/userns_manager.go
    GetOrCreateUserNamespaceMappings: "can't set `spec.hostUsers: false`, ... does not
    support user namespaces"; kuberuntime_manager.go SyncPod records it as
    FailedCreatePodSandBox), and retries for ever."""
    pod = podspec.pod_spec(spec)
    if pod.get("hostUsers") is not False:
        return None
    if not node.user_namespaces:
        return Outcome(Status.REJECTED, "FailedCreatePodSandBox", "does not support user namespaces")
    if not node.tmpfs_idmap and tmpfs_volumes(pod):
        # The kubelet asks the runtime for idmapped mounts of every volume; runc's
        # mount_setattr(MOUNT_ATTR_IDMAP) on a tmpfs fails before Linux 6.3 (EINVAL), the
        # container is not created, and the kubelet retries (measured on the VM node's
        # 6.1: "failed to set MOUNT_ATTR_IDMAP on .../kube-api-access-...: invalid argument").
        return Outcome(Status.REJECTED, "RunContainerError", "MOUNT_ATTR_IDMAP")
    return None


def tmpfs_volumes(spec: dict) -> bool:
    """The pod has a volume the kubelet backs with tmpfs: secret, projected (the
    service-account token the ServiceAccount admission plugin adds, unless
    automountServiceAccountToken is false), downwardAPI, or an emptyDir of medium
    Memory (pkg/volume/secret, projected, downwardapi: medium Memory wrappers)."""
    kinds = ("secret", "projected", "downwardAPI")
    if any(k in v for v in spec.get("volumes") or [] for k in kinds):
        return True
    if any((v.get("emptyDir") or {}).get("medium") == "Memory" for v in spec.get("volumes") or []):
        return True
    return spec.get("automountServiceAccountToken") is not False


def recursive_read_only_refusal(spec: dict, container_name: str,
                                node: NodeFacts) -> Outcome | None:
    """recursiveReadOnly: Enabled on a handler without recursive read-only mounts: the
    kubelet makes no container config (pkg/kubelet/kubelet_pods.go resolveRecursiveReadOnly,
    from makeMounts)."""
    container = podspec.container(podspec.pod_spec(spec), container_name)
    if not node.recursive_read_only_mounts and any(
            m.get("recursiveReadOnly") == "Enabled" for m in container.get("volumeMounts") or []):
        return Outcome(Status.REJECTED, "CreateContainerConfigError",
                       "requested recursive read-only mode, but it is not supported by the runtime")
    return None


def node_refusal(spec: dict, container_name: str, node: NodeFacts) -> Outcome | None:
    """What the kubelet refuses because of what the node and the pod's handler report
    (not of the spec alone), in the kubelet's order: admission, sandbox, container."""
    return (admission_refusal(spec, node) or userns_refusal(spec, node)
            or recursive_read_only_refusal(spec, container_name, node))


def sandbox_refusal(spec: dict, node: NodeFacts) -> Outcome | None:
    """The runtime's refusal to create the pod's sandbox on `node`, or None.

    containerd gives the sandbox (pause) container the pod securityContext's user and
    group and has no image user to fall back on: a pod runAsGroup without a pod runAsUser
    is "user group is specified without user" (internal/cri/util/util.go
    GenerateUserString, called by internal/cri/server/podsandbox/sandbox_run_linux.go; the
    API server accepts the pod; the kubelet retries for ever). Measured with containerd 2.3
    (secctx.generated, finding 1). CRI-O's sandbox takes no user from the pod
    securityContext (server/sandbox_run_linux.go runPodSandbox reads RunAsUser and
    RunAsGroup only for user-namespace mappings): it does not refuse; another CRI's
    sandbox is not predicted to refuse it."""
    spec = podspec.pod_spec(spec)
    pod_sc = spec.get("securityContext") or {}
    if node.cri == "containerd" and pod_sc.get("runAsGroup") is not None \
            and pod_sc.get("runAsUser") is None:
        return Outcome(Status.REJECTED, "FailedCreatePodSandBox", "is specified without user")
    if node.cri == "containerd" and spec.get("hostUsers") is False and any(
            (c.get("securityContext") or {}).get("privileged") for c in podspec.containers(spec)):
        # A privileged container makes the kubelet ask for a privileged sandbox, whose
        # read-write sysfs runc cannot mount in a user namespace (finding 3). CRI-O runs
        # no infra container by default (drop_infra_ctr = true, pkg/config/config.go
        # DropInfraCtr; server/sandbox_run_linux.go creates none without a shared pid
        # namespace): nothing to refuse.
        return Outcome(Status.REJECTED, "FailedCreatePodSandBox", 'error mounting "sysfs"')
    # In the pod's own user namespace (hostUsers false) only gids 0 to idsPerPod-1 exist
    # (65535 by default), and the kernel refuses a ping_group_range naming others
    # (EINVAL): the API server lets any range through as a safe sysctl, runc fails to
    # write it (finding 2).
    if spec.get("hostUsers") is False:
        for sysctl in pod_sc.get("sysctls") or []:
            if sysctl["name"] == "net.ipv4.ping_group_range" and \
                    any(int(g) >= node.userns_ids_per_pod for g in sysctl["value"].split()):
                return Outcome(Status.REJECTED, "FailedCreatePodSandBox",
                               "failed to write sysctl net.ipv4.ping_group_range")
    return None


def run_as_non_root_refusal(spec: dict, container_name: str,
                            config_user: str | None) -> Outcome | None:
    """The kubelet's runAsNonRoot refusal of the container (CreateContainerConfigError), or None.

    config_user: the image config's USER ("" for root), None if not known; runAsNonRoot
    with an image user that is not known is not predicted (None)."""
    spec = podspec.pod_spec(spec)
    pod_sc = spec.get("securityContext") or {}
    container_sc = podspec.container(spec, container_name).get("securityContext") or {}
    if _effective(container_sc, pod_sc, "runAsNonRoot") is not True:
        return None
    run_as_user = _effective(container_sc, pod_sc, "runAsUser")
    if run_as_user is not None:
        if int(run_as_user) == 0:
            return Outcome(Status.REJECTED, "CreateContainerConfigError",
                           "container's runAsUser breaks non-root policy")
        return None
    if config_user is None:
        return None
    user = config_user.partition(":")[0]
    if user and not user.isdigit():
        return Outcome(Status.REJECTED, "CreateContainerConfigError",
                       f"image has non-numeric user ({user}), cannot verify user is non-root")
    if not user or int(user) == 0:
        return Outcome(Status.REJECTED, "CreateContainerConfigError",
                       "container has runAsNonRoot and image will run as root")
    return None


def outcome_of(spec: dict, container_name: str, config_user: str | None,
               node: NodeFacts) -> Outcome:
    """What Kubernetes promises for one container of the spec on `node` (the facts of
    the node and handler it runs on): refused by the API server, its pod's sandbox
    refused by the runtime, the container refused by the kubelet, or running. The
    kubelet's own order: admission, the sandbox config (user namespaces), the runtime's
    sandbox, then the container config (kuberuntime_container.go generateContainerConfig:
    GenerateRunContainerOptions, whose makeMounts checks recursiveReadOnly, before
    verifyRunAsNonRoot)."""
    return (api_refusal(spec) or admission_refusal(spec, node) or userns_refusal(spec, node)
            or sandbox_refusal(spec, node)
            or recursive_read_only_refusal(spec, container_name, node)
            or run_as_non_root_refusal(spec, container_name, config_user) or RUNNING)
