"""What git tracks: no private keys, no kubeconfigs, no generated metadata.

A kind run wrote a kubeconfig (with its client key) under .pytest-kind/ while the
suite used pytest-kind (an old checkout may still hold one), and `pip install -e .`
writes *.egg-info/; both were once committed by mistake.
The check reads only the tracked text files under a size bound, so it is fast.
"""
import base64
import os
import re
import shutil
import subprocess
from pathlib import Path, PurePosixPath

import pytest

ROOT = Path(__file__).resolve().parents[2]
MAX_BYTES = 512 * 1024  # larger files are not keys or kubeconfigs; skipped unread

# Patterns are written so that this file does not match them itself.
_PEM_KEY = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----")  # PKCS#1/#8, EC, DSA, OpenSSH
_PUTTY_KEY = re.compile(r"^PuTTY-User-Key-File-\d+:", re.M)
_B64_PEM = re.compile(r"LS0tLS1CRUdJTi[A-Za-z0-9+/=]+")  # base64 of "-----BEGIN", e.g. in a Secret
_KUBE_KIND = re.compile(r"""^\s*["']?kind["']?\s*:\s*["']?Config["']?\s*,?\s*$""", re.M)
_KUBE_LISTS = re.compile(r"""^\s*["']?(?:clusters|users)["']?\s*:""", re.M)
_CLIENT_KEY = re.compile(r"""^\s*["']?client-key-data["']?\s*:\s*["']?[A-Za-z0-9+/=]{16,}""", re.M)
# Names that usually hold a key: read even when over the size bound.
_KEY_NAMES = re.compile(r"^(?:identity|id_(?:rsa|dsa|ecdsa|ed25519)(?:_sk)?)$|\.(?:pem|key|p8)$")
_GENERATED_DIRS = {"__pycache__", ".pytest_cache", ".ruff_cache", ".pytest-kind"}


def _generated(path: PurePosixPath) -> str | None:
    parts = path.parts
    for part in parts[:-1]:
        if part in _GENERATED_DIRS or part.endswith(".egg-info"):
            return f"generated metadata ({part}/)"
    if path.suffix in (".pyc", ".pyo"):
        return "generated metadata (compiled Python)"
    if parts[:2] == ("reports", "allure-results"):
        return "generated metadata (reports/allure-results/)"
    return None


def _holds_key(text: str) -> bool:
    if _PEM_KEY.search(text) or _PUTTY_KEY.search(text):
        return True
    for blob in _B64_PEM.findall(text):
        try:
            decoded = base64.b64decode(blob + "=" * (-len(blob) % 4)).decode("ascii", "replace")
        except ValueError:
            continue
        if _PEM_KEY.search(decoded):
            return True
    return False


def _content_problem(path: Path, name: str) -> str | None:
    try:
        if not path.is_file() or path.is_symlink():
            return None
        size = path.stat().st_size
        if size > MAX_BYTES and not _KEY_NAMES.search(name):
            return None
        data = path.read_bytes()
    except OSError:
        return None
    if b"\0" in data[:8192]:
        return None  # binary
    text = data.decode("utf-8", "replace")
    if _KUBE_KIND.search(text) and _KUBE_LISTS.search(text):
        return "kubeconfig (kind: Config with clusters/users)"
    if _CLIENT_KEY.search(text):
        return "kubeconfig credentials (client-key-data)"
    if _holds_key(text):
        return "private key"
    return None


def tracked_problems(root: Path) -> list[str]:
    """`path: reason` for every file git tracks in `root` that should not be tracked."""
    out = subprocess.run(["git", "-C", str(root), "ls-files", "-z", "--cached"],
                         capture_output=True, check=True).stdout
    problems = []
    for raw in out.split(b"\0"):
        if not raw:
            continue
        name = os.fsdecode(raw)
        path = PurePosixPath(name)
        reasons = [r for r in (_content_problem(root / name, path.name), _generated(path)) if r]
        if reasons:
            problems.append(f"{name}: {'; '.join(reasons)}")
    return problems


def _need_git() -> None:
    if shutil.which("git") is None:
        pytest.skip("git is not installed (no git on PATH): cannot list the tracked files")


def test_git_tracks_no_keys_kubeconfigs_or_generated_files():
    _need_git()
    proc = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--show-toplevel"],
                          capture_output=True, text=True)
    top = proc.stdout.strip()
    if proc.returncode != 0 or Path(top).resolve() != ROOT:
        pytest.skip(f"{ROOT} is not the root of a git checkout (git rev-parse --show-toplevel: "
                    f"{top or proc.stderr.strip()}); nothing to check")
    problems = tracked_problems(ROOT)
    assert not problems, ("git tracks files that must not be committed; remove them with "
                          "`git rm --cached` and ignore them in .gitignore:\n  "
                          + "\n  ".join(problems))


def _git(repo: Path, *args: str) -> None:
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.invalid",
                    *args], check=True, capture_output=True, env=env)


def test_the_check_names_a_committed_kubeconfig_key_and_metadata(tmp_path):
    _need_git()
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    fake_key = base64.b64encode(os.urandom(96)).decode()
    begin, end = "-----BEGIN ", "-----END "  # split so this file holds no key marker
    files = {
        # A kind kubeconfig without an extension, with an embedded client key.
        "state/kubeconfig": "\n".join([
            "apiVersion: v1", "kind: " + "Config", "clusters" + ":", "- name: kind-x",
            "users" + ":", "- name: kind-x", "  user:",
            "    client-" + "key-data: " + base64.b64encode(
                (begin + "RSA PRIVATE KEY-----\n" + fake_key + "\n").encode()).decode(), ""]),
        "keys/identity": begin + "OPENSSH PRIVATE KEY-----\n" + fake_key + "\n" + end
        + "OPENSSH PRIVATE KEY-----\n",
        "tls/server.pem": begin + "EC PRIVATE KEY-----\n" + fake_key + "\n",
        "pkg.egg-info/PKG-INFO": "Metadata-Version: 2.1\n",
        # Not problems: prose, a ConfigMap, a certificate.
        "README.md": "Point KUBECONFIG at a file with `kind: Config` in it.\n",
        "cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {users: a}\n",
        "tls/ca.pem": begin + "CERTIFICATE-----\n" + fake_key + "\n" + end + "CERTIFICATE-----\n",
    }
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "oops")
    problems = tracked_problems(repo)
    named = {p.split(":", 1)[0] for p in problems}
    assert named == {"state/kubeconfig", "keys/identity", "tls/server.pem",
                     "pkg.egg-info/PKG-INFO"}, problems
    assert "state/kubeconfig: kubeconfig (kind: Config with clusters/users)" in problems
    assert "keys/identity: private key" in problems
