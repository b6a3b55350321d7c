"""One exec gathers what the kernel shows about a container; `parse` reads it.

`probe_script` builds a POSIX sh script (busybox ash and Debian dash both run
it, using only cat, id, stat -c, touch, rm, echo and printf) that prints each
section between two marker lines:

    ### secctx:begin NAME
    <the section's output, stderr included>
    ### secctx:end NAME rc=N

The end line carries the exit code, so the parser can tell a file that is
missing (rc=1 and an error text) from one that is empty (rc=0, no text). The
script has no `set -e`: a failing command only shows in its own section, and
the sections after it are still printed.
"""
from __future__ import annotations

import copy
import re
import shlex
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from ..cases import STORAGE_KINDS, Status
from ..core import podspec, steps, timeouts
from ..kube import ExecResult, Terminal, WaitTimeout, describe_pod
from ..oracle.expect import PROC_PATHS, ClaimFacts, ImageFiles, ImageUser, Learned
from ..oracle.nodefacts import NODE_KIND_LABEL

if TYPE_CHECKING:  # types only: the runner and the client call this module
    from collections.abc import Callable

    from kubernetes.client import V1Pod

    from ..cases import Case
    from ..images.imagemap import ImageMap
    from ..kube import ExecResult, Kube, Terminal

BEGIN_MARKER = "### secctx:begin"
END_MARKER = "### secctx:end"
# Name of the file the probe creates (and removes) in each directory it tests.
PROBE_FILE = ".secctx-probe"

_BEGIN_RE = re.compile(r"^### secctx:begin (\S+)$")
_END_RE = re.compile(r"^### secctx:end (\S+) rc=(\d+)$")
_STAT_RE = re.compile(r"^(?P<path>[^|]*)\|(?P<uid>\d+)\|(?P<gid>\d+)\|(?P<mode>[0-7]+)\|(?P<text>\S+)$")
_WRITE_RE = re.compile(r"^(?P<path>/[^|]*)\|(?:(?P<ok>ok)|fail\|(?P<error>.*))$")

