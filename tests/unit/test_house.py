"""Rules of the house that a reader relies on (issue 24), checked so they stay true."""
from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

from secctx.kube import Kube, PodWaits, PodWatch

PACKAGE = Path(__file__).resolve().parents[2] / "secctx"
LONGEST = 60  # lines of a function, its docstring included: one screen


def functions(package: Path = PACKAGE):
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                yield path.relative_to(package.parent), node


def test_no_function_in_the_library_is_longer_than_one_screen():
    long = [f"{path}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
            for path, node in functions() if node.end_lineno - node.lineno + 1 > LONGEST]
    assert long == [], "split these (a function a reader takes in at once):\n" + "\n".join(long)


def test_the_clients_waits_and_the_shared_watch_implement_one_wait_protocol():
    """runner waits through kube.PodWaits: Kube (a watch per wait) and PodWatch (the
    scheduler's one watch) must take the same arguments, or one path breaks unseen."""
    for name in ("wait_for_pod", "wait_for_container_exit"):
        want = inspect.signature(getattr(PodWaits, name))
        for waiter in (Kube, PodWatch):
            assert inspect.signature(getattr(waiter, name)) == want, (waiter.__name__, name)


# The phases and their seams: what a case goes through, from its file to its verdict.
PHASES = ("cases", "kube", "observe", "oracle", "observations", "verdict.py", "run/runner.py")


def test_every_public_function_of_the_phases_is_annotated():
    missing = []
    for path, node in functions():
        if not str(path.relative_to("secctx")).startswith(PHASES) or node.name.startswith("_"):
            continue
        args = [a for a in node.args.args + node.args.kwonlyargs if a.arg not in ("self", "cls")]
        unannotated = [a.arg for a in args if a.annotation is None]
        if unannotated or node.returns is None:
            missing.append(f"{path}:{node.lineno} {node.name} {unannotated or ''}"
                           f"{'' if node.returns else ' (no return type)'}")
    assert missing == [], "annotate:\n" + "\n".join(missing)


# Imports inside functions, each for a real cost; everywhere else they are at the top.
FUNCTION_LEVEL_IMPORTS = {
    # `python -m secctx` loads only what the command given needs (host-needs, engine and
    # rbac-manifest start in a fraction of the time the builders and clients take).
    "secctx/cli.py": "each command's own modules",
    # The kubernetes client (~0.5 s to import) only where the API is called: the CLI
    # imports these modules for their defaults and error types.
    "secctx/cluster/existing.py": "kubernetes", "secctx/cluster/provision.py": "kubernetes",
    "secctx/core/errors.py": "kubernetes", "secctx/kube/rbac.py": "kubernetes",
    "secctx/cluster/hostneeds.py": "the engine, only when the mode needs one",
    # The builders' sources are hashed into the node image's key: moving an import there
    # rebuilds every node image, for no reader's gain.
    "secctx/offline/crionode.py": "node image key", "secctx/offline/nodeimage.py": "node image key",
    "secctx/report/html.py": "matrix imports html: a circle",
}


def test_imports_inside_functions_are_only_where_they_save_a_real_cost():
    found = set()
    for path, node in functions():
        if any(isinstance(n, ast.Import | ast.ImportFrom) for n in ast.walk(node)):
            found.add(str(path))
    assert sorted(found - set(FUNCTION_LEVEL_IMPORTS)) == [], "move these imports to the top"


def test_every_bound_is_named_in_core_timeouts():
    """A wait's or a command's bound is a name in core/timeouts.py with its reason, not a
    number at the call (a poll's one-second tick is no bound)."""
    literal = re.compile(r"\btimeout(: float)? ?= ?\d")
    found = [f"{path}:{n}: {line.strip()}" for path in sorted(PACKAGE.rglob("*.py"))
             if path.name != "timeouts.py"
             for n, line in enumerate(path.read_text().splitlines(), 1)
             if literal.search(line) and "update(timeout=1)" not in line]
    assert found == [], "name these bounds in secctx/core/timeouts.py:\n" + "\n".join(found)
