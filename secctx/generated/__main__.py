"""python -m secctx.generated --examples 500 [pytest options]: the long (nightly) run.

It is the e2e test with a larger budget: the same set-up, cluster options and report.
"""
from __future__ import annotations

import argparse
import sys

import pytest

from ..core import paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m secctx.generated", description=__doc__)
    parser.add_argument("--examples", type=int, default=500)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--shrink-budget", type=float, default=300,
                        help="seconds to shrink each disagreement (default 300)")
    known, rest = parser.parse_known_args(argv)
    args = [str(paths.SUITES / "test_generated.py"), "-p", "no:cacheprovider",
            "--secctx-generated-examples", str(known.examples),
            "--secctx-generated-shrink-budget", str(known.shrink_budget),
            # pytest-timeout's backstop, for this run's size (every wait has its own bound)
            f"--timeout={600 + 10 * known.examples + 7 * known.shrink_budget:.0f}", *rest]
    if known.seed is not None:
        args += ["--secctx-generated-seed", str(known.seed)]
    return pytest.main(args)


if __name__ == "__main__":
    sys.exit(main())
