"""secctx.observe: parsing realistic probe output, and the probe run for real through sh."""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from secctx import observe
from secctx.observe import ObservationError

# /proc/1/status of a non-root container on a 6.8 kernel (runAsUser 1000,
# runAsGroup 3000, fsGroup 2000, allowPrivilegeEscalation false, RuntimeDefault).
PID1_STATUS = """\
Name:\tsleep
Umask:\t0022
State:\tS (sleeping)
Tgid:\t1
Ngid:\t0
Pid:\t1
PPid:\t0
TracerPid:\t0
Uid:\t1000\t1000\t1000\t1000
Gid:\t3000\t3000\t3000\t3000
FDSize:\t64
Groups:\t2000 3000 
NStgid:\t1
NSpid:\t1
NSpgid:\t1
NSsid:\t1
Kthread:\t0
VmPeak:\t    1556 kB
VmSize:\t    1556 kB
VmRSS:\t     896 kB
Threads:\t1
SigQ:\t0/31615
SigPnd:\t0000000000000000
ShdPnd:\t0000000000000000
SigBlk:\t0000000000000000
SigIgn:\t0000000000000000
SigCgt:\t0000000000000000
CapInh:\t0000000000000000
CapPrm:\t0000000000000000
CapEff:\t0000000000000000
CapBnd:\t00000000a80425fb
CapAmb:\t0000000000000000
NoNewPrivs:\t1
Seccomp:\t2
Seccomp_filters:\t1
Speculation_Store_Bypass:\tthread force mitigated
SpeculationIndirectBranch:\tconditional force disabled
Cpus_allowed:\tf
Cpus_allowed_list:\t0-3
Mems_allowed:\t00000000,00000001
Mems_allowed_list:\t0
voluntary_ctxt_switches:\t41
nonvoluntary_ctxt_switches:\t2
"""

# The exec'd `cat` of a root container that kept NET_RAW and NET_ADMIN.
ROOT_STATUS = (PID1_STATUS.replace("Name:\tsleep", "Name:\tcat")
               .replace("Uid:\t1000\t1000\t1000\t1000", "Uid:\t0\t0\t0\t0")
               .replace("Gid:\t3000\t3000\t3000\t3000", "Gid:\t0\t0\t0\t0")
               .replace("Groups:\t2000 3000 ", "Groups:\t0 1 2 3 4 6 10 11 20 26 27 ")
               .replace("CapPrm:\t0000000000000000", "CapPrm:\t0000000000003000")
               .replace("CapEff:\t0000000000000000", "CapEff:\t0000000000003000")
               .replace("CapBnd:\t00000000a80425fb", "CapBnd:\t0000000000003000")
               .replace("NoNewPrivs:\t1", "NoNewPrivs:\t0"))

# containerd overlay root made read-only, with kubelet's emptyDir and tmpfs mounts.
MOUNTS = """\
overlay / overlay rw,relatime,lowerdir=/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/12/fs,upperdir=/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/13/fs,workdir=/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/13/work 0 0
overlay / overlay ro,relatime,lowerdir=/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/12/fs,upperdir=/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/13/fs,workdir=/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/13/work 0 0
proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0
tmpfs /dev tmpfs rw,nosuid,size=65536k,mode=755,inode64 0 0
mqueue /dev/mqueue mqueue rw,nosuid,nodev,noexec,relatime 0 0
sysfs /sys sysfs ro,nosuid,nodev,noexec,relatime 0 0
cgroup /sys/fs/cgroup cgroup2 ro,nosuid,nodev,noexec,relatime 0 0
/dev/sda1 /tmp ext4 rw,relatime,discard,errors=remount-ro 0 0
/dev/sda1 /var/cache/app ext4 rw,relatime,discard,errors=remount-ro 0 0
tmpfs /var/run tmpfs rw,relatime,size=65536k,inode64 0 0
/dev/sda1 /etc/hosts ext4 rw,relatime,discard,errors=remount-ro 0 0
shm /dev/shm tmpfs rw,nosuid,nodev,noexec,relatime,size=65536k,inode64 0 0
/dev/sda1 /mnt/with\\040space ext4 ro,relatime 0 0
proc /proc/sys proc ro,nosuid,nodev,noexec,relatime 0 0
tmpfs /proc/acpi tmpfs ro,relatime,inode64 0 0
"""


