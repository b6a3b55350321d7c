"""A process's seccomp filters, evaluated: what the kernel answers to a system call.

The filters come from the kernel (images/escalation/seccomp-filter: ptrace
PTRACE_SECCOMP_GET_FILTER, run beside the container by a privileged hostPID
pod), not from what a runtime says it installed. Each is a classic BPF program
(struct sock_filter) that the kernel runs over struct seccomp_data; with several
filters, every one runs and the action of highest precedence wins
(Documentation/userspace-api/seccomp_filter.rst, kernel/seccomp.c
seccomp_run_filters). `decide` does the same for one system call and its
arguments, so each rule of a profile can be checked against what the kernel
would really do, not only the "Seccomp: 2" line of /proc/<pid>/status.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

# include/uapi/linux/audit.h: the arch field the filters compare first.
AUDIT_ARCH_X86_64 = 0xC000003E
# include/uapi/linux/seccomp.h: SECCOMP_RET_* (the action in the upper 16 bits).
ACTIONS = {0x80000000: "KILL_PROCESS", 0x00000000: "KILL_THREAD", 0x00030000: "TRAP",
           0x00050000: "ERRNO", 0x7FC00000: "USER_NOTIF", 0x7FF00000: "TRACE",
           0x7FFC0000: "LOG", 0x7FFF0000: "ALLOW"}
ACTION_FULL, DATA = 0xFFFF0000, 0x0000FFFF
ERRNO_NAMES = {1: "EPERM", 38: "ENOSYS"}
# arch/x86/entry/syscalls/syscall_64.tbl: the system calls the oracle asks about.
X86_64 = {"read": 0, "write": 1, "close": 3, "mmap": 9, "getpid": 39, "clone": 56,
          "execve": 59, "exit_group": 231, "openat": 257, "mkdir": 83, "mkdirat": 258,
          "ptrace": 101, "chroot": 161, "acct": 163, "mount": 165, "umount2": 166,
          "swapon": 167, "reboot": 169, "sethostname": 170, "iopl": 172, "init_module": 175,
          "delete_module": 176, "clock_settime": 227, "kexec_load": 246, "add_key": 248,
          "request_key": 249, "keyctl": 250, "unshare": 272, "open_by_handle_at": 304,
          "setns": 308, "finit_module": 313, "bpf": 321, "clone3": 435}
CLONE_NEWUSER = 0x10000000
SIGCHLD = 17


class FilterError(ValueError):
    """A program this interpreter cannot run (an opcode seccomp does not allow)."""


@dataclass(frozen=True)
class Call:
    """One system call as the oracle asks it: a name and its first argument."""
    name: str
    arg0: int = 0

    def label(self) -> str:
        if self.name == "clone":
            return "clone(CLONE_NEWUSER)" if self.arg0 & CLONE_NEWUSER else "clone(SIGCHLD)"
        return self.name


@dataclass(frozen=True)
class Answer:
    """What the filters answer: an action name and, for ERRNO, the errno's name."""
    action: str
    errno: str | None = None

    def __str__(self) -> str:
        return f"{self.action}({self.errno})" if self.errno else self.action


ALLOW = Answer("ALLOW")


def eperm() -> Answer:
    return Answer("ERRNO", "EPERM")


def parse_filters(stdout: str) -> list[bytes] | None:
    """seccomp-filter's output -> the filters, most recent first ([] for none); None when
    it reported an error (its error line is in the output)."""
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    if any(line.startswith("error=") for line in lines) or not lines:
        return None
    if lines == ["filters=none"]:
        return []
    filters = []
    for line in lines:
        index, _, program = line.removeprefix("filter=").partition(" ")
        if not line.startswith("filter=") or int(index) != len(filters):
            raise FilterError(f"unexpected seccomp-filter line: {line!r}")
        filters.append(bytes.fromhex(program))
    return filters


def _data(nr: int, arch: int, args: tuple[int, ...]) -> bytes:
    # struct seccomp_data {int nr; __u32 arch; __u64 instruction_pointer; __u64 args[6];}
    return struct.pack("<iIQ6Q", nr, arch, 0, *(list(args) + [0] * 6)[:6])


