"""secctx.offline.gomod: versions, the kubernetes build go.mod, ldflags, replace handling.

The go.mod excerpts below are copied from the Go module cache
(k8s.io/kubernetes@v1.37.2, go.etcd.io/etcd/server/v3@v3.6.8); nothing is read
from the cache at test time.
"""
import pytest

from secctx.offline.gomod import (
    KubeVersion,
    VersionError,
    build_go_mod,
    replace_directives,
    staging_modules,
    version_ldflags,
    wrapper_go_mod,
)

# Excerpt of k8s.io/kubernetes@v1.37.2/go.mod: header, go/godebug directives,
# some requires (one of them a staging module, and a line that mentions
# "godebug" inside a module path), and part of the staging replace block.
KUBERNETES_MOD = """\
// This is a generated file. Do not edit directly.
// Ensure you've carefully read
// https://git.k8s.io/community/contributors/devel/sig-architecture/vendor.md
// Run hack/pin-dependency.sh to change pinned dependency versions.
// Run hack/update-vendor.sh to update go.mod files and the vendor directory.

module k8s.io/kubernetes

go 1.26.0

godebug default=go1.26

require (
\tbitbucket.org/bertimus9/systemstat v0.5.0
\tgithub.com/JeffAshton/win_pdh v0.0.0-20161109143554-76bb4ee9f0ab
\tk8s.io/api v0.0.0
\tk8s.io/client-go v0.0.0
)

require (
\tgithub.com/kylelemons/godebug v1.1.0 // indirect
)

replace (
\tk8s.io/api => ./staging/src/k8s.io/api
\tk8s.io/apiextensions-apiserver => ./staging/src/k8s.io/apiextensions-apiserver
\tk8s.io/apimachinery => ./staging/src/k8s.io/apimachinery
\tk8s.io/client-go => ./staging/src/k8s.io/client-go
\tk8s.io/component-base => ./staging/src/k8s.io/component-base
\tk8s.io/cri-api => ./staging/src/k8s.io/cri-api
\tk8s.io/kubelet => ./staging/src/k8s.io/kubelet
)
"""

STAGING = [
    "k8s.io/api",
    "k8s.io/apiextensions-apiserver",
    "k8s.io/apimachinery",
    "k8s.io/client-go",
    "k8s.io/component-base",
    "k8s.io/cri-api",
    "k8s.io/kubelet",
]

# Tail of go.etcd.io/etcd/server/v3@v3.6.8/go.mod (plus a few requires).
ETCD_SERVER_MOD = """\
module go.etcd.io/etcd/server/v3

go 1.24.0

toolchain go1.24.13

require (
\tgithub.com/coreos/go-semver v0.3.1
\tgo.etcd.io/bbolt v1.4.3
\tgo.etcd.io/etcd/api/v3 v3.6.8
\tgo.etcd.io/etcd/client/pkg/v3 v3.6.8
\tgo.etcd.io/etcd/client/v3 v3.6.8
\tgo.etcd.io/etcd/pkg/v3 v3.6.8
\tgo.etcd.io/raft/v3 v3.6.0
)

replace (
\tgo.etcd.io/etcd/api/v3 => ../api
\tgo.etcd.io/etcd/client/pkg/v3 => ../client/pkg
\tgo.etcd.io/etcd/client/v3 => ../client/v3
\tgo.etcd.io/etcd/pkg/v3 => ../pkg
)

// Bad imports are sometimes causing attempts to pull that code.
// This makes the error more explicit.
replace go.etcd.io/etcd => ./FORBIDDEN_DEPENDENCY

replace go.etcd.io/tests/v3 => ./FORBIDDEN_DEPENDENCY
"""

ETCD_SIBLINGS = [
    "go.etcd.io/etcd/api/v3",
    "go.etcd.io/etcd/client/pkg/v3",
    "go.etcd.io/etcd/client/v3",
    "go.etcd.io/etcd/pkg/v3",
]


def _replace_block(go_mod: str) -> list[str]:
    """Stripped lines between `replace (` and `)` of a generated go.mod."""
    lines = go_mod.splitlines()
    start = lines.index("replace (")
    end = lines.index(")", start)
    return [ln.strip() for ln in lines[start + 1:end]]


# -- KubeVersion -------------------------------------------------------------

@pytest.mark.parametrize("text", ["v1.37.2", "1.37.2", " v1.37.2\n"])
def test_parse_accepts_release_versions(text):
    v = KubeVersion.parse(text)
    assert (v.major, v.minor, v.patch) == (1, 37, 2)
    assert str(v) == "v1.37.2"
    assert v.minor_tag == "1.37"


