"""What the nodes can enforce, learned once per session through the cluster.

A short-lived privileged DaemonSet reads each node's LSMs, capability
bounding set and cgroup type, installs the seccomp profiles the cases need
and prepares directories for `local` PersistentVolumes. It works the same on
a kind cluster and on an existing cluster (no docker exec), and it is
deleted as soon as the facts are in.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import operator
import re
from dataclasses import asdict, dataclass, field

from ..cluster.hostlimits import HOST_LIMITS
from ..core import caps, timeouts
from ..kube import Kube, Terminal, WaitTimeout, api_retry
from .expect import USERNS_UNIT
from .nodeview import NodeFacts, cri_name

HELPER = "secctx-node-helper"
SECCOMP_DIR = "/var/lib/kubelet/seccomp"
LOCAL_PV_ROOT = "/var/lib/secctx/local-pv"
DEFAULT_RUNTIME = "default"  # the run's name for "no runtimeClassName": the node's default handler
# The node kind of a node without the label NODE_KIND_LABEL (a kind node container, or
# any node of an existing cluster): cases run there with no placement, as before
# node kinds were a parameter. Other kinds (a VM node, "vm-apparmor") carry the label
# and a NoSchedule taint of the same key: only cases pinned to them run there.
DEFAULT_NODE_KIND = "default"
NODE_KIND_LABEL = "secctx.io/node-kind"
# The facts each node has for itself (a case is judged by its pod's node's), shown in
# the environment one column per node.
NODE_FACTS = ("kernel", "os_image", "cgroup_version", "lsms", "apparmor", "apparmor_profiles",
              "selinux", "seccomp", "max_user_namespaces", "tmpfs_idmap")


@dataclass
class Runtime:
    """One RuntimeClass of the run: its handler and, per node, what the kubelet reports
    for that handler and what its containers get (as Environment fields)."""
    name: str
    handler: str
    per_node: dict[str, dict] = field(default_factory=dict)
    version: str = ""


@dataclass
class Environment:
    """Facts about the cluster for tests and for the report's environment file."""
    kubernetes_version: str = ""
    nodes: list[str] = field(default_factory=list)
    kernel: str = ""
    os_image: str = ""
    container_runtime: str = ""
    cgroup_version: int = 0
    lsms: list[str] = field(default_factory=list)
    apparmor: bool = False
    selinux: bool = False
    seccomp_default: bool = False
    userns_ids_per_pod: int = USERNS_UNIT  # kubelet userNamespaces.idsPerPod (configz)
    grantable_caps: int = caps.ALL_CAPS  # what containerd grants a privileged container
    kernel_caps: int = caps.ALL_CAPS     # every capability the kernel has (cap_last_cap)
    runtime_default_caps: int = caps.RUNTIME_DEFAULT  # measured in a plain container
    runtime_default_inh: int = 0  # the inheritable set of a plain container, measured
    userns_unconfined: bool | None = None  # a plain container without seccomp can unshare -U
    # What the nodes report in their status (the default runtime handler's features, and
    # status.features): the kubelet admits or refuses pods by these.
    user_namespaces: bool = False
    tmpfs_idmap: bool = True  # every node's kernel mounts tmpfs idmapped (tmpfs_idmap)
    recursive_read_only_mounts: bool = False
    supplemental_groups_policy: bool = False
    extra: dict[str, str] = field(default_factory=dict)  # runc/kind versions, mode, node image
    # Each node's own measurements (a case is judged by its pod's node's).
    per_node: dict[str, dict] = field(default_factory=dict)
    # The config USER of each image of the run, as the node's own image store has it.
    image_users: dict[str, str] = field(default_factory=dict)
    # The RuntimeClass this environment is as (DEFAULT_RUNTIME: no runtimeClassName) and,
    # for each other one the run uses, its Runtime: what its containers get on each node.
    runtime: str = "default"
    runtimes: dict[str, Runtime] = field(default_factory=dict)
    # Per node, the facts a probe cannot tell from inside a container: AppArmor profiles
    # the kernel has loaded ("name (mode)"), the seccomp actions it offers, its user
    # namespace limit; and each node's kind (NODE_KIND_LABEL, DEFAULT_NODE_KIND without).
    apparmor_profiles: list[str] = field(default_factory=list)
    seccomp: str = ""
    max_user_namespaces: int = 0
    node_kinds: dict[str, str] = field(default_factory=dict)

    def nodes_of(self, kind: str) -> list[str]:
        return [n for n in self.nodes if self.node_kinds.get(n, DEFAULT_NODE_KIND) == kind]

    def placed(self, kind: str) -> Environment:
        """The environment a case pinned to node kind `kind` runs in, before its pod
        has a node: its nodes' facts (nodes of one kind are made alike: one image, one
        configuration). Without labelled nodes the default kind is every node: the
        aggregate, as before node kinds."""
        nodes = self.nodes_of(kind)
        if kind == DEFAULT_NODE_KIND and len(nodes) == len(self.nodes):
            return self
        if not nodes:
            raise KeyError(f"no node of kind {kind}")
        return self.on(nodes[0])

    def on(self, node: str | None) -> Environment:
        """The environment as the node `node` has it (the aggregate for another one)."""
        facts = self.per_node.get(node or "")
        return dataclasses.replace(self, **facts) if facts else self

    def under(self, runtime: str) -> Environment:
        """The environment as pods of RuntimeClass `runtime` get it: each node's facts
        and features replaced by those measured (and reported) for that handler, the
        aggregates narrowed over the nodes like gather's. KeyError for one not learned."""
        if runtime == DEFAULT_RUNTIME:
            return self
        rt = self.runtimes[runtime]

        def merged(node: str, f: dict) -> dict:
            # containerd asks every handler for its own set; the handler's kernel (a VM's
            # own) keeps the capabilities it has.
            mine = rt.per_node.get(node, {})
            grantable = f.get("grantable_caps", self.grantable_caps) & mine.get("kernel_caps",
                                                                                  caps.ALL_CAPS)
            return {**f, **mine, "grantable_caps": grantable}
        per_node = {n: merged(n, f) for n, f in self.per_node.items()}
        facts = [merged(n, self.per_node.get(n, {})) for n in rt.per_node]
        aggregate = {k: all(f[k] for f in facts) for k in (*REPORTED_FEATURES, "userns_unconfined")}
        for key in ("runtime_default_caps", "grantable_caps"):
            aggregate[key] = functools.reduce(operator.and_, (f[key] for f in facts),
                                              caps.ALL_CAPS)
        aggregate["runtime_default_inh"] = functools.reduce(
            operator.or_, (f.get("runtime_default_inh", 0) for f in facts), 0)
        return dataclasses.replace(self, per_node=per_node, runtime=runtime, **aggregate)

    def node_facts(self) -> NodeFacts:
        handler = self.runtimes[self.runtime].handler if self.runtime in self.runtimes else ""
        return NodeFacts(seccomp_default=self.seccomp_default, grantable_caps=self.grantable_caps,
                         runtime_default_caps=self.runtime_default_caps,
                         runtime_default_inh=self.runtime_default_inh,
                         userns_ids_per_pod=self.userns_ids_per_pod,
                         cri=cri_name(self.container_runtime), apparmor=self.apparmor,
                         apparmor_profiles=tuple(self.apparmor_profiles), handler=handler,
                         tmpfs_idmap=self.tmpfs_idmap,
                         **{f: getattr(self, f) for f in REPORTED_FEATURES})

    def supports(self, feature: str) -> bool:
        """A node feature a case may need (a `skip_unless` of the case schema)."""
        return bool(getattr(self, feature))

    def properties(self) -> dict[str, str]:
        d = asdict(self)
        extra = d.pop("extra")
        d.pop("per_node")
        d.pop("image_users")
        d.pop("runtimes")
        d.pop("node_kinds")
        d.pop("apparmor_profiles")
        d["grantable_caps"] = caps.to_hex(self.grantable_caps)
        d["kernel_caps"] = caps.to_hex(self.kernel_caps)
        d["runtime_default_caps"] = caps.to_hex(self.runtime_default_caps)
        d["runtime_default_inh"] = caps.to_hex(self.runtime_default_inh)
        d["host_cannot_grant"] = ",".join(caps.decode(self.kernel_caps & ~self.grantable_caps)) \
            or "nothing"
        d["nodes"] = ",".join(self.nodes)
        d["lsms"] = ",".join(self.lsms)
        if len(self.per_node) > 1:  # one column per node: "<fact> (<node>)"
            for node in self.nodes:
                mine = self.on(node)
                for key in NODE_FACTS:
                    value = getattr(mine, key)
                    d[f"{key} ({node})"] = ",".join(value) if isinstance(value, list) else value
                d[f"node kind ({node})"] = self.node_kinds.get(node, DEFAULT_NODE_KIND)
        return {k: str(v) for k, v in {**d, **extra}.items()}


