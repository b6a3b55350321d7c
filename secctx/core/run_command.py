"""One way to run a command on this host: bounded, captured, and a failure that says what ran.

Every tool the suite runs here (docker, kind, go, apt-get, ...) goes through `run`: it
has a timeout (no wait without a bound), its output is captured and decoded (UTF-8, a
byte that is not becomes U+FFFD: a tool's output never ends the run by itself), and a
failure raises CommandError, which carries the command as a line to paste into a shell
(shlex.join), the exit code and the tail of the output, as kind's pkg/exec RunError
does. A caller turns it into its own error (BuildError, ClusterError, ...) where it adds
the fix; cli.USER_ERRORS has it too, so one that is not turned still ends a run with one
INFRASTRUCTURE line, not a traceback.
"""
from __future__ import annotations

import os
import shlex
import signal
import subprocess
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from . import timeouts

QUERY = timeouts.COMMAND_QUERY  # the bound of a command that answers a question
TAIL = 3000  # characters of output an error keeps: the end, where tools say what failed
_COMMAND_SHOWN = 1000  # a command longer than this (a script in `bash -c`) is cut in messages
# The commands running now, with the thread that runs each: a thread's commands can be
# stopped from another (secctx.offline.overlap: the main thread failed, its sibling stops).
_running: dict[subprocess.Popen, int] = {}
_running_lock = threading.Lock()


@dataclass(frozen=True)
class Result:
    """A command that ran to its end (check=False: whatever its exit code)."""
    command: tuple[str, ...]
    returncode: int
    stdout: str  # "" when stdout went to a file
    stderr: str  # "" when merged into stdout

    @property
    def ok(self) -> bool:
        return self.returncode == 0


class CommandError(RuntimeError):
    """A command that could not start, did not finish in time, or exited non-zero."""

    def __init__(self, command: Sequence[str | os.PathLike], problem: str, *,
                 returncode: int | None = None, stdout: str = "", stderr: str = "",
                 fix: str = "", started: bool = True, timed_out: bool = False):
        self.command = [str(c) for c in command]
        # "exited with code 2", "did not finish within 30s", "kind is not on PATH", ...
        self.problem = problem
        self.returncode = returncode  # None: it did not start, or was stopped at its timeout
        self.started, self.timed_out = started, timed_out
        self.stdout, self.stderr, self.fix = stdout, stderr, fix
        super().__init__(self.message())

    @property
    def line(self) -> str:
        """The command as one would type it in a shell."""
        return pretty(self.command)

    def tail(self, limit: int = TAIL) -> str:
        """The end of what the command said: stderr, else stdout."""
        text = (self.stderr.strip() or self.stdout.strip())
        return text[-limit:]

    def last_line(self) -> str:
        return last_line(self.tail())

    def message(self) -> str:
        # The cause and its fix on the first line; the output's tail below it.
        head = (f"`{self.line}` {self.problem}" if self.started
                else f"cannot run `{self.line}`: {self.problem}")
        head += f"; fix: {self.fix}" if self.fix else ""
        tail = self.tail()
        return head + (":\n" + tail if tail else "")


def pretty(command: Sequence[str | os.PathLike]) -> str:
    """`command` quoted for a shell, cut if it is too long to read in a message."""
    line = shlex.join(str(c) for c in command)
    return line if len(line) <= _COMMAND_SHOWN else line[:_COMMAND_SHOWN] + " ..."


def run(command: Sequence[str | os.PathLike], *, timeout: float, check: bool = True,
        input: str | bytes | None = None, cwd: str | os.PathLike | None = None,
        env: Mapping[str, str] | None = None, stdout: IO[bytes] | None = None,
        merge_stderr: bool = False, fix: str = "") -> Result:
    """Run `command` (no shell) for at most `timeout` seconds and return what it said.

    Raises CommandError when it cannot start (a missing or not executable binary: the
    message says which, and `fix`, or a default one), when it runs past `timeout` (it
    is killed; the message has what it said until then), and, with check (the default),
    when it exits non-zero. `stdout` sends its output to a file instead of memory (an
    image export); `merge_stderr` interleaves stderr into stdout (a build log)."""
    argv = [str(c) for c in command]
    data = input.encode() if isinstance(input, str) else input
    try:
        proc = subprocess.Popen(argv, cwd=cwd, env=None if env is None else dict(env),
                                stdout=stdout if stdout is not None else subprocess.PIPE,
                                stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
                                stdin=subprocess.PIPE if data is not None else subprocess.DEVNULL)
    except OSError as err:
        raise CommandError(argv, _cannot_start(argv[0], err, cwd), started=False,
                           fix=fix or _default_fix(argv[0], err)) from None
    with _running_lock:
        _running[proc] = threading.get_ident()
    try:
        with proc:  # as subprocess.run: killed on timeout or on any exception here
            try:
                out, err_out = proc.communicate(data, timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, err_out = proc.communicate()
                raise CommandError(argv, f"did not finish within {timeout:g}s", timed_out=True,
                                   stdout=_text(out), stderr=_text(err_out), fix=fix) from None
            except BaseException:
                proc.kill()
                raise
    finally:
        with _running_lock:
            _running.pop(proc, None)
    result = Result(tuple(argv), proc.returncode, _text(out), _text(err_out))
    if check and not result.ok:
        raise CommandError(argv, _exit_problem(proc.returncode), returncode=proc.returncode,
                           stdout=result.stdout, stderr=result.stderr, fix=fix)
    return result


def stop_thread_commands(thread_ident: int) -> int:
    """Kill the commands that thread `thread_ident` runs now (its `run` then raises
    CommandError "was killed by SIGKILL"); how many."""
    with _running_lock:
        procs = [p for p, t in _running.items() if t == thread_ident]
    for p in procs:
        p.kill()
    return len(procs)


def last_line(text: str) -> str:
    """The last line of a tool's output that says something (where it says what failed)."""
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    return lines[-1] if lines else "no output"


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data if isinstance(data, str) else data.decode(errors="replace")


def _exit_problem(code: int) -> str:
    if code < 0:  # subprocess reports a signal as its negative number
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


def _cannot_start(program: str, err: OSError, cwd: str | os.PathLike | None) -> str:
    if isinstance(err, FileNotFoundError) and cwd is not None and not Path(cwd).is_dir():
        return f"its working directory {cwd} does not exist"
    if isinstance(err, FileNotFoundError):
        return f"{program} does not exist" if "/" in program else f"{program} is not on PATH"
    if isinstance(err, PermissionError):
        return f"{program} is not executable ({err.strerror})"
    return f"{program}: {err.strerror or err}"  # ENOEXEC: not a program for this machine


def _default_fix(program: str, err: OSError) -> str:
    name = Path(program).name
    if isinstance(err, FileNotFoundError) and "/" not in program:
        return f"install {name}, or put it on PATH"
    if isinstance(err, FileNotFoundError):
        return f"install {name} at {program}, or give the path of an installed one"
    if isinstance(err, PermissionError):
        return f"chmod +x {program}, or give the path of a working {name}"
    return f"replace {program} with a {name} built for this machine"
