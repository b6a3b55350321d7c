"""The capability shim (secctx/offline/capshim): an OCI runtime wrapper that drops the
capabilities the host's bounding set lacks, then execs "<its own path>.real".

The shim is built once per session into a temporary directory; next to it a
`runc.real` shell script records the argv it receives and copies the JSON file
named by $CAPSHIM_TEST_SPEC, so each test sees exactly what runc would get.

Expectations are computed from this process's CapBnd (the shim inherits it):
kept = listed ∩ bounding set. On a host with a full bounding set nothing is
removed; the tests that drop extra capabilities from the shim's bounding set
(prctl PR_CAPBSET_DROP in the child, needs CAP_SETPCAP) make the filtering
observable there too.
"""
from __future__ import annotations

import ctypes
import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from secctx.core import caps

SOURCE = Path(__file__).resolve().parents[2] / "secctx" / "offline" / "capshim"
ALL_CAPS = ["CAP_" + name for name in caps.CAPABILITIES]  # 41, by bit number
SETS = ("bounding", "effective", "permitted", "inheritable", "ambient")
CAP_SETPCAP = 8
PR_CAPBSET_DROP = 24

RUNC_REAL = """\
#!/bin/sh
# Stand-in for the real runc: record argv (NUL-separated) and the spec file.
: > "$CAPSHIM_TEST_OUT/argv"
for a in "$@"; do printf '%s\\0' "$a" >> "$CAPSHIM_TEST_OUT/argv"; done
if [ -n "$CAPSHIM_TEST_SPEC" ]; then cp "$CAPSHIM_TEST_SPEC" "$CAPSHIM_TEST_OUT/spec.json"; fi
exit "${CAPSHIM_TEST_EXIT:-0}"
"""


def _status_mask(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1], 16)
    raise AssertionError(f"no {field} in /proc/self/status")


BOUNDING = {name for bit, name in enumerate(ALL_CAPS) if _status_mask("CapBnd") >> bit & 1}


@pytest.fixture(scope="session")
def shim(tmp_path_factory) -> Path:
    go = shutil.which("go")
    if go is None:
        pytest.skip("`go` is not on PATH: cannot build the capability shim "
                    "(secctx/offline/capshim) for its tests")
    out = tmp_path_factory.mktemp("capshim")
    env = dict(os.environ, CGO_ENABLED="0", GOFLAGS="-buildvcs=false", GOTOOLCHAIN="local",
               GOPROXY="off")
    proc = subprocess.run([go, "build", "-trimpath", "-o", str(out / "runc"), "."], cwd=SOURCE,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"go build of capshim failed:\n{proc.stdout}{proc.stderr}"
    real = out / "runc.real"
    real.write_text(RUNC_REAL)
    real.chmod(real.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return out / "runc"


class Run:
    def __init__(self, proc: subprocess.CompletedProcess, out: Path):
        self.proc = proc
        self.out = out

    @property
    def argv(self) -> list[str]:
        data = (self.out / "argv").read_bytes()
        return [a.decode() for a in data.split(b"\0")[:-1]]

    @property
    def spec(self) -> dict:
        return json.loads((self.out / "spec.json").read_text())


@pytest.fixture
def run_shim(shim, tmp_path):
    out = tmp_path / "out"
    out.mkdir()

    def run(args: list[str], *, spec: Path | None = None, cwd: Path | None = None,
            drop: tuple[str, ...] = (), exit_code: int = 0) -> Run:
        env = dict(os.environ, CAPSHIM_TEST_OUT=str(out), CAPSHIM_TEST_SPEC=str(spec or ""),
                   CAPSHIM_TEST_EXIT=str(exit_code))
        preexec = None
        if drop:
            bits = [ALL_CAPS.index(c) for c in drop]

            def preexec():
                libc = ctypes.CDLL(None, use_errno=True)
                for bit in bits:
                    if libc.prctl(PR_CAPBSET_DROP, bit, 0, 0, 0) != 0:
                        raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")
        proc = subprocess.run([str(shim), *args], cwd=cwd or tmp_path, env=env,
                              capture_output=True, text=True, timeout=20, preexec_fn=preexec)
        return Run(proc, out)

    return run


def _needs_setpcap():
    if not _status_mask("CapEff") >> CAP_SETPCAP & 1:
        pytest.skip("dropping from the bounding set needs CAP_SETPCAP, which this process lacks")


def full_config() -> dict:
    """An OCI config.json asking for every capability, with fields the shim must keep."""
    return {
        "ociVersion": "1.2.0",
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0, "additionalGids": [0, 10]},
            "args": ["/pause"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "cwd": "/",
            "capabilities": {s: list(ALL_CAPS) for s in SETS},
            "noNewPrivileges": False,
            "oomScoreAdj": 1000,  # never below the shim's own: the clamp has its own tests
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1048576, "soft": 1048576}],
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "p",
        "annotations": {"io.kubernetes.cri.container-type": "sandbox",
                        "x.example/html": "<a & b>", "x.example/utf8": "déjà vu"},
        "linux": {
            "resources": {"memory": {"limit": 9223372036854775807, "swap": -1},
                          "cpu": {"shares": 2, "quota": 100000, "period": 100000},
                          "devices": [{"allow": False, "access": "rwm"}]},
            "cgroupsPath": "kubepods-besteffort.slice:cri-containerd:abc",
            "namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"},
                           {"type": "mount"}, {"type": "network", "path": "/var/run/netns/x"}],
            "maskedPaths": ["/proc/kcore"],
            "seccomp": None,
            "sysctl": {},
        },
        "x-unknown-top": {"nested": [1, "two", None, True, 1.5, {"deep": 18446744073709551615}]},
    }


