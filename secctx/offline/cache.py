"""Where built artifacts live: outside the clone, keyed by their versions.

A fresh clone on a machine that built before reuses everything; SECCTX_CACHE
moves it (CI runners with a cache action point it at a restored directory).
"""
from __future__ import annotations

import os
from pathlib import Path


def root() -> Path:
    return Path(os.environ.get("SECCTX_CACHE", Path.home() / ".cache" / "secctx"))


def path(*parts: str) -> Path:
    return root().joinpath(*parts)