# Shell functions shared by every probe. Variables carry a prefix because POSIX
# sh has no `local`, and a nested function must not clobber its caller's names.
_FUNCTIONS = r"""
section() {
  _sec_name=$1; shift
  printf '%s\n' "### secctx:begin $_sec_name"
  "$@" 2>&1
  _sec_rc=$?
  # The extra newline ends a last line that had none (attr/current ends in NUL,
  # not newline); the parser removes exactly this one newline again.
  printf '\n%s\n' "### secctx:end $_sec_name rc=$_sec_rc"
}

stat_one() {
  if _st_out=$(stat -c '%n|%u|%g|%a|%A' "$1" 2>&1); then
    printf '%s\n' "$_st_out"
  else
    printf '%s|error|%s\n' "$1" "$_st_out"
  fi
}

stat_paths() {
  for _st_path in "$@"; do
    stat_one "$_st_path"
    # A file created here shows which group new files get (setgid inheritance).
    if touch "$_st_path/__PROBE_FILE__" 2>/dev/null; then
      stat_one "$_st_path/__PROBE_FILE__"
      rm -f "$_st_path/__PROBE_FILE__" 2>/dev/null
    fi
  done
  return 0
}

file_stats() {
  # The files the kubelet wrote into each directory (configMap, secret, downwardAPI keys),
  # through the ..data symlinks they are (stat -L): the modes defaultMode and items[].mode
  # ask for. The glob leaves out the writer's own ..data and ..<timestamp> entries.
  for _fs_dir in "$@"; do
    for _fs_file in "$_fs_dir"/*; do
      [ -e "$_fs_file" ] || continue
      if _st_out=$(stat -L -c '%n|%u|%g|%a|%A' "$_fs_file" 2>&1); then
        printf '%s\n' "$_st_out"
      else
        printf '%s|error|%s\n' "$_fs_file" "$_st_out"
      fi
    done
  done
  return 0
}

write_paths() {
  for _wr_path in "$@"; do
    if _wr_err=$(touch "$_wr_path/__PROBE_FILE__" 2>&1); then
      if _wr_err=$(rm -f "$_wr_path/__PROBE_FILE__" 2>&1); then
        printf '%s|ok\n' "$_wr_path"
      else
        printf '%s|fail|%s\n' "$_wr_path" "$_wr_err"
      fi
    else
      printf '%s|fail|%s\n' "$_wr_path" "$_wr_err"
    fi
  done
  return 0
}

existing() {
  # The paths of "$@" that exist here (a glob that matched nothing stays itself and fails).
  for _ex_path in "$@"; do
    [ -e "$_ex_path" ] && printf '%s\n' "$_ex_path"
  done
  return 0
}

real_paths() {
  # Where each path really is: a mount over a symlink (/var/run -> /run) lands on its target.
  for _rp_path in "$@"; do
    printf '%s|%s\n' "$_rp_path" "$(readlink -f "$_rp_path" 2>/dev/null || echo "$_rp_path")"
  done
  return 0
}

cgroups_of() {
  # The resource-controller lines of $1/cgroup, into _cg. crun's exec joins every
  # controller of the container but not systemd's named hierarchy (v1 "N:name=systemd:"),
  # so those lines must not decide whose process it is.
  _cg=
  [ -r "$1/cgroup" ] || return 1
  while IFS= read -r _cg_line; do
    case "$_cg_line" in *:name=*) ;; *) _cg="$_cg$_cg_line;" ;; esac
  done < "$1/cgroup"
}

main_pid() {
  # The container's own main process: the oldest one in this exec's cgroups, the lowest
  # PID among equally old ones (a shell and the child it forks start in the same tick,
  # and /proc lists "10" before "7"). It is PID 1 unless the pod shares a PID namespace
  # (then PID 1 is the pause process) or uses the host's (then PID 1 is the node's
  # init). Shell builtins only. SECCTX_PROC: a test's made-up /proc.
  _mp_proc=${SECCTX_PROC:-/proc}
  cgroups_of "$_mp_proc/self"
  _mp_self=$_cg
  _mp_pid=1
  _mp_start=
  for _mp_dir in "$_mp_proc"/[0-9]*; do
    cgroups_of "$_mp_dir" 2>/dev/null || continue
    [ "$_cg" = "$_mp_self" ] || continue
    read -r _mp_line < "$_mp_dir/stat" 2>/dev/null || continue
    # Field 22 of stat is the start time; the fields after "comm)" begin at field 3.
    set -- ${_mp_line##*) }
    _mp_st=${20:-}
    [ -n "$_mp_st" ] || continue
    _mp_n=${_mp_dir##*/}
    if [ -z "$_mp_start" ] || [ "$_mp_st" -lt "$_mp_start" ] || \
        { [ "$_mp_st" -eq "$_mp_start" ] && [ "$_mp_n" -lt "$_mp_pid" ]; }; then
      _mp_start=$_mp_st
      _mp_pid=$_mp_n
    fi
  done
  echo "$_mp_pid"
}

not_the_probe() {
  # The PID main_pid found ($1) must be the workload's, never the probe's: not this shell
  # nor an ancestor of it (a runtime that puts the exec in the container's cgroups could
  # make the probe's own chain look oldest), and started before this exec (its forks
  # start after it). Start times are clock ticks: a workload that the pod's readiness
  # preceded is many ticks older. Fails (rc 1) with the reason.
  _np_proc=${SECCTX_PROC:-/proc}
  read -r _np_line < "$_np_proc/self/stat" || { echo "cannot read $_np_proc/self/stat"; return 1; }
  _np_me=${_np_line%% *}
  set -- "$1" ${_np_line##*) }
  _np_up=$3 _np_start=${21:-}
  _np_at=$_np_me
  while :; do
    if [ "$_np_at" = "$1" ]; then
      echo "PID $1 is the probe's own shell or one of its ancestors (probe shell: PID $_np_me)"
      return 1
    fi
    case "$_np_up" in ''|0) break ;; esac
    _np_at=$_np_up
    read -r _np_line < "$_np_proc/$_np_at/stat" 2>/dev/null || break
    set -- "$1" ${_np_line##*) }
    _np_up=$3
  done
  read -r _np_line < "$_np_proc/$1/stat" 2>/dev/null || { echo "PID $1: no $_np_proc/$1/stat"; return 1; }
  set -- "$1" ${_np_line##*) }
  if [ -z "$_np_start" ] || [ -z "${21:-}" ]; then
    echo "no start time in $_np_proc/self/stat or $_np_proc/$1/stat"
    return 1
  fi
  if [ "${21}" -ge "$_np_start" ]; then
    echo "PID $1 started at tick ${21}, not before the probe's exec (tick $_np_start)"
    return 1
  fi
  echo "PID $1: not an ancestor of the probe (PID $_np_me), started at tick ${21}, before the exec (tick $_np_start)"
}

root_write() {
  # Remove the file afterwards only if this probe created it.
  _rw_existed=no
  if [ -e "$1" ]; then _rw_existed=yes; fi
  touch "$1"
  _rw_rc=$?
  if [ "$_rw_rc" -eq 0 ] && [ "$_rw_existed" = no ]; then rm -f "$1" >/dev/null 2>&1; fi
  return "$_rw_rc"
}
""".replace("__PROBE_FILE__", PROBE_FILE)


TRUNCATED = "output ends inside this section (truncated?)"
# The probe script's last section: a live probe's output without it was cut short.
LAST_SECTION = "unshare-user"


class ObservationError(Exception):
    """The probe output lacks a section the tests need, or a section is malformed."""

    def __init__(self, section: str, problem: str, text: str):
        self.section = section
        self.problem = problem
        self.text = text
        super().__init__(f"probe section {section!r}: {problem}\n--- section text ---\n{text}")


def _check_path(path: str) -> str:
    # Absolute paths cannot be mistaken for options, and without '|' or newlines
    # every output line splits unambiguously.
    if not path.startswith("/") or "|" in path or "\n" in path:
        raise ValueError(f"probe path must be absolute, without '|' or newline: {path!r}")
    return shlex.quote(path)


