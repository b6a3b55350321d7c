"""What the oracle knows of the node a pod runs on: its CRI, the kubelet's settings, the
features it reports. Learned per node by secctx.oracle.nodefacts; read by the oracle
(secctx.oracle.expect) and its refusals (secctx.oracle.refusals), so it imports neither.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ..core import caps

CONTAINERD = "containerd"
CRIO = "cri-o"  # as CRI-O names itself in status.nodeInfo.containerRuntimeVersion
KNOWN_CRIS = (CONTAINERD, CRIO)


def cri_name(container_runtime_version: str) -> str:
    """The CRI implementation a node reports (status.nodeInfo.containerRuntimeVersion,
    "containerd://2.3.4"): containerd, cri-o, ..."""
    return container_runtime_version.partition("://")[0] or "not known"


@dataclass
class NodeFacts:
    seccomp_default: bool = False  # kubelet --seccomp-default / seccompDefault
    runtime_default_caps: int = caps.RUNTIME_DEFAULT
    # containerd's own effective set: what it grants a privileged container and "add ALL"
    # (a container can never hold more).
    grantable_caps: int = caps.ALL_CAPS
    userns_ids_per_pod: int = 65536  # kubelet userNamespaces.idsPerPod (USERNS_UNIT)
    # The inheritable set of a plain container, measured (0 unless the CRI is configured to
    # set one: CRI-O's add_inheritable_capabilities).
    runtime_default_inh: int = 0
    cri: str = CONTAINERD  # the CRI implementation the node reports (cri_name)
    # What the node reports for the pod's runtime handler (status.runtimeHandlers[].features)
    # and for itself (status.features); the kubelet refuses pods by these.
    user_namespaces: bool = True
    recursive_read_only_mounts: bool = True
    supplemental_groups_policy: bool = True
    # The node's kernel mounts tmpfs idmapped (Linux 6.3, nodefacts.tmpfs_idmap): a pod
    # in a user namespace gets its tmpfs volumes (the service-account token) that way.
    tmpfs_idmap: bool = True
    apparmor: bool = True  # the kernel's AppArmor is enabled (the kubelet's admission asks)
    # The profiles the node's kernel has loaded ("name (mode)",
    # /sys/kernel/security/apparmor/profiles) and the handler the pod runs under ("" for
    # the default).
    apparmor_profiles: tuple[str, ...] = ()
    handler: str = ""

    def unknown_cri(self, rule: str) -> str | None:
        """None on a node whose CRI the oracle knows (KNOWN_CRIS: each rule cites both
        sources); else why `rule` is not asserted."""
        if self.cri in KNOWN_CRIS:
            return None
        return (f"{rule} is known for {' and '.join(KNOWN_CRIS)}, and the node's CRI is "
                f"{self.cri}: not asserted")


class NodeEnvironment(Protocol):
    """What the oracle reads of an environment (oracle/nodefacts.Environment is one):
    typed here so that the oracle need not import the module that learns it."""
    userns_unconfined: bool | None

    def on(self, node: str | None) -> NodeEnvironment: ...

    def supports(self, feature: str) -> bool: ...

    def node_facts(self) -> NodeFacts: ...
