"""`python -m benchmarks.run`: how long the offline node image, the kind cluster
and the suite take, and how much memory the suite uses (issue 6).

Every figure is the median (with min, max and n) of --repeat runs of the
same command a user would type. Each command runs as a child process with a
time limit, its output in logs/; a failure or a timeout is recorded in
result.json and the benchmark goes on. See benchmarks/README.md.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import select
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from filelock import FileLock, Timeout

from secctx.run.scheduler import SCHEDULED_CONCURRENCY

from . import analysis

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "reports" / "benchmark"
DEFAULT_CLUSTER = "secctx-bench"
PROTECTED_CLUSTERS = ("secctx",)  # the suite's own cluster: never created or deleted here

# Time limits (seconds) of each child process, and how long a stopped one may clean up.
TIMEOUTS = {
    "node_image_warm": 900,  # a cache hit takes seconds; a changed recipe re-assembles
    "node_image_cold": 3 * 3600,
    "node_image_cold_from_scratch": 5 * 3600,
    "node_image_build_missing": 5 * 3600,
    "cluster_up": 600,
    "cluster_down": 300,
    "suite": 1800,
    "floor": 900,
    "e2e_prepare": 3600,  # a cold e2e.test build: minutes on 2 cores
    "e2e": 3600,
    "probe": 60,
}
GRACE_S = 60  # SIGTERM first (pytest then deletes its namespaces), SIGKILL after this
SAMPLE_S = 0.5  # process-tree RSS sampling interval


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def say(msg: str) -> None:
    print(f"[bench {datetime.now().strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- running one measured child process --------------------------------------

@dataclass
class Measured:
    argv: list[str]
    seconds: float | None
    returncode: int | None
    timed_out: bool = False
    error: str | None = None  # could not start
    max_rss_kb: int | None = None  # largest single process of the tree (getrusage)
    tree_rss_peak_kb: int | None = None  # sum over the process group, sampled
    cpu_seconds: float | None = None
    tmp_left_mb: float | None = None  # what the command left in its TMPDIR


class _ExitWaiter:
    """Wait for a child's exit without reaping it (pidfd; polling where there is none)."""

    def __init__(self, pid: int):
        self.pid = pid
        try:
            self.fd = os.pidfd_open(pid)
        except (AttributeError, OSError):
            self.fd = None

    def wait(self, seconds: float) -> bool:
        if self.fd is not None:
            return bool(select.select([self.fd], [], [], max(0.0, seconds))[0])
        end = time.monotonic() + max(0.0, seconds)
        while True:
            try:
                info = os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                return True
            if info is not None:
                return True
            if time.monotonic() >= end:
                return False
            time.sleep(0.05)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _group_rss_kb(pgid: int) -> int:
    """Resident memory of every process in process group pgid (kB)."""
    page_kb = os.sysconf("SC_PAGE_SIZE") // 1024
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                fields = f.read().rpartition(b")")[2].split()
            if int(fields[2]) == pgid:
                total += int(fields[21]) * page_kb
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
    return total


def _stop_group(pid: int, waiter: _ExitWaiter, grace: float) -> None:
    """SIGTERM to the child's process group; SIGKILL to what is left after grace.
    (Until we reap the leader, its group id cannot be reused by anyone else.)"""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)
    waiter.wait(grace)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    waiter.wait(10)


def _dir_mb(path: Path) -> float:
    total = 0
    for dirpath, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return round(total / 2**20, 1)


def rmtree(path: Path) -> None:
    """Remove a tree, including Go's read-only module cache."""
    def onerror(func, p, _exc):
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(p), stat.S_IRWXU)
            os.chmod(p, stat.S_IRWXU)
            func(p)
    if Path(path).exists():
        shutil.rmtree(path, onerror=onerror)


