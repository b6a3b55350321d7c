"""A platform engineer debugging a case (issue 24): at the default concurrency (1) the
case runs in its test's own thread, so a breakpoint in the oracle stops in the main
thread with `test_recipe_case` on the stack, and pdb's commands reach it. Above 1 the
scheduler's worker thread runs the case (recorded, then replayed by the test): the same
breakpoint stops in a `secctx-case` thread, which shows the check can fail.

One case (secure-pod) under the default runtime, on the integration tests' cluster.
"""
from __future__ import annotations

import subprocess
import sys

import pytest

from .robust_helpers import CLUSTER, ROOT, nested_env

pytestmark = pytest.mark.e2e

# A plugin that stops in the oracle: verdict.compare, called by runner.judge.
BREAK_IN_THE_VERDICT = """
from secctx import verdict
_compare = verdict.compare
def compare(expected, observed):
    breakpoint()
    return _compare(expected, observed)
verdict.compare = compare
"""
# What the engineer types at the prompt (more `c` than breakpoints: EOF would quit).
COMMANDS = 'p "THREAD=" + __import__("threading").current_thread().name\nw\nc\nc\nc\n'


def debug_one_case(tmp_path, concurrency: int) -> str:
    (tmp_path / "breakhere.py").write_text(BREAK_IN_THE_VERDICT)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "breakhere", "suites",
         "--cluster-name", CLUSTER, "--keep-cluster", "--secctx-runtime-class", "default",
         "--secctx-case-concurrency", str(concurrency),
         "-k", "test_recipe_case and not test_case_file_is_valid and secure-pod"],
        cwd=ROOT, input=COMMANDS, capture_output=True, text=True, timeout=600,
        env=nested_env(PYTHONPATH=str(tmp_path)))
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-4000:]
    assert "(Pdb)" in out, out[-3000:]
    return out


def test_at_concurrency_1_a_breakpoint_in_the_oracle_stops_in_the_tests_own_thread(
        clean, tmp_path):
    out = debug_one_case(tmp_path, 1)
    assert "THREAD=MainThread" in out, out[-3000:]
    stack = out[out.index("THREAD=MainThread"):]
    assert "test_recipe_case()" in stack and "runner.py" in stack, stack[:3000]


def test_above_concurrency_1_the_same_breakpoint_stops_in_a_worker_thread(clean, tmp_path):
    out = debug_one_case(tmp_path, 2)
    assert "THREAD=secctx-case" in out, out[-3000:]