def section(name: str, text: str, rc: int = 0) -> str:
    """A section as the probe prints it (one extra newline before the end marker)."""
    return f"### secctx:begin {name}\n{text}\n### secctx:end {name} rc={rc}\n"


def probe_output(**override: tuple[str, int] | None) -> str:
    sections = {
        "pid1-status": (PID1_STATUS, 0),
        "self-status": (PID1_STATUS.replace("Name:\tsleep", "Name:\tcat"), 0),
        "id": ("uid=1000 gid=3000 groups=2000,3000\n", 0),
        "id-G": ("3000 2000\n", 0),
        "mounts": (MOUNTS, 0),
        "attr-current": ("cri-containerd.apparmor.d (enforce)\n", 0),
        "attr-apparmor": ("cri-containerd.apparmor.d (enforce)\n", 0),
        "stat": ("/data|0|2000|2777|drwxrwsrwx\n"
                 "/data/.secctx-probe|1000|2000|644|-rw-r--r--\n"
                 "/host|0|0|755|drwxr-xr-x\n"
                 "/missing|error|stat: can't stat '/missing': No such file or directory\n", 0),
        "write": ("/data|ok\n"
                  "/host|fail|touch: /host/.secctx-probe: Permission denied\n", 0),
        "root-write": ("touch: /test.txt: Read-only file system\n", 1),
    }
    sections.update(override)
    # kubectl may print notices before the first section; the parser skips them.
    out = "Defaulted container \"app\" out of: app, sidecar\n"
    for name, value in sections.items():
        if value is not None:
            out += section(name, *value)
    return out


# --- /proc/<pid>/status ------------------------------------------------------

def test_parse_proc_status_non_root():
    status = observe.parse_proc_status(PID1_STATUS)
    assert status.name == "sleep"
    assert status.uid == (1000, 1000, 1000, 1000)
    assert status.gid == (3000, 3000, 3000, 3000)
    assert (status.euid, status.egid) == (1000, 3000)
    assert status.groups == [2000, 3000]
    assert status.cap_bnd == 0xA80425FB
    assert status.cap_eff == status.cap_prm == status.cap_inh == status.cap_amb == 0
    assert status.no_new_privs == 1
    assert status.seccomp == 2
    assert status.seccomp_filters == 1


def test_parse_proc_status_distinct_real_and_effective_ids():
    text = PID1_STATUS.replace("Uid:\t1000\t1000\t1000\t1000", "Uid:\t1000\t0\t0\t0")
    status = observe.parse_proc_status(text)
    assert status.uid == (1000, 0, 0, 0)
    assert status.euid == 0


def test_parse_proc_status_empty_groups_and_old_kernel():
    text = PID1_STATUS.replace("Groups:\t2000 3000 ", "Groups:\t").replace("Seccomp_filters:\t1\n", "")
    status = observe.parse_proc_status(text)
    assert status.groups == []
    assert status.seccomp_filters is None


@pytest.mark.parametrize("broken", [
    PID1_STATUS.replace("CapEff:\t0000000000000000\n", ""),
    PID1_STATUS.replace("Uid:\t1000\t1000\t1000\t1000", "Uid:\t1000\t1000"),
    PID1_STATUS.replace("CapBnd:\t00000000a80425fb", "CapBnd:\tzz"),
    PID1_STATUS.replace("Groups:\t2000 3000 ", "Groups:\tstaff"),
])
def test_parse_proc_status_rejects_malformed(broken):
    with pytest.raises(ObservationError) as err:
        observe.parse_proc_status(broken, "pid1-status")
    assert err.value.section == "pid1-status"
    assert err.value.text == broken
    assert "pid1-status" in str(err.value)


