"""The upstream Kubernetes e2e tests that check what a verdict's check checks: one home.

By field, not by value: a failed `uid` check names the upstream specs that check
the process's uid under runAsUser, whatever uid the case asked for. A case file's
own `upstream:` list names the specs of its manifest as a whole; the summary file
and the JUnit properties (secctx.report.summary) give both.

A name is the spec as Ginkgo joins it: the SIG's describe, each container's text
and the It's text, as written in the source (read from kubernetes master,
test/e2e/common/node/security_context.go, test/e2e/node/security_context.go and
test/e2e/common/storage/empty_dir.go), without the labels the e2e framework
appends when it runs them ([NodeConformance], [Conformance], [Feature:...]):
the same spelling as the case files.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..verdict import TWIN

_E2E = "https://github.com/kubernetes/kubernetes/blob/master/test/e2e/"
COMMON_NODE = _E2E + "common/node/security_context.go"
NODE = _E2E + "node/security_context.go"
EMPTY_DIR = _E2E + "common/storage/empty_dir.go"


@dataclass(frozen=True)
class Spec:
    name: str
    url: str


def _specs(url: str, describe: str, *its: str) -> tuple[Spec, ...]:
    return tuple(Spec(f"{describe} {it}", url) for it in its)


_SC = "[sig-node] Security Context"
# common/node: Context("When creating a container with runAsUser"), ConformanceIt / f.It
RUN_AS_USER = _specs(COMMON_NODE, f"{_SC} When creating a container with runAsUser",
                     "should run the container with uid 65534 [LinuxOnly]",
                     "should run the container with uid 0 [LinuxOnly]")
# node: top-level ginkgo.It / ConformanceIt of SIGDescribe("Security Context")
POD_RUN_AS_USER = _specs(NODE, _SC, "should support pod.Spec.SecurityContext.RunAsUser [LinuxOnly]",
                         "should support container.SecurityContext.RunAsUser [LinuxOnly]")
RUN_AS_GROUP = _specs(NODE, _SC, "should support pod.Spec.SecurityContext.RunAsUser And "
                      "pod.Spec.SecurityContext.RunAsGroup [LinuxOnly]",
                      "should support container.SecurityContext.RunAsUser And "
                      "container.SecurityContext.RunAsGroup [LinuxOnly]")
SUPPLEMENTAL_GROUPS = (
    *_specs(NODE, _SC, "should support pod.Spec.SecurityContext.SupplementalGroups [LinuxOnly]"),
    # ginkgo.When("if the container's primary UID ...") is "when if the container's ..."
    *_specs(NODE, f"{_SC} when if the container's primary UID belongs to some groups in the image "
            "[LinuxOnly]", "should add pod.Spec.SecurityContext.SupplementalGroups to them "
            "[LinuxOnly] in resultant supplementary groups for the container processes"))
# common/node: Context("when creating containers with AllowPrivilegeEscalation")
NO_NEW_PRIVS = _specs(COMMON_NODE, f"{_SC} when creating containers with AllowPrivilegeEscalation",
                      "should allow privilege escalation when not explicitly set and uid != 0 "
                      "[LinuxOnly]",
                      "should not allow privilege escalation when false [LinuxOnly]",
                      "should allow privilege escalation when true [LinuxOnly]")
SECCOMP_RUNTIME_DEFAULT = _specs(NODE, _SC, "should support seccomp runtime/default [LinuxOnly]")
SECCOMP = (*_specs(NODE, _SC, "should support seccomp unconfined on the container [LinuxOnly]",
                   "should support seccomp unconfined on the pod [LinuxOnly]"),
           *SECCOMP_RUNTIME_DEFAULT,
           *_specs(NODE, _SC, "should support seccomp default which is unconfined [LinuxOnly]"))
# common/node: Context("When creating a pod with readOnlyRootFilesystem")
READ_ONLY_ROOT, WRITABLE_ROOT = _specs(
    COMMON_NODE, f"{_SC} When creating a pod with readOnlyRootFilesystem",
    "should run the container with readonly rootfs when readOnlyRootFilesystem=true [LinuxOnly]",
    "should run the container with writable rootfs when readOnlyRootFilesystem=false")
# common/node: Context("When creating a pod with privileged"): can it add a network link
# (CAP_NET_ADMIN in its effective and bounding sets)?
PRIVILEGED = _specs(COMMON_NODE, f"{_SC} When creating a pod with privileged",
                    "should run the container as unprivileged when false [LinuxOnly]",
                    "should run the container as privileged when true [LinuxOnly]")
# common/node: Context("When creating a pod with HostUsers"): /proc/self/uid_map
USER_NAMESPACE = _specs(COMMON_NODE, f"{_SC} When creating a pod with HostUsers",
                        "must create the user namespace if set to false [LinuxOnly]",
                        "must not create the user namespace if set to true [LinuxOnly]")
# common/storage: SIGDescribe("EmptyDir volumes"), Context("when FSGroup is specified [LinuxOnly]")
FS_GROUP = _specs(EMPTY_DIR, "[sig-storage] EmptyDir volumes when FSGroup is specified [LinuxOnly]",
                  "new files should be created with FSGroup ownership when container is root",
                  "new files should be created with FSGroup ownership when container is non-root")

# A check's field (secctx.verdict; a mount's checks without their path) -> the upstream specs.
BY_FIELD: dict[str, tuple[Spec, ...]] = {
    "uid": RUN_AS_USER + POD_RUN_AS_USER + RUN_AS_GROUP,
    "gid": RUN_AS_GROUP,
    "groups": SUPPLEMENTAL_GROUPS,
    "NoNewPrivs": NO_NEW_PRIVS,
    "Seccomp": SECCOMP,
    "Seccomp_filters": SECCOMP_RUNTIME_DEFAULT,
    "root read-only": (READ_ONLY_ROOT, WRITABLE_ROOT),
    "write to / fails with EROFS": (READ_ONLY_ROOT,),
    "write to / succeeds (root, writable root)": (WRITABLE_ROOT,),
    "CapEff": PRIVILEGED,
    "CapBnd": PRIVILEGED,
    "uid_map": USER_NAMESPACE,
    "gid_map": USER_NAMESPACE,
    "group": FS_GROUP,
    "new file's group": FS_GROUP,
    "setgid bit": FS_GROUP,
}


def field_key(field: str) -> str:
    """A check's field as BY_FIELD keys it: a twin's check as its container's, a mount's
    check without its path ("/data group" -> "group")."""
    field = field.removeprefix(TWIN)
    if field.startswith("/") and " " in field:
        return field.split(" ", 1)[1]
    return field


def for_field(field: str) -> tuple[Spec, ...]:
    return BY_FIELD.get(field_key(field), ())
