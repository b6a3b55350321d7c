"""The lying runtime (tests/integration/runc-liar): each lie edits exactly what it
says in the OCI documents, and with no lie it changes nothing.

The liar is built once per session into a temporary directory; next to it a
`runc.real` shell script records the argv it receives and copies the JSON file
named by $LIAR_TEST_SPEC, so each test sees exactly what runc would get. The
lie file, the log and containerd's and CRI-O's container directories are redirected
by the liar's SECCTX_LIE_FILE, SECCTX_LIAR_LOG, SECCTX_LIAR_TASKS and
SECCTX_LIAR_CRIO_CONTAINERS.
What each lie does to a real container: docs/lying-runtime.md.
"""
from __future__ import annotations

import copy
import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from tests.integration import liar

SOURCE = Path(__file__).resolve().parents[1] / "integration" / "runc-liar"

RUNC_REAL = """\
#!/bin/sh
: > "$LIAR_TEST_OUT/argv"
for a in "$@"; do printf '%s\\0' "$a" >> "$LIAR_TEST_OUT/argv"; done
if [ -n "$LIAR_TEST_SPEC" ]; then cp "$LIAR_TEST_SPEC" "$LIAR_TEST_OUT/spec.json"; fi
exit 0
"""

NONROOT_CAPS = {"bounding": ["CAP_CHOWN", "CAP_KILL"], "effective": [], "permitted": [],
                "inheritable": [], "ambient": []}


