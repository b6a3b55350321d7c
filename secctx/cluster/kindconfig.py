"""The kind cluster configuration the suite asks for, as plain data.

Kept pure so that it is unit-tested and so that a kept cluster can be
compared with the configuration a new run wants (reuse only if equal).
"""
from __future__ import annotations

from pathlib import Path

import yaml


def host_cgroup_version(root: Path = Path("/sys/fs/cgroup")) -> int:
    return 2 if (root / "cgroup.controllers").exists() else 1


def kind_config(*, name: str, cgroup_v1: bool, short_bounding_set: bool,
                coredns: bool = True, workers: int = 0, seccomp_default: bool = False) -> dict:
    """seccomp_default: the kubelet's seccompDefault (pods without a profile get
    RuntimeDefault), a second configuration the suite is run on."""
    patches: list[str] = []
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
    if short_bounding_set:
        # containerd cannot set oom_score_adj below its own without
        # CAP_SYS_RESOURCE; unrestricted, every sandbox fails with
        # "can't get final child's PID from pipe: EOF".
        config["containerdConfigPatches"] = [
            '[plugins."io.containerd.grpc.v1.cri"]\n  restrict_oom_score_adj = true\n'
        ]
    return config


def dump(config: dict) -> str:
    return yaml.safe_dump(config, sort_keys=False)