def expected_caps(listed: list[str], bounding: set[str]) -> list[str]:
    return [c for c in listed if c in bounding]


def filtered(config: dict, bounding: set[str]) -> dict:
    """`config` as the shim should leave it."""
    want = json.loads(json.dumps(config))
    process = want.get("process", want)
    for s, listed in process["capabilities"].items():
        process["capabilities"][s] = expected_caps(listed, bounding)
    return want


def write_bundle(directory: Path, config: dict | str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "config.json"
    path.write_text(config if isinstance(config, str) else json.dumps(config, indent=2))
    return path


def _assert_caps_within(doc: dict, bounding: set[str]):
    process = doc.get("process", doc)
    for s in SETS:
        assert set(process["capabilities"][s]) <= bounding, s


# -- create / run: <bundle>/config.json --------------------------------------

def test_create_filters_config_to_bounding_set(run_shim, tmp_path):
    bundle = tmp_path / "bundle"
    config = full_config()
    path = write_bundle(bundle, config)
    args = ["--root", "/x", "--log", "/y", "--log-format", "json",
            "create", "--bundle", str(bundle), "id"]
    r = run_shim(args, spec=path)
    assert r.proc.returncode == 0, r.proc.stderr
    assert r.argv == args
    after = json.loads(path.read_text())
    assert after == filtered(config, BOUNDING)
    _assert_caps_within(after, BOUNDING)
    for s in SETS:
        assert after["process"]["capabilities"][s] == expected_caps(ALL_CAPS, BOUNDING)
    # runc.real saw the filtered file, not the original.
    assert r.spec == after
    # Large integers survive exactly (no float64 round trip).
    assert after["linux"]["resources"]["memory"]["limit"] == 9223372036854775807
    assert after["x-unknown-top"]["nested"][-1]["deep"] == 18446744073709551615
    missing = set(ALL_CAPS) - BOUNDING
    text = path.read_text()
    assert not any(f'"{c}"' in text for c in missing)


def test_create_filters_caps_dropped_from_bounding_set(run_shim, tmp_path):
    """Meaningful on hosts with a full bounding set: shrink the shim's own."""
    _needs_setpcap()
    drop = ("CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_BPF")
    bounding = BOUNDING - set(drop)
    bundle = tmp_path / "bundle"
    config = full_config()
    path = write_bundle(bundle, config)
    r = run_shim(["--root", "/x", "--log", "/y", "--log-format", "json",
                  "create", "--bundle", str(bundle), "id"], spec=path, drop=drop)
    assert r.proc.returncode == 0, r.proc.stderr
    after = json.loads(path.read_text())
    assert after == filtered(config, bounding)
    for s in SETS:
        caps_in_set = after["process"]["capabilities"][s]
        assert not set(drop) & set(caps_in_set)
        assert len(caps_in_set) == len(bounding)
        assert "CAP_SYS_ADMIN" in caps_in_set or "CAP_SYS_ADMIN" not in BOUNDING


def test_partial_sets_keep_their_order_and_missing_sets_stay_missing(run_shim, tmp_path):
    _needs_setpcap()
    drop = ("CAP_NET_ADMIN",)
    config = full_config()
    config["process"]["capabilities"] = {
        "bounding": ["CAP_NET_RAW", "CAP_NET_ADMIN", "CAP_CHOWN"],
        "effective": ["CAP_NET_ADMIN"],
        "ambient": [],
    }
    path = write_bundle(tmp_path / "b", config)
    r = run_shim(["create", "-b", str(tmp_path / "b"), "id"], drop=drop)
    assert r.proc.returncode == 0, r.proc.stderr
    bounding = BOUNDING - set(drop)
    assert json.loads(path.read_text())["process"]["capabilities"] == {
        "bounding": expected_caps(["CAP_NET_RAW", "CAP_NET_ADMIN", "CAP_CHOWN"], bounding),
        "effective": [],
        "ambient": [],
    }


@pytest.mark.parametrize("form", [["-b", "{b}"], ["--bundle", "{b}"], ["--bundle={b}"],
                                  ["-bundle", "{b}"]])
def test_run_with_bundle_flag(run_shim, tmp_path, form):
    bundle = tmp_path / "bundle"
    config = full_config()
    path = write_bundle(bundle, config)
    args = ["--systemd-cgroup", "run", *(f.format(b=bundle) for f in form), "--detach", "id"]
    r = run_shim(args, spec=path)
    assert r.proc.returncode == 0, r.proc.stderr
    assert r.argv == args
    assert json.loads(path.read_text()) == filtered(config, BOUNDING)
    assert r.spec == filtered(config, BOUNDING)


def test_create_without_bundle_uses_cwd(run_shim, tmp_path):
    bundle = tmp_path / "cwd-bundle"
    config = full_config()
    path = write_bundle(bundle, config)
    other = write_bundle(tmp_path / "elsewhere", config)  # must not be touched
    before_other = other.read_bytes()
    r = run_shim(["--root", "/x", "create", "--pid-file", "/run/p.pid", "id"],
                 spec=path, cwd=bundle)
    assert r.proc.returncode == 0, r.proc.stderr
    assert json.loads(path.read_text()) == filtered(config, BOUNDING)
    assert other.read_bytes() == before_other


# -- exec --process ----------------------------------------------------------

def process_json() -> dict:
    p = full_config()["process"]
    p["args"] = ["sh", "-c", "id"]
    p["x-unknown"] = {"n": 9223372036854775807}
    return p


@pytest.mark.parametrize("form", [["--process", "{f}"], ["-p", "{f}"], ["--process={f}"]])
def test_exec_filters_process_file(run_shim, tmp_path, form):
    proc_file = tmp_path / "process.json"
    process = process_json()
    proc_file.write_text(json.dumps(process))
    bundle_config = write_bundle(tmp_path, full_config())  # exec must not touch config.json
    before_config = bundle_config.read_bytes()
    args = ["--root", "/x", "--log", "/y", "--log-format", "json",
            "exec", "--detach", *(f.format(f=proc_file) for f in form), "--pid-file", "/p", "id"]
    r = run_shim(args, spec=proc_file)
    assert r.proc.returncode == 0, r.proc.stderr
    assert r.argv == args
    after = json.loads(proc_file.read_text())
    assert after == filtered(process, BOUNDING)
    _assert_caps_within(after, BOUNDING)
    assert after["x-unknown"]["n"] == 9223372036854775807
    assert r.spec == after
    assert bundle_config.read_bytes() == before_config


def test_exec_filters_caps_dropped_from_bounding_set(run_shim, tmp_path):
    _needs_setpcap()
    drop = ("CAP_SYS_RESOURCE", "CAP_PERFMON")
    proc_file = tmp_path / "process.json"
    process = process_json()
    proc_file.write_text(json.dumps(process))
    r = run_shim(["exec", "-p", str(proc_file), "id"], drop=drop)
    assert r.proc.returncode == 0, r.proc.stderr
    after = json.loads(proc_file.read_text())
    assert after == filtered(process, BOUNDING - set(drop))
    assert "CAP_PERFMON" not in after["capabilities"]["effective"]


def test_exec_without_process_file_passes_through(run_shim, tmp_path):
    config = write_bundle(tmp_path, full_config())
    before = config.read_bytes()
    args = ["exec", "-t", "id", "sh", "-c", "echo hi"]
    r = run_shim(args)
    assert r.proc.returncode == 0, r.proc.stderr
    assert r.argv == args
    assert config.read_bytes() == before


# -- everything else passes through -----------------------------------------

@pytest.mark.parametrize("args", [
    ["state", "id"],
    ["delete", "id"],
    ["--root", "/x", "delete", "--force", "id"],
    ["--root", "/x", "--log", "/y", "--log-format", "json", "kill", "id", "9"],
    ["features"],
    ["--version"],
    [],
    ["--root", "/with space", "start", "an id with spaces", ""],
])
def test_other_commands_pass_through_untouched(run_shim, tmp_path, args):
    config = write_bundle(tmp_path, full_config())
    before = config.read_bytes()
    r = run_shim(args)
    assert r.proc.returncode == 0, r.proc.stderr
    assert r.argv == args
    assert config.read_bytes() == before


def test_exit_status_and_environment_come_from_runc_real(run_shim, tmp_path):
    r = run_shim(["state", "id"], exit_code=3)
    assert r.proc.returncode == 3
    assert r.argv == ["state", "id"]  # $CAPSHIM_TEST_* reached runc.real


# -- nothing to change -------------------------------------------------------

def test_config_without_capabilities_is_byte_for_byte_unchanged(run_shim, tmp_path):
    config = full_config()
    del config["process"]["capabilities"]
    text = ('{"ociVersion":"1.2.0",  "zeta": 1, "alpha": 2,\n'
            '  "process": ' + json.dumps(config["process"], indent=4) + ",\n"
            '  "linux": {"resources": {"memory": {"limit": 9223372036854775807}}},'
            ' "f": 1.50, "u": "\\u00e9<&>"}\n')
    path = write_bundle(tmp_path / "b", text)
    before = path.read_bytes()
    mtime = path.stat().st_mtime_ns
    r = run_shim(["create", "--bundle", str(tmp_path / "b"), "id"], spec=path)
    assert r.proc.returncode == 0, r.proc.stderr
    assert path.read_bytes() == before
    assert path.stat().st_mtime_ns == mtime  # not rewritten at all
    assert (r.out / "spec.json").read_bytes() == before


def test_config_without_process_is_unchanged(run_shim, tmp_path):
    path = write_bundle(tmp_path / "b", '{"ociVersion": "1.2.0", "root": {"path": "rootfs"}}')
    before = path.read_bytes()
    r = run_shim(["run", "--bundle", str(tmp_path / "b"), "id"])
    assert r.proc.returncode == 0, r.proc.stderr
    assert path.read_bytes() == before


def test_capabilities_all_in_bounding_set_are_unchanged(run_shim, tmp_path):
    granted = [c for c in ["CAP_CHOWN", "CAP_NET_RAW", "CAP_KILL", "CAP_SETUID"] if c in BOUNDING]
    text = json.dumps({"process": {"capabilities": {s: granted for s in SETS}},
                       "n": 9223372036854775807}, indent=3)
    path = write_bundle(tmp_path / "b", text)
    r = run_shim(["create", "--bundle", str(tmp_path / "b"), "id"])
    assert r.proc.returncode == 0, r.proc.stderr
    assert path.read_text() == text


# -- failures ----------------------------------------------------------------

def test_missing_bundle_config_fails_before_runc(run_shim, tmp_path):
    r = run_shim(["create", "--bundle", str(tmp_path / "absent"), "id"])
    assert r.proc.returncode == 1
    assert r.proc.stderr.startswith("capshim: ")
    assert "config.json" in r.proc.stderr
    assert not (r.out / "argv").exists()


def test_invalid_json_fails_before_runc(run_shim, tmp_path):
    path = write_bundle(tmp_path / "b", "{not json")
    r = run_shim(["create", "--bundle", str(tmp_path / "b"), "id"])
    assert r.proc.returncode == 1
    assert r.proc.stderr.startswith("capshim: ")
    assert path.read_text() == "{not json"
    assert not (r.out / "argv").exists()


def test_a_version_file_beside_the_shim_relabels_the_config_for_an_older_runtime(shim, run_shim,
                                                                                tmp_path):
    """crun 1.8 refuses ociVersion 1.3.0 ("unknown version specified"): its shim carries
    <shim>.oci-version, and create sees that version, every other field unchanged."""
    version_file = shim.with_name(shim.name + ".oci-version")
    config = full_config()
    path = write_bundle(tmp_path / "bundle", config)
    try:
        version_file.write_text("1.1.0\n")
        r = run_shim(["create", "--bundle", str(tmp_path / "bundle"), "id"], spec=path)
        assert r.proc.returncode == 0, r.proc.stderr
        assert r.spec == {**filtered(config, BOUNDING), "ociVersion": "1.1.0"}
        exec_file = tmp_path / "process.json"
        exec_file.write_text(json.dumps({"ociVersion": "1.2.0", **config["process"]}))
        run_shim(["exec", "--process", str(exec_file), "id"], spec=exec_file)
        assert json.loads(exec_file.read_text())["ociVersion"] == "1.2.0", "exec: not relabelled"
    finally:
        version_file.unlink(missing_ok=True)
    path = write_bundle(tmp_path / "again", config)
    assert run_shim(["create", "--bundle", str(tmp_path / "again"), "id"],
                    spec=path).spec["ociVersion"] == "1.2.0", "without the file: unchanged"


# -- oomScoreAdj below the shim's own, without CAP_SYS_RESOURCE ----------------

def _own_oom_score_adj() -> int:
    return int(Path("/proc/self/oom_score_adj").read_text())  # the shim inherits it


@pytest.mark.parametrize("asked, expected", [(-998, "own"), (1000, 1000)])
def test_create_clamps_oom_score_adj_to_its_own_without_sys_resource(run_shim, tmp_path,
                                                                     asked, expected):
    """No runtime can lower oom_score_adj below its own without CAP_SYS_RESOURCE (the
    kernel refuses; runc's init fails): the shim raises a lower value to its own and
    leaves a higher one."""
    drop = () if "CAP_SYS_RESOURCE" not in BOUNDING else ("CAP_SYS_RESOURCE",)
    if drop:
        _needs_setpcap()
    config = {**full_config(), "process": {**full_config()["process"], "oomScoreAdj": asked}}
    path = write_bundle(tmp_path / "bundle", config)
    r = run_shim(["create", "--bundle", str(tmp_path / "bundle"), "id"], spec=path, drop=drop)
    assert r.proc.returncode == 0, r.proc.stderr
    want = _own_oom_score_adj() if expected == "own" else expected
    assert want >= asked  # (the test process may itself run at 1000: then nothing to raise)
    assert r.spec["process"]["oomScoreAdj"] == max(want, asked)


def test_create_keeps_oom_score_adj_with_sys_resource(run_shim, tmp_path):
    if "CAP_SYS_RESOURCE" not in BOUNDING:
        pytest.skip("this host's bounding set lacks CAP_SYS_RESOURCE: the clamp always applies")
    config = {**full_config(), "process": {**full_config()["process"], "oomScoreAdj": -998}}
    path = write_bundle(tmp_path / "bundle", config)
    r = run_shim(["create", "--bundle", str(tmp_path / "bundle"), "id"], spec=path)
    assert r.proc.returncode == 0, r.proc.stderr
    assert r.spec["process"]["oomScoreAdj"] == -998