def probe_script(stat_paths: list[str], write_paths: list[str],
                 root_write_path: str = "/test.txt", file_dirs: tuple[str, ...] = ()) -> str:
    """The POSIX sh script to run with `sh -c` in the container (see module doc)."""
    stats = " ".join(_check_path(p) for p in stat_paths)
    files = " ".join(_check_path(p) for p in file_dirs)
    writes = " ".join(_check_path(p) for p in write_paths)
    procs = " ".join(PROC_PATHS)  # globs, expanded by the shell
    calls = f"""
MAIN=$(main_pid)
section main-pid echo "$MAIN"
section main-pid-check not_the_probe "$MAIN"
section pid1-status cat /proc/$MAIN/status
section self-status cat /proc/self/status
section id id
section id-G id -G
section mounts cat /proc/$MAIN/mounts
section proc-paths existing {procs}
section uid-map cat /proc/$MAIN/uid_map
section gid-map cat /proc/$MAIN/gid_map
section attr-current cat /proc/$MAIN/attr/current
section attr-apparmor cat /proc/$MAIN/attr/apparmor/current
section etc-passwd cat /etc/passwd
section etc-group cat /etc/group
section stat stat_paths {stats}
section realpaths real_paths {stats}
section volume-files file_stats {files}
section write write_paths {writes}
section root-write root_write {_check_path(root_write_path)}
section unshare-user unshare -U true
"""
    return _FUNCTIONS + calls


@dataclass
class Section:
    name: str
    text: str
    rc: int


def split_sections(output: str) -> dict[str, Section]:
    """Sections by name. Text outside sections (kubectl notices) is ignored."""
    sections: dict[str, Section] = {}
    current: str | None = None
    body: list[str] = []
    for line in output.replace("\r\n", "\n").split("\n"):
        begin = _BEGIN_RE.match(line)
        end = _END_RE.match(line)
        if current is None:
            if begin:
                current, body = begin.group(1), []
            continue
        if end:
            if end.group(1) != current:
                raise ObservationError(current, f"ended by a marker for {end.group(1)!r}",
                                       "\n".join(body))
            sections[current] = Section(current, "\n".join(body), int(end.group(2)))
            current = None
        elif begin:
            raise ObservationError(current, "no end marker before the next section",
                                   "\n".join(body))
        else:
            body.append(line)
    if current is not None:
        raise ObservationError(current, TRUNCATED, "\n".join(body))
    return sections


@dataclass
class ProcStatus:
    """The security-relevant lines of /proc/<pid>/status."""
    name: str
    uid: tuple[int, int, int, int]  # real, effective, saved, filesystem
    gid: tuple[int, int, int, int]
    groups: list[int]
    cap_inh: int
    cap_prm: int
    cap_eff: int
    cap_bnd: int
    cap_amb: int
    no_new_privs: int
    seccomp: int  # 0 disabled, 1 strict, 2 filter
    seccomp_filters: int | None  # None: kernel too old to print the line

    @property
    def euid(self) -> int:
        return self.uid[1]

    @property
    def egid(self) -> int:
        return self.gid[1]


def parse_proc_status(text: str, section: str = "status") -> ProcStatus:
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()

    def value(key: str) -> str:
        if key not in fields:
            raise ObservationError(section, f"no {key}: line", text)
        return fields[key]

    def ids(key: str) -> tuple[int, int, int, int]:
        parts = value(key).split()
        if len(parts) != 4 or not all(p.isdigit() for p in parts):
            raise ObservationError(section, f"{key}: wants 4 numbers, got {value(key)!r}", text)
        return int(parts[0]), int(parts[1]), int(parts[2]), int(parts[3])

    def number(key: str, base: int = 10) -> int:
        try:
            return int(value(key), base)
        except ValueError:
            raise ObservationError(section, f"{key}: not a number: {value(key)!r}", text) from None

    groups_text = value("Groups")
    if not all(g.isdigit() for g in groups_text.split()):
        raise ObservationError(section, f"Groups: not numbers: {groups_text!r}", text)
    return ProcStatus(
        name=fields.get("Name", ""),
        uid=ids("Uid"),
        gid=ids("Gid"),
        groups=[int(g) for g in groups_text.split()],
        cap_inh=number("CapInh", 16),
        cap_prm=number("CapPrm", 16),
        cap_eff=number("CapEff", 16),
        cap_bnd=number("CapBnd", 16),
        cap_amb=number("CapAmb", 16),
        no_new_privs=number("NoNewPrivs"),
        seccomp=number("Seccomp"),
        seccomp_filters=number("Seccomp_filters") if "Seccomp_filters" in fields else None,
    )


@dataclass
class Mount:
    device: str
    mountpoint: str
    fstype: str
    options: list[str]

    @property
    def read_only(self) -> bool:
        return "ro" in self.options


def _unescape_mount_field(value: str) -> str:
    # The kernel writes space, tab, newline and backslash as octal escapes (\040).
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), value)


def parse_mounts(text: str, section: str = "mounts") -> list[Mount]:
    mounts = []
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) < 4:
            raise ObservationError(section, f"mount line has fewer than 4 fields: {line!r}", text)
        mounts.append(Mount(device=_unescape_mount_field(parts[0]),
                            mountpoint=_unescape_mount_field(parts[1]),
                            fstype=parts[2], options=parts[3].split(",")))
    return mounts