# --- id ---------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("uid=1000 gid=3000 groups=2000,3000", (1000, 3000, [2000, 3000])),  # busybox, no names
    ("uid=1000 gid=3000 groups=3000,2000\n", (1000, 3000, [3000, 2000])),  # coreutils, no names
    ("uid=0(root) gid=0(root) groups=0(root),1(bin),2(daemon),3(sys),4(adm),6(disk),10(wheel)",
     (0, 0, [0, 1, 2, 3, 4, 6, 10])),
    ("uid=101(nginx) gid=101(nginx) groups=101(nginx)", (101, 101, [101])),
    ("uid=0(root) gid=0(root)", (0, 0, [])),  # busybox with no supplementary groups
    ("uid=0(root) gid=0(root) groups=0(root) context=system_u:system_r:container_t:s0:c1,c2",
     (0, 0, [0])),
])
def test_parse_id(text, expected):
    assert observe.parse_id(text) == expected


def test_parse_id_rejects_garbage():
    with pytest.raises(ObservationError, match="'id'"):
        observe.parse_id("sh: id: not found")


# --- mounts -----------------------------------------------------------------

def test_parse_mounts():
    mounts = observe.parse_mounts(MOUNTS)
    assert mounts[0].device == "overlay" and mounts[0].fstype == "overlay"
    assert mounts[0].options[:2] == ["rw", "relatime"]
    assert not mounts[0].read_only and mounts[1].read_only
    var_run = next(m for m in mounts if m.mountpoint == "/var/run")
    assert var_run.fstype == "tmpfs" and not var_run.read_only
    assert any(m.mountpoint == "/mnt/with space" for m in mounts)


# --- the whole probe output -------------------------------------------------

def test_parse_full_output():
    obs = observe.parse(probe_output())
    assert obs.pid1.name == "sleep" and obs.exec_.name == "cat"
    assert obs.pid1.euid == 1000 and obs.exec_.egid == 3000
    assert (obs.id_uid, obs.id_gid, obs.id_groups) == (1000, 3000, [2000, 3000])
    assert obs.id_G == [3000, 2000]
    assert obs.root_read_only  # the later, read-only mount of / hides the first
    assert obs.lsm_label == obs.apparmor_label == "cri-containerd.apparmor.d (enforce)"
    assert obs.stats["/data"].gid == 2000 and obs.stats["/data"].setgid
    assert obs.stats["/data"].mode == 0o2777 and obs.stats["/data"].mode_text == "drwxrwsrwx"
    assert obs.stat_of_new_file("/data").gid == 2000
    assert obs.stat_of_new_file("/host") is None
    assert not obs.stats["/host"].setgid
    assert "No such file" in obs.stat_errors["/missing"]
    assert obs.writes["/data"] == observe.WriteResult(ok=True, error="")
    assert not obs.writes["/host"].ok and "Permission denied" in obs.writes["/host"].error
    assert not obs.root_write.ok and "Read-only file system" in obs.root_write.error
    assert obs.raw["pid1-status"] == PID1_STATUS
    assert obs.exit_codes["root-write"] == 1


def test_parse_root_container():
    obs = observe.parse(probe_output(**{
        "self-status": (ROOT_STATUS, 0),
        "id": ("uid=0(root) gid=0(root) groups=0(root),1(bin),2(daemon),3(sys),4(adm),6(disk),"
               "10(wheel),11(floppy),20(dialout),26(tape),27(video)\n", 0),
        "mounts": (MOUNTS.splitlines()[0] + "\n", 0),
        "root-write": ("", 0),
    }))
    assert obs.exec_.euid == 0
    assert obs.exec_.cap_eff == obs.exec_.cap_bnd == 0x3000
    assert obs.id_groups == [0, 1, 2, 3, 4, 6, 10, 11, 20, 26, 27]
    assert not obs.root_read_only
    assert obs.root_write == observe.WriteResult(ok=True, error="")


def test_selinux_label_ends_in_nul_without_newline():
    # attr/current under SELinux is "label\0" with no newline.
    label = "system_u:system_r:container_t:s0:c123,c456"
    out = probe_output()
    out = out.replace(section("attr-current", "cri-containerd.apparmor.d (enforce)\n"),
                      f"### secctx:begin attr-current\n{label}\0\n### secctx:end attr-current rc=0\n")
    obs = observe.parse(out)
    assert obs.lsm_label == label
    assert obs.raw["attr-current"] == label + "\0"


