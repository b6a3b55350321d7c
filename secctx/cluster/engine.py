"""Make a working Docker engine available.

Order: use a running engine; else install Debian's docker.io if dockerd is
missing and start dockerd ourselves. On hosts whose capability bounding set
is short, our dockerd runs every container through the capability shim so
that kind's privileged node containers can start.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

from ..core import run_command, timeouts
from ..core.run_command import CommandError
from ..offline import capshim, log
from . import inotify

SHIM_DIR = Path("/usr/local/lib/secctx")
SHIM_RUNTIME = "secctx-runc"
STATE_DIR = Path("/var/lib/secctx")
DOCKERD_LOG = Path("/var/log/secctx-dockerd.log")
# kubelet rewrites these on the host, as on any kind host; we restore them.
KUBELET_SYSCTLS = ("vm/overcommit_memory", "kernel/panic", "kernel/panic_on_oops")
APT_TIMEOUT = 1200  # apt-get update or install of docker.io


class EngineError(RuntimeError):
    """No Docker engine could be made available; the message says why and what to do."""


def docker_info() -> dict | None:
    if not shutil.which("docker"):
        return None
    proc = run_command.run(["docker", "info", "--format", "{{json .}}"],
                           timeout=run_command.QUERY, check=False)
    if not proc.ok:
        return None
    info = json.loads(proc.stdout)
    return None if info.get("ServerErrors") else info


# kind's Service CIDR. Until kube-proxy programs a Service, a pod's packets to
# its ClusterIP follow the node's default route out through the Docker host;
# this machine must send nothing beyond its own networks, so such packets are
# rejected at the host (DOCKER-USER is the chain Docker keeps for user rules).
SERVICE_CIDR = "10.96.0.0/12"


def ensure_engine(start_timeout: float = timeouts.ENGINE_START) -> dict:
    """Return `docker info` of a working engine, starting one if needed."""
    info = docker_info()
    if info:
        _warn_if_privileged_will_fail(info)
        _guard_service_cidr()
        return info
    if not shutil.which("dockerd"):
        _install_docker_io()
    _start_dockerd()
    deadline = time.monotonic() + start_timeout
    while time.monotonic() < deadline:
        info = docker_info()
        if info:
            log.step(f"dockerd {info.get('ServerVersion')} is up (default runtime "
                     f"{info.get('DefaultRuntime')})")
            _guard_service_cidr()
            return info
        time.sleep(0.5)  # dockerd has no readiness event to watch
    raise EngineError(f"dockerd did not answer within {start_timeout:.0f}s; "
                      f"see {DOCKERD_LOG}:\n{_tail(DOCKERD_LOG)}")


def _guard_service_cidr() -> None:
    """Reject forwarded packets to the Service CIDR that kube-proxy did not rewrite."""
    if os.geteuid() != 0 or not shutil.which("iptables"):
        return
    rule = ["DOCKER-USER", "-d", SERVICE_CIDR, "-j", "REJECT"]
    if run_command.run(["iptables", "-C", *rule], timeout=run_command.QUERY, check=False).ok:
        return
    proc = run_command.run(["iptables", "-I", *rule], timeout=run_command.QUERY, check=False)
    if not proc.ok:
        log.step(f"WARNING: could not add the Service CIDR guard to DOCKER-USER: {proc.stderr}")


def _install_docker_io() -> None:
    if os.geteuid() != 0:
        raise EngineError("No Docker engine runs and dockerd is not installed. "
                          "Install Docker (Debian: apt-get install docker.io) or run as root.")
    log.step("installing Debian's docker.io")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "update", "-qq"],
                ["apt-get", "install", "-y", "-qq", "docker.io"]):
        try:  # apt-get waits for the dpkg lock and downloads: minutes, not hours
            run_command.run(cmd, env=env, timeout=APT_TIMEOUT)
        except CommandError as err:
            raise EngineError(f"{err.line} failed ({err.problem}); install Docker by hand:\n"
                              f"{err.stdout[-2000:]}{err.stderr[-2000:]}") from None


def _start_dockerd() -> None:
    if os.geteuid() != 0:
        raise EngineError("No Docker engine answers, and starting dockerd needs root. "
                          "Start Docker (systemctl start docker) and run again.")
    args = ["dockerd", "--host", "unix:///var/run/docker.sock"]
    if capshim.missing_capabilities():
        args += ["--add-runtime", f"{SHIM_RUNTIME}={_install_shim()}",
                 "--default-runtime", SHIM_RUNTIME]
    _save_sysctls()
    log.step("starting " + " ".join(args))
    with open(DOCKERD_LOG, "ab") as out:  # a daemon that outlives us: not run_command.run
        subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                         start_new_session=True)


def _install_shim() -> Path:
    """The shim at SHIM_DIR/runc, with the host's runc beside it as runc.real."""
    real = shutil.which("runc")
    if not real:
        raise EngineError("runc is not installed (Debian: apt-get install runc)")
    SHIM_DIR.mkdir(parents=True, exist_ok=True)
    shim = SHIM_DIR / "runc"
    tmp = SHIM_DIR / "runc.new"
    shutil.copy2(capshim.build(), tmp)
    tmp.replace(shim)
    link = SHIM_DIR / "runc.real"
    link.unlink(missing_ok=True)
    link.symlink_to(os.path.realpath(real))
    return shim


def _warn_if_privileged_will_fail(info: dict) -> None:
    if capshim.missing_capabilities() and info.get("DefaultRuntime") != SHIM_RUNTIME:
        log.step("WARNING: this host's capability bounding set is short and the running "
                 "engine does not use the capability shim: kind's privileged nodes may fail "
                 "with 'unable to apply caps'. Stop dockerd and let this command start it.")


def _save_sysctls() -> None:
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    saved = {k: Path("/proc/sys", k).read_text().strip() for k in KUBELET_SYSCTLS}
    state = STATE_DIR / "host-sysctls.json"
    if not state.exists():
        state.write_text(json.dumps(saved))


def restore_sysctls() -> None:
    """Undo kubelet's host sysctl changes, if we started the engine on this host."""
    state = STATE_DIR / "host-sysctls.json"
    if os.geteuid() != 0:  # only root writes /proc/sys; root, who started dockerd, restores
        return
    inotify.restore(STATE_DIR)
    if state.exists():
        for key, value in json.loads(state.read_text()).items():
            Path("/proc/sys", key).write_text(value)


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