def parse_id(text: str, section: str = "id") -> tuple[int, int, list[int]]:
    """uid, gid and groups from `id` output, busybox or coreutils, names or not.

    busybox leaves out "groups=" when the process has no supplementary groups.
    """
    uid = re.search(r"\buid=(\d+)", text)
    gid = re.search(r"\bgid=(\d+)", text)
    if not uid or not gid:
        raise ObservationError(section, "no uid= or gid= in id output", text)
    groups_match = re.search(r"\bgroups=(.*?)(?:\s+context=|\s*$)", text.strip())
    groups = []
    if groups_match:
        for item in groups_match.group(1).split(","):
            number = re.match(r"\d+", item.strip())
            if not number:
                raise ObservationError(section, f"group {item!r} has no number", text)
            groups.append(int(number.group()))
    return int(uid.group(1)), int(gid.group(1)), groups


@dataclass
class FileStat:
    path: str
    uid: int
    gid: int
    mode: int  # permission bits with setuid/setgid/sticky (stat %a)
    mode_text: str  # stat %A, e.g. "drwxrwsrwx"

    @property
    def setgid(self) -> bool:
        return bool(self.mode & 0o2000)


@dataclass
class WriteResult:
    ok: bool
    error: str = ""


def _parse_stats(text: str) -> tuple[dict[str, FileStat], dict[str, str]]:
    stats: dict[str, FileStat] = {}
    errors: dict[str, str] = {}
    for line in text.splitlines():
        if not line:
            continue
        ok = _STAT_RE.match(line)
        if ok:
            stats[ok["path"]] = FileStat(ok["path"], int(ok["uid"]), int(ok["gid"]),
                                         int(ok["mode"], 8), ok["text"])
            continue
        path, sep, error = line.partition("|error|")
        if not sep:
            raise ObservationError("stat", f"unexpected line {line!r}", text)
        errors[path] = error
    return stats, errors


def _parse_writes(text: str) -> dict[str, WriteResult]:
    writes: dict[str, WriteResult] = {}
    last: str | None = None
    for line in text.splitlines():
        match = _WRITE_RE.match(line)
        if match:
            last = match["path"]
            writes[last] = WriteResult(ok=bool(match["ok"]), error=match["error"] or "")
        elif last is not None and not writes[last].ok:
            writes[last].error += "\n" + line  # an error message that spans lines
        elif line:
            raise ObservationError("write", f"unexpected line {line!r}", text)
    return writes


@dataclass
class Observation:
    pid1: ProcStatus  # the container's main process
    exec_: ProcStatus  # the exec'd process (cat reading /proc/self/status)
    id_uid: int
    id_gid: int
    id_groups: list[int]
    id_G: list[int]
    mounts: list[Mount]
    root_read_only: bool
    lsm_label: str | None  # /proc/1/attr/current: SELinux or AppArmor label
    apparmor_label: str | None  # /proc/1/attr/apparmor/current (stacked LSM kernels)
    stats: dict[str, FileStat]
    stat_errors: dict[str, str]  # paths stat could not read, with stat's message
    writes: dict[str, WriteResult]
    root_write: WriteResult
    raw: dict[str, str]  # each section's text, for report attachments
    exit_codes: dict[str, int] = field(default_factory=dict)
    output: str = ""  # the probe's whole output, as parsed
    main_pid: int | None = None  # the main process's PID; None: an older probe (PID 1)
    passwd: dict[int, PasswdEntry] | None = None  # the container's /etc/passwd, None: absent
    group_file: list[GroupEntry] | None = None   # the container's /etc/group, None: absent
    unshare_user: WriteResult | None = None  # unshare(CLONE_NEWUSER); None: no unshare
    real_paths: dict[str, str] | None = None  # stat path -> its resolved path
    # /proc/<main>/uid_map and gid_map: (first id inside, first id outside, count) lines;
    # None: an older probe.
    uid_map: list[tuple[int, int, int]] | None = None
    gid_map: list[tuple[int, int, int]] | None = None
    # not_the_probe's verdict on main_pid (ok, and its words); None: an older probe.
    main_pid_check: WriteResult | None = None
    # The files in the kubelet-written volumes (file_stats), by path; None: an older probe.
    file_stats: dict[str, FileStat] | None = None
    # The paths of expect.PROC_PATHS this container has; None: an older probe.
    proc_paths: list[str] | None = None

    def stat_of_new_file(self, directory: str) -> FileStat | None:
        """Stat of the file the probe created in directory, None if it could not."""
        return self.stats.get(f"{directory}/{PROBE_FILE}")

    def mount_at(self, path: str) -> Mount | None:
        """The mount on `path` (or on where its symlinks lead); the last one, since later
        mounts hide earlier ones."""
        target = (self.real_paths or {}).get(path) or path
        return next((m for m in reversed(self.mounts) if m.mountpoint in (path, target)), None)


@dataclass(frozen=True)
class PasswdEntry:
    name: str
    uid: int
    gid: int


@dataclass(frozen=True)
class GroupEntry:
    name: str
    gid: int
    members: tuple[str, ...]


