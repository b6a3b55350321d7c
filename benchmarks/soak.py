"""Repeated runs of the suite, to find flakes and leaks.

    python -m benchmarks.soak --runs 20                 # one cluster, kept between runs
    python -m benchmarks.soak --runs 5 --fresh-cluster  # a new cluster for every run
    python -m benchmarks.soak --runs 20 -- --case-concurrency 1   # pytest options after --

Each run's JUnit XML gives per-test outcomes; a test that both passes and fails
across runs is a flake. After each run the objects the suite labels as its own
(namespaces, PersistentVolumes, StorageClasses), the pods in the suite's namespaces
(secctx-*) and the cluster's kind nodes (with --fresh-cluster) are counted: any left
is a leak; at the end, after the cluster is deleted, its nodes are counted again.
Writes reports/soak/<name>.json and prints a summary.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

from secctx.core import cache

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
LABEL = "app.kubernetes.io/managed-by=secctx-conformance"


def outcomes(junit: Path) -> dict[str, str]:
    result = {}
    for case in ET.parse(junit).iter("testcase"):
        name = f"{case.get('classname')}::{case.get('name')}"
        kinds = {child.tag for child in case}
        result[name] = ("failed" if kinds & {"failure", "error"} else
                        "skipped" if "skipped" in kinds else "passed")
    return result


def leaks(kubeconfig: Path) -> dict[str, int]:
    from kubernetes import client, config
    api = config.new_client_from_config(config_file=str(kubeconfig))
    core, storage = client.CoreV1Api(api), client.StorageV1Api(api)
    pods = [p for p in core.list_pod_for_all_namespaces().items
            if p.metadata.namespace.startswith("secctx-")]
    return {"namespaces": len(core.list_namespace(label_selector=LABEL).items),
            "pods": len(pods),
            "persistentvolumes": len(core.list_persistent_volume(label_selector=LABEL).items),
            "storageclasses": len(storage.list_storage_class(label_selector=LABEL).items)}


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.soak")
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--fresh-cluster", action="store_true")
    p.add_argument("--cluster-name", default="secctx-soak")
    p.add_argument("--timeout", type=float, default=900, help="bound of one run, seconds")
    p.add_argument("--mode", choices=("auto", "online", "offline"), default="offline",
                   help="the suite's --secctx-mode (default offline: nothing is pulled)")
    p.add_argument("pytest_args", nargs="*", help="extra pytest arguments, after --")
    args = p.parse_args()
    out = ROOT / "reports" / "soak"
    out.mkdir(parents=True, exist_ok=True)
    kubeconfig = cache.cluster_state(args.cluster_name) / "kubeconfig"
    runs, per_test = [], defaultdict(list)
    for i in range(args.runs):
        junit = out / f"{args.cluster_name}-run{i}.xml"
        cmd = [PY, "-m", "pytest", "suites", "-q", "-p", "no:cacheprovider",
               f"--cluster-name={args.cluster_name}", f"--secctx-mode={args.mode}", f"--junitxml={junit}",
               *args.pytest_args]
        if not args.fresh_cluster:
            cmd.append("--keep-cluster")
        start = time.monotonic()
        try:
            proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=args.timeout)
            code, tail = proc.returncode, proc.stdout.strip().splitlines()[-1:]
        except subprocess.TimeoutExpired:
            code, tail = "timeout", ["run exceeded its bound"]
        seconds = round(time.monotonic() - start, 1)
        results = outcomes(junit) if junit.exists() else {}
        for test, outcome in results.items():
            per_test[test].append(outcome)
        left = leaks(kubeconfig) if kubeconfig.exists() and not args.fresh_cluster else {}
        if args.fresh_cluster:  # a kept cluster's node is no leftover until the end
            left["kind_nodes_of_this_cluster"] = _nodes(args.cluster_name)
        failed = sorted(t for t, o in results.items() if o == "failed")
        runs.append({"run": i, "exit": code, "seconds": seconds, "summary": tail, "failed": failed,
                     "leftover": left})
        print(f"run {i}: exit {code} in {seconds}s {tail} failed={failed} leftover={left}", flush=True)
    flaky = sorted(t for t, o in per_test.items() if "failed" in o and "passed" in o)
    always_failing = sorted(t for t, o in per_test.items() if set(o) == {"failed"})
    summary = {"runs": len(runs), "failed_runs": sum(r["exit"] != 0 for r in runs),
               "flaky_tests": flaky, "always_failing": always_failing,
               "tests_per_run": max((len(v) for v in [per_test]), default=0),
               "median_seconds": sorted(r["seconds"] for r in runs)[len(runs) // 2] if runs else None,
               "fresh_cluster": args.fresh_cluster, "runs_detail": runs}
    name = f"{args.cluster_name}{'-fresh' if args.fresh_cluster else ''}"
    (out / f"{name}.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps({k: v for k, v in summary.items() if k != "runs_detail"}, indent=2))
    if not args.fresh_cluster:
        subprocess.run([PY, "-m", "secctx", "cluster-down", "--cluster-name", args.cluster_name],
                       cwd=ROOT, capture_output=True)
    summary["kind_nodes_after_cluster_down"] = _nodes(args.cluster_name)
    summary["leftover_runs"] = sum(any(r["leftover"].values()) for r in runs)
    (out / f"{name}.json").write_text(json.dumps(summary, indent=2))
    print(f"kind nodes of {args.cluster_name} after cluster-down: "
          f"{summary['kind_nodes_after_cluster_down']}; runs with leftovers: "
          f"{summary['leftover_runs']}")
    clean = (summary["failed_runs"] == 0 and not flaky and not summary["leftover_runs"]
             and not summary["kind_nodes_after_cluster_down"])
    return 0 if clean else 1


def _nodes(cluster: str) -> int:
    names = subprocess.run(["docker", "ps", "-a", "--format", "{{.Names}}"],
                           capture_output=True, text=True).stdout.split()
    return sum(n.startswith(cluster + "-") for n in names)


if __name__ == "__main__":
    raise SystemExit(main())
