"""The suite's KindCluster: which kind commands it runs, and what a failed one says. A
shell script stands in for kind (it records its arguments; real processes, no mock of
run_command); the real kind is proven by the suite's own runs."""
from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from secctx.cluster.kind import ClusterError, KindCluster

FAKE_KIND = """#!/bin/sh
echo "$*" >> "$(dirname "$0")/calls"
case "$1 $2" in
  "get clusters") echo other; echo unit ;;
  "get nodes") echo unit-control-plane ;;
  "create cluster") echo "ERROR: failed to create cluster: boom" >&2; exit 1 ;;
  "export logs") ;;
  "delete cluster") ;;
  "load docker-image") ;;
  "hang here") exec sleep 30 ;;
  *) echo "unknown: $*" >&2; exit 2 ;;
esac
"""


@pytest.fixture
def kind(tmp_path, monkeypatch) -> KindCluster:
    monkeypatch.setenv("SECCTX_CACHE", str(tmp_path / "cache"))
    binary = tmp_path / "bin" / "kind"
    binary.parent.mkdir()
    binary.write_text(FAKE_KIND)
    binary.chmod(0o755)
    return KindCluster("unit", kind_path=binary, image="node:1", config={"kind": "Cluster"})


def calls(kind: KindCluster) -> list[str]:
    return (Path(kind.kind_path).parent / "calls").read_text().splitlines()


def test_exists_reads_kinds_list_of_clusters(kind):
    assert kind.exists()
    kind.name = "absent"
    assert not kind.exists()


def test_a_failed_create_names_the_command_keeps_the_node_logs_and_leaves_no_cluster(kind):
    with pytest.raises(ClusterError) as err:
        kind.create(timeout=100)
    create = [str(kind.kind_path), "create", "cluster", "--name=unit",
              f"--kubeconfig={kind.kubeconfig_path}", f"--config={kind.config_path}", "--wait=80s",
              "--retain", "--image=node:1"]
    logs = kind.path / "create-failure-logs"
    assert str(err.value) == (f"`{shlex.join(create)}` exited with code 1:\n"
                              "ERROR: failed to create cluster: boom\n"
                              f"node logs exported to {logs}")
    assert [c.split()[:2] for c in calls(kind)] == [["create", "cluster"], ["export", "logs"],
                                                   ["delete", "cluster"]]
    assert not kind.config_path.exists()  # deleted with the cluster


def test_images_are_loaded_with_one_kind_load_and_none_without_images(kind):
    kind.load_images([])
    assert not (Path(kind.kind_path).parent / "calls").exists()
    kind.load_images(["a:1", "b:2"])
    assert calls(kind) == ["load docker-image --name unit a:1 b:2"]


def test_a_kind_command_past_its_bound_says_so(kind):
    with pytest.raises(ClusterError, match=r"^`\S+ hang here` did not finish within 0.5s$"):
        kind._kind(["hang", "here"], timeout=0.5)