@pytest.fixture(scope="session")
def liar_bin(tmp_path_factory) -> Path:
    go = shutil.which("go")
    if go is None:
        pytest.skip("`go` is not on PATH: cannot build tests/integration/runc-liar")
    out = tmp_path_factory.mktemp("liar")
    env = dict(os.environ, CGO_ENABLED="0", GOFLAGS="-buildvcs=false", GOTOOLCHAIN="local",
               GOPROXY="off")
    proc = subprocess.run([go, "build", "-trimpath", "-o", str(out / "runc"), "."], cwd=SOURCE,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"go build of runc-liar failed:\n{proc.stdout}{proc.stderr}"
    real = out / "runc.real"
    real.write_text(RUNC_REAL)
    real.chmod(real.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return out / "runc"


class Liar:
    def __init__(self, binary: Path, tmp: Path):
        self.binary = binary
        self.tmp = tmp
        self.out = tmp / "out"
        self.out.mkdir()
        self.lie_file = tmp / "lie"
        self.log = tmp / "liar.log"
        self.tasks = tmp / "tasks"
        self.crio = tmp / "overlay-containers"

    def tell(self, line: str | None) -> None:
        if line is None:
            self.lie_file.unlink(missing_ok=True)
        else:
            self.lie_file.write_text(line + "\n")

    def run(self, args: list[str], spec: Path | None = None) -> subprocess.CompletedProcess:
        env = dict(os.environ, LIAR_TEST_OUT=str(self.out), LIAR_TEST_SPEC=str(spec or ""),
                   SECCTX_LIE_FILE=str(self.lie_file), SECCTX_LIAR_LOG=str(self.log),
                   SECCTX_LIAR_TASKS=str(self.tasks), SECCTX_LIAR_CRIO_CONTAINERS=str(self.crio))
        return subprocess.run([str(self.binary), *args], env=env, capture_output=True,
                              text=True, timeout=20)

    def create(self, config: dict) -> tuple[subprocess.CompletedProcess, dict]:
        bundle = self.tmp / "bundle"
        bundle.mkdir(exist_ok=True)
        path = bundle / "config.json"
        path.write_text(json.dumps(config))
        proc = self.run(["--root", "/run/containerd/runc/k8s.io", "create", "--bundle",
                         str(bundle), "cid"], spec=path)
        return proc, json.loads(path.read_text())

    @property
    def argv(self) -> list[str]:
        return [a.decode() for a in (self.out / "argv").read_bytes().split(b"\0")[:-1]]


@pytest.fixture
def runc(liar_bin, tmp_path) -> Liar:
    return Liar(liar_bin, tmp_path)


def config(namespace: str = "secctx-demo", kind: str = "container", uid: int = 1000,
           gid: int = 3000, cri: str = "containerd") -> dict:
    """A CRI container's config.json, trimmed to what the lies look at; its annotations
    are those containerd writes, or CRI-O's (`cri="crio"`)."""
    doc = {
        "ociVersion": "1.2.1",
        "process": {
            "user": {"uid": uid, "gid": gid, "additionalGids": [2000, gid]},
            "args": ["sleep", "infinity"],
            "env": ["PATH=/bin"],
            "cwd": "/",
            "capabilities": copy.deepcopy(NONROOT_CAPS),
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/etc/hosts", "type": "bind", "source": "/var/lib/x/hosts",
             "options": ["rbind", "rprivate", "ro"]},
            {"destination": "/data", "type": "bind", "source": "/var/lib/kubelet/pods/x/data",
             "options": ["rbind", "rprivate", "ro"]},
            {"destination": "/cfg", "type": "bind", "source": "/var/lib/kubelet/pods/x/cfg",
             "options": ["rbind", "rprivate", "ro"]},
            {"destination": "/scratch", "type": "bind", "source": "/var/lib/kubelet/pods/x/s",
             "options": ["rbind", "rprivate", "rw"]},
        ],
        "annotations": {"io.kubernetes.cri.container-type": kind,
                        "io.kubernetes.cri.sandbox-namespace": namespace,
                        "io.kubernetes.cri.sandbox-name": "p",
                        "io.kubernetes.cri.container-name": "c"},
        "linux": {
            "resources": {"memory": {"limit": 9223372036854775807}},
            "seccomp": {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
                        "architectures": ["SCMP_ARCH_X86_64"],
                        "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]},
        },
        "x-unknown": {"deep": 18446744073709551615},
    }
    if cri == "crio":  # CRI-O: its own container type, the kubelet's labels as annotations
        doc["annotations"] = {"io.kubernetes.cri-o.ContainerType": kind,
                              "io.kubernetes.pod.namespace": namespace,
                              "io.kubernetes.pod.name": "p", "io.kubernetes.container.name": "c"}
    return doc


def mount(doc: dict, dest: str) -> dict:
    return next(m for m in doc["mounts"] if m["destination"] == dest)


# -- honest -----------------------------------------------------------------

@pytest.mark.parametrize("line", [None, "", "   \n"])
def test_no_lie_changes_nothing_and_passes_argv_through(runc, line):
    runc.tell(line)
    cfg = config()
    bundle = runc.tmp / "bundle"
    bundle.mkdir()
    text = json.dumps(cfg, indent=3)
    (bundle / "config.json").write_text(text)
    args = ["--root", "/r", "--log", "/l", "create", "--bundle", str(bundle), "cid"]
    proc = runc.run(args, spec=bundle / "config.json")
    assert proc.returncode == 0, proc.stderr
    assert runc.argv == args
    assert (bundle / "config.json").read_text() == text  # byte for byte
    assert not runc.log.exists()


def test_unknown_lie_fails_loudly(runc):
    runc.tell("make-it-up")
    proc, _ = runc.create(config())
    assert proc.returncode == 1
    assert "unknown lie" in proc.stderr and "rw-volumes" in proc.stderr


@pytest.mark.parametrize("lie", liar.LIES)
@pytest.mark.parametrize("cri", ["containerd", "crio"])
@pytest.mark.parametrize("where", [dict(kind="sandbox"), dict(namespace="kube-system"),
                                   dict(namespace="local-path-storage")])
def test_lies_spare_sandboxes_and_system_namespaces(runc, lie, cri, where):
    runc.tell(lie)
    cfg = config(**where, cri=cri)
    proc, after = runc.create(cfg)
    assert proc.returncode == 0, proc.stderr
    assert after == cfg


def test_namespace_prefix_limits_the_lie(runc):
    runc.tell("no-nnp other-")
    _, after = runc.create(config(namespace="secctx-demo"))
    assert after["process"]["noNewPrivileges"] is True
    runc.tell("no-nnp secctx-")
    _, after = runc.create(config(namespace="secctx-demo"))
    assert after["process"]["noNewPrivileges"] is False


def test_go_and_python_know_the_same_lies():
    text = (SOURCE / "lies.go").read_text()
    for word in liar.LIES:
        assert f'"{word}":' in text


# -- each lie ---------------------------------------------------------------

def test_rw_volumes_turns_volume_binds_rw_and_spares_system_paths(runc):
    runc.tell("rw-volumes")
    cfg = config()
    proc, after = runc.create(cfg)
    assert proc.returncode == 0, proc.stderr
    assert mount(after, "/data")["options"] == ["rbind", "rprivate", "rw"]
    assert mount(after, "/cfg")["options"] == ["rbind", "rprivate", "rw"]
    for dest in ("/etc/hosts", "/sys", "/proc", "/scratch"):
        assert mount(after, dest) == mount(cfg, dest)
    assert after["root"] == cfg["root"]  # readOnlyRootFilesystem is not a mount
    want = copy.deepcopy(cfg)
    want["mounts"] = after["mounts"]
    assert after == want
    assert "/data: ro->rw; /cfg: ro->rw" in runc.log.read_text()


def test_no_seccomp_installs_an_allow_everything_filter(runc):
    runc.tell("no-seccomp")
    cfg = config()
    _, after = runc.create(cfg)
    assert after["linux"]["seccomp"] == {"defaultAction": "SCMP_ACT_ALLOW",
                                         "architectures": ["SCMP_ARCH_X86_64"]}
    want = copy.deepcopy(cfg)
    want["linux"]["seccomp"] = after["linux"]["seccomp"]
    assert after == want


def test_unshare_only_keeps_a_filter_that_refuses_just_unshare(runc):
    runc.tell("unshare-only")
    cfg = config()
    _, after = runc.create(cfg)
    assert after["linux"]["seccomp"] == {
        "defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": ["unshare"], "action": "SCMP_ACT_ERRNO"}]}
    want = copy.deepcopy(cfg)
    want["linux"]["seccomp"] = after["linux"]["seccomp"]
    assert after == want
    assert "SCMP_ACT_ALLOW, unshare refused" in runc.log.read_text()