# Reads facts and writes files given as "path=content" arguments.
_NODE_SCRIPT = r"""
set -u
for pair in "$@"; do
  path=${pair%%=*}; content=${pair#*=}
  case $path in
  apparmor:*)  # a Localhost AppArmor profile, loaded into the node's kernel where it has AppArmor
    [ "$(cat /sys/module/apparmor/parameters/enabled 2>/dev/null)" = Y ] || continue
    printf '%s' "$content" | nsenter -t 1 -m -- env PATH=/usr/sbin:/usr/bin:/sbin:/bin \
      apparmor_parser -r >&2 || echo "write failed: AppArmor profile ${path#apparmor:}" >&2 ;;
  *) mkdir -p "$(dirname "$path")" && printf '%s' "$content" > "$path" || echo "write failed: $path" >&2 ;;
  esac
done
echo "lsm=$(cat /host/securityfs/lsm 2>/dev/null)"
echo "apparmor=$(cat /sys/module/apparmor/parameters/enabled 2>/dev/null)"
echo "label=$(cat /proc/self/attr/current 2>/dev/null | tr -d '\0')"
echo "capbnd=$(grep CapBnd /proc/self/status | cut -f2)"
for p in /proc/[0-9]*; do
  case "$(cat "$p/comm" 2>/dev/null)" in
    containerd) echo "containerd_capeff=$(grep CapEff "$p/status" | cut -f2)" ;;
    crio) echo "crio_capbnd=$(grep CapBnd "$p/status" | cut -f2)" ;;
  esac
done
echo "cap_last_cap=$(cat /proc/sys/kernel/cap_last_cap)"
echo "cgroupfs=$(stat -f -c %T /sys/fs/cgroup)"
echo "cgroupfs_magic=$(stat -f -c %t /sys/fs/cgroup)"
echo "apparmor_profiles=$(tr '\n' ';' < /host/securityfs/apparmor/profiles 2>/dev/null)"
echo "seccomp=$(cat /proc/sys/kernel/seccomp/actions_avail 2>/dev/null)"
echo "max_user_namespaces=$(cat /proc/sys/user/max_user_namespaces 2>/dev/null)"
"""

