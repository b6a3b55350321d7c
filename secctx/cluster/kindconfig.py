"""The kind cluster configuration the suite asks for, as plain data.

Kept pure so that it is unit-tested and so that a kept cluster can be
compared with the configuration a new run wants (reuse only if equal).
"""
from __future__ import annotations

import shutil
from pathlib import Path

import yaml


def host_cgroup_version(root: Path = Path("/sys/fs/cgroup")) -> int:
    return 2 if (root / "cgroup.controllers").exists() else 1


# What a mirror given without REGISTRY= stands in for: the registries the suite's
# images come from (the node image's own control-plane images are preloaded).
MIRRORED = ("docker.io", "registry.k8s.io", "ghcr.io")
CERTS_D = "/etc/containerd/certs.d"


def registry_mirrors(values: list[str]) -> dict[str, str]:
    """--registry-mirror [REGISTRY=]URL values as {registry: URL}. Without REGISTRY the
    URL serves MIRRORED and its own host (so that --image-registry can name it).
    Raises ValueError with cause and fix."""
    out: dict[str, str] = {}
    for value in values:
        registry, sep, url = value.rpartition("=")
        scheme, _, host = url.partition("://")
        if scheme not in ("http", "https") or not host.strip("/"):
            raise ValueError(f"--registry-mirror {value!r}: the mirror must be a URL as the "
                             "nodes reach it, http:// or https://HOST[:PORT] (optionally "
                             "REGISTRY=URL, e.g. docker.io=http://kind-registry:5000)")
        for r in ([registry] if sep else [*MIRRORED, host.strip("/").split("/")[0]]):
            out[r] = url.rstrip("/")
    return out


def hosts_toml(url: str) -> str:
    """containerd's hosts.toml: pull and resolve from `url` only (no fallback to the
    upstream registry: a mirror that lacks an image says so, nothing leaves)."""
    return (f'# --registry-mirror (secctx-conformance)\nserver = "{url}"\n\n'
            f'[host."{url}"]\n  capabilities = ["pull", "resolve"]\n')


# The kubelet's CRI socket per CRI implementation (kubeadm nodeRegistration.criSocket).
CRI_SOCKETS = {"containerd": "unix:///run/containerd/containerd.sock",
               "crio": "unix:///var/run/crio/crio.sock"}


def kind_config(*, name: str, cgroup_v1: bool, short_bounding_set: bool,
                coredns: bool = True, workers: int = 0, seccomp_default: bool = False,
                mirrors: dict[str, str] | None = None, certs_dir: Path | None = None,
                cri: str = "containerd") -> dict:
    """seccomp_default: the kubelet's seccompDefault (pods without a profile get
    RuntimeDefault), a second configuration the suite is run on; mirrors: the
    nodes pull through them (--registry-mirror), with hosts files in certs_dir;
    cri: the nodes' CRI implementation (a CRI-O node image for "crio"), whose socket
    kubeadm gives the kubelet."""
    if cri not in CRI_SOCKETS:
        raise ValueError(f"unknown CRI {cri!r}: choose one of {', '.join(CRI_SOCKETS)}")
    if cri != "containerd" and mirrors:
        raise ValueError("--registry-mirror configures containerd's hosts.toml; a CRI-O node "
                         "does not read it: drop --registry-mirror or --cri crio")
    patches: list[str] = []
    if cri != "containerd":
        # kind's kubeadm config names containerd's socket (pkg/cluster/internal/kubeadm
        # config.go); kubeadm writes the kubelet's containerRuntimeEndpoint from it.
        registration = {"nodeRegistration": {"criSocket": CRI_SOCKETS[cri]}}
        patches += [yaml.safe_dump({"kind": kind, **registration})
                    for kind in ("InitConfiguration", "JoinConfiguration")]
    kubelet: dict = {}
    if cgroup_v1:
        # Kubernetes >= 1.35 refuses to start on cgroup v1 unless told not to.
        kubelet["failCgroupV1"] = False
    if seccomp_default:
        kubelet["seccompDefault"] = True
    if kubelet:
        patches.append(yaml.safe_dump({"kind": "KubeletConfiguration", **kubelet}))
    if not coredns:
        # kind already skips preflight; skipPhases replaces the list, so repeat it.
        patches.append(yaml.safe_dump({"kind": "InitConfiguration",
                                       "skipPhases": ["preflight", "addon/coredns"]}))
    config: dict = {
        "kind": "Cluster",
        "apiVersion": "kind.x-k8s.io/v1alpha4",
        "name": name,
        "nodes": [{"role": "control-plane"}] + [{"role": "worker"} for _ in range(workers)],
    }
    if patches:
        config["kubeadmConfigPatches"] = patches
    containerd: list[str] = []
    if short_bounding_set and cri == "containerd":  # (CRI-O: the capability shim clamps)
        # containerd cannot set oom_score_adj below its own without
        # CAP_SYS_RESOURCE; unrestricted, every sandbox fails with
        # "can't get final child's PID from pipe: EOF".
        containerd.append('[plugins."io.containerd.grpc.v1.cri"]\n  restrict_oom_score_adj = true\n')
    if mirrors:
        # kind's documented way: containerd reads per-registry hosts.toml files
        # (kind's "local registry" guide), mounted from the host into each node.
        containerd.append(f'[plugins."io.containerd.grpc.v1.cri".registry]\n'
                          f'  config_path = "{CERTS_D}"\n')
        for node in config["nodes"]:
            node["extraMounts"] = [{"hostPath": str(certs_dir), "containerPath": CERTS_D,
                                    "readOnly": True}]
    if containerd:
        config["containerdConfigPatches"] = containerd
    return config


def write_hosts_files(certs_dir: Path, mirrors: dict[str, str]) -> None:
    """CERTS_D as the nodes see it: REGISTRY/hosts.toml for each mirror. The
    directory itself stays (a kept cluster's nodes have it mounted: a new one
    would not be theirs); only its entries change."""
    certs_dir.mkdir(parents=True, exist_ok=True)
    for old in certs_dir.iterdir():
        if old.name not in mirrors:
            shutil.rmtree(old)
    for registry, url in mirrors.items():
        d = certs_dir / registry
        d.mkdir(parents=True, exist_ok=True)
        (d / "hosts.toml").write_text(hosts_toml(url))


def dump(config: dict) -> str:
    return yaml.safe_dump(config, sort_keys=False)