@pytest.mark.parametrize("text", ["1.37", "v1.37.2-rc.0", "latest", "", "v1.37.2.1", "v1.x.2"])
def test_parse_rejects_other_strings_naming_the_input(text):
    with pytest.raises(VersionError) as err:
        KubeVersion.parse(text)
    assert repr(text) in str(err.value)
    assert isinstance(err.value, ValueError)


def test_staging_version():
    assert KubeVersion.parse("v1.37.2").staging == "v0.37.2"
    assert KubeVersion.parse("1.30.0").staging == "v0.30.0"


def test_versions_order_numerically():
    assert KubeVersion.parse("v1.9.0") < KubeVersion.parse("v1.10.0") < KubeVersion.parse("v1.10.1")
    assert KubeVersion.parse("1.37.2") == KubeVersion.parse("v1.37.2")


# -- staging_modules / build_go_mod ------------------------------------------

def test_staging_modules_from_kubernetes_go_mod():
    assert staging_modules(KUBERNETES_MOD) == STAGING


def test_staging_modules_single_line_replace_form():
    mod = "module k8s.io/kubernetes\n\nreplace k8s.io/api => ./staging/src/k8s.io/api\n"
    assert staging_modules(mod) == ["k8s.io/api"]


def test_staging_modules_ignores_non_staging_replaces():
    mod = KUBERNETES_MOD + (
        "\nreplace k8s.io/foo => ./staging/src/k8s.io/bar\n"  # path does not match the module
        "replace github.com/x/y => github.com/x/y v1.2.3\n"
        "replace k8s.io/gengo => ../gengo\n"
    )
    assert staging_modules(mod) == STAGING


def test_staging_modules_without_any_raises():
    with pytest.raises(VersionError, match="no staging replace"):
        staging_modules("module k8s.io/kubernetes\n\ngo 1.26.0\n")


def test_build_go_mod():
    v = KubeVersion.parse("v1.37.2")
    text = build_go_mod("secctx.local/k8s", v, KUBERNETES_MOD)
    lines = text.splitlines()
    assert lines[0] == "module secctx.local/k8s"
    assert "go 1.26.0" in lines
    assert "godebug default=go1.26" in lines
    assert "require k8s.io/kubernetes v1.37.2" in lines
    # Only the directive line is copied, not the `godebug` module in a require.
    assert "kylelemons" not in text
    assert _replace_block(text) == [f"{m} => {m} v0.37.2" for m in STAGING]
    assert text.count("=>") == len(STAGING)
    assert "./staging" not in text


def test_build_go_mod_without_godebug_or_go_directive():
    mod = "module k8s.io/kubernetes\n\nreplace k8s.io/api => ./staging/src/k8s.io/api\n"
    text = build_go_mod("m", KubeVersion.parse("1.30.4"), mod)
    assert "godebug" not in text
    assert "go 1.24" in text.splitlines()
    assert _replace_block(text) == ["k8s.io/api => k8s.io/api v0.30.4"]


# -- version_ldflags ---------------------------------------------------------

def test_version_ldflags_stamps_both_version_packages():
    flags = version_ldflags(KubeVersion.parse("v1.37.2"), "0123abcd", "2026-01-02T03:04:05Z")
    words = flags.split(" ")
    assert words[:2] == ["-s", "-w"]
    expected = {
        "gitVersion": "v1.37.2",
        "gitMajor": "1",
        "gitMinor": "37",
        "gitCommit": "0123abcd",
        "gitTreeState": "clean",
        "buildDate": "2026-01-02T03:04:05Z",
    }
    x_values = [words[i + 1] for i, w in enumerate(words) if w == "-X"]
    assert len(x_values) == 2 * len(expected)
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        for key, value in expected.items():
            assert f"{pkg}.{key}={value}" in x_values


# -- replace_directives ------------------------------------------------------

def test_replace_directives_block_and_single_line_forms():
    mod = """\
module example.com/m

require example.com/replace v1.0.0 // a module whose name contains "replace"

replace (
\texample.com/a => ../a
\texample.com/b v1.2.3 => example.com/b-fork v1.2.4 // pinned fork
\t// example.com/commented => ../nope
\texample.com/c => example.com/c v0.1.0

)

replace example.com/d => ./d // trailing comment
replace example.com/e v2.0.0 => example.com/e2 v2.0.1
// replace example.com/f => ../f
replace example.com/g => /abs/path
"""
    assert replace_directives(mod) == [
        ("example.com/a", None, "../a", None),
        ("example.com/b", "v1.2.3", "example.com/b-fork", "v1.2.4"),
        ("example.com/c", None, "example.com/c", "v0.1.0"),
        ("example.com/d", None, "./d", None),
        ("example.com/e", "v2.0.0", "example.com/e2", "v2.0.1"),
        ("example.com/g", None, "/abs/path", None),
    ]