# Run in the helper's unprivileged container (no securityContext but an Unconfined
# seccomp profile): what the runtime gives a plain container, and whether the node
# lets a process without seccomp create a user namespace.
_DEFAULT_SCRIPT = r"""
echo "default_capbnd=$(grep CapBnd /proc/self/status | cut -f2)"
echo "default_capinh=$(grep CapInh /proc/self/status | cut -f2)"
if unshare -U true 2>/dev/null; then echo userns_unconfined=yes; else echo userns_unconfined=no; fi
"""


def helper_daemonset(image: str) -> dict:
    mounts = [("seccomp", SECCOMP_DIR, "/host/seccomp", "DirectoryOrCreate"),
              ("securityfs", "/sys/kernel/security", "/host/securityfs", "Directory"),
              ("localpv", LOCAL_PV_ROOT, "/host/local-pv", "DirectoryOrCreate")]
    sleeper = ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
    return {
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": HELPER},
        "spec": {
            "selector": {"matchLabels": {"app": HELPER}},
            "template": {
                "metadata": {"labels": {"app": HELPER}},
                "spec": {
                    "tolerations": [{"operator": "Exists"}],
                    "automountServiceAccountToken": False,
                    "terminationGracePeriodSeconds": 0,
                    # The node's processes: containerd's own capabilities, crictl.
                    "hostPID": True,
                    "containers": [{
                        "name": "helper", "image": image, "command": sleeper,
                        "securityContext": {"privileged": True},
                        "volumeMounts": [{"name": n, "mountPath": m} for n, _, m, _ in mounts],
                    }, {
                        "name": "default", "image": image, "command": sleeper,
                        "securityContext": {"seccompProfile": {"type": "Unconfined"}},
                    }],
                    "volumes": [{"name": n, "hostPath": {"path": p, "type": t}}
                                for n, p, _, t in mounts],
                },
            },
        },
    }


