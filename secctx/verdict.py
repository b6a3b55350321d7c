"""Judge one case: compare what it must show with what it showed, field by field.

`compare(expected, observed)` is pure: every Check names the field, the
expected and observed values and why the value was expected. Nothing here
decides to skip: a None expectation is reported as "not asserted" with its
reason, never as a pass. `assert_holds` turns the checks into the test's
outcome.
"""
from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

from .cases import Status
from .core.categories import NOT_ENFORCED, OTHERS_HOLD, cannot_enforce, not_enforced
from .oracle.expect import EVERY_FILE, TOKEN_DIR, classify_id_map, show

if TYPE_CHECKING:
    from .observe import Observation, Observed
    from .oracle.expect import Expected, ExpectedMount, ExpectedProcPaths, Want

__all__ = ["NOT_ENFORCED", "Check", "compare", "assert_holds", "fail", "failures", "require", "table"]
READ_ONLY_ERROR = "Read-only file system"


@dataclass(frozen=True)
class Check:
    field: str
    expected: Any
    observed: Any
    reason: str
    asserted: bool = True

    @property
    def ok(self) -> bool:
        return not self.asserted or self.expected == self.observed

    def line(self) -> str:
        status = "ok  " if self.ok and self.asserted else ("--  " if not self.asserted else "FAIL")
        return (f"{status} {self.field}: expected {show(self.field, self.expected)}, "
                f"observed {show(self.field, self.observed)}  ({self.reason})")


# Check field -> the observed value it is compared with (None: cannot be observed here).
def unshare_refused(ok: bool, error: str) -> bool:
    """unshare(CLONE_NEWUSER) failed as a seccomp filter makes it fail: EPERM (containerd's
    default profile, a Localhost profile's SCMP_ACT_ERRNO) or ENOSYS (CRI-O's default
    profile: containers/common pkg/seccomp default_linux.go, DefaultErrnoRet ENOSYS for a
    syscall it does not list). Any other failure is not the filter's."""
    text = error.lower()
    return not ok and ("not permitted" in text or "not implemented" in text)


DAC_OVERRIDE_BIT = 1  # CAP_DAC_OVERRIDE


OBSERVED = {
    "uid": lambda o: o.pid1.uid, "gid": lambda o: o.pid1.gid,  # real, effective, saved, fs
    "groups": lambda o: sorted(o.pid1.groups),
    "CapEff": lambda o: o.pid1.cap_eff, "CapPrm": lambda o: o.pid1.cap_prm,
    "CapBnd": lambda o: o.pid1.cap_bnd, "CapInh": lambda o: o.pid1.cap_inh,
    "CapAmb": lambda o: o.pid1.cap_amb, "NoNewPrivs": lambda o: o.pid1.no_new_privs,
    "Seccomp": lambda o: o.pid1.seccomp, "root read-only": lambda o: o.root_read_only,
    "Seccomp_filters": lambda o: None if o.pid1.seccomp_filters is None else
    "none" if o.pid1.seccomp_filters == 0 else "at least 1",
    "unshare(CLONE_NEWUSER) refused": lambda o: None if o.unshare_user is None else
    unshare_refused(o.unshare_user.ok, o.unshare_user.error),
    "uid_map": lambda o: None if o.uid_map is None else classify_id_map(o.uid_map),
    "gid_map": lambda o: None if o.gid_map is None else classify_id_map(o.gid_map),
}
# Why a check's observation may be missing.
UNOBSERVABLE = {"Seccomp_filters": "the kernel prints no Seccomp_filters line",
                "unshare(CLONE_NEWUSER) refused": "the image has no unshare command",
                "uid_map": "the probe did not read uid_map (an older recording)",
                "gid_map": "the probe did not read gid_map (an older recording)"}
ID_MAPS = ("uid_map", "gid_map")  # their reason shows the map as read
FOUR_IDS = ("uid", "gid")  # compared as real, effective, saved and filesystem ids


def _process_check(name: str, want, obs) -> Check:
    seen = OBSERVED[name](obs)
    if seen is None:
        return Check(name, want.value, None, f"{want.reason}; not observable: {UNOBSERVABLE[name]}",
                     asserted=False)
    if name in FOUR_IDS and want.asserted:
        return Check(name, (want.value,) * 4, seen, f"{want.reason} (real, effective, saved, fs)")
    if name in ID_MAPS:
        entries = getattr(obs, name)
        return Check(name, want.value, seen, f"{want.reason} (read: "
                     f"{'; '.join(' '.join(map(str, e)) for e in entries)})", asserted=want.asserted)
    return Check(name, want.value, seen, want.reason, asserted=want.asserted)


