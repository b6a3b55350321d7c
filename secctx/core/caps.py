"""Linux capability sets: names by bit number, and conversions to and from masks.

Masks are plain ints. /proc/<pid>/status shows them as 16 hex digits
(CapEff:	00000000a80425fb); `decode` reads that form and `to_hex` writes it.
Names follow Kubernetes: no CAP_ prefix ("NET_RAW", not "CAP_NET_RAW").
"""
from __future__ import annotations

from collections.abc import Iterable

# Index = bit number, as in include/uapi/linux/capability.h.
CAPABILITIES: tuple[str, ...] = (
    "CHOWN",               # 0
    "DAC_OVERRIDE",        # 1
    "DAC_READ_SEARCH",     # 2
    "FOWNER",              # 3
    "FSETID",              # 4
    "KILL",                # 5
    "SETGID",              # 6
    "SETUID",              # 7
    "SETPCAP",             # 8
    "LINUX_IMMUTABLE",     # 9
    "NET_BIND_SERVICE",    # 10
    "NET_BROADCAST",       # 11
    "NET_ADMIN",           # 12
    "NET_RAW",             # 13
    "IPC_LOCK",            # 14
    "IPC_OWNER",           # 15
    "SYS_MODULE",          # 16
    "SYS_RAWIO",           # 17
    "SYS_CHROOT",          # 18
    "SYS_PTRACE",          # 19
    "SYS_PACCT",           # 20
    "SYS_ADMIN",           # 21
    "SYS_BOOT",            # 22
    "SYS_NICE",            # 23
    "SYS_RESOURCE",        # 24
    "SYS_TIME",            # 25
    "SYS_TTY_CONFIG",      # 26
    "MKNOD",               # 27
    "LEASE",               # 28
    "AUDIT_WRITE",         # 29
    "AUDIT_CONTROL",       # 30
    "SETFCAP",             # 31
    "MAC_OVERRIDE",        # 32
    "MAC_ADMIN",           # 33
    "SYSLOG",              # 34
    "WAKE_ALARM",          # 35
    "BLOCK_SUSPEND",       # 36
    "AUDIT_READ",          # 37
    "PERFMON",             # 38
    "BPF",                 # 39
    "CHECKPOINT_RESTORE",  # 40
)

_BIT_BY_NAME = {name: bit for bit, name in enumerate(CAPABILITIES)}

# Every capability this module knows (bits 0..40): what a privileged container
# gets on a host whose bounding set is complete.
ALL_CAPS: int = (1 << len(CAPABILITIES)) - 1

# The set containerd's CRI plugin gives an unprivileged container when the pod
# spec says nothing about capabilities (same list as Docker's default).
RUNTIME_DEFAULT: int = 0x00000000A80425FB
RUNTIME_DEFAULT_NAMES: tuple[str, ...] = (
    "CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID",
    "SETUID", "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL",
    "AUDIT_WRITE",
)


def _as_mask(mask: int | str) -> int:
    """An int mask from an int or a hex string as /proc shows it ("0x" optional)."""
    if isinstance(mask, bool):  # bool is an int subclass; True is never a mask
        raise TypeError("capability mask must be an int or a hex string, not bool")
    if isinstance(mask, int):
        value = mask
    elif isinstance(mask, str):
        try:
            value = int(mask.strip(), 16)
        except ValueError:
            raise ValueError(f"not a hex capability mask: {mask!r}") from None
    else:
        raise TypeError(f"capability mask must be an int or a hex string, not {type(mask).__name__}")
    if value < 0:
        raise ValueError(f"capability mask cannot be negative: {mask!r}")
    return value


def decode(mask: int | str) -> list[str]:
    """Names of the bits set in mask, in bit order.

    Bits beyond CAPABILITIES (a kernel newer than this table) become "CAP_<n>"
    placeholders: dropping them would hide exactly the surprise a test should show.
    """
    value = _as_mask(mask)
    names = []
    bit = 0
    while value >> bit:
        if value >> bit & 1:
            names.append(CAPABILITIES[bit] if bit < len(CAPABILITIES) else f"CAP_{bit}")
        bit += 1
    return names


def encode(names: Iterable[str]) -> int:
    """The mask for names given as NET_RAW, CAP_NET_RAW, net_raw or cap_net_raw.

    "ALL" is a pod-spec keyword, not a capability, so it is rejected here like any
    unknown name. The "CAP_<n>" placeholders decode emits for bits beyond the
    table are accepted, so encode(decode(m)) == m for every m.
    """
    if isinstance(names, str):
        # Iterating a str would try each letter as a name; make the mistake loud.
        raise TypeError(f"encode takes an iterable of names, not the single string {names!r}")
    mask = 0
    for raw in names:
        name = raw.strip().upper()
        prefixed = name.startswith("CAP_")
        if prefixed:
            name = name[len("CAP_"):]
        if name in _BIT_BY_NAME:
            mask |= 1 << _BIT_BY_NAME[name]
        elif prefixed and name.isdigit() and int(name) >= len(CAPABILITIES):
            mask |= 1 << int(name)
        else:
            raise ValueError(f"unknown capability {raw!r}")
    return mask


def to_hex(mask: int | str) -> str:
    """The 16-hex-digit form /proc/<pid>/status uses, e.g. "00000000a80425fb"."""
    return f"{_as_mask(mask):016x}"


def table(sets: dict[str, int]) -> str:
    """A plain-text table (set name, hex, decoded names) for report attachments."""
    rows = [("SET", "HEX", "CAPABILITIES")]
    for name, mask in sets.items():
        rows.append((name, to_hex(mask), ",".join(decode(mask)) or "(none)"))
    name_width = max(len(r[0]) for r in rows)
    hex_width = max(len(r[1]) for r in rows)
    return "\n".join(f"{r[0]:<{name_width}}  {r[1]:<{hex_width}}  {r[2]}" for r in rows) + "\n"