def test_replace_directives_etcd():
    assert replace_directives(ETCD_SERVER_MOD) == [
        ("go.etcd.io/etcd/api/v3", None, "../api", None),
        ("go.etcd.io/etcd/client/pkg/v3", None, "../client/pkg", None),
        ("go.etcd.io/etcd/client/v3", None, "../client/v3", None),
        ("go.etcd.io/etcd/pkg/v3", None, "../pkg", None),
        ("go.etcd.io/etcd", None, "./FORBIDDEN_DEPENDENCY", None),
        ("go.etcd.io/tests/v3", None, "./FORBIDDEN_DEPENDENCY", None),
    ]


def test_replace_directives_none():
    assert replace_directives("module m\n\ngo 1.22\n\nrequire x.io/y v1.0.0\n") == []


# -- wrapper_go_mod ----------------------------------------------------------

def test_wrapper_go_mod_etcd_siblings_get_the_release_version_and_guards_are_dropped():
    text = wrapper_go_mod("go.etcd.io/etcd/server/v3", "v3.6.8", ETCD_SERVER_MOD)
    lines = text.splitlines()
    assert lines[0] == "module secctx.local/build"
    assert "go 1.24.0" in lines
    assert "require go.etcd.io/etcd/server/v3 v3.6.8" in lines
    assert _replace_block(text) == [f"{m} => {m} v3.6.8" for m in ETCD_SIBLINGS]
    assert "FORBIDDEN_DEPENDENCY" not in text
    assert "go.etcd.io/etcd =>" not in text
    assert "go.etcd.io/tests/v3" not in text
    assert "../" not in text
    assert "toolchain" not in text


def test_wrapper_go_mod_local_version_overrides_sibling_version():
    text = wrapper_go_mod("go.etcd.io/etcd/server/v3", "v3.6.8", ETCD_SERVER_MOD,
                          local_version="v3.6.9")
    assert "require go.etcd.io/etcd/server/v3 v3.6.8" in text.splitlines()
    assert _replace_block(text) == [f"{m} => {m} v3.6.9" for m in ETCD_SIBLINGS]


def test_wrapper_go_mod_copies_non_local_replaces_verbatim():
    mod = """\
module example.com/tool

go 1.23.4

replace (
\tgithub.com/a/b => github.com/fork/b v1.2.4
\tgithub.com/c/d v0.3.0 => github.com/c/d v0.3.1 // security fix
\texample.com/sibling/v2 => ../sibling
)

replace github.com/e/f v1.0.0 => github.com/e/f-fork v1.0.1
"""
    text = wrapper_go_mod("example.com/tool/v2", "v2.1.0", mod)
    assert "go 1.23.4" in text.splitlines()
    assert "require example.com/tool/v2 v2.1.0" in text.splitlines()
    assert _replace_block(text) == [
        "github.com/a/b => github.com/fork/b v1.2.4",
        "github.com/c/d v0.3.0 => github.com/c/d v0.3.1",
        "example.com/sibling/v2 => example.com/sibling/v2 v2.1.0",
        "github.com/e/f v1.0.0 => github.com/e/f-fork v1.0.1",
    ]


def test_wrapper_go_mod_v0_v1_sibling_without_major_suffix():
    mod = "module example.com/x\n\ngo 1.22\n\nreplace example.com/lib => ../lib\n"
    text = wrapper_go_mod("example.com/x", "v1.4.0", mod)
    assert _replace_block(text) == ["example.com/lib => example.com/lib v1.4.0"]


def test_wrapper_go_mod_without_replaces_has_no_replace_block():
    mod = "module github.com/opencontainers/runc\n\ngo 1.24.0\n\nrequire x.io/y v1.0.0\n"
    text = wrapper_go_mod("github.com/opencontainers/runc", "v1.4.3", mod)
    assert "replace" not in text
    assert text == ("module secctx.local/build\n\ngo 1.24.0\n\n"
                    "require github.com/opencontainers/runc v1.4.3\n")


def test_wrapper_go_mod_default_go_directive():
    text = wrapper_go_mod("example.com/x", "v1.0.0", "module example.com/x\n")
    assert "go 1.22" in text.splitlines()