def gather(kube: Kube, namespace: str, image: str, files: dict[str, str], prepare: str = "",
           timeout: float = timeouts.NODE_FACTS, images: list[str] = (),
           apparmor_profiles: dict[str, str] | None = None) -> Environment:
    """Run the helper on every node: write `files` (node path -> content), load the
    `apparmor_profiles` (name -> profile text) where the node has AppArmor (they stay
    loaded: a profile loaded again replaces itself, apparmor_parser -r), run the
    `prepare` shell script (node paths under /host/local-pv), read the facts and the
    config USER of `images` from the node's image store."""
    kube.apps.create_namespaced_daemon_set(namespace, helper_daemonset(image))
    try:
        pods = _wait_for_helper_pods(kube, namespace, timeout)
        env = _from_node_objects(kube)
        env.runtime_default_caps = caps.ALL_CAPS  # narrowed by each node's measurement
        args = [f"{_host_path(p)}={c}" for p, c in files.items()]
        args += [f"apparmor:{name}={text}" for name, text in (apparmor_profiles or {}).items()]
        for pod in pods:
            node = kube.core.read_namespaced_pod(pod, namespace).spec.node_name
            # A VM node runs the script (and compiles AppArmor profiles) on an emulated CPU.
            bound = timeouts.EMULATED_EXEC if node in env.node_kinds else timeouts.EXEC
            out = kube.exec(pod, namespace, "helper",
                            ["sh", "-c", prepare + "\n" + _NODE_SCRIPT, "sh", *args],
                            timeout=bound)
            if out.returncode != 0 or "write failed" in out.stderr:
                raise RuntimeError(f"node helper {pod} failed:\n{out.transcript()}")
            plain = kube.exec(pod, namespace, "default", ["sh", "-c", _DEFAULT_SCRIPT],
                              timeout=bound)
            if plain.returncode != 0:
                raise RuntimeError(f"node helper {pod} (default container) failed:\n"
                                   f"{plain.transcript()}")
            _merge_node_script(env, out.stdout + "\n" + plain.stdout, node)
            env.per_node[node]["image_users"] = _image_users(kube, namespace, pod, images,
                                                             max(timeouts.NODE_EXEC, bound))
        for n in env.nodes:
            env.per_node.setdefault(n, {}).update(kubelet_config_facts(_configz(kube, n)))
        env.seccomp_default = any(f["seccomp_default"] for f in env.per_node.values())
        # One length for every node, or the smallest (a pod is judged by its own node's).
        env.userns_ids_per_pod = min(f["userns_ids_per_pod"] for f in env.per_node.values())
        return env
    finally:
        kube.apps.delete_namespaced_daemon_set(HELPER, namespace, grace_period_seconds=0,
                                               propagation_policy="Foreground")


