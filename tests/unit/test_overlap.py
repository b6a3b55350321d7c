"""secctx.offline.overlap.beside: the step runs while the body runs, its error reaches the
caller, and a failing body leaves no command of the step running."""
from __future__ import annotations

import time

import pytest

from secctx.core import run_command
from secctx.offline.overlap import beside


def test_the_step_runs_while_the_body_runs():
    t0 = time.monotonic()
    with beside(lambda: run_command.run(["sleep", "1"], timeout=10), "t") as step:
        run_command.run(["sleep", "1"], timeout=10)
        step.result()
    assert time.monotonic() - t0 < 1.8  # the longer of the two, not their sum


def test_the_step_s_error_reaches_the_caller():
    with pytest.raises(run_command.CommandError, match="exited with code 1"):
        with beside(lambda: run_command.run(["false"], timeout=10), "t"):
            pass


def test_a_failing_body_kills_the_step_s_command_and_raises_its_own_error():
    t0 = time.monotonic()
    with pytest.raises(ValueError, match="body"):
        with beside(lambda: run_command.run(["sleep", "30"], timeout=60), "t"):
            time.sleep(0.3)
            raise ValueError("body")
    assert time.monotonic() - t0 < 5  # not the step's 30 s