def compare(expected: Expected, observed: Observed) -> list[Check]:
    """Every check of one case: its outcome, then what that outcome lets us see."""
    want = expected.outcome
    checks = [Check("outcome", want.status, observed.status,
                    "what Kubernetes promises for this spec on this node")]
    if observed.status != want.status:
        return checks
    if want.status == Status.REJECTED:
        return checks + _refusal_checks(want, observed)
    if want.status == Status.INVALID:
        return checks + _contains("API server's answer", want.message, observed.refusal.message,
                                  "the case names what the API server must say")
    if want.status == Status.CRASHING:
        return (checks + _crash_checks(want, observed) + _reported_user(expected, observed)
                + _twin_checks(expected, observed))
    obs = observed.probe
    checks += [_process_check(name, w, obs) for name, w in expected.process.items()]
    checks += _reported_user(expected, observed)
    checks += main_process_check(obs)
    checks += exec_agrees_with_pid1(obs)
    checks += root_write_check(obs, expected.process["root read-only"].value,
                               expected.process["uid"].value)
    for mount in expected.mounts:
        checks += mount_checks(obs, mount)
    checks += _pod_checks(expected, observed)
    if expected.proc_paths is not None:
        checks += proc_path_checks(obs, expected.proc_paths)
    checks += command_checks(observed.commands)
    if expected.lsm_label:
        checks.append(lsm_check(obs, expected.lsm_label, expected.lsm_reason))
    return checks


def _contains(field: str, needle: str | None, text: str, why: str) -> list[Check]:
    """Case-insensitive: runtimes spell one errno differently (runc, in Go: "operation not
    permitted"; crun, with strerror: "Operation not permitted")."""
    if not needle:
        return []
    want = f"contains {needle!r}"
    return [Check(field, want, want if needle.casefold() in text.casefold() else text, why)]


def _refusal_checks(want, observed: Observed) -> list[Check]:
    refusal = observed.refusal
    return (_contains("refusal reason", want.reason, refusal.reason,
                      "the case names the reason the kubelet gives")
            + _contains("refusal message", want.message, refusal.message,
                        "the case names what the message must say"))


def _crash_checks(want, observed: Observed) -> list[Check]:
    crash = observed.crash
    return (_contains("exit reason", want.reason, crash.reason,
                      "the container's last terminated state")
            + _contains("exit message", want.message, crash.message,
                        "the container's last terminated state")
            + _contains("container log", want.logs, crash.logs,
                        "the process's own output before it exited"))


TWIN = "twin: "  # checks of a crashing container's twin (same spec, a sleeper command)


def _twin_checks(expected: Expected, observed: Observed) -> list[Check]:
    if observed.probe is None:
        return [Check(f"{TWIN}process", "observed", None, "the twin of the crashing container "
                      "did not run (no shell in the image?): its process is not observed",
                      asserted=False)]
    return [Check(TWIN + c.field, c.expected, c.observed, c.reason, c.asserted)
            for c in (main_process_check(observed.probe)
                      + [_process_check(name, w, observed.probe)
                         for name, w in expected.process.items()])]


def _reported_user(expected: Expected, observed: Observed) -> list[Check]:
    want = expected.reported_user
    if want is None:
        return []
    reported = observed.learned.kubelet_user if observed.learned else None
    return [Check("kubelet-reported user (uid, gid, groups)", want.value,
                  None if reported is None else (reported[0], reported[1], list(reported[2])),
                  want.reason, asserted=want.asserted and reported is not None)]


def main_process_check(obs: Observation) -> list[Check]:
    """The process every PID 1 check reads is the workload's, not the probe's own shell, one
    of its ancestors or a process started after the exec (observe.not_the_probe): a runtime
    that put the exec in other cgroups (crun did) would have the probe observe itself."""
    seen = obs.main_pid_check
    if seen is None:
        return [Check("main process is the workload's", True, None,
                      "an older probe did not check it", asserted=False)]
    return [Check("main process is the workload's", True, seen.ok,
                  f"found by its cgroups, the oldest process there: {seen.error}")]


def exec_agrees_with_pid1(obs: Observation) -> list[Check]:
    """`id` in an exec'd process sees the runtime's stored spec; PID 1 is the workload."""
    why = "an exec'd process gets its credentials from the same runtime spec as PID 1"
    return [Check("id uid (exec) = PID 1 uid", obs.pid1.euid, obs.id_uid, why),
            Check("id gid (exec) = PID 1 gid", obs.pid1.egid, obs.id_gid, why),
            Check("id -G (exec) = PID 1 Groups", sorted(obs.pid1.groups), sorted(obs.id_G), why)]