# crictl inspecti on the node itself (its mount namespace, through hostPID): the
# image config as containerd stores it. One JSON document per image, or a marker.
_IMAGE_SCRIPT = r"""
for image in "$@"; do
  echo "--- $image"
  nsenter -t 1 -m -- env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    crictl inspecti -o json "$image" 2>&1 || echo "(not readable)"
done
"""


def _image_users(kube: Kube, namespace: str, pod: str, images: list[str],
                 timeout: float = timeouts.NODE_EXEC) -> dict[str, str]:
    """{image: its config USER ("" for none)} as the node's image store has it; images
    it cannot read (no crictl on the node, not pulled) are left out."""
    if not images:
        return {}
    out = kube.exec(pod, namespace, "helper", ["sh", "-c", _IMAGE_SCRIPT, "sh", *images],
                    timeout=timeout)
    return parse_image_users(out.stdout)


def parse_image_users(stdout: str) -> dict[str, str]:
    users = {}
    for chunk in stdout.split("--- ")[1:]:
        image, _, body = chunk.partition("\n")
        try:
            info = json.loads(body)
        except ValueError:
            continue
        config = (((info.get("info") or {}).get("imageSpec") or {}).get("config") or {})
        users[image.strip()] = config.get("User", "")
    return users


def _host_path(node_path: str) -> str:
    for prefix, mount in ((SECCOMP_DIR, "/host/seccomp"), (LOCAL_PV_ROOT, "/host/local-pv")):
        if node_path.startswith(prefix + "/"):
            return mount + node_path[len(prefix):]
    raise ValueError(f"the node helper cannot write {node_path}")


CGROUP2_MAGIC = "63677270"  # include/uapi/linux/magic.h CGROUP2_SUPER_MAGIC


def start_timeout(nodes: list, timeout: float) -> float:
    """The bound of a wait for pods on every node: longer where one is a VM node."""
    if any(NODE_KIND_LABEL in (n.metadata.labels or {}) for n in nodes):
        return max(timeout, timeouts.EMULATED_NODE_FACTS)
    return timeout


def _wait_for_helper_pods(kube: Kube, namespace: str, timeout: float) -> list[str]:
    listed = kube.core.list_node().items
    nodes = len(listed)
    timeout = start_timeout(listed, timeout)
    try:
        return sorted(kube.wait_for_pods(namespace, None, nodes, "Ready", timeout,
                                         label_selector=f"app={HELPER}",
                                         what=f"the node helper on all {nodes} nodes"))
    except (Terminal, WaitTimeout) as err:
        raise RuntimeError(f"node helper: {err}") from None


def _from_node_objects(kube: Kube) -> Environment:
    nodes = kube.core.list_node().items
    info = nodes[0].status.node_info
    env = Environment(kubernetes_version=info.kubelet_version,
                      nodes=[n.metadata.name for n in nodes], kernel=info.kernel_version,
                      os_image=info.os_image, container_runtime=info.container_runtime_version)
    reported = {n.metadata.name: reported_features(kube.api.sanitize_for_serialization(n.status))
                for n in nodes}
    for name, facts in reported.items():
        env.per_node.setdefault(name, {}).update(facts)
    for n in nodes:  # the CRI implementation each node runs (keys the oracle's containerd rules)
        env.per_node[n.metadata.name].update(
            container_runtime=n.status.node_info.container_runtime_version,
            kernel=n.status.node_info.kernel_version, os_image=n.status.node_info.os_image,
            tmpfs_idmap=tmpfs_idmap(n.status.node_info.kernel_version))
        kind = (n.metadata.labels or {}).get(NODE_KIND_LABEL)
        if kind:
            env.node_kinds[n.metadata.name] = kind
    for feature in REPORTED_FEATURES:  # what every node has
        setattr(env, feature, all(f[feature] for f in reported.values()))
    env.tmpfs_idmap = all(f["tmpfs_idmap"] for f in env.per_node.values())
    return env