def run_measured(argv: list[str], *, timeout: float, log: Path, env: dict[str, str],
                 cwd: Path = ROOT, grace: float = GRACE_S, sample: float = SAMPLE_S) -> Measured:
    """Run argv in its own process group with a private TMPDIR; output to log.

    Wall time ends when the child exits (pidfd, so no polling error). max RSS
    comes from wait4(): the child's own rusage, which covers the descendants
    it reaped. On timeout or on our own interruption the whole group gets
    SIGTERM, then SIGKILL.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="secctx-bench-tmp-"))
    env = {**env, "TMPDIR": str(scratch)}
    try:
        with log.open("wb") as out:
            out.write(f"$ {shlex.join(argv)}\n".encode())
            out.flush()
            t0 = time.monotonic()
            try:
                proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                        stdout=out, stderr=subprocess.STDOUT,
                                        start_new_session=True)
            except OSError as err:
                return Measured(argv, None, None, error=f"could not start {argv[0]}: {err}")
            waiter = _ExitWaiter(proc.pid)
            peak, timed_out = 0, False
            try:
                deadline = t0 + timeout
                while not waiter.wait(min(sample, max(0.0, deadline - time.monotonic()))):
                    peak = max(peak, _group_rss_kb(proc.pid))
                    if time.monotonic() >= deadline:
                        timed_out = True
                        out.write(f"\n[bench] timeout after {timeout:.0f}s: stopping\n".encode())
                        out.flush()
                        _stop_group(proc.pid, waiter, grace)
                        break
                t1 = time.monotonic()
            except BaseException:  # our Ctrl-C / SIGTERM: stop the child before unwinding
                _stop_group(proc.pid, waiter, grace)
                _reap(proc)
                raise
            finally:
                waiter.close()
            rc, ru = _reap(proc)
        return Measured(
            argv, round(t1 - t0, 3), rc, timed_out=timed_out,
            max_rss_kb=ru.ru_maxrss if ru else None, tree_rss_peak_kb=peak or None,
            cpu_seconds=round(ru.ru_utime + ru.ru_stime, 2) if ru else None,
            tmp_left_mb=_dir_mb(scratch))
    finally:
        rmtree(scratch)


def _reap(proc: subprocess.Popen):
    try:
        _, status, ru = os.wait4(proc.pid, 0)
    except ChildProcessError:
        return proc.returncode, None
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, ru


def tail(path: Path, lines: int = 12) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").rstrip().splitlines()[-lines:])
    except OSError:
        return ""


# -- commands ----------------------------------------------------------------

def secctx_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "secctx", *args]


def node_image_cmd(version: str, rebuild: bool = False) -> list[str]:
    return secctx_cmd("node-image", "--kubernetes-version", version, *(["--rebuild"] if rebuild else []))


def cluster_up_cmd(name: str, version: str) -> list[str]:
    return secctx_cmd("cluster-up", "--cluster-name", name, "--kubernetes-version", version,
                      "--mode", "offline")


def cluster_down_cmd(name: str) -> list[str]:
    return secctx_cmd("cluster-down", "--cluster-name", name)


# How the suite runs: one case after another, the scheduler (the default), or xdist.
SUITE_KINDS = {"serial": ["--secctx-case-concurrency", "1"],
               "scheduler": ["--secctx-case-concurrency", str(SCHEDULED_CONCURRENCY)],
               "parallel": ["-n", "auto"],
               # Like for like with upstream e2e, which runs the default handler only.
               "default_runtime": ["--secctx-case-concurrency", str(SCHEDULED_CONCURRENCY),
                                   "--secctx-runtime-class", "default"]}


def suite_cmd(name: str, version: str, kind: str, junit: Path,
              alluredir: Path | None = None) -> list[str]:
    return [sys.executable, "-m", "pytest", "suites", "-q", "-p", "no:cacheprovider",
            "--cluster-name", name, "--keep-cluster", "--secctx-kubernetes-version", version,
            "--secctx-mode", "offline", f"--junitxml={junit}",
            *([f"--alluredir={alluredir}"] if alluredir else []), *SUITE_KINDS[kind]]


def floor_cmd(name: str, version: str, test: str = "test_floor") -> list[str]:
    """benchmarks/floor.py: the session set up as the suite's, then the cases' pods only
    (test_floor: as the suite starts them; test_true_floor: all at once)."""
    return [sys.executable, "-m", "pytest", f"{ROOT / 'benchmarks' / 'floor.py'}::{test}", "-q",
            "-s", "-p", "no:cacheprovider", "--cluster-name", name, "--keep-cluster",
            "--secctx-kubernetes-version", version, "--secctx-mode", "offline"]


def e2e_prepare_cmd(name: str, version: str) -> list[str]:
    return [sys.executable, "-m", "benchmarks.e2e", "--cluster-name", name,
            "--kubernetes-version", version, "--prepare-only"]


def base_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The caller's environment minus what would change the measured commands."""
    env = dict(os.environ if environ is None else environ)
    for var in ("SECCTX_TIMINGS_DIR", "PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT",
                "PYTEST_XDIST_TESTRUNUID", "PYTEST_CURRENT_TEST"):
        env.pop(var, None)
    go = "/usr/local/go/bin"
    if Path(go).is_dir() and go not in env.get("PATH", "").split(os.pathsep):
        env["PATH"] = env.get("PATH", "") + os.pathsep + go  # as hack/lib.sh does
    env["PYTHONUNBUFFERED"] = "1"
    return env


