"""secctx.observe.seccomp: the kernel's filters, run over the calls a profile decides.

The recorded filters are what the kernel held for containers on the offline v1.37.2
cluster (suites/test_seccomp_filter.py); each must answer as its profile says, and the
runc-liar's unshare-only filter, which the `unshare -U` check and `Seccomp: 2` let pass,
must not.
"""
from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from secctx.core import caps
from secctx.observe import seccomp
from secctx.observe.seccomp import Answer, Call

RECORDED = json.loads((Path(__file__).parent / "recorded" /
                       "v1.37.2-offline-seccomp-filters.json").read_text())["filters"]
PROFILE = json.loads((Path(__file__).parents[2] / "fixtures" / "manifests" /
                      "allowlist-probe-profile.json").read_text())
# What containerd gives a container without capabilities in its spec (runtime_default_caps).
DEFAULT_BOUNDING = caps.decode(0xa80425fb)


def filters(subject: str) -> list[bytes]:
    return seccomp.parse_filters(RECORDED[subject])


def wrong(found: list[bytes], wants: dict) -> dict[str, tuple[str, str]]:
    """{call: (expected, answered)} where the filters do not answer as promised."""
    return {call.label(): (str(want), str(seccomp.decide(found, call)))
            for call, (want, _) in wants.items() if seccomp.decide(found, call) != want}


@pytest.mark.parametrize("subject, bounding", [
    ("RuntimeDefault, uid 1000", DEFAULT_BOUNDING),
    ("RuntimeDefault, root with SYS_ADMIN added", DEFAULT_BOUNDING + ["SYS_ADMIN"])])
def test_containerds_default_filter_answers_as_its_profile_says(subject, bounding):
    assert wrong(filters(subject), seccomp.runtime_default(bounding)) == {}


def test_the_sys_admin_gate_is_seen_in_the_filter_not_assumed():
    # The filter for a container without CAP_SYS_ADMIN refuses mount and unshare; judged
    # as if it had SYS_ADMIN, it is wrong on exactly the gated calls.
    found = wrong(filters("RuntimeDefault, uid 1000"),
                  seccomp.runtime_default(DEFAULT_BOUNDING + ["SYS_ADMIN"]))
    assert set(found) == {"unshare", "mount", "umount2", "setns", "sethostname",
                          "clone(CLONE_NEWUSER)", "clone3"}
    assert found["clone3"] == ("ALLOW", "ERRNO(ENOSYS)")


def test_a_localhost_profile_is_checked_rule_by_rule():
    wants = seccomp.localhost(PROFILE)
    assert wants[Call("mkdirat")][0] == seccomp.eperm() and wants[Call("unshare")][0] == seccomp.ALLOW
    assert wrong(filters("Localhost allow-list profile"), wants) == {}
    # The RuntimeDefault filter is not this profile: mkdir allowed there, keyctl refused.
    assert {"mkdir", "mkdirat", "keyctl", "unshare"} <= set(
        wrong(filters("RuntimeDefault, uid 1000"), wants))


def test_a_filter_that_refuses_only_unshare_fails_though_unshare_is_refused():
    lie = filters("unshare-only lie (runc-liar), RuntimeDefault, uid 1000")
    assert seccomp.decide(lie, Call("unshare")) == seccomp.eperm()  # the old witness passes
    found = wrong(lie, seccomp.runtime_default(DEFAULT_BOUNDING))
    assert "unshare" not in found
    assert found["mount"] == ("ERRNO(EPERM)", "ALLOW") and found["keyctl"] == ("ERRNO(EPERM)", "ALLOW")
    assert found["clone3"] == ("ERRNO(ENOSYS)", "ALLOW")


def insn(code: int, k: int = 0, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("<HBBI", code, jt, jf, k)


LD_NR, LD_ARCH, LD_ARG0 = insn(0x20, 0), insn(0x20, 4), insn(0x20, 16)
RET_ALLOW, RET_KILL = insn(0x06, 0x7FFF0000), insn(0x06, 0x80000000)


def errno(n: int) -> bytes:
    return insn(0x06, 0x00050000 | n)


def test_arch_syscall_number_and_argument_bits_decide():
    program = b"".join([
        LD_ARCH, insn(0x15, seccomp.AUDIT_ARCH_X86_64, 1, 0), RET_KILL,  # other arch: kill
        LD_NR, insn(0x15, seccomp.X86_64["clone"], 0, 3),
        LD_ARG0, insn(0x45, seccomp.CLONE_NEWUSER, 0, 1), errno(1),      # JSET CLONE_NEWUSER
        RET_ALLOW])
    assert seccomp.decide([program], Call("clone", seccomp.CLONE_NEWUSER)) == seccomp.eperm()
    assert seccomp.decide([program], Call("clone", seccomp.SIGCHLD)) == seccomp.ALLOW
    assert seccomp.decide([program], Call("read")) == seccomp.ALLOW
    assert seccomp.decide([program], Call("read"), arch=0x40000003) == Answer("KILL_PROCESS")


def test_of_several_filters_the_strictest_action_wins():
    allow, deny, kill = RET_ALLOW, errno(38), RET_KILL
    assert seccomp.decide([allow, deny], Call("read")) == Answer("ERRNO", "ENOSYS")
    assert seccomp.decide([deny, kill, allow], Call("read")) == Answer("KILL_PROCESS")
    assert seccomp.decide([], Call("read")) == seccomp.ALLOW


def test_a_program_seccomp_would_not_load_is_an_error_not_a_verdict():
    with pytest.raises(seccomp.FilterError, match="opcode"):
        seccomp.run(insn(0x30, 0) + RET_ALLOW, b"\0" * 64)  # BPF_LD|BPF_B|BPF_IND
    with pytest.raises(seccomp.FilterError, match="past its end"):
        seccomp.run(LD_NR, b"\0" * 64)


def test_seccomp_filter_output_none_error_and_filters():
    assert seccomp.parse_filters("filters=none\n") == []
    assert seccomp.parse_filters("error=PTRACE_SEIZE: operation not permitted\n") is None
    assert seccomp.parse_filters("filter=0 0600000000007fff\nfilter=1 0600000000000500\n") == [
        bytes.fromhex("0600000000007fff"), bytes.fromhex("0600000000000500")]
    with pytest.raises(seccomp.FilterError):
        seccomp.parse_filters("filter=1 06000000\n")
