"""The suite as a platform team gets it: a wheel built from this checkout, installed
into a new venv (dependencies from PyPI under constraints.txt, no editable install),
used from a directory outside the checkout in isolated mode (`python -I`: no
PYTHONPATH, no user site, no current directory on sys.path), so nothing of this
checkout can stand in for what the wheel leaves out. The team's repository holds
only case files and manifests: no conftest, no pytest configuration of its own.

The run on a cluster has no docker on PATH and is not root (an unprivileged user
with a home of its own): an existing cluster needs only Python.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from .robust_helpers import ONE_RUNTIME, ROOT, nested_env, write_case

TEAM_POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "team-app"},
            "spec": {"terminationGracePeriodSeconds": 0,
                     "securityContext": {"runAsUser": 4321, "runAsGroup": 4321},
                     "containers": [{"name": "app", "image": "busybox:1.36",
                                     "command": ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"],
                                     "securityContext": {"allowPrivilegeEscalation": False,
                                                         "capabilities": {"drop": ["ALL"]}}}]}}
# The system's directories without docker: what a host with Python and no Docker has.
NO_DOCKER_PATH = os.pathsep.join(d for d in ("/usr/bin", "/bin")
                                 if not (Path(d) / "docker").exists())


@dataclass
class User:
    """An unprivileged user (nobody) with a home and a working directory of its own."""
    uid: int
    gid: int
    home: Path

    def prefix(self) -> list[str]:
        return ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--clear-groups", "--"]


@dataclass
class Venv:
    root: Path
    wheel: Path
    seconds: float  # building the wheel and installing it

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    def run(self, *args: str, cwd: Path, timeout: float = 300, path: str | None = None,
            user: User | None = None) -> subprocess.CompletedProcess:
        """`python -I ARGS` of this venv in `cwd`; PATH is the venv's bin and `path`
        (default: this process's PATH); as `user` with only its own home and cache."""
        env = {k: v for k, v in nested_env().items()
               if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
        env["PATH"] = os.pathsep.join([str(self.root / "bin"), path or os.environ["PATH"]])
        prefix = []
        if user is not None:
            env = {k: v for k, v in env.items() if not k.startswith(("SECCTX_", "XDG_"))}
            env.update(HOME=str(user.home), USER="nobody", LOGNAME="nobody")
            prefix = user.prefix()
        return subprocess.run([*prefix, str(self.python), "-I", *args], cwd=cwd, env=env,
                              capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def wheel_venv(tmp_path_factory) -> Venv:
    """The wheel of this checkout in a new venv (once per session), in a directory
    every user can read (pytest's own tmp directories are root's alone)."""
    t0 = time.monotonic()
    # Built from a copy of what git has (tracked and new files, as committed or not):
    # a build directory left in the checkout would put files back that are gone.
    source = tmp_path_factory.mktemp("source")
    for name in tracked_files():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, source / name)
    dist = tmp_path_factory.mktemp("dist")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                            "-w", str(dist), str(source)],
                           capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr[-3000:]
    wheels = sorted(dist.glob("secctx_conformance-*.whl"))
    assert len(wheels) == 1, wheels
    readable = Path(tempfile.mkdtemp(prefix="secctx-wheel-venv-"))
    readable.chmod(0o755)
    root = readable / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(root)], check=True, timeout=300)
    install = subprocess.run([str(root / "bin" / "python"), "-m", "pip", "install", "-q",
                              "--disable-pip-version-check", "-c", str(ROOT / "constraints.txt"),
                              str(wheels[0])], capture_output=True, text=True, timeout=900)
    assert install.returncode == 0, install.stderr[-3000:]
    venv = Venv(root, wheels[0], time.monotonic() - t0)
    print(f"\nwheel built and installed into a new venv in {venv.seconds:.1f}s")
    yield venv
    shutil.rmtree(readable, ignore_errors=True)


