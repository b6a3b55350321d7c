"""kind clusters: the few kind commands the suite needs, bounded, over run_command.

The suite brings its own kind (>= v0.32, built from its Go module or given with
--kind-bin), a kind config of its own (kindconfig) and a bound on every command; the
cluster's state (kubeconfig, config, identity) lives in the cache, outside the
checkout, so that a fresh clone (CI) finds a kept cluster. (This replaced
pytest-kind's KindCluster, whose kind was pinned to v0.17 and whose commands had no
bound.)
"""
from __future__ import annotations

from pathlib import Path

from ..core import cache, run_command, timeouts
from ..core.run_command import CommandError
from ..offline import crionode, log
from . import kindconfig


class ClusterError(RuntimeError):
    """A kind command failed; the message carries kind's own output."""


class KindCluster:
    """One kind cluster by name: create (with a config file), delete, nodes, images."""

    def __init__(self, name: str, *, kind_path: Path, image: str | None, config: dict,
                 kubeconfig: Path | None = None, cri: str = "containerd"):
        self.name = name
        self.kind_path = Path(kind_path)
        self.image = image  # the node image (None: kind's default)
        self.path = cache.cluster_state(name)
        self.path.mkdir(parents=True, exist_ok=True)
        self.kubeconfig_path = kubeconfig or (self.path / "kubeconfig")
        self.config = config
        self.config_path = self.path / "kind-config.yaml"
        self.cri = cri  # the nodes' CRI implementation: how images are loaded into them

    def ensure_kind(self) -> None:
        if not self.kind_path.is_file():
            raise ClusterError(f"kind is missing at {self.kind_path}: install kind >= v0.32 and "
                               "pass its path with --kind-bin, or drop --kind-bin and the suite "
                               "builds kind from its Go module (python -m secctx cluster-up)")

    def exists(self) -> bool:
        return self.name in self._kind(["get", "clusters"], timeout=run_command.QUERY).split()

    def create(self, timeout: float = timeouts.KIND_CREATE) -> None:
        """`kind create cluster` with our config; kind waits for the control plane.
        A failed create leaves the nodes' logs in the state directory, and no cluster."""
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
            try:  # best effort: the logs help, but the create's own error is the one to show
                run_command.run([self.kind_path, "export", "logs", logs, f"--name={self.name}"],
                                timeout=timeouts.KIND_DELETE)
                where = f"node logs exported to {logs}"
            except CommandError as export:
                where = f"node logs not exported ({export.problem})"
            self.delete()
            raise ClusterError(f"{err}\n{where}") from None

    def delete(self, timeout: float = timeouts.KIND_DELETE) -> None:
        self._kind(["delete", "cluster", f"--name={self.name}",
                    f"--kubeconfig={self.kubeconfig_path}"], timeout=timeout)
        self.config_path.unlink(missing_ok=True)

    def load_images(self, tags: list[str], timeout: float = timeouts.IMAGE_LOAD) -> None:
        if self.cri == "crio":  # kind's loader imports with ctr, into containerd
            crionode.load_images(self.nodes(), tags, timeout)
        elif tags:
            self._kind(["load", "docker-image", "--name", self.name, *tags], timeout=timeout)

    @staticmethod
    def build_release_node_image(kind_path: Path, version: str, tag: str,
                                 timeout: float = timeouts.RELEASE_NODE_IMAGE) -> None:
        """`kind build node-image --type release VERSION`: kind downloads that
        release's binaries (dl.k8s.io) and builds a node image from them."""
        try:
            with log.heartbeat(f"kind build node-image {version}"):
                run_command.run([kind_path, "build", "node-image", "--type", "release", version,
                                 "--image", tag], timeout=timeout)
        except CommandError as err:
            if not err.started or err.timed_out:
                raise ClusterError(str(err)) from None
            raise ClusterError(f"kind build node-image --type release {version} failed (it "
                               f"needs dl.k8s.io; give --kind-image, or use --mode offline):\n"
                               f"{err.tail()}") from None

    def running(self) -> bool:
        """Every node container is running (a host restart stops them for good)."""
        nodes = self.nodes()
        if not nodes:
            return False
        proc = run_command.run(["docker", "inspect", "--format", "{{.State.Running}}", *nodes],
                               timeout=run_command.QUERY, check=False)
        return proc.ok and set(proc.stdout.split()) == {"true"}

    def nodes(self) -> list[str]:
        return self._kind(["get", "nodes", f"--name={self.name}"], timeout=run_command.QUERY).split()

    def _kind(self, args: list[str], timeout: float) -> str:
        self.ensure_kind()
        try:
            with log.heartbeat("kind " + " ".join(args[:2])):
                return run_command.run([self.kind_path, *args], timeout=timeout).stdout
        except CommandError as err:
            if not err.started:  # missing since the check, not executable, wrong architecture
                raise ClusterError(f"cannot run kind at {self.kind_path} ({err.problem}): "
                                   "pass a working kind >= v0.32 with --kind-bin") from None
            raise ClusterError(str(err)) from None