def run(program: bytes, data: bytes) -> int:
    """The 32-bit value one classic BPF program returns over `data`. Only what seccomp
    admits (kernel/seccomp.c seccomp_check_filter): absolute 32-bit loads of seccomp_data,
    the scratch memory, ALU, jumps, returns."""
    if len(program) % 8:
        raise FilterError(f"a filter of {len(program)} bytes is not whole instructions")
    insns = [struct.unpack("<HBBI", program[i:i + 8]) for i in range(0, len(program), 8)]
    a = x = 0
    mem = [0] * 16
    pc = 0
    mask = 0xFFFFFFFF
    while pc < len(insns):
        code, jt, jf, k = insns[pc]
        pc += 1
        cls = code & 0x07
        if cls == 0x00:  # LD
            a = _load(code, k, data, mem)
        elif cls == 0x01:  # LDX
            mode = code & 0xE0
            x = k if mode == 0x00 else mem[k] if mode == 0x60 else len(data) if mode == 0x80 \
                else _bad(code)
        elif cls == 0x02:  # ST
            mem[k] = a
        elif cls == 0x03:  # STX
            mem[k] = x
        elif cls == 0x04:  # ALU
            a = _alu(code, a, x if code & 0x08 else k) & mask
        elif cls == 0x05:  # JMP
            op = code & 0xF0
            if op == 0x00:  # BPF_JA
                pc += k
                continue
            operand = x if code & 0x08 else k
            taken = {0x10: a == operand, 0x20: a > operand, 0x30: a >= operand,
                     0x40: bool(a & operand)}.get(op)
            if taken is None:
                _bad(code)
            pc += jt if taken else jf
        elif cls == 0x06:  # RET
            return (a if code & 0x18 == 0x10 else k) & mask
        elif cls == 0x07:  # MISC: TAX, TXA
            if code & 0xF8 == 0x00:
                x = a
            else:
                a = x
    raise FilterError("the program ran past its end without returning")


def _load(code: int, k: int, data: bytes, mem: list[int]) -> int:
    """BPF_LD: what the accumulator gets."""
    mode = code & 0xE0
    if mode == 0x20 and code & 0x18 == 0x00:  # BPF_ABS | BPF_W
        if k % 4 or k + 4 > len(data):
            raise FilterError(f"load outside seccomp_data at {k}")
        return struct.unpack_from("<I", data, k)[0]
    if mode == 0x00:  # BPF_IMM
        return k
    if mode == 0x60:  # BPF_MEM
        return mem[k]
    if mode == 0x80:  # BPF_LEN
        return len(data)
    raise FilterError(f"load opcode {code:#x}")


def _alu(code: int, a: int, operand: int) -> int:
    """BPF_ALU: the accumulator after the operation (not yet cut to 32 bits)."""
    return {0x00: lambda: a + operand, 0x10: lambda: a - operand,
            0x20: lambda: a * operand, 0x30: lambda: a // operand if operand else _bad(code),
            0x40: lambda: a | operand, 0x50: lambda: a & operand,
            0x60: lambda: a << operand if operand < 32 else 0,
            0x70: lambda: a >> operand if operand < 32 else 0, 0x80: lambda: -a,
            0x90: lambda: a % operand if operand else _bad(code),
            0xA0: lambda: a ^ operand}.get(code & 0xF0, lambda: _bad(code))()


def _bad(code: int) -> int:
    raise FilterError(f"opcode {code:#x} is not one seccomp allows")


def _precedence(value: int) -> int:
    # kernel/seccomp.c seccomp_run_filters keeps the lowest ACTION_ONLY value as a signed
    # 32-bit number: KILL_PROCESS (0x80000000) first, ALLOW last.
    action = value & ACTION_FULL
    return action - (1 << 32) if action & 0x80000000 else action


def decide(filters: list[bytes], call: Call, arch: int = AUDIT_ARCH_X86_64) -> Answer:
    """What the kernel does with `call` under `filters` (x86_64 numbers)."""
    if not filters:
        return ALLOW
    data = _data(X86_64[call.name], arch, (call.arg0,))
    value = min((run(f, data) for f in filters), key=_precedence)
    action = ACTIONS.get(value & ACTION_FULL, f"{value & ACTION_FULL:#x}")
    if action == "ERRNO":
        errno = value & DATA
        return Answer(action, ERRNO_NAMES.get(errno, str(errno)))
    return Answer(action)


# --- what a profile promises --------------------------------------------------------------

# The calls asked of every filter: a few every workload needs, and those containerd's
# default profile allows only with a capability in the bounding set.
BASE_CALLS = (Call("read"), Call("write"), Call("openat"), Call("execve"), Call("exit_group"),
              Call("clone", SIGCHLD))
# containerd contrib/seccomp/seccomp_default.go DefaultProfile: allowed only when the
# container's bounding set (sp.Process.Capabilities.Bounding) holds the capability; else
# the default action, SCMP_ACT_ERRNO, which runc and crun turn into EPERM. clone with a
# CLONE_NEW* flag and clone3 are gated on CAP_SYS_ADMIN too; clone3 then gets ENOSYS.
GATED = {"SYS_ADMIN": ("unshare", "mount", "umount2", "setns", "sethostname"),
         "SYS_BOOT": ("reboot",), "SYS_MODULE": ("init_module", "finit_module", "delete_module"),
         "SYS_TIME": ("clock_settime",), "SYS_PACCT": ("acct",), "SYS_RAWIO": ("iopl",),
         "SYS_CHROOT": ("chroot",), "DAC_READ_SEARCH": ("open_by_handle_at",)}