def tmpfs_idmap(kernel: str) -> bool:
    """The kernel `kernel` (a node's kernelVersion) mounts tmpfs idmapped: from Linux 6.3
    (mm/shmem.c sets FS_ALLOW_IDMAP since "shmem: support idmapped mounts for tmpfs";
    kubernetes.io user-namespaces: "you need at minimum Linux 6.3, as tmpfs started
    supporting idmap mounts in that version"). Unparsable: assumed able (the kubelet
    reports nothing of it; the case's run shows it)."""
    m = re.match(r"(\d+)\.(\d+)", kernel or "")
    return m is None or (int(m[1]), int(m[2])) >= (6, 3)


REPORTED_FEATURES = ("user_namespaces", "recursive_read_only_mounts", "supplemental_groups_policy")


def reported_features(status: dict, handler_name: str = "") -> dict[str, bool]:
    """A node's status (as JSON) -> what it reports it supports for the runtime handler
    `handler_name` (the default one is named ""); a kubelet that does not list the
    handler supports neither of its features."""
    handler = next((h for h in status.get("runtimeHandlers") or []
                    if (h.get("name") or "") == handler_name), {})
    features = handler.get("features") or {}
    return {"user_namespaces": bool(features.get("userNamespaces")),
            "recursive_read_only_mounts": bool(features.get("recursiveReadOnlyMounts")),
            "supplemental_groups_policy": bool((status.get("features") or {})
                                               .get("supplementalGroupsPolicy"))}


def _merge_node_script(env: Environment, stdout: str, node: str = "") -> None:
    facts = dict(line.split("=", 1) for line in stdout.splitlines() if "=" in line)
    env.lsms = env.lsms or [x for x in facts.get("lsm", "").split(",") if x]
    # kubelet's own tests: the apparmor module's "enabled" parameter; for
    # SELinux, a process label in SELinux form (user_u:role_r:type_t:level).
    env.apparmor = env.apparmor or facts.get("apparmor") == "Y"
    env.selinux = env.selinux or "selinux" in env.lsms or facts.get("label", "").count(":") >= 3
    # What a privileged container (and capabilities.add ALL) gets: containerd's own
    # effective set (containerd pkg/oci/spec_opts.go WithPrivileged ->
    # spec_opts_linux.go WithAllCurrentCapabilities -> pkg/cap Current, CapEff of
    # /proc/self; internal/cri/server/service_linux.go allCaps = cap.Current() for "ALL"),
    # read through hostPID from the containerd process itself, not from a container its
    # runtime made (a runtime that withheld one would set the expectation too) and not
    # from the node's init (containerd may run with less). CRI-O grants every capability
    # the kernel has (internal/factory/container/container.go SpecSetPrivileges ->
    # runtime-tools SetupPrivileged, and getOCICapabilitiesList for "add ALL": all of
    # capability.List() up to the kernel's last cap), which its runtimes can hold only
    # within CRI-O's own bounding set: read from the crio process. Neither seen: the
    # privileged helper's own bounding set. The smallest among nodes is what every case
    # can count on.
    kernel_caps = (1 << (int(facts["cap_last_cap"]) + 1)) - 1
    own = [int(line.split("=", 1)[1], 16) for line in stdout.splitlines()
           if line.startswith(("containerd_capeff=", "crio_capbnd="))]
    node_caps = functools.reduce(operator.and_, own, caps.ALL_CAPS) if own else int(facts["capbnd"], 16)
    node_caps &= kernel_caps
    env.grantable_caps &= node_caps
    env.kernel_caps = kernel_caps
    default_caps = int(facts["default_capbnd"], 16)
    env.runtime_default_caps &= default_caps
    default_inh = int(facts.get("default_capinh", "0"), 16)
    env.runtime_default_inh |= default_inh  # any node's: what a case may get
    userns = facts.get("userns_unconfined") == "yes"
    env.userns_unconfined = env.userns_unconfined is not False and userns
    # busybox's stat names no cgroup2 type (it prints UNKNOWN): its magic, CGROUP2_SUPER_MAGIC
    cgroup_version = 2 if (facts.get("cgroupfs") == "cgroup2fs"
                           or facts.get("cgroupfs_magic") == CGROUP2_MAGIC) else 1
    lsms = [x for x in facts.get("lsm", "").split(",") if x]
    apparmor = facts.get("apparmor") == "Y"
    profiles = sorted(p.strip() for p in facts.get("apparmor_profiles", "").split(";") if p.strip())
    limit = facts.get("max_user_namespaces", "")
    env.per_node.setdefault(node, {}).update(
        grantable_caps=node_caps, kernel_caps=kernel_caps, runtime_default_caps=default_caps,
        runtime_default_inh=default_inh,
        userns_unconfined=userns, cgroup_version=cgroup_version, lsms=lsms, apparmor=apparmor,
        selinux="selinux" in lsms or facts.get("label", "").count(":") >= 3,
        apparmor_profiles=profiles, seccomp=facts.get("seccomp", ""),
        max_user_namespaces=int(limit) if limit.isdigit() else 0)
    # The aggregate (what the first node has; `on` gives each node's own).
    if env.cgroup_version == 0:
        env.cgroup_version, env.apparmor_profiles = cgroup_version, profiles
        env.seccomp, env.max_user_namespaces = facts.get("seccomp", ""), env.per_node[node][
            "max_user_namespaces"]