def test_missing_lsm_files_give_none():
    obs = observe.parse(probe_output(**{
        "attr-current": ("cat: read error: Invalid argument\n", 1),
        "attr-apparmor": ("cat: can't open '/proc/1/attr/apparmor/current': No such file or directory\n", 1),
    }))
    assert obs.lsm_label is None and obs.apparmor_label is None
    assert obs.exit_codes["attr-apparmor"] == 1


def test_empty_file_differs_from_missing_file():
    obs = observe.parse(probe_output(**{"attr-apparmor": ("", 0)}))
    assert obs.raw["attr-apparmor"] == "" and obs.exit_codes["attr-apparmor"] == 0


def test_multi_line_write_error_is_kept():
    obs = observe.parse(probe_output(**{"write": ("/x|fail|touch: first line\nsecond line\n/y|ok\n", 0)}))
    assert obs.writes["/x"].error == "touch: first line\nsecond line"
    assert obs.writes["/y"].ok


@pytest.mark.parametrize("name", ["pid1-status", "self-status", "id", "id-G", "mounts",
                                  "stat", "write", "root-write"])
def test_missing_required_section(name):
    with pytest.raises(ObservationError) as err:
        observe.parse(probe_output(**{name: None}))
    assert err.value.section == name


@pytest.mark.parametrize("name", ["pid1-status", "id", "id-G", "mounts"])
def test_failed_required_section(name):
    with pytest.raises(ObservationError) as err:
        observe.parse(probe_output(**{name: ("cat: permission denied\n", 1)}))
    assert err.value.section == name
    assert "exit code 1" in str(err.value)
    assert "cat: permission denied" in str(err.value)


def test_no_root_mount():
    with pytest.raises(ObservationError, match="no mount for /"):
        observe.parse(probe_output(mounts=("proc /proc proc rw 0 0\n", 0)))


def test_truncated_output():
    out = probe_output()
    cut = out.index("### secctx:end write")
    with pytest.raises(ObservationError, match="truncated") as err:
        observe.parse(out[:cut])
    assert err.value.section == "write"


def test_crlf_output_parses():
    obs = observe.parse(probe_output().replace("\n", "\r\n"))
    assert obs.pid1.cap_bnd == 0xA80425FB


def test_unexpected_stat_line():
    with pytest.raises(ObservationError, match="unexpected line"):
        observe.parse(probe_output(stat=("garbage\n", 0)))


# --- the probe script itself ------------------------------------------------

@pytest.mark.parametrize("path", ["relative/dir", "/a|b", "/a\nb", ""])
def test_probe_script_rejects_unsafe_paths(path):
    with pytest.raises(ValueError):
        observe.probe_script([path], [])
    with pytest.raises(ValueError):
        observe.probe_script([], [], root_write_path=path)


def test_probe_script_has_every_section():
    script = observe.probe_script(["/data"], ["/tmp"])
    for name in ["pid1-status", "self-status", "id", "id-G", "mounts", "attr-current",
                 "attr-apparmor", "stat", "volume-files", "write", "root-write"]:
        assert f"section {name} " in script
    assert "set -e" not in script
    assert "/test.txt" in script


def _shells(tmp_path: Path) -> list[tuple[str, list[str], dict[str, str]]]:
    """(label, argv prefix, env) for each shell + userland to try: dash/coreutils and busybox."""
    shells = []
    dash = shutil.which("dash") or shutil.which("sh")
    if dash:
        shells.append(("sh", [dash, "-c"], dict(os.environ)))
    busybox = shutil.which("busybox")
    if busybox:
        # Only busybox applets on PATH, as in a busybox image.
        bin_dir = tmp_path / "busybox-bin"
        bin_dir.mkdir()
        for applet in ["sh", "cat", "id", "stat", "touch", "rm", "echo", "printf"]:
            (bin_dir / applet).symlink_to(busybox)
        shells.append(("busybox", [busybox, "sh", "-c"], {"PATH": str(bin_dir)}))
    return shells


@pytest.fixture(params=["sh", "busybox"])
def shell(request, tmp_path):
    found = {label: (argv, env) for label, argv, env in _shells(tmp_path)}
    if request.param not in found:
        pytest.skip(f"{request.param} not installed")
    return found[request.param]


