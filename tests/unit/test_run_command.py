"""run_command.run: every local command bounded, and a failure that says what ran, how
it ended and what it said (real processes: sh, sleep; nothing simulated)."""
from __future__ import annotations

import shlex
import time

import pytest

from secctx import cli
from secctx.core import run_command
from secctx.core.run_command import CommandError


def test_a_command_that_succeeds_gives_its_output_and_exit_code():
    result = run_command.run(["sh", "-c", "echo out; echo err >&2"], timeout=10)
    assert (result.returncode, result.stdout, result.stderr) == (0, "out\n", "err\n")
    assert result.ok and result.command == ("sh", "-c", "echo out; echo err >&2")


def test_a_non_zero_exit_raises_with_the_command_to_paste_the_code_and_the_stderr_tail():
    script = "echo 'it went wrong' >&2; exit 3"
    with pytest.raises(CommandError) as err:
        run_command.run(["sh", "-c", script], timeout=10)
    e = err.value
    assert (e.returncode, e.started, e.timed_out) == (3, True, False)
    assert e.line == "sh -c " + shlex.quote(script)  # quoted: pastes into a shell as it ran
    assert str(e) == f"`sh -c {shlex.quote(script)}` exited with code 3:\nit went wrong"


def test_the_tail_is_stdout_when_stderr_is_empty_and_keeps_the_end():
    with pytest.raises(CommandError) as err:
        run_command.run(["sh", "-c", "seq 1 5000; exit 1"], timeout=10)
    tail = err.value.tail()
    assert len(tail) <= run_command.TAIL and tail.endswith("4999\n5000")  # the end, not the start
    assert err.value.last_line() == "5000"


def test_check_false_returns_a_non_zero_exit_instead_of_raising():
    result = run_command.run(["sh", "-c", "echo no >&2; exit 2"], timeout=10, check=False)
    assert (result.ok, result.returncode, result.stderr) == (False, 2, "no\n")


def test_a_command_past_its_timeout_is_killed_and_says_what_it_said_until_then():
    t0 = time.monotonic()
    with pytest.raises(CommandError) as err:
        run_command.run(["sh", "-c", "echo started; exec sleep 30"], timeout=0.5, check=False)
    assert time.monotonic() - t0 < 5  # killed at the bound, not waited for
    e = err.value
    assert e.timed_out and e.returncode is None
    assert str(e) == "`sh -c 'echo started; exec sleep 30'` did not finish within 0.5s:\nstarted"


def test_a_missing_binary_is_one_line_with_cause_and_fix():
    with pytest.raises(CommandError) as err:
        run_command.run(["secctx-no-such-tool", "--version"], timeout=10)
    assert str(err.value) == ("cannot run `secctx-no-such-tool --version`: secctx-no-such-tool is "
                              "not on PATH; fix: install secctx-no-such-tool, or put it on PATH")
    assert not err.value.started and err.value.returncode is None


def test_a_missing_path_and_a_caller_fix(tmp_path):
    missing = tmp_path / "bin" / "kind"
    with pytest.raises(CommandError) as err:
        run_command.run([missing, "version"], timeout=10, fix="pass --kind-bin")
    assert str(err.value) == (f"cannot run `{missing} version`: {missing} does not exist; "
                              "fix: pass --kind-bin")


def test_a_file_that_is_not_executable_names_chmod(tmp_path):
    script = tmp_path / "tool"
    script.write_text("#!/bin/sh\n")
    with pytest.raises(CommandError) as err:
        run_command.run([script], timeout=10)
    assert f"{script} is not executable (Permission denied)" in str(err.value)
    assert f"fix: chmod +x {script}" in str(err.value) and "\n" not in str(err.value)


def test_killed_by_a_signal_names_the_signal():
    with pytest.raises(CommandError, match=r"` was killed by SIGKILL$"):
        run_command.run(["sh", "-c", "kill -9 $$"], timeout=10)


def test_input_reaches_stdin_and_undecodable_output_does_not_end_the_run():
    result = run_command.run(["sh", "-c", "cat; printf '\\377'"], input="fed", timeout=10)
    assert result.stdout == "fed\ufffd"


def test_without_input_stdin_is_empty_so_nothing_waits_for_the_terminal():
    assert run_command.run(["cat"], timeout=10).stdout == ""


def test_merge_stderr_interleaves_and_stdout_to_a_file(tmp_path):
    merged = run_command.run(["sh", "-c", "echo a; echo b >&2; echo c"], timeout=10, merge_stderr=True)
    assert (merged.stdout, merged.stderr) == ("a\nb\nc\n", "")
    with (tmp_path / "out").open("wb") as out:
        to_file = run_command.run(["sh", "-c", "echo saved"], timeout=10, stdout=out)
    assert to_file.stdout == "" and (tmp_path / "out").read_text() == "saved\n"


def test_a_long_command_is_cut_in_the_message():
    long = ["echo", "x" * 5000]
    assert run_command.pretty(long).endswith(" ...") and len(run_command.pretty(long)) < 1100


def test_the_cli_prints_an_unconverted_command_error_as_one_line(monkeypatch, capsys):
    """A CommandError no caller turned into its own error is still a user error: the cli
    says it in one line (the boundary of a pytest run uses the same list)."""
    def fails():
        run_command.run(["secctx-no-such-tool"], timeout=10)
    monkeypatch.setattr(cli.engine, "ensure_engine", fails)
    assert cli.main(["engine"]) == 2
    err = capsys.readouterr().err
    assert err == ("secctx: cannot run `secctx-no-such-tool`: secctx-no-such-tool is not on PATH; "
                   "fix: install secctx-no-such-tool, or put it on PATH\n")
