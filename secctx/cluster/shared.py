"""One cluster per test run, however many pytest-xdist workers there are.

The first worker to arrive brings the cluster up under a file lock and
records it; the others read the record. Each worker counts itself in and out;
the last one out tears the cluster down (unless it is kept).
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from ..images.imagemap import ImageMap
from ..images.load import Tally
from . import provision
from .kind import KindCluster


@dataclass
class SharedCluster:
    state_dir: Path
    run_id: str

    @property
    def _lock(self) -> FileLock:
        return FileLock(str(self.state_dir / "cluster.lock"))

    @property
    def _record(self) -> Path:
        return self.state_dir / f"cluster-{self.run_id}.json"

    def acquire(self, opts: provision.Options) -> provision.Cluster:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with self._lock:
            if self._record.exists():
                state = json.loads(self._record.read_text())
                state["users"] += 1
            else:
                cluster = provision.bring_up(opts)
                state = {"users": 1, "kubeconfig": str(cluster.kubeconfig), "mode": cluster.mode,
                         "mode_reason": cluster.mode_reason, "node_image": cluster.node_image,
                         "image_map_mode": cluster.image_map.mode,
                         "image_registry": cluster.image_map.registry,
                         "tally": dataclasses.asdict(cluster.tally),
                         "kind": cluster.kind.name if cluster.kind else None,
                         "kind_path": str(cluster.kind.kind_path) if cluster.kind else None,
                         "cri": cluster.kind.cri if cluster.kind else None,
                         "created": cluster.created}
            self._record.write_text(json.dumps(state))
        return self._cluster(state, opts)

    def is_last_user(self) -> bool:
        with self._lock:
            return not self._record.exists() or json.loads(self._record.read_text())["users"] <= 1

    def release(self, keep: bool) -> provision.Cluster | None:
        """Count this worker out; the last one deletes the cluster unless kept."""
        with self._lock:
            if not self._record.exists():
                return None
            state = json.loads(self._record.read_text())
            state["users"] -= 1
            if state["users"] > 0:
                self._record.write_text(json.dumps(state))
                return None
            self._record.unlink()
        cluster = self._cluster(state, None)
        provision.tear_down(cluster, keep=keep)
        return cluster

    @staticmethod
    def _cluster(state: dict, opts: provision.Options | None) -> provision.Cluster:
        mode = state["mode"]
        kind = None
        if state["kind"]:
            kind = KindCluster(state["kind"], kind_path=Path(state["kind_path"]),
                               image=state["node_image"], config={},
                               kubeconfig=Path(state["kubeconfig"]),
                               cri=state.get("cri") or "containerd")
        # Records of older runs lack image_map_mode: their existing clusters used online.
        image_map_mode = state.get("image_map_mode") or ("online" if mode == "existing" else mode)
        return provision.Cluster(
            kubeconfig=Path(state["kubeconfig"]), mode=mode, mode_reason=state["mode_reason"],
            image_map=ImageMap.load(image_map_mode, opts.image_map if opts else None,
                                    state.get("image_registry")),
            node_image=state["node_image"], kind=kind, created=state["created"],
            tally=Tally(**state.get("tally", {})))