@pytest.fixture
def nobody(team_repo):
    """`nobody`, owning a home and a copy of the team's repository, in a directory it can
    reach; removed afterwards."""
    if os.geteuid() != 0:
        pytest.skip("needs root to run a command as another user (setpriv)")
    base = Path(tempfile.mkdtemp(prefix="secctx-wheel-nobody-"))
    base.chmod(0o755)
    user = User(65534, 65534, base / "home")
    user.home.mkdir()
    shutil.copytree(team_repo, base / "team")
    for p in [user.home, *(base / "team").rglob("*"), base / "team"]:
        os.chown(p, user.uid, user.gid)
    yield user
    shutil.rmtree(base, ignore_errors=True)


def tracked_files() -> list[str]:
    """The checkout's files as git sees them (tracked and untracked, not ignored), existing."""
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60, check=True).stdout
    return [n for n in out.splitlines() if (ROOT / n).is_file()]


@pytest.fixture
def empty_dir(tmp_path) -> Path:
    d = tmp_path / "empty"
    d.mkdir()
    return d


@pytest.fixture
def team_repo(tmp_path) -> Path:
    repo = tmp_path / "team"
    (repo / "manifests").mkdir(parents=True)
    (repo / "manifests" / "team-app.yaml").write_text(yaml.safe_dump(TEAM_POD))
    write_case(repo / "cases", "team-app", Path("../manifests/team-app.yaml"), "team-app", "app")
    return repo


def site_packages(venv: Venv) -> Path:
    return next((venv.root / "lib").glob("python3*/site-packages"))


def test_the_installed_suite_is_the_wheels_own_copy(wheel_venv, empty_dir):
    out = wheel_venv.run("-c", "import secctx, secctx.generated, secctx.run.plugin; "
                               "print(secctx.__file__)", cwd=empty_dir)
    assert out.returncode == 0, out.stderr[-3000:]
    assert Path(out.stdout.strip()).is_relative_to(site_packages(wheel_venv)), out.stdout
    assert not list(site_packages(wheel_venv).glob("__editable__*")), "an editable install"


# Where the repository's directories are in the installed package (setup.py).
SHIPPED = {"secctx/": "secctx/", "suites/": "secctx/suites/", "fixtures/": "secctx/fixtures/",
           "deploy/": "secctx/deploy/", "images/": "secctx/image_sources/"}


def test_every_file_of_the_shipped_directories_is_in_the_wheel(wheel_venv):
    with zipfile.ZipFile(wheel_venv.wheel) as whl:
        names = set(whl.namelist())
    expected = {SHIPPED[d] + n[len(d):] for n in tracked_files() for d in SHIPPED
                if n.startswith(d)}
    assert len(expected) > 150
    assert sorted(expected - names) == []
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


def test_pytest_help_works_where_the_plugin_is_installed(wheel_venv, empty_dir):
    """The entry point loads the plugin in every pytest run of the venv: one module the
    wheel leaves out makes every pytest command fail (exit 3)."""
    out = wheel_venv.run("-m", "pytest", "--help", cwd=empty_dir)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    assert "--secctx-existing-cluster" in out.stdout
    # The plugin's own markers, no configuration file needed.
    markers = wheel_venv.run("-m", "pytest", "--markers", cwd=empty_dir)
    assert re.search(r"@pytest\.mark\.e2e:", markers.stdout), markers.stdout[-2000:]


def test_a_team_repository_collects_the_packaged_suite_with_its_cases(wheel_venv, team_repo):
    out = wheel_venv.run("-m", "pytest", "-p", "no:cacheprovider", "--strict-markers",
                         "--secctx-cases-dir", "cases", "--collect-only", "-q", *ONE_RUNTIME,
                         cwd=team_repo)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "test_recipe_case[team-app]" in out.stdout and "test_recipe_case[secure-pod]" in out.stdout
    assert "test_case_file_is_valid[team-app.yaml]" in out.stdout
    # The venv's copy of the suite, not this checkout's, is what was collected.
    assert str(ROOT) not in out.stdout, out.stdout[:2000]