def parse_passwd(text: str) -> dict[int, PasswdEntry]:
    """uid -> entry; the first line for a uid wins, as in getpwuid."""
    entries: dict[int, PasswdEntry] = {}
    for line in text.splitlines():
        parts = line.split(":")
        if len(parts) >= 4 and parts[2].isdigit() and parts[3].isdigit():
            entries.setdefault(int(parts[2]), PasswdEntry(parts[0], int(parts[2]), int(parts[3])))
    return entries


def parse_id_map(text: str, section: str = "uid-map") -> list[tuple[int, int, int]]:
    """/proc/<pid>/uid_map (or gid_map): one (inside, outside, count) per line."""
    entries = []
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 3 or not all(p.isdigit() for p in parts):
            raise ObservationError(section, f"id map line is not three numbers: {line!r}", text)
        entries.append((int(parts[0]), int(parts[1]), int(parts[2])))
    return entries


def parse_group(text: str) -> list[GroupEntry]:
    groups = []
    for line in text.splitlines():
        parts = line.split(":")
        if len(parts) >= 4 and parts[2].isdigit():
            groups.append(GroupEntry(parts[0], int(parts[2]),
                                     tuple(m for m in parts[3].split(",") if m)))
    return groups


def _required(sections: dict[str, Section], name: str, must_succeed: bool = True) -> Section:
    if name not in sections:
        raise ObservationError(name, "section missing from probe output", "")
    section = sections[name]
    if must_succeed and section.rc != 0:
        raise ObservationError(name, f"command failed with exit code {section.rc}", section.text)
    return section


def _label(sections: dict[str, Section], name: str) -> str | None:
    # Reading attr files fails (EINVAL, ENOENT) when that LSM is not active.
    section = sections.get(name)
    if section is None or section.rc != 0:
        return None
    label = section.text.replace("\0", "").strip()
    return label or None


def parse(output: str) -> Observation:
    sections = split_sections(output)

    id_section = _required(sections, "id")
    uid, gid, groups = parse_id(id_section.text)

    id_g_text = _required(sections, "id-G").text
    if not all(g.isdigit() for g in id_g_text.split()):
        raise ObservationError("id-G", "id -G printed something other than numbers", id_g_text)

    mounts_text = _required(sections, "mounts").text
    mounts = parse_mounts(mounts_text)
    roots = [m for m in mounts if m.mountpoint == "/"]
    if not roots:
        raise ObservationError("mounts", "no mount for /", mounts_text)

    stats, stat_errors = _parse_stats(_required(sections, "stat").text)
    writes = _parse_writes(_required(sections, "write").text)
    root_write = _required(sections, "root-write", must_succeed=False)
    main, unshare = sections.get("main-pid"), sections.get("unshare-user")
    main_check = sections.get("main-pid-check")

    return Observation(
        pid1=parse_proc_status(_required(sections, "pid1-status").text, "pid1-status"),
        exec_=parse_proc_status(_required(sections, "self-status").text, "self-status"),
        id_uid=uid,
        id_gid=gid,
        id_groups=groups,
        id_G=[int(g) for g in id_g_text.split()],
        mounts=mounts,
        # Later mounts on the same point hide earlier ones, so the last "/" counts.
        root_read_only=roots[-1].read_only,
        lsm_label=_label(sections, "attr-current"),
        apparmor_label=_label(sections, "attr-apparmor"),
        stats=stats,
        stat_errors=stat_errors,
        writes=writes,
        root_write=WriteResult(ok=root_write.rc == 0, error=root_write.text.strip()),
        raw={name: s.text for name, s in sections.items()},
        exit_codes={name: s.rc for name, s in sections.items()},
        output=output,
        main_pid=int(main.text.strip()) if main and main.text.strip().isdigit() else None,
        passwd=_optional(sections, "etc-passwd", parse_passwd),
        real_paths=_optional(sections, "realpaths", lambda text: dict(
            line.split("|", 1) for line in text.splitlines() if "|" in line)),
        group_file=_optional(sections, "etc-group", parse_group),
        uid_map=_optional(sections, "uid-map", parse_id_map),
        gid_map=_optional(sections, "gid-map", lambda text: parse_id_map(text, "gid-map")),
        file_stats=_optional(sections, "volume-files", lambda text: _parse_stats(text)[0]),
        proc_paths=_optional(sections, "proc-paths", str.split),
        main_pid_check=None if main_check is None else
        WriteResult(ok=main_check.rc == 0, error=main_check.text.strip()),
        unshare_user=None if unshare is None or unshare.rc == 127 else
        WriteResult(ok=unshare.rc == 0, error=unshare.text.strip()),
    )


def _optional(sections: dict[str, Section], name: str, parser):
    """A section a probe may lack (older recordings) or whose file may be absent."""
    section = sections.get(name)
    return parser(section.text) if section is not None and section.rc == 0 else None


# --- one case: everything read from the cluster ------------------------------------------

@dataclass
class Applied:
    """A case's objects as the runner applied them (run/runner.apply), what observing reads."""
    namespace: str
    objects: list[dict]       # as applied (images mapped, storage chosen)
    pod_name: str             # the pod under test (for a Deployment: its first pod)
    pod_spec: dict            # as applied
    refused: str | None = None  # the API server's answer when it refused the workload


