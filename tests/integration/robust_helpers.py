"""Helpers of the integration tests: nested suite runs, signals, counting what
a run leaves behind on the `secctx-robust` cluster.
"""
from __future__ import annotations

import base64
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from secctx.kube import MANAGED_BY, RUN_LABEL, Kube
from secctx.oracle.nodefacts import HELPER
from secctx.run.session import LOCAL_CLASS

ROOT = Path(__file__).resolve().parents[2]
# SECCTX_ROBUST_CLUSTER: another name, so that developing one integration test does not
# disturb others' runs on the shared secctx-robust.
CLUSTER = os.environ.get("SECCTX_ROBUST_CLUSTER", "secctx-robust")
SELECTOR = ",".join(f"{k}={v}" for k, v in MANAGED_BY.items())


def nested_env(**extra: str) -> dict[str, str]:
    """The environment of a nested run: none of this run's pytest/xdist state
    (a shared xdist run id would make the nested run share our cluster record)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTEST_", "SECCTX_TIMINGS"))}
    env.update(extra)
    return env


def _default_sigint() -> None:
    # Jobs started in the background inherit SIGINT ignored, and Python then keeps
    # ignoring it; a user's Ctrl-C reaches a foreground run with the default.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


# Nested runs test cleanup, options, errors and reports, not runtimes: under the default
# runtime only, their counts do not depend on which RuntimeClasses a reused cluster holds
# (an offline kind run would also run crun and runsc). The main suite run covers those.
ONE_RUNTIME = ("--secctx-runtime-class", "default")


def start_pytest(*args: str, log: Path, env: dict | None = None) -> subprocess.Popen:
    """`python -m pytest ARGS` in the checkout, output to `log` (no pipe to fill); under
    the default runtime unless ARGS choose."""
    runtime = () if "--secctx-runtime-class" in args else ONE_RUNTIME
    with log.open("w") as out:  # the child keeps its own copy
        return subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args,
                                 *runtime],
                                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                env=env or nested_env(), preexec_fn=_default_sigint)


@dataclass
class Run:
    returncode: int
    output: str
    seconds: float


def run_pytest(*args: str, log: Path, timeout: float = 240, env: dict | None = None) -> Run:
    t0 = time.monotonic()
    proc = start_pytest(*args, log=log, env=env)
    try:
        code = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)
        proc.wait(90)
        raise
    return Run(code, log.read_text(), time.monotonic() - t0)


def cli(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "secctx", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env=nested_env())


def kind_clusters() -> list[str]:
    """Names of the kind clusters on this engine (kind labels its node containers)."""
    out = subprocess.run(["docker", "ps", "-a", "--filter", "label=io.x-k8s.kind.cluster",
                          "--format", '{{.Label "io.x-k8s.kind.cluster"}}'],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    return sorted(set(out.split()))


@dataclass
class Robust:
    """The `secctx-robust` cluster, seen through the API."""
    name: str
    kubeconfig: Path
    kube: Kube
    mode: str = "offline"  # where its images came from (python -m secctx cluster-up)

    def counts(self) -> dict[str, object]:
        """What a run may leave behind: objects labelled as ours (any phase,
        Terminating included), the shared StorageClass, the node helper
        DaemonSets, and kind clusters."""
        core, apps = self.kube.core, self.kube.apps
        storage = client.StorageV1Api(self.kube.api)
        return {
            "namespaces": sorted(n.metadata.name for n in
                                 core.list_namespace(label_selector=SELECTOR).items),
            "persistentvolumes": sorted(p.metadata.name for p in
                                        core.list_persistent_volume(label_selector=SELECTOR).items),
            "storageclass": [s.metadata.name for s in storage.list_storage_class().items
                             if s.metadata.name == LOCAL_CLASS],
            "daemonsets": sorted(f"{d.metadata.namespace}/{d.metadata.name}" for d in
                                 apps.list_daemon_set_for_all_namespaces(
                                     field_selector=f"metadata.name={HELPER}").items),
            "kind_clusters": kind_clusters(),
        }

    def ours_left(self) -> dict[str, list]:
        """The objects of suite runs still present (kind clusters excluded)."""
        return {k: v for k, v in self.counts().items() if k != "kind_clusters" and v}

    def test_namespaces(self, phase: str | None = None) -> list:
        """Namespaces of test cases (not the suite's own secctx-system-*)."""
        return [n for n in self.kube.core.list_namespace(label_selector=SELECTOR).items
                if not n.metadata.name.startswith("secctx-system")
                and (phase is None or n.status.phase == phase)]

    def wait_for_test_namespace(self, proc: subprocess.Popen, timeout: float = 180):
        """The first test namespace of the run `proc` (polls; fails if it exits first)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                found = self.test_namespaces("Active")
            except Exception:  # noqa: BLE001 - a new cluster's API may not answer yet
                found = []
            if found:
                return found[0]
            if proc.poll() is not None:
                pytest.fail(f"the nested run ended (exit {proc.returncode}) before a test "
                            "namespace appeared")
            time.sleep(0.2)  # test code: a short poll is simpler than a watch here
        pytest.fail(f"no test namespace appeared within {timeout:.0f}s")

    def delete_namespaces_and_wait(self, names: list[str], timeout: float = 90) -> None:
        for name in names:
            self.kube.delete_namespace(name)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            left = {n.metadata.name for n in self.kube.core.list_namespace().items} & set(names)
            if not left:
                return
            time.sleep(0.5)
        pytest.fail(f"namespaces {names} still present after {timeout:.0f}s")

    def run_label(self, namespace: str) -> str:
        return self.kube.core.read_namespace(namespace).metadata.labels[RUN_LABEL]


def write_case(directory: Path, name: str, manifest: Path, pod: str, container: str,
               **extra) -> Path:
    """A case file (YAML) in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    data = {"name": name, "section": "Hardened pod", "field": "runAsUser",
            "manifest": str(manifest), "pod": pod, "container": container, "severity": "minor",
            **extra}
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


# A JSON Web Token (ServiceAccount tokens are JWTs): header.payload.signature.
JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+")


def kubeconfig_secrets(kubeconfig: Path) -> dict[str, str]:
    """The credentials of a kubeconfig's users: token, client key and certificate
    (base64 as in the file, and a line of the decoded PEM body)."""
    secrets = {}
    for entry in yaml.safe_load(kubeconfig.read_text())["users"]:
        user = entry.get("user") or {}
        if user.get("token"):
            secrets[f"{entry['name']} token"] = user["token"]
        for key in ("client-key-data", "client-certificate-data"):
            if user.get(key):
                secrets[f"{entry['name']} {key}"] = user[key]
                body = [ln for ln in base64.b64decode(user[key]).decode().splitlines()
                        if ln and not ln.startswith("-----")]
                secrets[f"{entry['name']} {key} (decoded)"] = body[len(body) // 2]
    return secrets


def secrets_found(texts: dict[str, str], secrets: dict[str, str]) -> list[str]:
    """'<secret> in <where>' for every secret, or JWT, found in the texts."""
    found = [f"{name} in {where}" for where, text in texts.items()
             for name, secret in secrets.items() if secret in text]
    found += [f"a JWT in {where}" for where, text in texts.items() if JWT.search(text)]
    return found


def result_texts(results: Path) -> dict[str, str]:
    """Every file of an Allure results directory, as text."""
    return {str(p): p.read_bytes().decode(errors="replace")
            for p in results.rglob("*") if p.is_file()}


def unreachable_kubeconfig(path, server="https://127.0.0.1:1"):
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "nowhere",
        "clusters": [{"name": "nowhere", "cluster": {"server": server,
                                                     "insecure-skip-tls-verify": True}}],
        "users": [{"name": "someone", "user": {"token": "not-a-real-token"}}],
        "contexts": [{"name": "nowhere", "context": {"cluster": "nowhere", "user": "someone"}}],
    }))
    return path


def traceback_in(output: str) -> bool:
    """A Python traceback or pytest's assertion lines ("E   ...") in a run's output
    (a lone "E" is a test's status letter)."""
    return ("Traceback" in output or "During handling" in output
            or re.search(r"^E {3}", output, re.M) is not None)
