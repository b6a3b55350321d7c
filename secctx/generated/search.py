"""Generate, run in batches, shrink: the oracle against the cluster on generated specs.

1. Hypothesis generates `examples` pod specs from a fixed seed (nothing runs yet).
2. They run in batches (batch.run); every container is judged; results are cached
   by spec.
3. Each kind of disagreement (its signature: the failing fields) is shrunk by
   Hypothesis itself: the same seed replays the same examples (cache hits, all
   passing for that signature) up to the first one that has it, and Hypothesis's
   shrinker then tries smaller specs, each run on the cluster (cached). A shrink
   budget bounds the time: past it, a spec not yet run counts as not disagreeing,
   which ends shrinking with the smallest spec seen to disagree.
4. Each minimal spec is written out as case files ready for fixtures/cases, with the
   predicted and the observed values at the top of each.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, seed, settings

from ..cases import Status
from ..oracle import expect
from . import batch, casefile
from .strategy import pod_specs

key = casefile.spec_key
SHRINK_ROUNDS = 6  # at most this many shrink budgets per run; later findings are not shrunk


def _settings(examples: int, phases) -> settings:
    return settings(max_examples=examples, database=None, deadline=None, phases=phases,
                    suppress_health_check=list(HealthCheck), report_multiple_bugs=False,
                    print_blob=False)


def generate(examples: int, seed_: int) -> list[dict]:
    """The specs Hypothesis generates from this seed, in its order (duplicates dropped)."""
    specs: dict[str, dict] = {}

    @seed(seed_)
    @_settings(examples, [Phase.generate])
    @given(pod_specs())
    def collect(spec):
        specs.setdefault(key(spec), spec)

    collect()
    return list(specs.values())


class Disagreement(Exception):
    """A generated spec on which the cluster and the oracle differ."""


@dataclass
class Finding:
    signature: str
    first: dict                  # the first generated spec that showed it
    minimal: dict                # the smallest spec Hypothesis's shrinker kept it in
    judged: list[batch.Judged]   # the minimal spec's containers that show it
    count: int                   # how many generated examples showed it
    shrink_runs: int = 0         # specs run on the cluster while shrinking
    shrink_stopped: bool = False  # the budget ended shrinking
    files: list[Path] = field(default_factory=list)


@dataclass
class Result:
    examples: int
    containers: int
    outcomes: dict[str, int]
    findings: list[Finding]
    seconds: dict[str, float]


class Search:
    """The run's state: the cache of judged specs and how to run more."""

    def __init__(self, run_batch: Callable[[list[dict]], dict[str, list[batch.Judged]]],
                 batch_size: int = 20):
        self.run_batch = run_batch  # [spec] -> {key: [Judged]}
        self.batch_size = batch_size
        self.cache: dict[str, list[batch.Judged]] = {}
        self.cluster_runs = 0

    def judged(self, spec: dict) -> list[batch.Judged]:
        k = key(spec)
        if k not in self.cache:
            self.cache.update(self.run_batch([spec]))
            self.cluster_runs += 1
        return self.cache[k]

    def run_all(self, specs: list[dict], progress=print) -> None:
        todo = [s for s in specs if key(s) not in self.cache]
        seen: set[str] = set()
        for start in range(0, len(todo), self.batch_size):
            results = self.run_batch(todo[start:start + self.batch_size])
            self.cache.update(results)
            for judged in (j for js in results.values() for j in js if j.failures):
                if judged.signature not in seen:  # live: a long run shows what it finds
                    seen.add(judged.signature)
                    progress(f"generated: new disagreement {judged.signature!r} in "
                             f"{judged.case.name}")
            progress(f"generated: {min(start + self.batch_size, len(todo))} of {len(todo)} "
                     f"examples run, {len(seen)} kind(s) of disagreement")

    def shrink(self, signature: str, examples: int, seed_: int, budget: float) -> Finding:
        """Hypothesis's shrinking of the first example with this signature."""
        minimal: list[dict] = []
        runs_before = self.cluster_runs
        deadline = time.monotonic() + budget
        stopped = False

        @seed(seed_)
        @_settings(examples, [Phase.generate, Phase.shrink])
        @given(pod_specs())
        def disagrees(spec):
            nonlocal stopped
            if key(spec) not in self.cache and time.monotonic() > deadline:
                stopped = True
                return  # past the budget: not run, not a disagreement
            if any(j.signature == signature for j in self.judged(spec)):
                minimal.append(spec)
                raise Disagreement(signature)

        try:
            disagrees()
        except Disagreement:
            pass
        if not minimal:  # the replay never met it (generation went another way)
            return Finding(signature, {}, {}, [], 0, self.cluster_runs - runs_before, stopped)
        spec = minimal[-1]  # Hypothesis replays the smallest failing example last
        return Finding(signature, minimal[0], spec,
                       [j for j in self.judged(spec) if j.signature == signature], 0,
                       self.cluster_runs - runs_before, stopped)