def from_scratch_env(env: dict[str, str], scratch: Path) -> dict[str, str]:
    """--cold-from-scratch: empty Go build and module caches and an empty secctx cache."""
    env = dict(env)
    for var, sub in (("GOCACHE", "go-build"), ("GOMODCACHE", "go-mod"),
                     ("SECCTX_CACHE", "secctx-cache")):
        d = scratch / sub
        d.mkdir(parents=True, exist_ok=True)
        env[var] = str(d)
    return env


# -- node image state and the cold build's cache ----------------------------

def cache_root(env: dict[str, str]) -> Path:
    """The secctx cache root of the children's environment `env`."""
    from secctx.core import cache
    return cache.root(env)


def kubernetes_commands() -> tuple[str, ...]:
    from secctx.offline.gobuild import KUBERNETES_COMMANDS
    return KUBERNETES_COMMANDS


def fixed_components() -> dict[str, str]:
    """Node components whose version does not depend on Kubernetes' (name -> version)."""
    from secctx.offline import components
    return {name: c.version for name, c in components.COMPONENTS.items()}


def version_components(version: str, root: Path) -> dict[str, str]:
    """Every component a node image of this version is made of, etcd and CoreDNS
    at the versions its kubeadm names (needs that version's kubeadm in the cache)."""
    from secctx.images.build import ControlPlaneImages
    from secctx.offline import components
    from secctx.offline.gobuild import kubernetes_bin_dir
    comps = fixed_components()
    kubeadm = kubernetes_bin_dir(version, root) / "kubeadm"
    proc = subprocess.run([str(kubeadm), "config", "images", "list", "--kubernetes-version",
                           version], capture_output=True, text=True, timeout=TIMEOUTS["probe"])
    if proc.returncode != 0:
        raise RuntimeError(f"{kubeadm} config images list failed: {proc.stderr.strip()}")
    names = ControlPlaneImages.from_kubeadm_list(proc.stdout.splitlines())
    tag = ControlPlaneImages.tag_of
    comps["etcd"] = components.etcd(tag(names.etcd)).version
    comps["coredns"] = components.coredns(tag(names.coredns)).version
    return comps


def cold_paths(root: Path, version: str, comps: dict[str, str]) -> list[Path]:
    """What --cold moves aside: this version's Kubernetes binaries (and their
    build directory) and the cached build of each of its components."""
    return [root / "kubernetes" / version,
            *(root / "components" / name / v for name, v in sorted(comps.items()))]


class Aside:
    """Cached builds moved out of the way for a cold build.

    `keep_new()` after a successful build drops the moved originals (the
    rebuilt ones replace them, consistent with the image just committed);
    otherwise leaving the context removes what the failed build left at
    those paths and puts the originals back. manifest.json in the aside
    directory says where each came from, should the process be killed.
    """

    def __init__(self, paths: list[Path], aside_dir: Path):
        self.paths, self.dir = paths, aside_dir
        self.moved: list[tuple[Path, Path]] = []
        self._keep = False

    def __enter__(self) -> Aside:
        self.dir.mkdir(parents=True, exist_ok=False)
        try:
            for i, p in enumerate(self.paths):
                if p.exists():
                    dest = self.dir / str(i)
                    self.moved.append((p, dest))
                    (self.dir / "manifest.json").write_text(json.dumps(
                        [{"original": str(a), "aside": str(b)} for a, b in self.moved], indent=2))
                    os.rename(p, dest)
        except BaseException:
            self._restore()
            raise
        return self

    def keep_new(self) -> None:
        self._keep = True

    def __exit__(self, *exc) -> None:
        if self._keep:
            rmtree(self.dir)
        else:
            self._restore()

    def _restore(self) -> None:
        for original, dest in reversed(self.moved):
            if dest.exists():
                rmtree(original)
                original.parent.mkdir(parents=True, exist_ok=True)
                os.rename(dest, original)
        self.moved = []
        rmtree(self.dir)


