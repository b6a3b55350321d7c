"""The oracle's outcome of a spec: what the API server and the kubelet refuse before the
container's process runs, and with which words; otherwise the container runs.

Hand-written case files state their outcome; generated specs have it predicted here
(secctx.generated), with the same meaning as a case's `outcome`.
"""
from __future__ import annotations

from . import podspec
from .cases import Outcome
from .expect import CONTAINERD, NodeFacts

RUNNING = Outcome()
USERNS_MAX_ID = 65535  # a pod with hostUsers false maps ids 0-65535


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
                return Outcome("invalid", message="cannot set `allowPrivilegeEscalation` to false "
                                                  "and `privileged` to true")
            # The API compares the literal string: "SYS_ADMIN" passes.
            if "CAP_SYS_ADMIN" in ((sc.get("capabilities") or {}).get("add") or []):
                return Outcome("invalid", message="cannot set `allowPrivilegeEscalation` to false "
                                                  "and `capabilities.Add` CAP_SYS_ADMIN")
        if sc.get("procMount") == "Unmasked" and spec.get("hostUsers") is not False:
            return Outcome("invalid", message="procMount")
    return None


def sandbox_refusal(spec: dict, node: NodeFacts) -> Outcome | None:
    """The runtime's refusal to create the pod's sandbox on `node`, or None.

    containerd gives the sandbox (pause) container the pod securityContext's user and
    group and has no image user to fall back on: a pod runAsGroup without a pod runAsUser
    is "user group is specified without user" (internal/cri/util/util.go
    GenerateUserString, called by internal/cri/server/podsandbox/sandbox_run_linux.go; the
    API server accepts the pod; the kubelet retries for ever). Measured with containerd 2.3
    (secctx.generated, finding 1). Another CRI's sandbox is not predicted to refuse it."""
    spec = podspec.pod_spec(spec)
    pod_sc = spec.get("securityContext") or {}
    if node.cri == CONTAINERD and pod_sc.get("runAsGroup") is not None \
            and pod_sc.get("runAsUser") is None:
        return Outcome("rejected", "FailedCreatePodSandBox", "is specified without user")
    if spec.get("hostUsers") is False and any(
            (c.get("securityContext") or {}).get("privileged") for c in podspec.containers(spec)):
        # A privileged container makes the kubelet ask for a privileged sandbox, whose
        # read-write sysfs runc cannot mount in a user namespace (finding 3).
        return Outcome("rejected", "FailedCreatePodSandBox", 'error mounting "sysfs"')
    # In the pod's own user namespace (hostUsers false) only gids 0-65535 exist, and the
    # kernel refuses a ping_group_range naming others (EINVAL): the API server lets any
    # range through as a safe sysctl, runc fails to write it (finding 2).
    if spec.get("hostUsers") is False:
        for sysctl in pod_sc.get("sysctls") or []:
            if sysctl["name"] == "net.ipv4.ping_group_range" and \
                    any(int(g) > USERNS_MAX_ID for g in sysctl["value"].split()):
                return Outcome("rejected", "FailedCreatePodSandBox",
                               "failed to write sysctl net.ipv4.ping_group_range")
    return None


def kubelet_refusal(spec: dict, container_name: str, config_user: str | None) -> Outcome | None:
    """The kubelet's refusal to create the container (CreateContainerConfigError), or None.

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
            return Outcome("rejected", "CreateContainerConfigError",
                           "container's runAsUser breaks non-root policy")
        return None
    if config_user is None:
        return None
    user = config_user.partition(":")[0]
    if user and not user.isdigit():
        return Outcome("rejected", "CreateContainerConfigError",
                       f"image has non-numeric user ({user}), cannot verify user is non-root")
    if not user or int(user) == 0:
        return Outcome("rejected", "CreateContainerConfigError",
                       "container has runAsNonRoot and image will run as root")
    return None


def outcome_of(spec: dict, container_name: str, config_user: str | None,
               node: NodeFacts) -> Outcome:
    """What Kubernetes promises for one container of the spec on `node` (the facts of
    the node and handler it runs on): refused by the API server, its pod's sandbox
    refused by the runtime, the container refused by the kubelet, or running."""
    return (api_refusal(spec) or sandbox_refusal(spec, node)
            or kubelet_refusal(spec, container_name, config_user) or RUNNING)
