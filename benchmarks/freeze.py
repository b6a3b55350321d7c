"""Can the pod-start tail be avoided? (issue 27) The true floor (benchmarks/floor.py
test_true_floor) on kind clusters that differ in one node setting each, `--runs` times
per variant:

    python -m benchmarks.freeze --variant systemd --variant cgroupfs --runs 2 --out reports/freeze

Variants (VARIANTS): `systemd`, kind's default (kubelet and runc through systemd's
cgroup manager); `cgroupfs` (kubelet's cgroupDriver and containerd's runc handlers
without systemd: on cgroup v1 runc's systemd manager freezes the container's cgroup
while it sets device rules, the "unable to freeze" of the tail); `reserved` (the kubelet
reserves CPU for the system and itself: 500m + 250m). Each cluster is made by the suite's
own provisioning with the variant's patches added, measured through --kubeconfig, then
deleted. Results: one JSON per run and a table on stdout.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from secctx.cluster import kindconfig, provision

ROOT = Path(__file__).resolve().parents[1]
RUNS_TIMEOUT = 900  # one true-floor run: session set-up, the pods (bound 300 s), deletion

_NO_SYSTEMD = "\n".join(
    f'[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.{h}.options]\n'
    f"  SystemdCgroup = false\n" for h in ("runc", "test-handler", "crun"))
VARIANTS = {
    "systemd": ([], []),
    "cgroupfs": (["kind: KubeletConfiguration\ncgroupDriver: cgroupfs\n"], [_NO_SYSTEMD]),
    "reserved": (["kind: KubeletConfiguration\nsystemReserved:\n  cpu: 500m\n"
                  "kubeReserved:\n  cpu: 250m\n"], []),
}


@contextmanager
def patched(variant: str):
    """kindconfig.kind_config with the variant's kubeadm and containerd patches added."""
    kubeadm, containerd = VARIANTS[variant]
    original = kindconfig.kind_config

    def kind_config(**kw):
        config = original(**kw)
        config["kubeadmConfigPatches"] = [*config.get("kubeadmConfigPatches", []), *kubeadm]
        config["containerdConfigPatches"] = [*config.get("containerdConfigPatches", []),
                                             *containerd]
        return config
    kindconfig.kind_config = kind_config
    try:
        yield
    finally:
        kindconfig.kind_config = original


def true_floor(kubeconfig: Path, out: Path, runtimes: list[str]) -> dict:
    argv = [sys.executable, "-m", "pytest", str(ROOT / "benchmarks" / "floor.py"), "-q", "-s",
            "-p", "no:cacheprovider", "-k", "true_floor", "--secctx-existing-cluster",
            "--kubeconfig", str(kubeconfig), *[a for r in runtimes
                                                for a in ("--secctx-runtime-class", r)]]
    env = {**os.environ, "SECCTX_TRUE_FLOOR_OUT": str(out)}
    t0 = time.monotonic()
    run = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=RUNS_TIMEOUT)
    line = next((ln for ln in run.stdout.splitlines() if ln.startswith("true floor:")), "")
    print(f"  {out.name}: rc {run.returncode} in {time.monotonic() - t0:.0f} s; {line}",
          flush=True)
    if run.returncode != 0 or not out.exists():
        return {"error": (run.stdout + run.stderr)[-2000:]}
    return json.loads(out.read_text())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.freeze")
    p.add_argument("--variant", action="append", choices=sorted(VARIANTS), required=True)
    p.add_argument("--runs", type=int, default=2)
    p.add_argument("--runtime-class", action="append", default=None,
                   help="RuntimeClasses whose case pods are started (default: default)")
    p.add_argument("--out", type=Path, default=ROOT / "reports" / "freeze")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for variant in args.variant:
        name = f"secctx-freeze-{variant}"
        t0 = time.monotonic()
        with patched(variant):
            cluster = provision.bring_up(provision.Options(name=name, mode="offline"))
        print(f"{variant}: cluster {name} up in {time.monotonic() - t0:.0f} s", flush=True)
        try:
            for i in range(args.runs):
                r = true_floor(cluster.kubeconfig, args.out / f"{variant}-{i}.json",
                               args.runtime_class or ["default"])
                rows.append((variant, i, r))
        finally:
            provision.tear_down(cluster, keep=False)
    print("\n| variant | run | pods | all settled (s) | sandbox ready p50/p90/max (s) | "
          "failed sandboxes (pods) | late |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for variant, i, r in rows:
        if "error" in r:
            print(f"| {variant} | {i} | error | | | | |")
            continue
        q = r["sandbox_ready_s"]
        print(f"| {variant} | {i} | {r['pods']} | {r['all_settled_s']} | {q.get('p50')}/"
              f"{q.get('p90')}/{q.get('max')} | {r['sandbox_failures']} "
              f"({len(r['pods_with_sandbox_failures'])}) | {len(r['late'])} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
