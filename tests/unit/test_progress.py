"""Progress a person can see: long steps say they are alive, and inside pytest the
lines reach the terminal although pytest captures output."""
from __future__ import annotations

import time

from secctx.offline import log


def test_a_long_step_says_it_is_still_running(monkeypatch):
    lines = []
    monkeypatch.setattr(log, "_sink", lines.append)
    with log.heartbeat("building the node image", every=0.05):
        deadline = time.monotonic() + 10  # a loaded machine schedules the beat late
        while len(lines) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert len(lines) >= 2
    assert all("... still building the node image (" in ln for ln in lines)
    count = len(lines)
    time.sleep(0.1)
    assert len(lines) == count, "no heartbeat after the step ended"


def test_a_broken_sink_does_not_lose_the_line(monkeypatch, capsys):
    def broken(line):
        raise OSError("terminal gone")
    monkeypatch.setattr(log, "_sink", broken)
    log.step("creating kind cluster")
    assert "creating kind cluster" in capsys.readouterr().err


def test_progress_lines_reach_the_terminal_through_pytests_capture(pytester):
    pytester.makepyfile("""
        import pytest
        from secctx.offline import log

        @pytest.fixture(scope="session")
        def slow():
            log.step("building Kubernetes v1.37.2 (step 1 of 6)")

        def test_one(slow):
            pass
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")  # capture on (no -s)
    result.stdout.fnmatch_lines(["*] building Kubernetes v1.37.2 (step 1 of 6)"])
    result.assert_outcomes(passed=1)