def signatures(cache: dict[str, list[batch.Judged]], specs: list[dict]) -> dict[str, list[dict]]:
    """signature -> the generated specs that show it, in generation order."""
    found: dict[str, list[dict]] = {}
    for spec in specs:
        for judged in cache[key(spec)]:
            if judged.failures:
                found.setdefault(judged.signature, [])
                if spec not in found[judged.signature]:
                    found[judged.signature].append(spec)
    return found


def explore(search: Search, examples: int, seed_: int, shrink_budget: float = 300,
            progress=print) -> Result:
    times = {}
    start = time.monotonic()
    specs = generate(examples, seed_)
    times["generate"] = time.monotonic() - start
    search.run_all(specs, progress)
    times["run"] = time.monotonic() - start - times["generate"]
    findings = []
    shrink_until = time.monotonic() + SHRINK_ROUNDS * shrink_budget
    for signature, shown_by in signatures(search.cache, specs).items():
        if time.monotonic() < shrink_until:
            progress(f"generated: shrinking disagreement {signature!r} ({len(shown_by)} examples)")
            finding = search.shrink(signature, examples, seed_, shrink_budget)
        else:  # the run's shrinking time is spent: reported as first seen
            finding = Finding(signature, {}, {}, [], 0, 0, True)
        if not finding.minimal:  # not shrunk: the first example that showed it
            finding.first = finding.minimal = shown_by[0]
            finding.judged = [j for j in search.cache[key(shown_by[0])] if j.signature == signature]
        finding.count = len(shown_by)
        findings.append(finding)
    times["shrink"] = time.monotonic() - start - times["generate"] - times["run"]
    judged = [j for s in specs for j in search.cache[key(s)]]
    outcomes: dict[str, int] = {}
    for j in judged:
        outcomes[j.observed.status] = outcomes.get(j.observed.status, 0) + 1
    times["total"] = time.monotonic() - start
    return Result(len(specs), len(judged), outcomes, findings, times)


def finding_comment(judged: batch.Judged) -> str:
    """What goes at the top of a finding's case file: each differing check."""
    lines = [f"Generated finding: the oracle and the cluster differ ({len(judged.failures)} of "
             f"{len(judged.checks)} checks):"]
    for check in judged.failures:
        lines.append(f"  {check.field}: predicted {expect.show(check.field, check.expected)}, "
                     f"observed {expect.show(check.field, check.observed)}")
        lines.append(f"    why predicted: {check.reason}")
    if judged.observed.refusal and judged.observed.status != Status.RUNNING:
        lines.append(f"  the cluster said: {judged.observed.refusal.message[:1500]}")
    return "\n".join(lines)


def write_findings(root: Path, findings: list[Finding], outcomes_of) -> None:
    """Each finding's minimal spec as case files under root/cases (manifests beside), and
    root/findings.json with the predicted and observed values."""
    summary = []
    for finding in findings:
        comments = {j.case.container: finding_comment(j) for j in finding.judged}
        finding.files = casefile.write(root, finding.minimal, outcomes_of(finding.minimal), comments)
        summary.append({"signature": finding.signature, "examples": finding.count,
                        "shrink_runs": finding.shrink_runs, "shrink_stopped": finding.shrink_stopped,
                        "files": [str(f) for f in finding.files], "minimal_spec": finding.minimal,
                        "checks": [{"container": j.case.container,
                                    "differ": [{"field": c.field, "predicted": repr(c.expected),
                                                "observed": repr(c.observed), "why": c.reason}
                                               for c in j.failures]} for j in finding.judged]})
    root.mkdir(parents=True, exist_ok=True)
    (root / "findings.json").write_text(json.dumps(summary, indent=2))


def summary(result: Result) -> str:
    """The run in a few lines: numbers, then each finding with its minimal spec's files."""
    t = result.seconds
    rate = result.examples / t["run"] if t["run"] else 0.0
    lines = [f"generated: {result.examples} pod specs, {result.containers} containers judged "
             f"({', '.join(f'{k} {v}' for k, v in sorted(result.outcomes.items()))}); "
             f"run {t['run']:.0f}s ({rate:.2f} examples/s), shrink {t['shrink']:.0f}s, "
             f"total {t['total']:.0f}s",
             f"{len(result.findings)} disagreement(s)" + (":" if result.findings else "")]
    for f in result.findings:
        lines.append(f"- {f.signature} (in {f.count} examples; shrunk with {f.shrink_runs} "
                     f"cluster runs{', stopped by the budget' if f.shrink_stopped else ''})")
        for j in f.judged:
            lines += ["    " + c.line() for c in j.failures]
        lines += [f"    case file: {p}" for p in f.files]
    return "\n".join(lines)
