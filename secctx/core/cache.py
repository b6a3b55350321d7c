"""Where everything that outlives a run lives: one root, outside the clone.

Under the root: built artifacts keyed by their versions (offline builds, the
capability shim), tools built from their modules (`tools/`, actionlint),
locks, and the state of each cluster (`clusters/<name>`: kind's kubeconfig
and config, the identity a kept cluster is reused by, the shared-cluster
record of pytest-xdist workers). A fresh clone on a machine that built before
reuses everything.

The root is $SECCTX_CACHE when set (CI runners with a cache action point it at
a restored directory), else ~/.cache/secctx.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


def root(env: Mapping[str, str] | None = None) -> Path:
    """The cache root for `env` (default: this process's environment)."""
    env = os.environ if env is None else env
    return Path(env.get("SECCTX_CACHE") or Path.home() / ".cache" / "secctx")


def path(*parts: str) -> Path:
    return root().joinpath(*parts)


def cluster_state(name: str, env: Mapping[str, str] | None = None) -> Path:
    """The state directory of the cluster `name` (not created here)."""
    return root(env) / "clusters" / name