def test_no_seccomp_leaves_unconfined_alone(runc):
    runc.tell("no-seccomp")
    cfg = config()
    del cfg["linux"]["seccomp"]
    _, after = runc.create(cfg)
    assert after == cfg


def test_no_nnp_in_config_and_in_exec_process(runc):
    runc.tell("no-nnp")
    _, after = runc.create(config())
    assert after["process"]["noNewPrivileges"] is False
    # exec: the container's namespace comes from its bundle in containerd's task dir.
    task = runc.tasks / "k8s.io" / "cid"
    task.mkdir(parents=True)
    (task / "config.json").write_text(json.dumps(config()))
    proc_file = runc.tmp / "process.json"
    process = {"user": {"uid": 1000, "gid": 3000}, "args": ["sh"], "noNewPrivileges": True}
    proc_file.write_text(json.dumps(process))
    args = ["--root", "/r", "exec", "--process", str(proc_file), "--detach", "--pid-file",
            "/p", "cid"]
    r = runc.run(args, spec=proc_file)
    assert r.returncode == 0, r.stderr
    assert runc.argv == args
    assert json.loads(proc_file.read_text()) == dict(process, noNewPrivileges=False)
    assert "secctx-demo/p/c (exec): noNewPrivileges: true -> false" in runc.log.read_text()