def root_write_check(obs: Observation, root_read_only: bool, uid: int | None) -> list[Check]:
    if root_read_only:
        return [Check("write to / fails with EROFS", True,
                      not obs.root_write.ok and READ_ONLY_ERROR in obs.root_write.error,
                      f"readOnlyRootFilesystem: the write must fail with '{READ_ONLY_ERROR}' "
                      f"(observed: {obs.root_write.error or 'write succeeded'})")]
    if uid == 0:
        # Root passes the permission check with CAP_DAC_OVERRIDE, or through /'s owner
        # write bit when it owns / (a store may make a layer's root 0555: containers/storage
        # drivers/overlay defaultPerms). Either way the write must not fail as read-only.
        root = obs.stats.get("/")
        dac = bool(obs.pid1.cap_eff >> DAC_OVERRIDE_BIT & 1)
        may = dac or root is None or (root.uid == 0 and root.mode & 0o200)
        if may:
            return [Check("write to / succeeds (root, writable root)", True, obs.root_write.ok,
                          f"root on a writable root filesystem (observed: "
                          f"{obs.root_write.error or 'ok'})")]
        return [Check("write to / refused by permissions, not as read-only (root without "
                      "CAP_DAC_OVERRIDE, / not owner-writable)", True,
                      not obs.root_write.ok and "permission denied" in obs.root_write.error.lower(),
                      f"/ is {root.mode:o} owned by {root.uid}, and root lacks CAP_DAC_OVERRIDE: "
                      f"the write fails with EACCES, never EROFS (observed: "
                      f"{obs.root_write.error or 'write succeeded'})")]
    return []  # a non-root write to a root-owned / fails with EACCES either way: proves nothing


def mount_checks(obs: Observation, mount: ExpectedMount) -> list[Check]:
    """Writability and ownership of one mount."""
    path, stat, result = mount.path, obs.stats.get(mount.path), obs.writes.get(mount.path)
    mounted = obs.mount_at(path)
    checks = [Check(f"{path} writable", mount.writable.value, bool(result and result.ok),
                    mount.writable.reason
                    + (f" (write error: {result.error})" if result and not result.ok else "")),
              Check(f"{path} mounted read-only", mount.mounted_ro.value,
                    mounted.read_only if mounted else None,
                    f"{mount.mounted_ro.reason} (the mount's own flags: "
                    f"{','.join(mounted.options[:4]) if mounted else 'no mount at this path'})")]
    if mount.owner is not None:
        checks.append(Check(f"{path} owner", mount.owner.value, stat.uid if stat else None,
                            mount.owner.reason, asserted=mount.owner.asserted))
    checks.append(Check(f"{path} group", mount.group.value, stat.gid if stat else None,
                        mount.group.reason, asserted=mount.group.asserted))
    if mount.mode is not None:
        checks.append(Check(f"{path} mode", None if mount.mode.value is None else
                            f"{mount.mode.value:o}", f"{stat.mode:o}" if stat else None,
                            mount.mode.reason, asserted=mount.mode.asserted))
    if mount.setgid is not None:
        checks.append(Check(f"{path} setgid bit", mount.setgid.value, bool(stat and stat.setgid),
                            mount.setgid.reason))
    if mount.submounts_ro is not None:
        checks.append(submounts_check(obs, path, mount.submounts_ro))
    if mount.files is not None and obs.file_stats is not None:  # None: an older probe
        checks.extend(file_mode_checks(obs.file_stats, path, mount.files))
    new_file = obs.stat_of_new_file(path)
    if mount.setgid and mount.setgid.value and mount.group.asserted and new_file:
        checks.append(Check(f"{path} new file's group", mount.group.value, new_file.gid,
                            "the setgid bit makes a new file inherit the directory's group"))
    return checks


def file_mode_checks(file_stats: dict, path: str, files: dict) -> list[Check]:
    """The mode of each file the kubelet wrote in the volume at `path`: each one named,
    and each other regular file found where every file gets the same mode."""
    found = {p.rpartition("/")[2]: st for p, st in file_stats.items()
             if p.rpartition("/")[0] == path.rstrip("/")}
    checks = [Check(f"{path}/{name} mode", None if want.value is None else f"{want.value:o}",
                    f"{found[name].mode:o}" if name in found else None, want.reason,
                    asserted=want.asserted)
              for name, want in files.items() if name != EVERY_FILE]
    every = files.get(EVERY_FILE)
    if every is not None:
        checks += [Check(f"{path}/{name} mode", f"{every.value:o}", f"{st.mode:o}", every.reason)
                   for name, st in sorted(found.items())
                   if name not in files and not st.mode_text.startswith("d")]
    return checks


