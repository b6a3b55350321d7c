"""Compare what a container shows with what it must show, field by field.

Every Check names the field, the expected and observed values and why the
value was expected. Nothing here decides to skip: a None expectation is
reported as "not asserted" with its reason, never as a pass.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from . import caps
from .expect import ExpectedProcess
from .observe import Observation

NOT_ENFORCED = "NOT ENFORCED"  # prefix of assertion messages: categories.json keys on it
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
        return (f"{status} {self.field}: expected {_show(self.field, self.expected)}, "
                f"observed {_show(self.field, self.observed)}  ({self.reason})")


def _show(field: str, value: Any) -> str:
    if field.startswith("Cap") and isinstance(value, int):
        return f"{caps.to_hex(value)} [{','.join(caps.decode(value)) or 'none'}]"
    return repr(value)


def process_checks(obs: Observation, exp: ExpectedProcess, overrides: dict) -> list[Check]:
    """Checks of PID 1 (the workload) against the oracle, with case overrides applied."""
    p = obs.pid1
    values = {
        "uid": (exp.uid, p.euid), "gid": (exp.gid, p.egid),
        "groups": (exp.groups, sorted(p.groups)),
        "CapEff": (exp.cap_eff, p.cap_eff), "CapPrm": (exp.cap_prm, p.cap_prm),
        "CapBnd": (exp.cap_bnd, p.cap_bnd), "CapInh": (exp.cap_inh, p.cap_inh),
        "CapAmb": (exp.cap_amb, p.cap_amb),
        "NoNewPrivs": (exp.no_new_privs, p.no_new_privs), "Seccomp": (exp.seccomp, p.seccomp),
        "root read-only": (exp.root_read_only, obs.root_read_only),
    }
    reason_key = {"CapEff": "cap_eff", "CapPrm": "cap_prm", "CapBnd": "cap_bnd",
                  "CapInh": "cap_inh", "CapAmb": "cap_amb", "NoNewPrivs": "no_new_privs",
                  "Seccomp": "seccomp", "root read-only": "root_read_only"}
    override_key = {"uid": "uid", "gid": "gid", "groups": "groups", "CapEff": "cap_eff",
                    "CapBnd": "cap_bnd", "NoNewPrivs": "no_new_privs", "Seccomp": "seccomp",
                    "root read-only": "root_read_only"}
    checks = []
    for name, (expected, observed) in values.items():
        reason = exp.reasons.get(reason_key.get(name, name), "")
        key = override_key.get(name)
        if key in overrides:
            computed = expected
            expected = overrides[key]
            if isinstance(expected, (set, frozenset)):
                expected = caps.encode(expected)
            elif isinstance(expected, bool) and name == "NoNewPrivs":
                expected = int(expected)
            if name == "groups" and expected is not None:
                expected = sorted(expected)
            reason = f"case file pins it (computed: {_show(name, computed)}; {reason})"
        checks.append(Check(name, expected, observed, reason, asserted=expected is not None))
    return checks


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
        return [Check("write to / succeeds (root, writable root)", True, obs.root_write.ok,
                      f"root on a writable root filesystem (observed: "
                      f"{obs.root_write.error or 'ok'})")]
    return []  # a non-root write to a root-owned / fails with EACCES either way: proves nothing


def volume_checks(obs: Observation, expected: dict[str, dict], mount_modes: dict[str, bool],
                  reasons: dict[str, str]) -> list[Check]:
    """Ownership and writability of each mount: expected = {path: {gid, setgid, writable}}."""
    checks = []
    for path, read_only in mount_modes.items():
        want = expected.get(path, {})
        stat = obs.stats.get(path)
        writable = want.get("writable", not read_only)
        result = obs.writes.get(path)
        checks.append(Check(f"{path} writable", writable, bool(result and result.ok),
                            f"readOnly: {read_only} in volumeMounts"
                            + (f" (write error: {result.error})" if result and not result.ok else "")))
        if "gid" in want or path in reasons:
            gid = want.get("gid")
            checks.append(Check(f"{path} group", gid, stat.gid if stat else None,
                                reasons.get(path, "case file pins it"), asserted=gid is not None))
            setgid = want.get("setgid")
            if setgid is not None:
                checks.append(Check(f"{path} setgid bit", setgid, bool(stat and stat.setgid),
                                    reasons.get(path, "case file pins it")))
    return checks


def lsm_check(obs: Observation, pattern: str) -> Check:
    label = obs.lsm_label or ""
    return Check("LSM label (/proc/1/attr/current)", f"matches {pattern}",
                 f"matches {pattern}" if re.fullmatch(pattern, label) else label,
                 "case file pins the label")


def failures(checks: list[Check]) -> list[Check]:
    return [c for c in checks if not c.ok]


def table(checks: list[Check]) -> str:
    return "\n".join(c.line() for c in checks)


TOKEN_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


def pod_level_checks(obs: Observation, pod_spec: dict, pod_ip: str | None,
                     host_ip: str | None) -> list[Check]:
    """hostNetwork and automountServiceAccountToken, seen from the container."""
    checks = []
    if not pod_spec.get("hostNetwork"):
        checks.append(Check("pod IP differs from node IP", True, bool(pod_ip) and pod_ip != host_ip,
                            f"hostNetwork false: the pod has its own network namespace "
                            f"(pod {pod_ip}, node {host_ip})"))
    automount = pod_spec.get("automountServiceAccountToken")
    if automount is not None:
        mounted = any(m.mountpoint == TOKEN_DIR for m in obs.mounts)
        checks.append(Check("service-account token mounted", automount, mounted,
                            f"automountServiceAccountToken: {str(automount).lower()} in pod spec"))
    return checks


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
