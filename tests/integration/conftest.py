"""The integration tests' own kind cluster, `secctx-robust`.

Made once per session with the CLI (`python -m secctx cluster-up`, ~20-40 s
when the node image is cached) and deleted at the end. Tests run the real
suite against it as a subprocess and count what each run leaves behind
(robust_helpers.py).
"""
from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from kubernetes import client, config

from secctx.kube import Kube
from secctx.run.session import LOCAL_CLASS

from .robust_helpers import CLUSTER, Robust, cli

# Each nested run here is bounded by its own timeout (up to 1200 s: a set-up as the hosted
# runner's user); the ini backstop of 300 s would cut it first under load (CI at load 87).
NESTED_RUN_BACKSTOP = 1500


def pytest_collection_modifyitems(items):
    for item in items:
        if "integration" in item.path.parts and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(NESTED_RUN_BACKSTOP))


@pytest.fixture(scope="package")
def robust() -> Robust:
    """`secctx-robust`, created (or reused) with the CLI, deleted after the last
    test of this package (not at the end of a session that runs `suites` next
    with a cluster of its own). One cluster for the three modules keeps their
    total time within a few minutes."""
    up = cli("cluster-up", "--cluster-name", CLUSTER)
    if up.returncode != 0:
        pytest.fail(f"INFRASTRUCTURE: cluster-up --cluster-name {CLUSTER} failed:\n"
                    f"{up.stderr[-3000:]}", pytrace=False)
    kubeconfig = Path(re.search(r"export KUBECONFIG=(\S+)", up.stdout).group(1))
    mode = re.search(r"mode: (\w+) \(", up.stderr).group(1)
    yield Robust(CLUSTER, kubeconfig, Kube(config.new_client_from_config(str(kubeconfig))), mode)
    down = cli("cluster-down", "--cluster-name", CLUSTER, timeout=300)
    assert down.returncode == 0, down.stderr


@pytest.fixture
def clean(robust: Robust) -> Robust:
    """The cluster with nothing of earlier runs on it (a test that failed half-way
    must not make the next one fail)."""
    left = robust.ours_left()
    if left.get("namespaces"):
        robust.delete_namespaces_and_wait(left["namespaces"])
    for pv in left.get("persistentvolumes", []):
        robust.kube.core.delete_persistent_volume(pv)
    if left.get("storageclass"):
        client.StorageV1Api(robust.kube.api).delete_storage_class(LOCAL_CLASS)
    deadline = time.monotonic() + 90
    while robust.ours_left() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not robust.ours_left(), "objects of earlier runs would not go away"
    return robust