def submounts_check(obs: Observation, path: str, want: Want) -> Check:
    """Every mount below `path` read-only: the writable ones are listed."""
    below = [m for m in obs.mounts if m.mountpoint.startswith(path.rstrip("/") + "/")]
    writable = sorted(m.mountpoint for m in below if not m.read_only)
    if not below:
        return Check(f"{path} submounts read-only", [], None, f"{want.reason}; no mount below "
                     f"{path} here: nothing to show", asserted=False)
    return Check(f"{path} submounts read-only (writable ones)", [] if want.asserted else None,
                 writable, f"{want.reason} ({len(below)} mounts below it)",
                 asserted=want.asserted)


# The filesystems /proc and /sys paths belong to: a mount of one of them on the path is a
# read-only bind of the real thing; any other (runc's read-only tmpfs on a directory, a
# bind of /dev/null on a file) hides it.
PROC_FILESYSTEMS = ("proc", "sysfs")


def proc_path_checks(obs: Observation, want: ExpectedProcPaths) -> list[Check]:
    """procMount: which of the paths this container has are masked and which read-only,
    each on a mount of its own (a read-only /proc or /sys as a whole shows no mask)."""
    if obs.proc_paths is None:  # an older probe
        return []
    known = [p for p in sorted(set(obs.proc_paths))
             if not any(fnmatch.fnmatchcase(p, u) for u in want.unknown)]
    own = {p: obs.mount_at(p) for p in known}
    seen = {"masked": [p for p in known if own[p] and own[p].fstype not in PROC_FILESYSTEMS],
            "read-only": [p for p in known if own[p] and own[p].fstype in PROC_FILESYSTEMS
                          and own[p].read_only]}
    checks = []
    for name, w in (("masked", want.masked), ("read-only", want.read_only)):
        expected = None if w.value is None else \
            [p for p in known if any(fnmatch.fnmatchcase(p, pattern) for pattern in w.value)]
        checks.append(Check(f"{name} /proc and /sys paths", expected, seen[name],
                            f"{w.reason} (of those this kernel has: {', '.join(known) or 'none'})",
                            asserted=w.asserted))
    return checks


def _pod_checks(expected: Expected, observed: Observed) -> list[Check]:
    checks = []
    for name, want in expected.pod.items():
        if name == "pod IP differs from node IP":
            seen = bool(observed.pod_ip) and observed.pod_ip != observed.host_ip
            reason = f"{want.reason} (pod {observed.pod_ip}, node {observed.host_ip})"
        else:
            seen = any(m.mountpoint == TOKEN_DIR for m in observed.probe.mounts)
            reason = want.reason
        checks.append(Check(name, want.value, seen, reason))
    return checks


def lsm_check(obs: Observation, pattern: str, reason: str = "case file pins the label") -> Check:
    # Stacked-LSM kernels show AppArmor's label in its own file.
    label = obs.apparmor_label or obs.lsm_label or ""
    return Check("LSM label (/proc/1/attr/current)", f"matches {pattern}",
                 f"matches {pattern}" if re.fullmatch(pattern, label) else label, reason)


def command_checks(results: list[tuple]) -> list[Check]:
    """(Command, ExecResult) pairs of a case's `commands` -> checks."""
    checks = []
    for command, result in results:
        out = result.stdout + result.stderr
        checks.append(Check(f"`{command.run}` exit code", command.exit, result.returncode,
                            command.why or "case file"))
        if command.output is not None:
            checks.append(Check(f"`{command.run}` output contains {command.output!r}", True,
                                command.output in out, f"output was: {out.strip()[:200]!r}"))
    return checks


def failures(checks: list[Check]) -> list[Check]:
    return [c for c in checks if not c.ok]


def table(checks: list[Check]) -> str:
    return "\n".join(c.line() for c in checks)


def fail(message: str) -> NoReturn:
    """Fail the test with the verdict alone: the message is the whole failure text in
    the report and the terminal, with no Python traceback (whose frames print the
    objects passed around) and no assertion introspection."""
    pytest.fail(message, pytrace=False)


def require(condition: object, message: str) -> None:
    """`assert condition, message` for a verdict: fails through `fail`."""
    if not condition:
        fail(message)


def assert_holds(expected: Expected, checks: list[Check]) -> None:
    """Fail with the differing checks first; skip, with the precise reason, what the node
    cannot enforce once everything else has been checked and holds."""
    bad = failures(checks)
    if bad:
        fail(not_enforced(f"{len(bad)} of {len(checks)} checks differ:\n" + table(bad)))
    if expected.cannot_enforce:
        pytest.skip(cannot_enforce(f"{expected.cannot_enforce}; {OTHERS_HOLD}"))