# Not in its allowlist at all: refused whatever the capabilities.
NEVER = ("keyctl", "add_key", "request_key", "kexec_load", "swapon")


def runtime_default(bounding: list[str]) -> dict[Call, tuple[Answer, str]]:
    """containerd's RuntimeDefault for a container whose bounding set is `bounding`
    (capability names without CAP_): each call's answer and why."""
    source = "containerd's default profile (contrib/seccomp/seccomp_default.go DefaultProfile)"
    wants: dict[Call, tuple[Answer, str]] = {
        call: (ALLOW, f"{source} allows {call.label()}") for call in BASE_CALLS}
    for cap, names in GATED.items():
        held = cap in bounding
        for name in names:
            wants[Call(name)] = (ALLOW, f"{source}: CAP_{cap} is in the bounding set") if held \
                else (eperm(), f"{source} allows it only with CAP_{cap} in the bounding set, "
                               "which lacks it: the default action, EPERM")
    for name in NEVER:
        wants[Call(name)] = (eperm(), f"{source} never allows it: the default action, EPERM")
    admin = "SYS_ADMIN" in bounding
    wants[Call("clone", CLONE_NEWUSER)] = (ALLOW, f"{source}: CAP_SYS_ADMIN allows clone") \
        if admin else (eperm(), f"{source} allows clone only without CLONE_NEW* flags "
                                "(CAP_SYS_ADMIN is not in the bounding set)")
    wants[Call("clone3")] = (ALLOW, f"{source}: CAP_SYS_ADMIN allows clone3") if admin else \
        (Answer("ERRNO", "ENOSYS"), f"{source} answers clone3 with ENOSYS without CAP_SYS_ADMIN")
    return wants


# OCI/Docker profile actions (a Localhost profile's JSON) -> the kernel's action name.
PROFILE_ACTIONS = {"SCMP_ACT_ALLOW": "ALLOW", "SCMP_ACT_ERRNO": "ERRNO", "SCMP_ACT_LOG": "LOG",
                   "SCMP_ACT_KILL": "KILL_THREAD", "SCMP_ACT_KILL_THREAD": "KILL_THREAD",
                   "SCMP_ACT_KILL_PROCESS": "KILL_PROCESS", "SCMP_ACT_TRAP": "TRAP",
                   "SCMP_ACT_TRACE": "TRACE", "SCMP_ACT_NOTIFY": "USER_NOTIF"}


def _profile_answer(action: str, errno_ret: int | None, default_errno: int | None) -> Answer:
    name = PROFILE_ACTIONS.get(action)
    if name is None:
        raise ValueError(f"unknown seccomp action {action!r}")
    if name != "ERRNO":
        return Answer(name)
    errno = errno_ret if errno_ret is not None else default_errno if default_errno is not None else 1
    return Answer("ERRNO", ERRNO_NAMES.get(errno, str(errno)))


def localhost(profile: dict, calls: tuple[Call, ...] = BASE_CALLS + tuple(Call(n) for n in ("unshare", "mount",
                                                                         "mkdir", "mkdirat",
                                                                         "keyctl"))
              ) -> dict[Call, tuple[Answer, str]]:
    """What a Localhost profile (its JSON, as the kubelet hands it to the runtime) promises
    for `calls`: the action of the rule that names the call (rules with argument
    conditions or capability includes/excludes are left out: their answer depends on more
    than the name), else the default action. ERRNO without errnoRet is EPERM (runc and
    crun: SCMP_ACT_ERRNO(EPERM), or defaultErrnoRet)."""
    default = _profile_answer(profile["defaultAction"], None, profile.get("defaultErrnoRet"))
    wants = {}
    for call in calls:
        rules = [r for r in profile.get("syscalls") or [] if call.name in (r.get("names") or [])
                 or r.get("name") == call.name]
        if any(r.get("args") or r.get("includes") or r.get("excludes") for r in rules):
            continue
        if rules:
            rule = rules[0]
            answer = _profile_answer(rule["action"], rule.get("errnoRet"),
                                     profile.get("defaultErrnoRet"))
            wants[call] = (answer, f"the profile's rule for {call.name}: {rule['action']}")
        else:
            wants[call] = (default, f"no rule names {call.name}: the profile's default action "
                                    f"{profile['defaultAction']}")
    return wants
