"""kind clusters, through pytest-kind's KindCluster.

pytest-kind downloads a pinned, old kind (v0.17) and creates clusters with
no bound on time. We keep its class (paths, kubeconfig, image loading,
deletion) and give it our kind binary, a kind config and time limits.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

from pytest_kind import KindCluster as _PytestKindCluster

from .. import cache
from ..offline import log
from . import kindconfig


class ClusterError(RuntimeError):
    """A kind command failed; the message carries kind's own output."""


class KindCluster(_PytestKindCluster):
    def __init__(self, name: str, *, kind_path: Path, kubectl_path: Path | None,
                 image: str | None, config: dict, kubeconfig: Path | None = None,
                 cri: str = "containerd"):
        super().__init__(name, kubeconfig=kubeconfig, image=image, kind_path=kind_path,
                         kubectl_path=kubectl_path)
        # Cluster state lives outside the checkout, so a fresh clone (CI) finds
        # a kept cluster and its identity.
        self.path = cache.cluster_state(name)
        self.path.mkdir(parents=True, exist_ok=True)
        self.kubeconfig_path = kubeconfig or (self.path / "kubeconfig")
        self.config = config
        self.config_path = self.path / "kind-config.yaml"
        self.cri = cri  # the nodes' CRI implementation: how images are loaded into them

    def ensure_kind(self) -> None:
        if not Path(self.kind_path).is_file():
            raise ClusterError(f"kind is missing at {self.kind_path}: install kind >= v0.32 and "
                               "pass its path with --kind-bin, or drop --kind-bin and the suite "
                               "builds kind from its Go module (python -m secctx cluster-up)")

    def exists(self) -> bool:
        self.ensure_kind()
        out = self._kind(["get", "clusters"], timeout=30)
        return self.name in out.split()

    def create(self, timeout: float = 300) -> None:  # type: ignore[override]
        """`kind create cluster` with our config; kind waits for the control plane."""
        self.ensure_kind()
        self.config_path.write_text(kindconfig.dump(self.config))
        args = ["create", "cluster", f"--name={self.name}", f"--kubeconfig={self.kubeconfig_path}",
                f"--config={self.config_path}", f"--wait={int(timeout * 0.8)}s", "--retain"]
        if self.image:
            args.append(f"--image={self.image}")
        try:
            self._kind(args, timeout=timeout)
        except ClusterError as err:
            logs = self.path / "create-failure-logs"
            subprocess.run([str(self.kind_path), "export", "logs", str(logs), f"--name={self.name}"],
                           capture_output=True, timeout=120)
            self.delete()
            raise ClusterError(f"{err}\nnode logs exported to {logs}") from None

    def delete(self, timeout: float = 120) -> None:  # type: ignore[override]
        self._kind(["delete", "cluster", f"--name={self.name}",
                    f"--kubeconfig={self.kubeconfig_path}"], timeout=timeout)
        self.config_path.unlink(missing_ok=True)

    def load_images(self, tags: list[str], timeout: float = 300) -> None:
        if self.cri == "crio":  # kind's loader imports with ctr, into containerd
            from ..offline import crionode
            crionode.load_images(self.nodes(), tags, timeout)
        elif tags:
            self._kind(["load", "docker-image", "--name", self.name, *tags], timeout=timeout)

    @staticmethod
    def build_release_node_image(kind_path: Path, version: str, tag: str,
                                 timeout: float = 3600) -> None:
        """`kind build node-image --type release VERSION`: kind downloads that
        release's binaries (dl.k8s.io) and builds a node image from them."""
        try:
            with log.heartbeat(f"kind build node-image {version}"):
                proc = subprocess.run([str(kind_path), "build", "node-image", "--type",
                                       "release", version, "--image", tag],
                                      capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise ClusterError(f"kind build node-image {version} did not finish within "
                               f"{timeout:.0f}s") from None
        if proc.returncode != 0:
            raise ClusterError(f"kind build node-image --type release {version} failed (it "
                               f"needs dl.k8s.io; give --kind-image, or use --mode offline):\n"
                               f"{proc.stderr[-3000:]}")

    def running(self) -> bool:
        """Every node container is running (a host restart stops them for good)."""
        nodes = self.nodes()
        if not nodes:
            return False
        proc = subprocess.run(["docker", "inspect", "--format", "{{.State.Running}}", *nodes],
                              capture_output=True, text=True, timeout=30)
        return proc.returncode == 0 and set(proc.stdout.split()) == {"true"}

    def nodes(self) -> list[str]:
        return self._kind(["get", "nodes", f"--name={self.name}"], timeout=30).split()

    def _kind(self, args: list[str], timeout: float) -> str:
        self.ensure_kind()
        try:
            with log.heartbeat("kind " + " ".join(args[:2])):
                proc = subprocess.run([str(self.kind_path), *args], capture_output=True,
                                      text=True, timeout=timeout)
        except OSError as err:  # not executable, wrong architecture
            raise ClusterError(f"cannot run kind at {self.kind_path} ({err.strerror or err}): "
                               "pass a working kind >= v0.32 with --kind-bin") from None
        except subprocess.TimeoutExpired as err:
            raise ClusterError(f"kind {' '.join(args[:2])} did not finish within {timeout:.0f}s:\n"
                               f"{(err.stderr or b'')[-3000:]!r}") from None
        if proc.returncode != 0:
            raise ClusterError(f"kind {' '.join(args)} failed:\n{proc.stderr[-4000:]}")
        return proc.stdout