def _cmdlines():
    me = os.getpid()
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and int(entry.name) != me:
            try:
                with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                    yield [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
            except OSError:
                continue


def build_in_progress(version: str, cmdlines=None) -> bool:
    """Another process builds this version: `secctx node-image` for it, or a go
    build writing its Kubernetes binaries."""
    for argv in (_cmdlines() if cmdlines is None else cmdlines):
        if "node-image" in argv and version in argv:
            return True
        if any(f"kubernetes/{version}/bin.tmp" in a for a in argv):
            return True
    return False


def node_image_state(version: str, root: Path, image_exists, cmdlines=None) -> dict:
    """{"state": "built" | "not built" | "building elsewhere", "detail": ...}."""
    from secctx.offline import nodeimage
    from secctx.offline.gobuild import kubernetes_bin_dir, kubernetes_built
    from secctx.offline.gomod import KubeVersion
    tag = nodeimage.recipe_tag(KubeVersion.parse(version))
    missing = []
    if not image_exists(tag):
        missing.append(f"image {tag}")
    if not kubernetes_built(version, root):
        missing.append(f"Kubernetes binaries in {kubernetes_bin_dir(version, root)}")
    for name, v in fixed_components().items():
        if not (root / "components" / name / v).exists():
            missing.append(f"{name} {v}")
    if not missing:
        return {"state": "built", "detail": tag}
    if build_in_progress(version, cmdlines):
        return {"state": "building elsewhere", "detail": "missing " + ", ".join(missing)}
    return {"state": "not built", "detail": "missing " + ", ".join(missing)}


def _docker_image_exists(tag: str) -> bool:
    try:
        return subprocess.run(["docker", "image", "inspect", tag], capture_output=True,
                              timeout=TIMEOUTS["probe"]).returncode == 0
    except subprocess.TimeoutExpired:
        return False


# -- the benchmark -------------------------------------------------------------

def primary_version(versions: list[str]) -> str:
    """The version that also gets the parallel suite and the per-case split."""
    from secctx.cluster.provision import DEFAULT_KUBERNETES_VERSION
    return DEFAULT_KUBERNETES_VERSION if DEFAULT_KUBERNETES_VERSION in versions else versions[0]


class Bench:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.out: Path = args.out
        self.name: str = args.cluster_name
        self.env = base_env()
        self.cluster_version: str | None = None  # the version our cluster runs, if up
        self.versions = args.versions
        self.primary = primary_version(self.versions)
        self.result: dict = {
            "schema": "secctx-benchmark/1",
            "started_at": _now(), "finished_at": None, "interrupted": False,
            "command": [Path(sys.executable).name, "-m", "benchmarks.run", *sys.argv[1:]],
            "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "host": host_info(),
            "cluster_name": self.name, "primary_version": self.primary,
            "timeouts_s": TIMEOUTS,
            "versions": {}, "targets": [], "errors": [],
        }

    # bookkeeping
    def save(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        tmp = self.out / "result.json.tmp"
        tmp.write_text(json.dumps(self.result, indent=2) + "\n")
        tmp.rename(self.out / "result.json")

    def measure(self, figure: str, version: str, i: int, argv: list[str], timeout: float,
                env: dict[str, str] | None = None, suite: bool = False,
                timings: Path | None = None) -> dict:
        label = f"{figure}-{version}-{i}"
        log = self.out / "logs" / f"{label}.log"
        env = dict(env or self.env)
        if timings is not None:
            env["SECCTX_TIMINGS_DIR"] = str(timings)
        say(f"{version} {figure} {i}/{self.args.repeat}: {shlex.join(argv[1:])}")
        m = run_measured(argv, timeout=timeout, log=log, env=env)
        rec = run_record(m, i, log.relative_to(self.out), suite)
        if suite:
            rec.update(suite_details(log, timings))
        if rec["status"] not in ("ok",):
            rec["error"] = m.error or tail(log)
        say(f"{version} {figure} {i}: {analysis.fmt_s(rec['seconds'])} {rec['status']}"
            + (f" ({analysis.fmt_mb(rec['max_rss_kb'])} max RSS)" if suite and rec.get("max_rss_kb") else ""))
        return rec

    def figure(self, version: str, name: str, runs: list[dict]) -> None:
        self.result["versions"][version]["figures"][name] = analysis.figure(runs)
        self.save()

    def helper(self, what: str, version: str, argv: list[str], timeout: float) -> dict:
        """An unmeasured step (deleting or preparing the cluster); recorded, not summarized."""
        log = self.out / "logs" / f"{what}-{version}-{len(self.result.get('steps', []))}.log"
        m = run_measured(argv, timeout=timeout, log=log, env=self.env)
        rec = run_record(m, 0, log.relative_to(self.out), False)
        rec["step"], rec["version"] = what, version
        if rec["status"] != "ok":
            rec["error"] = m.error or tail(log)
            say(f"{version} {what} failed: {rec['error'].splitlines()[-1] if rec['error'] else rec['status']}")
        self.result.setdefault("steps", []).append(rec)
        return rec

    # cluster
    def cluster_down(self, version: str) -> bool:
        ok = self.helper("cluster-down", version, cluster_down_cmd(self.name),
                         TIMEOUTS["cluster_down"])["status"] == "ok"
        if ok:
            self.cluster_version = None
        return ok

    def ensure_cluster(self, version: str) -> bool:
        if self.cluster_version == version:
            return True
        self.cluster_down(version)  # another version's, or a leftover
        say(f"{version}: preparing cluster {self.name} for the suite")
        rec = self.helper("cluster-up", version, cluster_up_cmd(self.name, version),
                          TIMEOUTS["cluster_up"])
        if rec["status"] == "ok":
            self.cluster_version = version
            return True
        return False

    # the figures
    def run(self) -> None:
        for version in self.versions:
            try:
                self.bench_version(version)
            except Exception as err:  # recorded; the other versions still run
                self.result["errors"].append(f"{version}: {type(err).__name__}: {err}")
                say(f"{version}: harness error: {err!r}")
                self.save()
        primary = self.result["versions"].get(self.primary)
        if primary:
            self.result["targets"] = analysis.targets(primary)
        self.save()

    def bench_version(self, v: str) -> None:
        a, n = self.args, self.args.repeat
        root = cache_root(self.env)
        state = node_image_state(v, root, _docker_image_exists)
        ver = self.result["versions"][v] = {"node_image": state, "figures": {}, "speedup": None,
                                            "cases": [], "timings_problems": []}
        self.save()
        say(f"{v}: node image {state['state']}"
            + (f" ({state['detail']})" if state["state"] != "built" else ""))
        if state["state"] == "building elsewhere":
            return
        if state["state"] == "not built":
            if not a.build_missing:
                return
            rec = self.measure("node_image_build_missing", v, 1, node_image_cmd(v),
                               TIMEOUTS["node_image_build_missing"])
            self.figure(v, "node_image_build_missing", [rec])
            ver["node_image"] = state = node_image_state(v, root, _docker_image_exists)
            if state["state"] != "built":
                return

        if not a.skip_build:
            cold_ran = False
            if a.cold_from_scratch:
                self.figure(v, "node_image_cold_from_scratch",
                            [self.cold_from_scratch(v, i) for i in range(1, n + 1)])
                cold_ran = True
            if a.cold:
                self.figure(v, "node_image_cold", [self.cold(v, root, i) for i in range(1, n + 1)])
                cold_ran = True
            if cold_ran:  # re-label the image from the regular cache: the next runs are warm
                ver["warm_prime"] = self.measure("node_image_warm_prime", v, 0, node_image_cmd(v),
                                                 TIMEOUTS["node_image_cold"])
            runs = []
            for i in range(1, n + 1):
                rec = self.measure("node_image_warm", v, i, node_image_cmd(v),
                                   TIMEOUTS["node_image_warm"])
                rec["cache_hit"] = "is up to date" in (self.out / rec["log"]).read_text(errors="replace")
                runs.append(rec)
                self.figure(v, "node_image_warm", runs)

        if not a.skip_cluster:
            create, delete = [], []
            for i in range(1, n + 1):
                if not self.cluster_down(v):
                    create.append(_not_run(i, "could not delete the cluster before creating it"))
                    continue
                create.append(self.measure("cluster_create", v, i, cluster_up_cmd(self.name, v),
                                           TIMEOUTS["cluster_up"]))
                self.cluster_version = v if create[-1]["status"] == "ok" else None
                delete.append(self.measure("cluster_delete", v, i, cluster_down_cmd(self.name),
                                           TIMEOUTS["cluster_down"]))
                if delete[-1]["status"] == "ok":
                    self.cluster_version = None
                self.figure(v, "cluster_create", create)
                self.figure(v, "cluster_delete", delete)

        if not a.skip_suite:
            self.bench_suite(v)

    def bench_suite(self, v: str) -> None:
        ver = self.result["versions"][v]
        primary = v == self.primary
        if not self.ensure_cluster(v):
            ver["figures"]["suite_scheduler"] = analysis.figure(
                [_not_run(1, f"cluster {self.name} could not be created; see steps")])
            self.save()
            return
        kinds = ["serial", "scheduler"] + (["default_runtime"] if primary else []) + (
            ["parallel"] if primary and self.args.xdist else [])
        runs: dict[str, list] = {k: [] for k in kinds}
        floor, floor_wall, true_floor, true_floor_wall, joined = [], [], [], [], []
        for i in range(1, self.args.repeat + 1):  # interleaved: drift hits every kind alike
            for kind in kinds:
                if not self.ensure_cluster(v):  # a run may have lost it
                    runs[kind].append(_not_run(i, "cluster lost and not recreated"))
                    continue
                raw = self.out / "raw" / v / f"suite_{kind}-{i}"
                rmtree(raw)
                raw.mkdir(parents=True)
                rec = self.measure(f"suite_{kind}", v, i,
                                   suite_cmd(self.name, v, kind, raw / "junit.xml", raw / "allure"),
                                   TIMEOUTS["suite"], suite=True, timings=raw)
                rec["checks"] = analysis.count_checks(raw / "allure")
                rmtree(raw / "allure")
                runs[kind].append(rec)
                if kind == "serial" and rec["counted"]:
                    records, bad = analysis.read_timings(raw)
                    if bad:
                        ver["timings_problems"].append(f"{raw.name}: {bad} unreadable lines")
                    if not records:
                        ver["timings_problems"].append(f"{raw.name}: no phase timings recorded")
                    joined.append(analysis.join_phases(records))
                self.figure(v, f"suite_{kind}", runs[kind])
            if primary and not self.args.skip_floor:
                wall, pods = self.floor(v, i)
                floor_wall.append(wall)
                floor.append(pods)
                self.figure(v, "floor_wall", floor_wall)
                self.figure(v, "floor", floor)
                wall, pods = self.true_floor(v, i)
                true_floor_wall.append(wall)
                true_floor.append(pods)
                self.figure(v, "true_floor_wall", true_floor_wall)
                self.figure(v, "true_floor", true_floor)
        ver["cases"] = analysis.aggregate_cases(joined)
        ver["speedup"] = analysis.speedup(ver["figures"].get("suite_serial"),
                                          ver["figures"].get("suite_scheduler"))
        if primary and not self.args.skip_e2e:
            self.bench_e2e(v)
        ver["peer"] = analysis.peer(ver)
        self.save()

    def floor(self, v: str, i: int) -> tuple[dict, dict]:
        """The floor command timed as a whole, and its pods-only seconds as a figure."""
        out = self.out / "raw" / v / f"floor-{i}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.unlink(missing_ok=True)
        wall = self.measure("floor_wall", v, i, floor_cmd(self.name, v), TIMEOUTS["floor"],
                            env={**self.env, "SECCTX_FLOOR_OUT": str(out)})
        pods = dict(wall, seconds=None, counted=False)
        if wall["status"] == "ok" and out.exists():
            data = json.loads(out.read_text())
            pods.update(seconds=data["seconds"], cases=data["cases"],
                        timed_out=data.get("timed_out"), counted=True)
        return wall, pods

    def true_floor(self, v: str, i: int) -> tuple[dict, dict]:
        """The machine's own floor (every case's pods at once, benchmarks/floor.py
        test_true_floor) timed with its session set-up, and its pods' seconds (first apply
        to the last pod settled) with the tail: late pods and failed sandboxes."""
        out = self.out / "raw" / v / f"true-floor-{i}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.unlink(missing_ok=True)
        wall = self.measure("true_floor_wall", v, i, floor_cmd(self.name, v, "test_true_floor"),
                            TIMEOUTS["floor"], env={**self.env, "SECCTX_TRUE_FLOOR_OUT": str(out)})
        pods = dict(wall, seconds=None, counted=False)
        if wall["status"] == "ok" and out.exists():
            data = json.loads(out.read_text())
            pods.update(analysis.true_floor_record(data), counted=data["all_settled_s"] is not None)
        return wall, pods

    def bench_e2e(self, v: str) -> None:
        """Upstream e2e.test's Security Context focus on the same cluster: prepared once
        (built if need be, its stand-in images loaded), then run --e2e-repeat times."""
        from . import e2e
        prep = self.measure("e2e_prepare", v, 1, e2e_prepare_cmd(self.name, v),
                            TIMEOUTS["e2e_prepare"])
        self.figure(v, "e2e_prepare", [prep])
        if prep["status"] != "ok":
            return
        runs = []
        from secctx.core import cache
        kubeconfig = cache.cluster_state(self.name, self.env) / "kubeconfig"
        for i in range(1, self.args.e2e_repeat + 1):
            report_dir = self.out / "raw" / v / f"e2e-{i}"
            rmtree(report_dir)
            report_dir.mkdir(parents=True)
            rec = self.measure("e2e", v, i, e2e.command(e2e.e2e_dir(v), kubeconfig, report_dir),
                               TIMEOUTS["e2e"])
            if rec["status"] == "failed":  # specs failed, the run went to the end
                rec["status"], rec["counted"] = "tests failed", True
            rec["counts"] = e2e.spec_counts(report_dir)
            rec["ran"] = e2e.ran_line(tail(self.out / rec["log"], 200))
            runs.append(rec)
            self.figure(v, "e2e", runs)

    def cold(self, v: str, root: Path, i: int) -> dict:
        """--cold: this version's Kubernetes binaries and components moved aside,
        then `node-image --rebuild` (Go's own caches stay warm)."""
        try:
            paths = cold_paths(root, v, version_components(v, root))
        except Exception as err:  # no kubeadm to ask, or it failed
            return _not_run(i, f"cannot tell what to move aside: {err}")
        if build_in_progress(v):
            return _not_run(i, "another process is building this version")
        aside = root / ".bench-aside" / f"{v}-{int(time.time())}-{i}"
        with Aside(paths, aside) as moved:
            rec = self.measure("node_image_cold", v, i, node_image_cmd(v, rebuild=True),
                               TIMEOUTS["node_image_cold"])
            rec["moved_aside"] = [str(p) for p, _ in moved.moved]
            if rec["status"] == "ok":
                moved.keep_new()
        return rec

    def cold_from_scratch(self, v: str, i: int) -> dict:
        """--cold-from-scratch: empty GOCACHE, GOMODCACHE and SECCTX_CACHE, `--rebuild`."""
        scratch = Path(tempfile.mkdtemp(prefix="secctx-bench-scratch-"))
        try:
            env = from_scratch_env(self.env, scratch)
            rec = self.measure("node_image_cold_from_scratch", v, i,
                               node_image_cmd(v, rebuild=True),
                               TIMEOUTS["node_image_cold_from_scratch"], env=env)
            rec["scratch_mb"] = _dir_mb(scratch)
            return rec
        finally:
            rmtree(scratch)

    def finish(self) -> str:
        if self.cluster_version is not None or not self.args.skip_cluster or not self.args.skip_suite:
            say(f"deleting cluster {self.name}")
            if self.cluster_down("teardown"):  # and the state kept about it
                from secctx.core import cache
                rmtree(cache.cluster_state(self.name, self.env))
        self.result["finished_at"] = _now()
        self.result["host"]["loadavg_end"] = list(os.getloadavg())
        self.save()
        table = analysis.render_table(self.result)
        (self.out / "table.md").write_text(table)
        return table


def run_record(m: Measured, i: int, log: Path, suite: bool) -> dict:
    if m.error:
        status = "error"
    elif m.timed_out:
        status = "timeout"
    elif m.returncode == 0:
        status = "ok"
    elif suite and m.returncode == 1:
        status = "tests failed"  # the suite ran to the end: its time counts
    else:
        status = "failed"
    return {"i": i, "status": status, "counted": status in ("ok", "tests failed"),
            "seconds": m.seconds, "returncode": m.returncode, "argv": m.argv,
            "log": str(log), "max_rss_kb": m.max_rss_kb, "tree_rss_peak_kb": m.tree_rss_peak_kb,
            "cpu_seconds": m.cpu_seconds, "tmp_left_mb": m.tmp_left_mb}


def _not_run(i: int, why: str) -> dict:
    return {"i": i, "status": "not run", "counted": False, "seconds": None, "error": why}


def suite_details(log: Path, timings: Path | None) -> dict:
    parsed = analysis.parse_pytest_summary(tail(log, 40))
    junit = analysis.parse_junit(timings / "junit.xml") if timings else None
    return {"counts": junit or parsed["counts"], "pytest_seconds": parsed["pytest_seconds"],
            "timings_dir": str(timings) if timings else None}


def host_info() -> dict:
    info = {"cpus": os.cpu_count(), "kernel": platform.release(),
            "python": platform.python_version(), "loadavg_start": list(os.getloadavg())}
    for key, argv in (("docker", ["docker", "version", "--format", "{{.Server.Version}}"]),
                      ("git_commit", ["git", "-C", str(ROOT), "rev-parse", "HEAD"]),
                      ("git_dirty", ["git", "-C", str(ROOT), "status", "--porcelain",
                                     "--untracked-files=no"])):
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUTS["probe"])
            info[key] = proc.stdout.strip() if key != "git_dirty" else bool(proc.stdout.strip())
        except (OSError, subprocess.TimeoutExpired):
            info[key] = None
    return info


# -- command line --------------------------------------------------------------

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from secctx.cluster.provision import DEFAULT_KUBERNETES_VERSION
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description="Measure node-image build, cluster creation and the suite (median of --repeat).")
    p.add_argument("--repeat", type=int, default=3, help="runs per figure (default 3)")
    p.add_argument("--versions", default=DEFAULT_KUBERNETES_VERSION,
                   help="comma-separated Kubernetes versions (default %(default)s)")
    p.add_argument("--skip-build", action="store_true", help="no node-image build figures")
    p.add_argument("--skip-cluster", action="store_true", help="no cluster creation figure")
    p.add_argument("--skip-suite", action="store_true", help="no suite figures")
    p.add_argument("--cold", action="store_true",
                   help="also rebuild with --rebuild after moving aside the version's cached "
                        "Kubernetes binaries and components (Go caches stay warm)")
    p.add_argument("--cold-from-scratch", action="store_true",
                   help="also build with empty GOCACHE, GOMODCACHE and SECCTX_CACHE (~25 min)")
    p.add_argument("--build-missing", action="store_true",
                   help="build node images that are not built yet (else reported as not built)")
    p.add_argument("--xdist", action="store_true",
                   help="also the suite with -n auto (each xdist worker schedules its own cases)")
    p.add_argument("--skip-floor", action="store_true", help="no physical floor figure")
    p.add_argument("--skip-e2e", action="store_true", help="no upstream e2e.test figure")
    p.add_argument("--e2e-repeat", type=int, default=1,
                   help="runs of upstream e2e.test (default 1: it takes minutes)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="result directory (default "
                   "reports/benchmark)")
    p.add_argument("--cluster-name", default=DEFAULT_CLUSTER,
                   help="kind cluster the benchmark creates and deletes (default %(default)s)")
    args = p.parse_args(argv)
    if args.repeat < 1:
        p.error("--repeat must be at least 1")
    if args.cluster_name in PROTECTED_CLUSTERS:
        p.error(f"--cluster-name {args.cluster_name} is the suite's own cluster; the benchmark "
                "deletes its cluster, so it needs a name of its own")
    from secctx.offline.gomod import KubeVersion, VersionError
    versions = [v.strip() for v in args.versions.split(",") if v.strip()]
    if not versions:
        p.error("--versions is empty")
    try:
        args.versions = list(dict.fromkeys(str(KubeVersion.parse(v)) for v in versions))
    except VersionError as err:
        p.error(str(err))
    args.out = args.out.resolve()
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def _terminate(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, _terminate)

    lock = FileLock(str(Path(tempfile.gettempdir()) / f"secctx-bench-{args.cluster_name}.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        print(f"benchmarks.run: another benchmark uses cluster {args.cluster_name}; wait for it "
              "or pass --cluster-name", file=sys.stderr)
        return 2
    try:
        for sub in ("logs", "raw"):  # this run's own; result.json and table.md are overwritten
            rmtree(args.out / sub)
        bench = Bench(args)
        try:
            bench.run()
        except KeyboardInterrupt:
            bench.result["interrupted"] = True
            say("interrupted: cleaning up")
        except Exception as err:  # a bug here must not leave the cluster behind
            bench.result["errors"].append(f"{type(err).__name__}: {err}")
            say(f"harness error: {err!r}")
        finally:
            table = bench.finish()
        print(table)
        print(f"result: {args.out / 'result.json'}\ntable:  {args.out / 'table.md'}")
        failed = bench.result["errors"] or bench.result["interrupted"] or any(
            r.get("status") not in ("ok",)
            for ver in bench.result["versions"].values()
            for fig in ver["figures"].values() for r in fig["runs"])
        return 1 if failed else 0
    finally:
        lock.release()


if __name__ == "__main__":
    raise SystemExit(main())