@dataclass(frozen=True)
class Refusal:
    """Why the kubelet never started the container (a terminal waiting reason)."""
    reason: str
    message: str


@dataclass(frozen=True)
class Crash(Refusal):
    """A container that started and exited: its last terminated state, and its current
    and previous logs."""
    exit_code: int | None = None
    logs: str = ""


@dataclass
class Observed:
    status: Status  # what the workload did
    learned: Any = None  # expect.Learned: what the oracle needs from the cluster
    probe: Observation | None = None  # running: the probe of the container under test
    refusal: Refusal | None = None
    crash: Crash | None = None
    pod_ip: str | None = None
    host_ip: str | None = None
    commands: list[tuple] = field(default_factory=list)  # (cases.Command, kube.ExecResult)


def collect(kube: Kube, image_map: ImageMap, case: Case, applied: Applied, status: Status,
            waited: V1Pod | list[V1Pod] | Terminal | str,
            image_user: Callable[[str, str | None], str | None]) -> Observed:
    """Read everything one case shows, after its workload reached an outcome.

    `status` is the outcome reached and `waited` what the wait returned: the pod
    (running, or crashing: its container exited) or the kubelet's refusal
    (rejected, a kube.Terminal). `image_user(image, node)` is the image's config
    USER as that node has it (session.Suite.image_user). Each read is a report
    step with its raw output attached.
    """
    if status == Status.INVALID:  # `waited` is the API server's answer
        with steps.step("refused by the API server"):
            steps.attach_text("API server's answer", waited)
        return Observed(Status.INVALID, refusal=Refusal("", waited))
    if status == Status.REJECTED:
        message = " ".join(filter(None, [str(waited), waited.pod.status.message
                                         if waited.pod else None]))
        with steps.step(f"refused: reason {waited.reason!r}"):
            steps.attach_text("pod status", describe_pod(waited.pod))
        return Observed(Status.REJECTED, refusal=Refusal(waited.reason, message))
    image = image_map.resolve(podspec.container(case.pod_spec(), case.container)["image"])
    if status == Status.CRASHING:
        latest = kube.core.read_namespaced_pod(applied.pod_name, applied.namespace)
        config_user = image_user(image, latest.spec.node_name)
        crash = _crash(kube, applied, case.container, waited)
        twin = twin_probe(kube, applied, case.container)
        learned = (learn(applied.pod_spec, config_user, twin, {}, kubelet_user(latest, case.container),
                         applied.pod_name, latest.spec.node_name) if twin else
                   Learned(applied.pod_spec, ImageUser.from_config(config_user),
                           kubelet_user=kubelet_user(latest, case.container),
                           config_user=config_user))
        return Observed(Status.CRASHING, learned, probe=twin, crash=crash)
    pod = kube.core.read_namespaced_pod(applied.pod_name, applied.namespace)
    config_user = image_user(image, pod.spec.node_name)
    # The pod as stored, after admission: defaults and mutating webhooks change specs
    # (the service-account token volume, for one), and that is what the node ran.
    stored = kube.api.sanitize_for_serialization(pod.spec)
    seen = probe(kube, applied.namespace, applied.pod_name, podspec.container(stored, case.container),
                 stored)
    learned = learn(stored, config_user, seen,
                    claims(kube, applied.namespace, applied.pod_name, stored),
                    kubelet_user(pod, case.container), applied.pod_name, pod.spec.node_name)
    observed = Observed(Status.RUNNING, learned, probe=seen)
    observed.pod_ip, observed.host_ip = pod.status.pod_ip, pod.status.host_ip
    observed.commands = [(c, sh(kube, applied.namespace, applied.pod_name, c.run, case.container,
                                exec_bound(stored)))
                         for c in case.commands]
    return observed


def learn(pod_spec: dict, config_user: str | None, seen: Observation, bound: dict,
          reported: tuple | None, pod_name: str | None = None, node: str | None = None) -> Learned:
    """What the oracle needs from the cluster, as an expect.Learned: the image's user
    (config USER, names resolved through the container's own /etc/passwd), the
    container's /etc/passwd and /etc/group, the claims' storage, the kubelet's report."""
    files = ImageFiles(seen.passwd, seen.group_file)
    user = ImageUser.from_config(config_user, files)
    if user is None and reported is not None:  # no image config here: the kubelet's word
        gid = files.primary_gid(reported[0])
        user = ImageUser(reported[0], 0 if gid is None else gid,
                         files.memberships(reported[0]) or [],
                         source="the image's USER as the kubelet reports it")
    return Learned(pod_spec, user, files, reported, config_user, dict(seen.stats), bound,
                   pod_name, node)


