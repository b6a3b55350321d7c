"""Enough inotify instances for the kind clusters on this host.

Every kind node's systemd, kubelet and containerd hold inotify instances, all
charged to root (about 74 per node measured here), and Debian's default
fs.inotify.max_user_instances is 128: the second or third cluster's kube-proxy
then crash-loops on "too many open files" and coredns never becomes ready
(kind's known issue; CI saw it as "deployment kube-system/coredns not ready").
We raise the limits to kind's recommendation before creating a cluster and
host-restore puts them back.
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from ..core import run_command
from ..core.run_command import CommandError
from ..offline import log

# kind's docs (known-issues, "Pod errors due to too many open files").
WANTED = {"fs/inotify/max_user_instances": 512, "fs/inotify/max_user_watches": 524288}
PROC_SYS = Path("/proc/sys")


STATE_NAME = "host-inotify.json"  # in the engine's state directory, beside host-sysctls.json


def short(proc_sys: Path | None = None) -> dict[str, int]:
    """Each limit below WANTED, with its current value."""
    now = {k: int(((proc_sys or PROC_SYS) / k).read_text()) for k in WANTED}
    return {k: v for k, v in now.items() if v < WANTED[k]}


def ensure(state_dir: Path) -> None:
    """Raise the short limits (root writes /proc/sys; otherwise sudo -n sysctl); one
    warning line with the fix when neither can."""
    low = short()
    if not low:
        return
    change = ", ".join(f"{k.replace('/', '.')} {v} -> {WANTED[k]}" for k, v in low.items())
    if os.geteuid() == 0:
        state = state_dir / STATE_NAME
        state.parent.mkdir(parents=True, exist_ok=True)
        if not state.exists():  # the first raise keeps the host's own values
            state.write_text(json.dumps(low))
        for key in low:
            (PROC_SYS / key).write_text(str(WANTED[key]))
        log.step(f"raised {change} (several kind clusters; host-restore puts them back)")
        return
    args = [f"{k.replace('/', '.')}={WANTED[k]}" for k in low]
    try:
        raised = run_command.run(["sudo", "-n", "sysctl", "-w", *args], timeout=run_command.QUERY,
                                 check=False).ok
    except CommandError:  # no sudo on this host: as good as a sudo that refuses
        raised = False
    if raised:
        log.step(f"raised {change} through sudo (several kind clusters; left raised)")
    else:
        log.step(f"WARNING: inotify limits are low ({change} wanted) and neither root nor "
                 f"sudo -n can raise them: a second kind cluster's kube-proxy may fail with "
                 f"'too many open files'; fix: sudo sysctl -w {' '.join(args)}")


def kind_nodes_running() -> int:
    proc = run_command.run(["docker", "ps", "-q", "--filter", "label=io.x-k8s.kind.cluster"],
                           timeout=run_command.QUERY, check=False)
    return len(proc.stdout.split()) if proc.ok else 0


def restore(state_dir: Path, nodes_running: Callable[[], int] = kind_nodes_running) -> None:
    """Put back what ensure() raised as root, once no kind node runs (a kept or another
    run's cluster would lose its headroom)."""
    state = state_dir / STATE_NAME
    if os.geteuid() != 0 or not state.exists():
        return
    if (left := nodes_running()):
        log.step(f"inotify limits stay raised: {left} kind node(s) still run")
        return
    for key, value in json.loads(state.read_text()).items():
        (PROC_SYS / key).write_text(str(value))
    state.unlink()