def run_probe(shell, script: str) -> str:
    argv, env = shell
    proc = subprocess.run([*argv, script], capture_output=True, text=True, env=env, timeout=20)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # everything, errors included, goes into sections
    return proc.stdout


def test_probe_runs_end_to_end(shell, tmp_path):
    writable = tmp_path / "with space"
    writable.mkdir()
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o2775)  # what kubelet does for fsGroup
    missing = tmp_path / "does-not-exist"
    root_file = tmp_path / "test.txt"

    script = observe.probe_script([str(writable), str(shared), str(missing)],
                                  [str(writable), str(missing)], root_write_path=str(root_file))
    obs = observe.parse(run_probe(shell, script))

    assert obs.exec_.euid == os.geteuid() and obs.exec_.egid == os.getegid()
    assert obs.id_uid == os.geteuid() and obs.id_gid == os.getegid()
    assert sorted(obs.exec_.groups) == sorted(os.getgroups())
    assert obs.mounts

    assert obs.stats[str(writable)].uid == os.geteuid()
    assert not obs.stats[str(writable)].setgid
    assert obs.stats[str(shared)].setgid and obs.stats[str(shared)].mode == 0o2775
    new_file = obs.stat_of_new_file(str(shared))
    assert new_file is not None and new_file.gid == obs.stats[str(shared)].gid
    assert str(missing) in obs.stat_errors
    assert obs.stat_of_new_file(str(missing)) is None

    assert obs.writes[str(writable)].ok
    assert not obs.writes[str(missing)].ok
    assert "No such file or directory" in obs.writes[str(missing)].error

    assert obs.root_write.ok and obs.root_write.error == ""
    # The probe cleans up after itself.
    assert list(writable.iterdir()) == [] and list(shared.iterdir()) == []
    assert not root_file.exists()


def test_probe_stats_the_files_of_a_kubelet_written_volume_through_their_symlinks(shell, tmp_path):
    # The AtomicWriter's layout: <key> -> ..data/<key>, ..data -> ..<timestamp>/.
    vol = tmp_path / "cfg"
    (vol / "..2026_12_07").mkdir(parents=True)
    (vol / "..2026_12_07" / "a.conf").write_text("a")
    os.chmod(vol / "..2026_12_07" / "a.conf", 0o440)
    (vol / "..data").symlink_to("..2026_12_07")
    (vol / "a.conf").symlink_to("..data/a.conf")
    empty = tmp_path / "empty"
    empty.mkdir()
    script = observe.probe_script([], [], root_write_path=str(tmp_path / "t"),
                                  file_dirs=(str(vol), str(empty)))
    obs = observe.parse(run_probe(shell, script))
    assert set(obs.file_stats) == {f"{vol}/a.conf"}  # no ..data, nothing for an empty one
    assert obs.file_stats[f"{vol}/a.conf"].mode == 0o440  # the file's, not the symlink's 777


def test_probe_reports_failed_root_write(shell, tmp_path):
    script = observe.probe_script([], [], root_write_path=str(tmp_path / "nope" / "test.txt"))
    obs = observe.parse(run_probe(shell, script))
    assert not obs.root_write.ok
    assert "No such file or directory" in obs.root_write.error
    assert obs.exit_codes["root-write"] != 0
    assert obs.stats == {} and obs.writes == {}


def test_probe_keeps_a_root_write_file_it_did_not_create(shell, tmp_path):
    existing = tmp_path / "test.txt"
    existing.write_text("keep me")
    obs = observe.parse(run_probe(shell, observe.probe_script([], [], root_write_path=str(existing))))
    assert obs.root_write.ok
    assert existing.read_text() == "keep me"


class CuttingExec:
    """kube.exec whose first output loses its last line (the stream ended early), as seen
    once in ~500 probes on 2 cores; later calls return `then`."""

    def __init__(self, full: str, then: str | None = None):
        self.full, self.then, self.calls = full, full if then is None else then, 0

    def exec(self, pod, namespace, container, command, timeout=30):
        from secctx.kube import ExecResult
        self.calls += 1
        out = self.full.rsplit("### secctx:end", 1)[0] if self.calls == 1 else self.then
        return ExecResult(command, out, "", 0)


