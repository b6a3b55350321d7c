"""The plugin's option names: `--secctx-NAME`, and the old `--NAME` for one release.

The plugin is loaded in every pytest run where it is installed, so its options
carry its prefix (no clash with another plugin's `--mode`). The kind cluster's five
options keep pytest-kind's unprefixed names (add_kind_options). The old spelling is
still accepted until RELEASE_DROPPING_OLD; it is registered hidden, with a dest
of its own, and `old_spellings_used` moves its value to the option and says
once per spelling what to write instead. The option's dest stays NAME
(`config.getoption("mode")`).
"""
from __future__ import annotations

import argparse
import os
import re
from importlib.metadata import entry_points

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


def add_kind_options(group, pluginmanager, default_cluster_name: str) -> None:
    """The kind cluster's options, spelled as pytest-kind spelled them (the suite used
    pytest-kind until it had its own KindCluster), so without the prefix. An environment
    that still has pytest-kind (an upgrade leaves it installed) gets them from it, with
    the same names and meaning: registering them twice would end every pytest run there."""
    if _pytest_kind_loads(pluginmanager):
        return
    group.addoption("--cluster-name", default=default_cluster_name,
                    help="name of the kind cluster the suite creates, or reuses when kept "
                         f"(default {default_cluster_name})")
    group.addoption("--keep-cluster", action="store_true",
                    help="keep the kind cluster; the next run reuses it")
    group.addoption("--kubeconfig", default=None, metavar="PATH",
                    help="with --secctx-existing-cluster: the kubeconfig of the cluster to test")
    group.addoption("--kind-image", default=None, metavar="IMAGE",
                    help="the kind node image (default: built offline, or kind's own online)")
    group.addoption("--kind-bin", default=None, metavar="PATH",
                    help="the kind binary, >= v0.32 (default: kind on PATH if new enough, "
                         "else built from its Go module)")


def _pytest_kind_loads(pluginmanager) -> bool:
    """pytest-kind is or will be registered in this run (pytest loads the entry points
    of installed plugins one after another, in no order we know)."""
    if pluginmanager.has_plugin("pytest-kind"):
        return True
    if os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD") or pluginmanager.is_blocked("pytest-kind"):
        return False
    return bool(entry_points(group="pytest11", name="pytest-kind"))
