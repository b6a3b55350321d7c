"""A real OCI registry on this machine, for the tests that take the online path.

Debian's `docker-registry` (the CNCF distribution registry, 2.8) runs in a
container, the way kind's "local registry" guide runs one: published on
127.0.0.1:PORT for the Docker engine, and on the kind network as
`secctx-registry:5000` for the nodes. Its data lives in a temporary
directory; the test starts it and removes it.

`engine_mirror` makes it the engine's `registry-mirrors` entry for Docker Hub
(daemon.json, reloaded with SIGHUP: no restart, running containers stay), so
that kind pulls `kindest/node:<tag>` through it; the previous daemon.json is
put back afterwards.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from secctx.images import build, docker

NAME = "secctx-registry"
NODES_URL = f"http://{NAME}:5000"  # as the kind nodes reach it
IMAGE = "secctx.local/test/docker-registry:2.8"
CONFIG = """version: 0.1
storage:
  filesystem:
    rootdirectory: /var/lib/registry
http:
  addr: :5000
"""
DAEMON_JSON = Path("/etc/docker/daemon.json")


def _sh(*args: str, timeout: float = 600) -> str:
    proc = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{proc.stderr[-2000:]}")
    return proc.stdout


def ensure_package() -> Path:
    binary = shutil.which("docker-registry")
    if not binary:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "install", "-y", "-qq", "docker-registry"], env=env,
                       capture_output=True, timeout=600, check=True)
        binary = shutil.which("docker-registry")
    return Path(binary)


@dataclass
class LocalRegistry:
    port: int
    data: Path

    @property
    def host(self) -> str:  # as the engine reaches it
        return f"127.0.0.1:{self.port}"

    def start(self) -> LocalRegistry:
        binary = ensure_package()
        config = self.data.parent / "registry-config.yml"
        config.write_text(CONFIG)
        build.base_images()
        docker.build(IMAGE, f"FROM {build.WORKLOAD_ROOTFS}\nCOPY docker-registry /usr/bin/\n"
                     "COPY config.yml /etc/docker/registry/config.yml\n"
                     'ENTRYPOINT ["/usr/bin/docker-registry", "serve", '
                     '"/etc/docker/registry/config.yml"]\n',
                     {"docker-registry": binary, "config.yml": config})
        self.stop()
        if subprocess.run(["docker", "network", "inspect", "kind"],
                          capture_output=True).returncode != 0:
            # kind reuses a network of this name; these are the options it would set.
            _sh("docker", "network", "create", "-o",
                "com.docker.network.bridge.enable_ip_masquerade=true", "kind")
        self.data.mkdir(parents=True, exist_ok=True)
        _sh("docker", "run", "-d", "--name", NAME, "-p", f"{self.host}:5000",
            "-v", f"{self.data}:/var/lib/registry", IMAGE)
        _sh("docker", "network", "connect", "kind", NAME)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"http://{self.host}/v2/", timeout=2) as resp:
                    if resp.status == 200:
                        return self
            time.sleep(0.3)  # a starting process: nothing to watch
        raise RuntimeError(f"the registry did not answer on {self.host} within 30 s:\n"
                           + subprocess.run(["docker", "logs", NAME], capture_output=True,
                                            text=True).stderr[-2000:])

    def push(self, local: str, path: str) -> None:
        """Push a local image as PATH (`library/busybox:1.36`), as a mirror holds it."""
        target = f"{self.host}/{path}"
        _sh("docker", "tag", local, target)
        try:
            _sh("docker", "push", "-q", target, timeout=900)
        finally:
            _sh("docker", "rmi", target)

    def catalog(self) -> list[str]:
        with urllib.request.urlopen(f"http://{self.host}/v2/_catalog", timeout=10) as resp:
            return json.load(resp)["repositories"]

    def stop(self) -> None:
        subprocess.run(["docker", "rm", "-f", NAME], capture_output=True, timeout=60)


@contextlib.contextmanager
def engine_mirror(url: str):
    """The engine pulls Docker Hub images through `url` while the block runs."""
    before = DAEMON_JSON.read_text() if DAEMON_JSON.exists() else None
    config = json.loads(before) if before else {}
    DAEMON_JSON.parent.mkdir(parents=True, exist_ok=True)
    DAEMON_JSON.write_text(json.dumps({**config, "registry-mirrors": [url]}))
    _reload(lambda mirrors: url.rstrip("/") + "/" in mirrors)
    try:
        yield
    finally:
        # A reload keeps a value the file leaves out: say "none" first, then restore.
        DAEMON_JSON.write_text(json.dumps({**config, "registry-mirrors":
                                           config.get("registry-mirrors", [])}))
        _reload(lambda mirrors: url.rstrip("/") + "/" not in mirrors)
        if before is None:
            DAEMON_JSON.unlink()
        else:
            DAEMON_JSON.write_text(before)


def _reload(done) -> None:
    pid = int(_sh("pidof", "dockerd").split()[0])
    os.kill(pid, signal.SIGHUP)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        info = json.loads(_sh("docker", "info", "--format", "{{json .RegistryConfig}}"))
        if done(info.get("Mirrors") or []):
            return
        time.sleep(0.3)  # dockerd reloads asynchronously; `docker info` is the witness
    raise RuntimeError("dockerd did not take the new registry-mirrors within 20 s")
