"""secctx.cluster.hostneeds: the host packages and engine hack/lib.sh installs, by mode (no Docker)."""
import pytest

from secctx.cluster import hostneeds, mode

OFFLINE_ONLY = {"debootstrap", "libseccomp-dev", "pkg-config", "gcc"}
RUNNING = {"ServerVersion": "29.0", "DefaultRuntime": "runc"}


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No mode override, not in CI, a HOME without Docker credentials."""
    for var in ("SECCTX_MODE", "GITHUB_ACTIONS", "DOCKER_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))


def _never(tag):
    return False


def test_existing_cluster_needs_no_engine_and_no_packages(clean_env):
    # even with no engine installed and offline asked for: the suite builds nothing
    found = hostneeds.needs(["--secctx-existing-cluster", "--kubeconfig", "k", "--secctx-mode", "offline"],
                            None, _never, engine_installed=False)
    assert (found.mode, found.engine, found.packages) == ("existing", False, [])


def test_online_kind_needs_busybox_but_none_of_the_offline_build(clean_env):
    found = hostneeds.needs(["--secctx-mode", "online", "-k", "secure-pod"], RUNNING, _never, True)
    assert found.engine and found.mode == mode.ONLINE
    assert found.packages == ["busybox-static"]


def test_github_actions_means_online_as_set_up_decides(clean_env, monkeypatch):
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    found = hostneeds.needs([], RUNNING, _never, True)
    assert found.mode == mode.ONLINE and not OFFLINE_ONLY & set(found.packages)


def test_offline_kind_needs_the_build_packages(clean_env):
    found = hostneeds.needs([], RUNNING, _never, True)  # auto, no sign of a registry
    assert found.mode == mode.OFFLINE
    assert OFFLINE_ONLY <= set(found.packages)


def test_mode_equals_spelling_is_read(clean_env):
    assert hostneeds.needs(["--secctx-mode=online"], RUNNING, _never, True).mode == mode.ONLINE


def test_the_old_spellings_decide_as_the_plugin_still_takes_them(clean_env):
    assert hostneeds.needs(["--mode", "online"], RUNNING, _never, True).mode == mode.ONLINE
    assert hostneeds.needs(["--existing-cluster"], None, _never, False).mode == "existing"


def test_no_engine_answering_means_no_image_is_asked_for_and_docker_io_is_wanted(clean_env):
    asked = []
    found = hostneeds.needs(["--secctx-mode", "auto"], None, lambda t: asked.append(t) or True,
                            engine_installed=False)
    assert asked == [] and found.mode == mode.OFFLINE  # nothing local to look at yet
    assert "docker.io" in found.packages


def test_an_installed_engine_is_not_installed_again(clean_env):
    assert "docker.io" not in hostneeds.needs(["--secctx-mode", "online"], None, _never, True).packages


def test_report_test_adds_chromium_in_every_mode(clean_env):
    for args in (["--secctx-existing-cluster"], ["--secctx-mode", "online"], ["--secctx-mode", "offline"]):
        assert "chromium" in hostneeds.needs(["--report-test", *args], RUNNING, _never,
                                             True).packages


def test_every_package_says_why():
    assert set(hostneeds.OFFLINE) | {"chromium", "docker.io"} <= set(hostneeds.WHY)
