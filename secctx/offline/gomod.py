"""Pure helpers for building binaries out of Go modules.

k8s.io/kubernetes replaces its staging modules with local paths, and a
dependant's go.mod must repeat those replaces with published versions
(k8s.io/api v1.X.Y -> v0.X.Y). kubeadm also needs the version stamped
through ldflags, as the upstream build does.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

_SEMVER = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)$")
_STAGING_REPLACE = re.compile(r"^\s*(k8s\.io/[\w.-]+)\s*=>\s*\./staging/src/\1\s*$")
_GO_DIRECTIVE = re.compile(r"^go\s+(\d+\.\d+(?:\.\d+)?)\s*$", re.M)
_GODEBUG_DIRECTIVE = re.compile(r"^godebug\s+.+$", re.M)


class VersionError(ValueError):
    """A version string the builder cannot use."""


@dataclass(frozen=True, order=True)
class KubeVersion:
    major: int
    minor: int
    patch: int

    @classmethod
    def parse(cls, text: str) -> KubeVersion:
        m = _SEMVER.match(text.strip())
        if not m:
            raise VersionError(
                f"{text!r} is not a Kubernetes release version; expected e.g. v1.37.2"
            )
        return cls(*(int(g) for g in m.groups()))

    def __str__(self) -> str:
        return f"v{self.major}.{self.minor}.{self.patch}"

    @property
    def minor_tag(self) -> str:
        return f"{self.major}.{self.minor}"

    @property
    def staging(self) -> str:
        """Version of the staging modules published with this release."""
        return f"v0.{self.minor}.{self.patch}"


# Minor versions the offline builder is known to build and run (kubeadm config,
# component versions, the node image recipe): 1.34-1.37.
OFFLINE_MINORS = (34, 37)


def check_offline_buildable(version: KubeVersion, served: list[str] | None = None) -> None:
    """Raise VersionError (cause and fix) unless the offline builder supports
    `version` and, when `served` (the versions the Go module proxy lists for
    k8s.io/kubernetes) is given, the proxy serves it."""
    low, high = OFFLINE_MINORS
    supported = f"v1.{low}-v1.{high}"
    if version.major != 1 or not low <= version.minor <= high:
        raise VersionError(
            f"offline builds support {supported}; {version} is not one. Choose a version in "
            f"that range with --kubernetes-version, or use --mode online (kindest/node images)")
    if served is not None and str(version) not in served:
        same_minor = [v for v in served if v.startswith(f"v1.{version.minor}.")]
        others = [v for v in served
                  if (m := _SEMVER.match(v)) and low <= int(m.group(2)) <= high]
        offer = ", ".join(same_minor or others) or "none"
        raise VersionError(
            f"k8s.io/kubernetes {version} is not served by the Go module proxy (GOPROXY), so "
            f"it cannot be built offline; versions it serves in {supported}: {offer}")


def staging_modules(kubernetes_mod: str) -> list[str]:
    """Module paths that k8s.io/kubernetes's go.mod replaces with ./staging."""
    found = []
    for line in kubernetes_mod.splitlines():
        m = _STAGING_REPLACE.match(line.replace("replace ", "", 1))
        if m:
            found.append(m.group(1))
    if not found:
        raise VersionError("no staging replace lines in k8s.io/kubernetes go.mod")
    return sorted(found)


def build_go_mod(module: str, version: KubeVersion, kubernetes_mod: str) -> str:
    """go.mod for a throwaway module that builds k8s.io/kubernetes/cmd/*."""
    go = _GO_DIRECTIVE.search(kubernetes_mod)
    godebug = _GODEBUG_DIRECTIVE.search(kubernetes_mod)
    lines = [f"module {module}", "", f"go {go.group(1) if go else '1.24'}"]
    if godebug:
        lines.append(godebug.group(0))
    lines += ["", f"require k8s.io/kubernetes {version}", "", "replace ("]
    lines += [f"\t{m} => {m} {version.staging}" for m in staging_modules(kubernetes_mod)]
    lines += [")", ""]
    return "\n".join(lines)


def version_ldflags(version: KubeVersion, git_commit: str, build_date: str) -> str:
    """-X flags kubeadm and `version` commands read; same set the upstream build sets."""
    values = {
        "gitVersion": str(version),
        "gitMajor": str(version.major),
        "gitMinor": str(version.minor),
        "gitCommit": git_commit,
        "gitTreeState": "clean",
        "buildDate": build_date,
    }
    flags = ["-s", "-w"]
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [f"-X {pkg}.{k}={v}" for k, v in values.items()]
    return " ".join(flags)


_REPLACE_LINE = re.compile(r"^\s*(?:replace\s+)?(\S+)(?:\s+(v\S+))?\s*=>\s*(\S+)(?:\s+(v\S+))?\s*$")


def replace_directives(go_mod: str) -> list[tuple[str, str | None, str, str | None]]:
    """(old path, old version, new path, new version) of every replace in a go.mod."""
    found, in_block = [], False
    for raw in go_mod.splitlines():
        line = raw.split("//", 1)[0].strip()
        if line.startswith("replace ("):
            in_block = True
            continue
        if in_block and line == ")":
            in_block = False
            continue
        if in_block or line.startswith("replace "):
            m = _REPLACE_LINE.match(line)
            if m:
                found.append(m.groups())
    return found


def wrapper_go_mod(module: str, version: str, component_mod: str, local_version: str | None = None) -> str:
    """go.mod of a throwaway module that builds `module@version`'s commands.

    A dependency's replace directives are ignored by Go, so they are repeated
    here. Local-path replaces (etcd's `=> ../api`) name sibling modules that
    are published with the same version (`local_version`, default `version`).
    """
    go = _GO_DIRECTIVE.search(component_mod)
    lines = ["module secctx.local/build", "", f"go {go.group(1) if go else '1.22'}", "",
             f"require {module} {version}", ""]
    replaces = []
    sibling_version = local_version or version
    for old, old_v, new, new_v in replace_directives(component_mod):
        if new.startswith("."):
            # Skip guards such as etcd's `go.etcd.io/etcd => ./FORBIDDEN_DEPENDENCY`:
            # a module path whose major version cannot carry the siblings' version,
            # or a target inside the module (`go.etcd.io/tests/v3 => ./FORBIDDEN_DEPENDENCY`):
            # siblings live next to the module, in ../.
            if new.startswith("../") and _major_suffix_matches(old, sibling_version):
                replaces.append(f"\t{old} => {old} {sibling_version}")
        else:
            left = f"{old} {old_v}" if old_v else old
            replaces.append(f"\t{left} => {new} {new_v}" if new_v else f"\t{left} => {new}")
    if replaces:
        lines += ["replace (", *replaces, ")", ""]
    return "\n".join(lines)


def _major_suffix_matches(module: str, version: str) -> bool:
    major = int(version.lstrip("v").split(".")[0])
    last = module.rsplit("/", 1)[-1]
    suffix = int(last[1:]) if re.fullmatch(r"v\d+", last) else None
    return suffix == major if major >= 2 else suffix is None