def test_under_crio_a_container_is_known_by_its_annotations_and_its_bundle(runc):
    """CRI-O names the container type and the pod in annotations of its own, and keeps
    a running container's config.json in containers/storage's run root: the liar lies
    to its containers and its exec processes as to containerd's."""
    runc.tell("no-nnp secctx-")
    _, after = runc.create(config(cri="crio"))
    assert after["process"]["noNewPrivileges"] is False
    userdata = runc.crio / "cid" / "userdata"
    userdata.mkdir(parents=True)
    (userdata / "config.json").write_text(json.dumps(config(cri="crio")))
    proc_file = runc.tmp / "process.json"
    proc_file.write_text(json.dumps({"args": ["sh"], "noNewPrivileges": True}))
    r = runc.run(["--root", "/run/runc", "exec", "--process", str(proc_file), "cid"], spec=proc_file)
    assert r.returncode == 0, r.stderr
    assert json.loads(proc_file.read_text())["noNewPrivileges"] is False
    log = runc.log.read_text()
    assert "secctx-demo/p/c: noNewPrivileges" in log and "secctx-demo/p/c (exec)" in log


def test_no_nnp_exec_of_an_unknown_or_system_container_is_honest(runc):
    runc.tell("no-nnp")
    proc_file = runc.tmp / "process.json"
    proc_file.write_text(json.dumps({"noNewPrivileges": True}))
    r = runc.run(["exec", "--process", str(proc_file), "nosuch"], spec=proc_file)
    assert r.returncode == 0, r.stderr
    assert json.loads(proc_file.read_text()) == {"noNewPrivileges": True}
    task = runc.tasks / "k8s.io" / "sys"
    task.mkdir(parents=True)
    (task / "config.json").write_text(json.dumps(config(namespace="kube-system")))
    runc.run(["exec", "--process", str(proc_file), "sys"], spec=proc_file)
    assert json.loads(proc_file.read_text()) == {"noNewPrivileges": True}


def test_crash_identity_shifts_nonzero_ids(runc):
    runc.tell("crash-identity")
    _, after = runc.create(config(uid=1000, gid=3000))
    assert after["process"]["user"] == {"uid": 1001, "gid": 3001, "additionalGids": [2000, 3000]}
    _, after = runc.create(config(uid=1000, gid=0))
    assert after["process"]["user"]["uid"] == 1001 and after["process"]["user"]["gid"] == 0
    cfg = config(uid=0, gid=0)
    _, after = runc.create(cfg)
    assert after == cfg


def test_saved_uid_root_starts_the_helper_as_root(runc):
    runc.tell("saved-uid-root")
    cfg = config(uid=1000)
    _, after = runc.create(cfg)
    process = after["process"]
    assert process["user"] == {"uid": 0, "gid": 3000, "additionalGids": [2000, 3000]}
    assert process["args"] == ["/.secctx-liar", "--secctx-liar-helper", "uid=1000",
                               "bounding=21", "effective=0", "permitted=0", "inheritable=0",
                               "ambient=0", "home=passwd", "--", "sleep", "infinity"]
    helper_caps = ["CAP_SETUID", "CAP_SETPCAP"]
    assert process["capabilities"]["bounding"] == ["CAP_CHOWN", "CAP_KILL", *helper_caps]
    for s in ("effective", "permitted"):
        assert process["capabilities"][s] == [*helper_caps, "CAP_CHOWN"]
    assert process["capabilities"]["ambient"] == []
    helper = mount(after, "/.secctx-liar")
    assert helper == {"destination": "/.secctx-liar", "type": "bind",
                      "source": str(runc.binary), "options": ["rbind", "ro"]}
    # Everything else as asked.
    assert after["x-unknown"]["deep"] == 18446744073709551615
    assert after["linux"] == cfg["linux"]
    assert process["noNewPrivileges"] is True


def test_saved_uid_root_keeps_a_home_the_pod_set(runc):
    runc.tell("saved-uid-root")
    cfg = config()
    cfg["process"]["env"].append("HOME=/home/app")
    _, after = runc.create(cfg)
    assert "home=keep" in after["process"]["args"]


