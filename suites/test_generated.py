"""Generated security contexts: Hypothesis writes pod specs, the cluster runs them in
batches, the oracle judges every container; a disagreement is shrunk to a minimal
spec and written out as case files for fixtures/cases (secctx/generated)."""
from __future__ import annotations

import json

import pytest

from secctx import report, verdict
from secctx.generated import batch, search
from secctx.offline import log


@pytest.mark.e2e
def test_generated_security_contexts_agree_with_the_oracle(secctx_suite, request, tmp_path):
    option = request.config.getoption
    examples, seed = option("generated_examples"), option("generated_seed")
    report.title(f"{examples} generated pod specs (seed {seed}) agree with the oracle")
    found = search.Search(batch.runner_for(secctx_suite, tmp_path))
    result = search.explore(found, examples, seed, option("generated_shrink_budget"),
                            progress=log.step)  # live, though pytest captures output
    out = option("generated_out")
    search.write_findings(out, result.findings, lambda spec: batch.predicted_outcomes(secctx_suite, spec))
    summary = search.summary(result)
    report.attach_text("generated run", summary)
    report.attach_json("findings", json.loads((out / "findings.json").read_text()))
    print("\n" + summary)
    verdict.require(not result.findings, summary)