def test_packaged_commands_find_their_data(wheel_venv, empty_dir):
    """Commands that read data shipped in the package: the RBAC manifest, the pinned
    Allure CLI's package files, the case schema's README."""
    rbac = wheel_venv.run("-m", "secctx", "rbac-manifest", cwd=empty_dir)
    assert rbac.returncode == 0, rbac.stderr[-2000:]
    assert "kind: ClusterRole" in rbac.stdout
    report = wheel_venv.run("-m", "secctx.report.html", "--help", cwd=empty_dir)
    assert report.returncode == 0, report.stderr[-2000:]
    pinned = wheel_venv.run("-c", "from secctx.report import html; print(html.pinned_version())",
                            cwd=empty_dir)
    assert pinned.returncode == 0, pinned.stderr[-2000:]
    assert re.fullmatch(r"\d+\.\d+\.\d+\n", pinned.stdout)
    doc = wheel_venv.run("-m", "secctx.cases.schemadoc", "--check", cwd=empty_dir)
    assert doc.returncode == 0, doc.stdout[-1000:] + doc.stderr[-2000:]
    images = wheel_venv.run("-c", "from secctx.images import build; "
                                  "print((build.IMAGE_SOURCES / 'myapp' / 'main.go').is_file())",
                            cwd=empty_dir)
    assert images.stdout.strip() == "True", images.stdout + images.stderr[-2000:]


@pytest.mark.e2e
def test_a_team_case_runs_on_an_existing_cluster_with_only_python(wheel_venv, nobody, clean):
    """No docker on PATH, not root: `pip install` and `pytest --secctx-existing-cluster
    --kubeconfig K` are all a team with a managed cluster needs. Then a small HTML
    report of that run."""
    assert shutil.which("docker", path=NO_DOCKER_PATH) is None
    team = nobody.home.parent / "team"
    kubeconfig = nobody.home / "kubeconfig"
    shutil.copyfile(clean.kubeconfig, kubeconfig)
    os.chown(kubeconfig, nobody.uid, nobody.gid)
    kubeconfig.chmod(0o600)
    whoami = wheel_venv.run("-c", "import os; print(os.geteuid())", cwd=team, user=nobody)
    assert whoami.stdout.strip() == str(nobody.uid), whoami.stderr
    results = team / "reports" / "allure"
    t0 = time.monotonic()
    run = wheel_venv.run("-m", "pytest", "-p", "no:cacheprovider", "--secctx-cases-dir", "cases",
                         "--secctx-existing-cluster", "--kubeconfig", str(kubeconfig),
                         "--secctx-mode", clean.mode, "-k", "team-app or test_every_node_is_ready",
                         "--alluredir", str(results), "-rA", *ONE_RUNTIME,
                         cwd=team, path=NO_DOCKER_PATH, timeout=600, user=nobody)
    seconds = time.monotonic() - t0
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-4000:]
    # The node check, the team's file is valid, and the team's case holds.
    assert re.search(r"\b3 passed\b", out), out[-2000:]
    # What needs docker exec into a node is skipped with its reason, not failed.
    assert "skipped kind-only step (runc/containerd versions): not read: not a kind cluster" in out
    print(f"\nteam case on the existing cluster without docker: {seconds:.1f}s")

    if shutil.which("npm") is None:
        pytest.skip("npm is not installed: the HTML report needs Node.js 20+ with npm")
    html = nobody.home.parent / "html"
    report = wheel_venv.run("-m", "secctx.report.html", "--results", str(results), "--out",
                            str(html), "--single-file", cwd=team, timeout=900)
    assert report.returncode == 0, report.stdout[-2000:] + report.stderr[-3000:]
    assert "team-app" in (html / "index.html").read_text()