def test_saved_uid_root_leaves_root_containers_alone(runc):
    runc.tell("saved-uid-root")
    cfg = config(uid=0)
    _, after = runc.create(cfg)
    assert after == cfg


def _caps_of(status: str, field: str) -> int:
    return next(int(ln.split()[1], 16) for ln in status.splitlines() if ln.startswith(field + ":"))


def test_helper_leaves_real_uid_root_and_the_rest_as_asked(liar_bin):
    """The helper itself, as runc would start it (needs root with CAP_SETUID, CAP_SETPCAP)."""
    own = Path("/proc/self/status").read_text()
    needed = (1 << 7) | (1 << 8)
    if os.geteuid() != 0 or _caps_of(own, "CapEff") & needed != needed:
        pytest.skip("needs root with CAP_SETUID and CAP_SETPCAP")
    cat = shutil.which("cat")
    proc = subprocess.run([str(liar_bin), "--secctx-liar-helper", "uid=1000", "bounding=1",
                           "effective=0", "permitted=0", "inheritable=0", "ambient=0",
                           "home=keep", "--", cat, "/proc/self/status"],
                          capture_output=True, text=True, timeout=20)
    assert proc.returncode == 0, proc.stderr
    uid = next(ln.split()[1:] for ln in proc.stdout.splitlines() if ln.startswith("Uid:"))
    assert uid == ["0", "1000", "1000", "1000"]  # real, effective, saved, fs
    assert _caps_of(proc.stdout, "CapBnd") == 1
    for field in ("CapPrm", "CapEff", "CapInh", "CapAmb"):
        assert _caps_of(proc.stdout, field) == 0, field  # SECBIT_NOROOT: no root fill-up


def kubelet_volumes(tmp: Path) -> tuple[Path, Path, dict]:
    """An emptyDir and a configMap volume on the "node" as the kubelet lays them out, and a
    config that bind-mounts both."""
    pod = tmp / "pods" / "uid" / "volumes"
    empty = pod / "kubernetes.io~empty-dir" / "scratch"
    empty.mkdir(parents=True)
    os.chmod(empty, 0o2777)
    cfg = pod / "kubernetes.io~configmap" / "config"
    (cfg / "..2026").mkdir(parents=True)
    (cfg / "..2026" / "a.conf").write_text("a")
    os.chmod(cfg / "..2026" / "a.conf", 0o440)
    (cfg / "..data").symlink_to("..2026")
    (cfg / "a.conf").symlink_to("..data/a.conf")
    doc = config()
    doc["mounts"] += [{"destination": "/s", "type": "bind", "source": str(empty),
                       "options": ["rbind", "rw"]},
                      {"destination": "/c", "type": "bind", "source": str(cfg),
                       "options": ["rbind", "ro"]}]
    return empty, cfg, doc


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another uid needs root")
def test_own_volumes_hands_each_emptyDir_directory_to_the_process(runc, tmp_path):
    empty, cfg, doc = kubelet_volumes(tmp_path)
    runc.tell("own-volumes")
    proc, after = runc.create(doc)
    assert proc.returncode == 0, proc.stderr
    st = empty.stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1000, 3000, 0o700)
    assert stat.S_IMODE((cfg / "..2026" / "a.conf").stat().st_mode) == 0o440  # not an emptyDir
    assert after == doc  # the config is not changed
    assert f"{empty}: owner 1000:3000, mode 0700" in runc.log.read_text()


def test_file_modes_makes_every_file_of_a_configMap_0644(runc, tmp_path):
    empty, cfg, doc = kubelet_volumes(tmp_path)
    runc.tell("file-modes")
    proc, _ = runc.create(doc)
    assert proc.returncode == 0, proc.stderr
    assert stat.S_IMODE((cfg / "..2026" / "a.conf").stat().st_mode) == 0o644
    assert stat.S_IMODE(empty.stat().st_mode) == 0o2777  # emptyDirs are not touched
    assert f"{cfg}: 1 file(s) -> 0644" in runc.log.read_text()
