"""An unprivileged user set up as GitHub's hosted `runner` user is, for running
the workflows' set-up steps as that user (test_online.py).

A hosted ubuntu runner's `runner` user is not root, may run anything with
passwordless sudo, and is in the `docker` group (Docker CE runs). This makes
such a user (`secctx-runner`), gives it a copy of the checkout it owns (as
actions/checkout leaves one), Go on PATH (as actions/setup-go does) and a
SECCTX_CACHE of its own that holds only kind's binary copied from this
machine's cache (as a restored actions/cache entry of SECCTX_CACHE would).
Everything it made is removed afterwards: its cluster, the user, its home (the
copy, its venv, its cache) and its sudoers entry.

The host here has every Debian package; a runner image lacks the offline
build's (debootstrap, libseccomp-dev) and busybox-static. A `dpkg-query` first
on the user's PATH answers "not installed" for those (HIDDEN) and passes every
other question to the real one, so that lib.sh's decision is made as on that
image and what it installs is really installed, through sudo and apt-get.
"""
from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from secctx.offline import nodeimage

from .robust_helpers import ROOT, Run

USER = "secctx-runner"
CLUSTER = "secctx-runner-ci"
SUDOERS = Path("/etc/sudoers.d") / USER
HIDDEN = ("debootstrap", "libseccomp-dev", "busybox-static")
# Passed through to the user: where the package registries are and how to reach them.
PASSED = ("PIP_DEFAULT_TIMEOUT", "PIP_DISABLE_PIP_VERSION_CHECK", "PIP_CERT", "PIP_FIND_LINKS",
          "PIP_INDEX_URL", "GOPROXY", "GOSUMDB", "GOFLAGS", "GOTOOLCHAIN", "SSL_CERT_FILE",
          "http_proxy", "https_proxy", "no_proxy")
DPKG_QUERY_SHIM = """#!/bin/sh
# test shim: the packages a hosted runner image lacks are "not installed"
for p in {hidden}; do
  for a in "$@"; do [ "$a" = "$p" ] && {{ echo "dpkg-query: no packages found matching $p" >&2; exit 1; }}; done
done
exec /usr/bin/dpkg-query "$@"
"""


def _sh(*args: str, timeout: float = 120) -> str:
    proc = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return proc.stdout


@dataclass
class RunnerUser:
    name: str
    home: Path
    checkout: Path
    env: dict[str, str]

    def run(self, *args: str, log: Path, timeout: float) -> Run:
        """`ARGS` in the user's checkout, as the user (its groups: docker), with only
        its own environment; output to `log`. Killed (its process group) at `timeout`."""
        env = [f"{k}={v}" for k, v in self.env.items()]
        t0 = time.monotonic()
        with log.open("w") as out:
            proc = subprocess.Popen(["runuser", "-u", self.name, "--", "env", "-i", *env, *args],
                                    cwd=self.checkout, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)
            try:
                code = proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(90)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(30)
                raise
        return Run(code, log.read_text(), time.monotonic() - t0)


def ensure_sudo() -> None:
    """sudo, as every hosted runner has it (a minimal Debian host has not)."""
    if shutil.which("sudo") and shutil.which("visudo"):
        return
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["apt-get", "-o", "DPkg::Lock::Timeout=300", "install", "-y", "-qq", "sudo"]
    if subprocess.run(cmd, env=env, capture_output=True, timeout=600).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, timeout=600)
        subprocess.run(cmd, env=env, capture_output=True, timeout=600, check=True)


def _remove() -> list[str]:
    """Remove the user's cluster, the user and its home, and its sudoers entry;
    returns what could not be removed."""
    problems = []
    kind = nodeimage.kind_binary()
    proc = subprocess.run([str(kind), "delete", "cluster", "--name", CLUSTER],
                          capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        problems.append(f"kind delete cluster --name {CLUSTER}: {proc.stderr[-500:]}")
    try:
        pwd.getpwnam(USER)
    except KeyError:
        pass
    else:
        proc = subprocess.run(["userdel", "--force", "--remove", USER], capture_output=True,
                              text=True, timeout=120)
        if proc.returncode not in (0, 12):  # 12: home removed with warnings (mail spool)
            problems.append(f"userdel {USER}: {proc.stderr.strip()}")
    SUDOERS.unlink(missing_ok=True)
    return problems


def _copy_checkout(dest: Path) -> None:
    """The checkout's files (tracked and new, not ignored), as a fresh clone has them."""
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           cwd=ROOT, capture_output=True, check=True, timeout=60).stdout
    for rel in filter(None, files.decode().split("\0")):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel, follow_symlinks=False)


@contextmanager
def runner_user(mode: str = "online"):
    """The user, made fresh (one an interrupted run left is removed first); removed
    afterwards whatever happens."""
    ensure_sudo()
    _remove()
    try:
        _sh("useradd", "--create-home", "--shell", "/bin/bash", "--groups", "docker", USER)
        SUDOERS.write_text(f"{USER} ALL=(ALL) NOPASSWD:ALL\n")
        SUDOERS.chmod(0o440)
        _sh("visudo", "-cf", str(SUDOERS))
        home = Path(pwd.getpwnam(USER).pw_dir)
        checkout = home / "work" / "secctx-conformance"
        _copy_checkout(checkout)
        shim = home / "shim"
        shim.mkdir()
        (shim / "dpkg-query").write_text(DPKG_QUERY_SHIM.format(hidden=" ".join(HIDDEN)))
        (shim / "dpkg-query").chmod(0o755)
        cache = home / "cache"
        kind = nodeimage.kind_binary().parent  # components/kind/<version>
        shutil.copytree(kind, cache / kind.relative_to(kind.parents[2]), symlinks=True)
        _sh("chown", "-R", f"{USER}:{USER}", str(home))
        env = {k: os.environ[k] for k in PASSED if k in os.environ}
        env.update(HOME=str(home), USER=USER, LOGNAME=USER, LANG="C.UTF-8",
                   PATH=f"{shim}:/usr/local/go/bin:/usr/local/bin:/usr/bin:/bin",
                   SECCTX_CACHE=str(cache), SECCTX_MODE=mode)
        yield RunnerUser(USER, home, checkout, env)
    finally:
        problems = _remove()
        assert not problems, "; ".join(problems)
