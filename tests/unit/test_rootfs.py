"""The debootstrap cache: one build per key however many runs ask, and a failed build
leaves nothing behind (it used to leave its target's /proc mounted, and every later run
failed with FileExistsError)."""
from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

import pytest

from secctx.offline import gobuild, rootfs


@pytest.fixture
def cache_root(tmp_path, monkeypatch):
    monkeypatch.setenv("SECCTX_CACHE", str(tmp_path))
    monkeypatch.setattr(rootfs.shutil, "which", lambda name: f"/usr/sbin/{name}")
    return tmp_path


def test_two_runs_asking_for_one_rootfs_at_once_build_it_once(cache_root, monkeypatch):
    builds = []

    def debootstrap(packages, suite, out):
        builds.append(out)
        time.sleep(0.3)  # the second caller arrives while the first builds
        out.write_bytes(b"rootfs")
    monkeypatch.setattr(rootfs, "_debootstrap", debootstrap)
    got = []
    threads = [threading.Thread(target=lambda: got.append(rootfs.tarball(("bash",))))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(builds) == 1 and len(got) == 2 and got[0] == got[1] == builds[0]


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_a_failed_debootstrap_leaves_no_mount_and_no_directory(cache_root, monkeypatch):
    def failing(cmd):
        target = Path(cmd[-2])
        (target / "proc").mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "none", str(target / "proc")], check=True)
        raise gobuild.BuildError("debootstrap failed: W: Failure while unpacking")
    monkeypatch.setattr(rootfs, "_run", failing)
    with pytest.raises(gobuild.BuildError):
        rootfs.tarball(("bash",))
    assert str(cache_root) not in Path("/proc/mounts").read_text()
    assert [p.name for p in (cache_root / "rootfs").iterdir() if not p.name.endswith(".lock")] == []