def test_a_probe_whose_output_was_cut_short_runs_once_more_and_says_so(monkeypatch):
    from secctx import report
    steps = []
    monkeypatch.setattr(report, "attach_text", lambda *a, **k: None)
    monkeypatch.setattr(report, "attach_caps", lambda *a, **k: None)
    real_step = report.step

    def step(title):
        steps.append(title)
        return real_step(title)
    monkeypatch.setattr(report, "step", step)
    full = probe_output(**{"unshare-user": ("unshare: Operation not permitted\n", 1)})
    kube = CuttingExec(full)
    obs = observe.probe(kube, "ns", "p", {"name": "app"})
    assert kube.calls == 2 and obs.unshare_user.ok is False
    assert any(s.startswith("RETRY the probe: its output was cut short (section "
                            "'unshare-user'") for s in steps), steps
    # Cut twice: the observation fails, it is not taken as a probe without that section.
    with pytest.raises(ObservationError, match="truncated"):
        observe.probe(CuttingExec(full, then=full.rsplit("### secctx:end", 1)[0]), "ns", "p",
                      {"name": "app"})


def fake_proc(root: Path, processes: dict[str, tuple], self_pid: str | None = None) -> Path:
    """A made-up /proc: {pid or "self": (comm, start time, cgroup lines[, parent PID])};
    with self_pid, "self" is a link to that PID's directory, as in the kernel's /proc."""
    for pid, (comm, start, cgroup, *parent) in processes.items():
        d = root / pid
        d.mkdir(parents=True)
        (d / "cgroup").write_text("".join(f"{line}\n" for line in cgroup))
        # stat: pid (comm) state, field 4 the parent, fields 5..21, field 22 the start time.
        ppid = parent[0] if parent else 0
        (d / "stat").write_text(f"{pid} ({comm}) S {ppid} {' '.join(['0'] * 17)} {start} 0 0\n")
    if self_pid is not None:
        (root / "self").symlink_to(self_pid)
    return root


def main_pid(shell, proc: Path) -> str:
    argv, env = shell
    script = observe._FUNCTIONS + "main_pid\n"
    out = subprocess.run([*argv, script], capture_output=True, text=True, timeout=20,
                         env={**(env or os.environ), "SECCTX_PROC": str(proc)})
    assert out.returncode == 0 and out.stderr == "", out.stderr
    return out.stdout.strip()


CONTAINER = ["4:memory:/pod/ctr/container", "1:cpu:/pod/ctr/container", "0::/pod/ctr/container"]


def test_main_pid_is_the_containers_oldest_process_though_crun_exec_is_not_in_systemds_cgroup(
        shell, tmp_path):
    # crun: the exec (self, 9, 10) shares every controller with the workload (7, 8) but sits
    # in containerd's name=systemd cgroup; the pause process (1) is another container's.
    mine = ["9:name=systemd:/system.slice/containerd.service", *CONTAINER]
    workload = ["9:name=systemd:/pod/ctr", *CONTAINER]
    proc = fake_proc(tmp_path / "proc", {
        "self": ("sh", 500, mine), "1": ("pause", 10, ["0::/pod/pause"]),
        "7": ("sh", 100, workload), "8": ("sleep", 100, workload),
        "9": ("sh", 500, mine), "10": ("sh", 500, mine)})
    assert main_pid(shell, proc) == "7", "the workload's shell, not the probe's own (9, 10), " \
        "nor the sleep it forked in the same tick (8)"


def test_main_pid_among_equally_old_processes_is_the_lowest_pid_not_the_first_listed(
        shell, tmp_path):
    proc = fake_proc(tmp_path / "proc", {"self": ("sh", 900, CONTAINER),
                                         "10": ("sleep", 300, CONTAINER),
                                         "7": ("sh", 300, CONTAINER)})
    assert main_pid(shell, proc) == "7"