def twin_probe(kube: Kube, applied: Applied, container: str,
               timeout: float | None = None) -> Observation | None:
    """A container that crashes cannot be looked into. Its twin can: the same pod spec,
    image and securityContext, with the command replaced by a sleeper, so that what
    the runtime gives this spec is observed (None when the twin cannot run: no shell)."""

    spec = copy.deepcopy(applied.pod_spec)
    spec.pop("nodeName", None)
    timeout = start_bound(spec) if timeout is None else timeout
    for c in podspec.containers(spec):
        if c.get("name") == container:
            c["command"], c["args"] = ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"], []
            for probe_key in ("readinessProbe", "livenessProbe", "startupProbe"):
                c.pop(probe_key, None)
    name = f"{applied.pod_name}-twin"[:63]
    twin = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}
    with steps.step(f"start a twin of {applied.pod_name} (same spec, command: a sleeper) "
                     f"and probe it (≤{timeout:.0f}s)"):
        steps.attach_yaml(f"applied Pod/{name}", twin)
        kube.apply(twin, applied.namespace)
        try:
            kube.wait_for_pod(name, applied.namespace, "Ready", timeout)
        except (Terminal, WaitTimeout) as problem:
            steps.attach_text("twin did not run", str(problem))
            return None
    return probe(kube, applied.namespace, name, podspec.container(spec, container), spec)


def kubelet_user(pod: V1Pod, container: str) -> tuple[int, int, list[int]] | None:
    """status.containerStatuses[].user.linux, which kubelets report where the
    SupplementalGroupsPolicy gate is on (beta, on by default from v1.33; GA in v1.35)."""
    for cs in (pod.status.container_statuses or []) if pod and pod.status else []:
        linux = cs.user.linux if cs.name == container and cs.user else None
        if linux:
            return linux.uid, linux.gid, sorted(linux.supplemental_groups or [])
    return None


# Volume kinds whose files the kubelet writes with defaultMode / items[].mode.
FILE_VOLUMES = ("configMap", "secret", "downwardAPI")


def file_dirs(spec: dict, container: dict) -> tuple[str, ...]:
    """The container's mounts of FILE_VOLUMES (whole volumes, not subPaths)."""
    kinds = {v.get("name"): next((k for k in v if k != "name"), None)
             for v in spec.get("volumes") or []}
    return tuple(m["mountPath"] for m in container.get("volumeMounts") or []
                 if kinds.get(m.get("name")) in FILE_VOLUMES
                 and not m.get("subPath") and not m.get("subPathExpr"))


def _pinned(spec: dict | None) -> bool:
    """The pod is pinned to a VM node (runner.place's nodeSelector)."""
    return NODE_KIND_LABEL in ((spec or {}).get("nodeSelector") or {})


def exec_bound(spec: dict | None) -> float:
    """How long one exec into the pod may take: longer on a pod pinned to a VM node."""
    return timeouts.EMULATED_EXEC if _pinned(spec) else timeouts.EXEC


def start_bound(spec: dict | None) -> float:
    """How long a pod of this spec may take to be Ready: longer pinned to a VM node (a
    crashing case's twin there, secure-pod@vm-apparmor, was still ContainerCreating
    after the 60 s a kind node's pod gets, at load 15)."""
    return timeouts.EMULATED_POD_START if _pinned(spec) else timeouts.POD_START


def probe(kube: Kube, namespace: str, pod: str, container: dict, spec: dict | None = None) -> Observation:
    """One exec gathering PID 1's status, id, mounts, LSM label, stat and write tests."""
    mounts = container.get("volumeMounts") or []
    # Every mount gets a write attempt: a read-only one must refuse it.
    # "/" too: whether root may write there without CAP_DAC_OVERRIDE is its mode's (the
    # store's: containers/storage makes a layer's root 0555, containerd's snapshotter 0755).
    script = probe_script([*(m["mountPath"] for m in mounts), "/"],
                          [m["mountPath"] for m in mounts],
                          file_dirs=file_dirs(spec or {}, container))
    with steps.step(f"exec probe in {pod}/{container['name']}: "
                     "cat /proc/1/status, id, id -G, /proc/1/mounts, attr/current, stat, writes"):
        for attempt in (1, 2):
            result = kube.exec(pod, namespace, container["name"],
                               ["sh", "-c", script], timeout=exec_bound(spec))
            steps.attach_text("exec transcript (probe)", result.transcript())
            try:
                obs = parse(result.stdout)
                if LAST_SECTION not in obs.raw:
                    raise ObservationError(LAST_SECTION, TRUNCATED, "")
                break
            except ObservationError as err:
                # Seen once in ~500 probes on 2 cores: the exec stream ended before its last
                # line (an end marker) arrived. Once, visibly; a second cut is a failure.
                if attempt == 2 or err.problem != TRUNCATED:
                    raise
                with steps.step(f"RETRY the probe: its output was cut short (section "
                                 f"{err.section!r}: {err.problem})"):
                    pass
        steps.attach_caps(obs.pid1)
        for name, text in obs.raw.items():
            steps.attach_text(f"probe: {name}", text)
    return obs


def sh(kube: Kube, namespace: str, pod: str, script: str, container: str = "main",
       timeout: float = timeouts.EXEC) -> ExecResult:
    """Run a shell snippet in a container; the transcript goes to the report."""
    with steps.step(f"exec in {pod}: {script[:100]}"):
        result = kube.exec(pod, namespace, container, ["sh", "-c", script], timeout=timeout)
        steps.attach_text(f"exec: {script[:60]}", result.transcript())
    return result