@api_retry
def _configz(kube: Kube, node: str) -> dict:
    """The kubelet's live configuration (/configz, through the API server's node proxy:
    `get nodes/proxy`)."""
    resp = kube.core.connect_get_node_proxy_with_path(node, "configz", _preload_content=False)
    return json.loads(resp.data).get("kubeletconfig", {})


def kubelet_config_facts(config: dict) -> dict:
    """What the oracle takes from a kubelet's configuration (KubeletConfiguration v1beta1,
    as configz serves it): seccompDefault, and userNamespaces.idsPerPod (default 65536,
    staging/src/k8s.io/kubelet/config/v1beta1/types.go UserNamespaces)."""
    userns = config.get("userNamespaces") or {}
    return {"seccomp_default": bool(config.get("seccompDefault", False)),
            "userns_ids_per_pod": int(userns.get("idsPerPod") or USERNS_UNIT)}


class RuntimeUnavailable(Exception):
    """A RuntimeClass whose containers do not run here, with the runtime's own error;
    `line` says it in one line, explained by the nodes' bounding set where it can be
    (known only once the node helper ran: the probes run beside it)."""

    def __init__(self, runtime: Runtime, error: str):
        super().__init__(unavailable_line(runtime, error))
        self.runtime, self.error = runtime, error

    def line(self, grantable_caps: int = caps.ALL_CAPS) -> str:
        return unavailable_line(self.runtime, self.error, grantable_caps)


# Run in each container of the runtime probe: the capabilities the handler's kernel has
# (a privileged container runs) and what a plain one gets (as _DEFAULT_SCRIPT, in the
# default container).
_PRIVILEGED_SCRIPT = r"""
echo "cap_last_cap=$(cat /proc/sys/kernel/cap_last_cap)"
"""


def runtime_probe(image: str, runtime_class: str) -> dict:
    """A DaemonSet of RuntimeClass `runtime_class`: a privileged container and a plain
    one (Unconfined seccomp, like the helper's `default`), both sleepers to exec into."""
    sleeper = ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
    name = f"secctx-runtime-{runtime_class}"[:63].rstrip("-.")
    return {
        "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name},
        "spec": {"selector": {"matchLabels": {"app": name}}, "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {"runtimeClassName": runtime_class, "tolerations": [{"operator": "Exists"}],
                     "automountServiceAccountToken": False, "terminationGracePeriodSeconds": 0,
                     "containers": [
                         {"name": "privileged", "image": image, "command": sleeper,
                          "securityContext": {"privileged": True}},
                         {"name": "default", "image": image, "command": sleeper,
                          "securityContext": {"seccompProfile": {"type": "Unconfined"}}}]}}}}


