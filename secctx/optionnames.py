"""The plugin's option names: `--secctx-NAME`, and the old `--NAME` for one release.

The plugin is loaded in every pytest run where it is installed, so its options
carry its prefix (no clash with another plugin's `--mode`). The old spelling is
still accepted until RELEASE_DROPPING_OLD; it is registered hidden, with a dest
of its own, and `old_spellings_used` moves its value to the option and says
once per spelling what to write instead. The option's dest stays NAME
(`config.getoption("mode")`).
"""
from __future__ import annotations

import argparse
import re

PREFIX = "--secctx-"
RELEASE_DROPPING_OLD = "0.2.0"
_OLD = "secctx_old_spelling_"  # the dest of an old spelling's hidden option


def dest(name: str) -> str:
    return name.replace("-", "_")


# Every option added, and name -> default of those with an old spelling (the same for
# every pytest run).
NAMES: set[str] = set()
DEFAULTS: dict[str, object] = {}


def add(group, name: str, *, old: bool = True, **kwargs) -> None:
    """`--secctx-NAME` in a pytest option group, and the old `--NAME`, hidden (old=False:
    an option born after the rename has no old spelling)."""
    group.addoption(PREFIX + name, dest=dest(name), **kwargs)
    NAMES.add(name)
    if not old:
        return
    DEFAULTS[name] = kwargs.get("default", False if kwargs.get("action") == "store_true" else None)
    # None unless given, whatever the option's default: then it is known to be used.
    kept = {k: v for k, v in kwargs.items() if k in ("action", "type", "choices", "metavar")}
    group.addoption(f"--{name}", dest=_OLD + dest(name), default=None, help=argparse.SUPPRESS,
                    **kept)


def old_spellings_used(option: argparse.Namespace) -> list[str]:
    """Moves the values given under old spellings to their options (a repeatable
    option gets both; otherwise the new spelling wins when given) and returns one
    deprecation line per old spelling used. The old values are reset, so a second
    call (a pytest-xdist worker gets the controller's options) changes nothing."""
    lines = []
    for name, default in DEFAULTS.items():
        old = getattr(option, _OLD + dest(name), None)
        if old is None:
            continue
        new = getattr(option, dest(name), default)
        if isinstance(old, list):
            setattr(option, dest(name), [*(new or []), *old])
        elif new == default:
            setattr(option, dest(name), old)
        setattr(option, _OLD + dest(name), None)
        lines.append(f"secctx: --{name} is deprecated and goes in {RELEASE_DROPPING_OLD}: "
                     f"write {PREFIX}{name}")
    return lines


def for_pytest(text: str) -> str:
    """A message from code shared with `python -m secctx` (which keeps the short
    spellings) with the plugin's spellings, for a line a pytest run prints."""
    names = sorted(NAMES, key=len, reverse=True)
    if not names:
        return text
    return re.sub(r"(?<![\w-])--(" + "|".join(map(re.escape, names)) + r")(?![\w-])",
                  lambda m: PREFIX + m.group(1), text)
