"""Host inotify limits before a kind cluster: raised to kind's recommendation, and put
back by host-restore (CI's third cluster crash-looped kube-proxy on 'too many open files')."""
import json

import pytest

from secctx.cluster import inotify


@pytest.fixture
def proc_sys(tmp_path, monkeypatch):
    root = tmp_path / "proc-sys"
    (root / "fs" / "inotify").mkdir(parents=True)
    (root / "fs/inotify/max_user_instances").write_text("128\n")
    (root / "fs/inotify/max_user_watches").write_text("1048576\n")
    monkeypatch.setattr(inotify, "PROC_SYS", root)
    monkeypatch.setattr(inotify.os, "geteuid", lambda: 0)
    return root


def test_only_the_limits_below_kinds_recommendation_are_short(proc_sys):
    assert inotify.short(proc_sys) == {"fs/inotify/max_user_instances": 128}


def test_root_raises_the_short_limit_keeps_the_higher_one_and_restore_puts_it_back(proc_sys, tmp_path):
    state = tmp_path / "state"
    inotify.ensure(state)
    assert (proc_sys / "fs/inotify/max_user_instances").read_text() == "512"
    assert (proc_sys / "fs/inotify/max_user_watches").read_text() == "1048576\n"  # never lowered
    assert json.loads((state / inotify.STATE_NAME).read_text()) == {"fs/inotify/max_user_instances": 128}
    inotify.ensure(state)  # a second cluster: the host's own value stays the one kept
    assert json.loads((state / inotify.STATE_NAME).read_text()) == {"fs/inotify/max_user_instances": 128}
    inotify.restore(state, nodes_running=lambda: 1)  # a kept cluster still needs them
    assert (proc_sys / "fs/inotify/max_user_instances").read_text() == "512"
    inotify.restore(state, nodes_running=lambda: 0)
    assert (proc_sys / "fs/inotify/max_user_instances").read_text() == "128"
    assert not (state / inotify.STATE_NAME).exists()