def runtime_facts(stdout: str) -> dict:
    """The probe's output -> the Environment fields it measures for one node."""
    facts = dict(line.split("=", 1) for line in stdout.splitlines() if "=" in line)
    kernel_caps = (1 << (int(facts["cap_last_cap"]) + 1)) - 1
    return {"kernel_caps": kernel_caps,
            "runtime_default_caps": int(facts["default_capbnd"], 16),
            "runtime_default_inh": int(facts.get("default_capinh", "0"), 16),
            "userns_unconfined": facts.get("userns_unconfined") == "yes"}


def gather_runtime(kube: Kube, namespace: str, image: str, runtime: Runtime,
                   timeout: float = timeouts.NODE_FACTS) -> Runtime:
    """Learn per node what containers of `runtime` get (its probe DaemonSet) and what
    the kubelet reports for its handler; RuntimeUnavailable when they do not run."""
    ds = runtime_probe(image, runtime.name)
    name = ds["metadata"]["name"]
    listed = kube.core.list_node().items
    statuses = {n.metadata.name: kube.api.sanitize_for_serialization(n.status) for n in listed}
    timeout = start_timeout(listed, timeout)
    kube.apps.create_namespaced_daemon_set(namespace, ds)
    try:
        pods = _wait_for_probe(kube, namespace, name, len(statuses), runtime, timeout)
        for pod, node in pods.items():
            out = "".join(kube.exec(pod, namespace, c, ["sh", "-c", script]).stdout
                          for c, script in (("privileged", _PRIVILEGED_SCRIPT),
                                            ("default", _DEFAULT_SCRIPT)))
            runtime.per_node[node] = {**reported_features(statuses[node], runtime.handler),
                                      **runtime_facts(out)}
        return runtime
    finally:
        kube.apps.delete_namespaced_daemon_set(name, namespace, grace_period_seconds=0,
                                               propagation_policy="Foreground")


def _wait_for_probe(kube: Kube, namespace: str, name: str, nodes: int, runtime: Runtime,
                    timeout: float) -> dict[str, str]:
    """{pod: node} once the probe is Ready on every node; else RuntimeUnavailable with the
    runtime's own error, as soon as a pod shows it (a container's waiting state, or the
    kubelet's second sandbox failure: a handler that cannot run here fails there, again)."""
    try:
        pods = kube.wait_for_pods(namespace, None, nodes, "Ready", timeout,
                                  sandbox_failures=2, label_selector=f"app={name}",
                                  what=f"the {runtime.name} probe's pods",
                                  final=tuple(limit.says for limit in HOST_LIMITS))
    except Terminal as err:
        raise RuntimeUnavailable(runtime, str(err)) from None
    except WaitTimeout:
        warnings = [e for e in kube.events(namespace) if e.type == "Warning"
                    and (e.involved_object.name or "").startswith(name)]
        why = warnings[-1].message if warnings else f"its pods were not Ready within {timeout:.0f}s"
        raise RuntimeUnavailable(runtime, why) from None
    return {p.metadata.name: p.spec.node_name for p in pods.values()}


def unavailable_line(runtime: Runtime, error: str, grantable_caps: int = caps.ALL_CAPS) -> str:
    """One line: the runtime's own error and, where a capability the nodes lack explains
    it, which and why."""
    line = (f"RuntimeClass {runtime.name} (handler {runtime.handler}) cannot run containers "
            f"here: {' '.join(error.split())}")
    for limit in HOST_LIMITS:
        if limit.says in error and not grantable_caps & caps.encode([limit.cap]):
            line += f" ({limit.why}, which the nodes' bounding set lacks: the host cannot grant it)"
    return line
