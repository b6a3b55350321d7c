"""What a runtime needs of the host that a host may not grant: one home for the
offline builder (nothing is built that cannot run), the run's default runtimes,
and the explanation of a runtime's failure.

A kind node is a privileged container: its bounding set is at most the host's, so
a capability missing from the host's bounding set is missing on every node.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..core import caps


@dataclass(frozen=True)
class HostLimit:
    runtime: str    # the RuntimeClass (and containerd handler) name
    component: str  # the offline build's component (secctx.offline.components)
    says: str       # what the runtime's error says when the host lacks `cap`
    cap: str
    why: str


HOST_LIMITS = (
    HostLimit("runsc", "gvisor", "oom_score_adj: permission denied", "SYS_RESOURCE",
              "gVisor's shim sets its OOM score to -999, and lowering it needs CAP_SYS_RESOURCE"),
)


def bounding_set(status: Path = Path("/proc/self/status")) -> int:
    """This process's capability bounding set (inherited, whatever the user)."""
    for line in status.read_text().splitlines():
        if line.startswith("CapBnd:"):
            return int(line.split()[1], 16)
    return caps.ALL_CAPS


def unmet(grantable: int) -> list[HostLimit]:
    """The limits whose capability `grantable` lacks."""
    return [limit for limit in HOST_LIMITS if not grantable & caps.encode([limit.cap])]


def left_out(grantable: int | None = None) -> dict[str, str]:
    """{runtime: why} for the runtimes the host cannot run (default: this host)."""
    grantable = bounding_set() if grantable is None else grantable
    return {limit.runtime: f"{limit.why}, which the host's bounding set lacks"
            for limit in unmet(grantable)}
