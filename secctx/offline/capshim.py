"""Build the capability shim (capshim/) and decide where it is needed."""
from __future__ import annotations

import hashlib
from pathlib import Path

from ..core import cache, paths
from .gobuild import go, go_env

SOURCE = paths.CAPSHIM_SOURCE


def source_digest() -> str:
    h = hashlib.sha256()
    for f in sorted(SOURCE.glob("*")):
        if f.suffix in (".go", ".mod"):
            h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:16]


def build() -> Path:
    """The static shim binary, rebuilt only when its source changes."""
    out = cache.path("capshim", source_digest(), "runc")
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        go(["build", "-trimpath", "-ldflags", "-s -w", "-o", str(out), "."], SOURCE,
           go_env(CGO_ENABLED="0"))
    return out


def missing_capabilities(status: str = "/proc/self/status",
                         last_cap: str = "/proc/sys/kernel/cap_last_cap") -> int:
    """Bits the kernel knows but this host's bounding set lacks (0 on a normal host)."""
    bound = next(int(line.split()[1], 16) for line in Path(status).read_text().splitlines()
                 if line.startswith("CapBnd:"))
    full = (1 << (int(Path(last_cap).read_text()) + 1)) - 1
    return full & ~bound
