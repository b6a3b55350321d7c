"""The pytest options of the generated test (registered by secctx.run.plugin)."""
from __future__ import annotations

from pathlib import Path

# CI: a fixed seed and a budget that stays within a minute on a ready cluster.
CI_EXAMPLES = 12
CI_SEED = 20261201


def add(add_option) -> None:
    """`add_option(NAME, ...)` adds --secctx-NAME (secctx.run.options)."""
    add_option("generated-examples", type=int, default=CI_EXAMPLES, metavar="N",
               help=f"generated pod specs to run (default {CI_EXAMPLES}, the CI budget; "
                    "nightly: 500)")
    add_option("generated-seed", type=int, default=CI_SEED, metavar="SEED",
               help=f"Hypothesis seed of the generated specs (default {CI_SEED})")
    add_option("generated-shrink-budget", type=float, default=60, metavar="SECONDS",
               help="time to shrink each disagreement on the cluster (default 60)")
    add_option("generated-out", type=Path, default=Path("reports/generated"), metavar="DIR",
               help="where findings are written as case files (default reports/generated)")