def main_pid_check(shell, proc: Path, pid: str = "$(main_pid)") -> observe.Section:
    """What the probe's main-pid-check section says on a made-up /proc, of the PID
    main_pid finds there (or of `pid`)."""
    argv, env = shell
    script = observe._FUNCTIONS + f'MAIN={pid}\nsection main-pid-check not_the_probe "$MAIN"\n'
    out = subprocess.run([*argv, script], capture_output=True, text=True, timeout=20,
                         env={**(env or os.environ), "SECCTX_PROC": str(proc)})
    assert out.returncode == 0 and out.stderr == "", out.stderr
    return observe.split_sections(out.stdout)["main-pid-check"]


def test_main_pid_check_fails_when_the_pid_found_is_an_ancestor_of_the_probes_shell(
        shell, tmp_path):
    # A runtime that puts the exec in the container's cgroups but starts it under a process
    # of its own there (20, older than the exec): the oldest process in those cgroups is the
    # probe's own parent, not the workload (7, in cgroups of its own).
    mine = ["4:memory:/pod/exec", "0::/pod/exec"]
    proc = fake_proc(tmp_path / "proc", {
        "7": ("sleep", 100, CONTAINER), "20": ("runc:[2:INIT]", 400, mine),
        "21": ("sh", 500, mine, 20), "22": ("sh", 500, mine, 21)}, self_pid="21")
    check = main_pid_check(shell, proc)
    assert check.rc == 1, check.text
    assert "PID 20 is the probe's own shell or one of its ancestors (probe shell: PID 21)" \
        in check.text


def test_main_pid_check_fails_when_the_pid_found_started_after_the_exec(shell, tmp_path):
    # A process younger than the probe's shell that is no ancestor of it (30: a fork of the
    # probe's, already reparented) cannot be the workload, whatever found it.
    proc = fake_proc(tmp_path / "proc", {
        "7": ("sleep", 100, CONTAINER), "21": ("sh", 500, CONTAINER, 0),
        "30": ("sh", 501, CONTAINER, 0)}, self_pid="21")
    check = main_pid_check(shell, proc, pid="30")
    assert check.rc == 1, check.text
    assert "PID 30 started at tick 501, not before the probe's exec (tick 500)" in check.text


def test_main_pid_check_passes_for_the_containers_workload(shell, tmp_path):
    proc = fake_proc(tmp_path / "proc", {
        "1": ("pause", 10, ["0::/pod/pause"]), "7": ("sh", 100, CONTAINER, 0),
        "8": ("sleep", 100, CONTAINER, 7), "9": ("sh", 500, CONTAINER, 0),
        "10": ("sh", 500, CONTAINER, 9)}, self_pid="9")
    check = main_pid_check(shell, proc)
    assert check.rc == 0, check.text
    assert check.text.startswith("PID 7: not an ancestor of the probe (PID 9)")


def test_a_probe_whose_main_pid_check_failed_fails_the_case():
    from secctx import verdict
    out = probe_output(**{"main-pid-check": ("PID 20 is the probe's own shell or one of its "
                                              "ancestors (probe shell: PID 21)\n", 1)})
    [check] = verdict.main_process_check(observe.parse(out))
    assert not check.ok and check.line().startswith(
        "FAIL main process is the workload's: expected True, observed False")
    assert "PID 20 is the probe's own shell" in check.reason
    # Older recordings have no such section: not asserted, and said so.
    [old] = verdict.main_process_check(observe.parse(probe_output()))
    assert old.ok and not old.asserted


def test_a_pod_pinned_to_a_vm_node_gets_the_emulated_bounds_for_start_and_exec():
    # runner.place pins a case to a VM node by the node-kind label as its nodeSelector;
    # its twin (a crashing case's) and its execs wait as long as an emulated CPU needs.
    from secctx.core import timeouts
    from secctx.observe import exec_bound, start_bound
    from secctx.oracle.nodefacts import NODE_KIND_LABEL
    pinned = {"nodeSelector": {NODE_KIND_LABEL: "vm-apparmor"}}
    assert (start_bound(pinned), exec_bound(pinned)) == (timeouts.EMULATED_POD_START,
                                                         timeouts.EMULATED_EXEC)
    assert (start_bound({}), exec_bound(None)) == (timeouts.POD_START, timeouts.EXEC)