def claims(kube: Kube, namespace: str, pod_name: str, pod_spec: dict) -> dict:
    """{claim name: expect.ClaimFacts of the PV it is bound to}, for claims and
    ephemeral volumes (whose claim is named <pod>-<volume>)."""

    facts = {}
    for vol in pod_spec.get("volumes") or []:
        claim = ((vol.get("persistentVolumeClaim") or {}).get("claimName")
                 or (f"{pod_name}-{vol['name']}" if "ephemeral" in vol else None))
        if not claim:
            continue
        pvc = kube.core.read_namespaced_persistent_volume_claim(claim, namespace)
        pv = kube.core.read_persistent_volume(pvc.spec.volume_name)
        spec = kube.api.sanitize_for_serialization(pv.spec)
        kind = next((k for k in STORAGE_KINDS if k in spec), "other")
        policy = None
        if kind == "csi":
            try:
                driver = client.StorageV1Api(kube.api).read_csi_driver(spec["csi"]["driver"])
                policy = driver.spec.fs_group_policy
            except ApiException as err:
                if err.status != 404:  # no CSIDriver object: the driver's defaults
                    raise
        gid = (pv.metadata.annotations or {}).get("pv.beta.kubernetes.io/gid")
        facts[claim] = ClaimFacts(kind, policy, (spec.get("csi") or {}).get("fsType"),
                                  tuple(spec.get("accessModes") or ()),
                                  int(gid) if gid and gid.isdigit() else None)
        steps.attach_text(f"PV bound to {claim}", f"{pv.metadata.name}: {facts[claim]} "
                                                   f"({spec.get(kind, '')})")
    return facts


def _crash(kube, applied, container: str, pod) -> Crash:
    logs = kube.logs(applied.pod_name, applied.namespace, container)
    previous = kube.logs(applied.pod_name, applied.namespace, container, previous=True)
    steps.attach_text(f"logs {container} (current and previous)", f"{logs}\n---\n{previous}")
    status = next((cs for cs in pod.status.container_statuses or [] if cs.name == container), None)
    state = status and ((status.state and status.state.terminated) or
                        (status.last_state and status.last_state.terminated))
    return Crash(reason=(state.reason or "") if state else "",
                 message=(state.message or "") if state else "",
                 exit_code=state.exit_code if state else None, logs=f"{logs}\n{previous}")


def to_record(observed: Observed) -> dict:
    """Plain data of one case's observation (JSON): what `from_record` reads back."""
    learned = observed.learned
    user = learned.image_user if learned else None
    return {
        "status": observed.status,
        "pod_spec": learned.pod_spec if learned else None,
        "image_config_user": learned.config_user if learned else None,
        "image_user": None if user is None else {"uid": user.uid, "gid": user.gid,
                                                 "groups": user.groups},
        "kubelet_user": list(learned.kubelet_user) if learned and learned.kubelet_user else None,
        "claims": {c: {**vars(f), "access_modes": list(f.access_modes)}
                   for c, f in learned.claims.items()} if learned else {},
        "pod_name": learned.pod_name if learned else None,
        "node": learned.node if learned else None,
        "storage_kinds": learned.storage_kinds if learned else {},
        "probe_output": observed.probe.output if observed.probe else None,
        "refusal": vars(observed.refusal) if observed.refusal else None,
        "crash": vars(observed.crash) if observed.crash else None,
        "pod_ip": observed.pod_ip, "host_ip": observed.host_ip,
        "commands": [{"run": c.run, "stdout": r.stdout, "stderr": r.stderr,
                      "returncode": r.returncode} for c, r in observed.commands],
    }


def from_record(data: dict, case: Case) -> Observed:
    """An Observed from `to_record`'s data, its probe parsed again; `case` gives the commands."""
    user = data.get("image_user")
    seen = parse(data["probe_output"]) if data.get("probe_output") else None
    reported = data.get("kubelet_user")
    learned = None if data.get("pod_spec") is None else Learned(
        data["pod_spec"], ImageUser(**user) if user else None,
        ImageFiles(seen.passwd, seen.group_file) if seen else None,
        (reported[0], reported[1], reported[2]) if reported else None,
        config_user=data.get("image_config_user"), stats=dict(seen.stats) if seen else {},
        claims={c: ClaimFacts(**f) for c, f in (data.get("claims") or {}).items()} or
        {c: ClaimFacts(k) for c, k in (data.get("storage_kinds") or {}).items()},
        pod_name=data.get("pod_name"), node=data.get("node"))
    results = {r["run"]: r for r in data.get("commands") or []}
    commands = [(c, ExecResult(["sh", "-c", c.run], results[c.run]["stdout"],
                               results[c.run]["stderr"], results[c.run]["returncode"]))
                for c in case.commands if c.run in results]
    return Observed(
        data["status"], learned,
        probe=seen,
        refusal=Refusal(**data["refusal"]) if data.get("refusal") else None,
        crash=Crash(**data["crash"]) if data.get("crash") else None,
        pod_ip=data.get("pod_ip"), host_ip=data.get("host_ip"), commands=commands)
