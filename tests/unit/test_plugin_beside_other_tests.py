"""The plugin is loaded in every pytest run of an environment where it is installed:
a team's own tests and other plugins must not notice it, and its own tests must not
depend on a configuration file of ours."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from secctx.core import paths
from secctx.run import plugin


def test_a_foreign_run_keeps_its_fixtures_parameters_and_sigterm(pytester):
    """A team's test that takes `case_file` and a conftest `namespace` fixture: the plugin
    parametrizes nothing of theirs (its parameters are secctx_-prefixed), and SIGTERM
    keeps pytest's own handling (the suite's handler only where the suite runs)."""
    pytester.makeconftest("""
        import pytest

        @pytest.fixture
        def namespace():
            return "theirs"
    """)
    pytester.makepyfile("""
        import signal
        import pytest

        @pytest.mark.parametrize("case_file", ["a.txt"])
        def test_theirs(case_file, namespace):
            assert (case_file, namespace) == ("a.txt", "theirs")
            assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(passed=1)


def test_the_plugins_markers_need_no_configuration_file(pytester):
    """--strict-markers in a directory without pytest configuration: e2e is known."""
    pytester.makepyfile("""
        import pytest

        @pytest.mark.e2e
        @pytest.mark.kind_only
        @pytest.mark.every_runtime
        def test_marked():
            pass
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", "--strict-markers")
    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(passed=1)


class _Item:
    def __init__(self, path: Path, marker=None):
        self.path, self.markers = path, [marker] if marker else []

    def get_closest_marker(self, name):
        return next((m for m in self.markers if m.name == name), None)

    def add_marker(self, marker):
        self.markers.append(marker.mark)


def _config(timeout_option=None, ini="", timeout_plugin=True):
    return SimpleNamespace(
        pluginmanager=SimpleNamespace(hasplugin=lambda name: timeout_plugin and name == "timeout"),
        getoption=lambda name, default=None: timeout_option if name == "timeout" else default,
        getini=lambda name: ini)


def _timeouts(items):
    return [[(m.args, m.kwargs) for m in i.markers if m.name == "timeout"] for i in items]


def test_suite_tests_get_the_timeout_backstop_when_the_run_sets_none(monkeypatch):
    monkeypatch.delenv("PYTEST_TIMEOUT", raising=False)
    own = pytest.mark.timeout(900).mark
    items = [_Item(paths.SUITES / "test_cluster.py"), _Item(paths.SUITES / "test_x.py", own),
             _Item(Path("/team/tests/test_theirs.py"))]
    plugin.pytest_collection_modifyitems(_config(), items)
    assert _timeouts(items) == [[((plugin.SUITE_TEST_TIMEOUT,), {"func_only": True})],
                                [((900,), {})],  # the test's own marker stands
                                []]  # a team's test: not the suite's to bound


@pytest.mark.parametrize("config, env", [
    (_config(timeout_option=60), {}), (_config(ini="120"), {}), (_config(), {"PYTEST_TIMEOUT": "30"}),
    (_config(timeout_plugin=False), {})], ids=["--timeout", "ini", "PYTEST_TIMEOUT", "no:timeout"])
def test_a_run_that_sets_its_own_timeout_keeps_it_for_suite_tests(config, env, monkeypatch):
    monkeypatch.delenv("PYTEST_TIMEOUT", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    items = [_Item(paths.SUITES / "test_cluster.py")]
    plugin.pytest_collection_modifyitems(config, items)
    assert _timeouts(items) == [[]]


OPTIONS_SEEN = """
    def test_options(request):
        get = request.config.getoption
        print("SEEN", get("mode"), get("runtime_class"), get("case_concurrency"), get("rebuild"))
"""


def test_old_option_spellings_still_work_with_one_deprecation_line_each(pytester):
    """--mode (another plugin may have one) is now --secctx-mode; the old spelling is
    taken for a release, and said once per spelling, however often it is given."""
    pytester.makepyfile(OPTIONS_SEEN)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-s", "--mode", "online", "--runtime-class", "a",
        "--runtime-class", "b", "--secctx-runtime-class", "c", "--case-concurrency", "3", "--rebuild")
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    assert "SEEN online ['c', 'a', 'b'] 3 True" in result.stdout.str()
    deprecated = [line for line in result.stderr.lines if "deprecated" in line]
    assert sorted(deprecated) == [f"secctx: --{name} is deprecated and goes in 0.2.0: write --secctx-{name}"
                                  for name in ("case-concurrency", "mode", "rebuild", "runtime-class")]


def test_an_option_born_after_the_rename_has_no_old_spelling(pytester):
    """--secctx-cri and --secctx-vm-node never had a short form: --cri is refused."""
    pytester.makepyfile(OPTIONS_SEEN)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--cri", "crio")
    assert result.ret == 4 and "unrecognized arguments: --cri" in result.stderr.str()


def test_new_spellings_say_nothing_and_win_over_an_old_one(pytester):
    pytester.makepyfile(OPTIONS_SEEN)
    new = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-s", "--secctx-mode", "offline")
    assert "SEEN offline [] 1 False" in new.stdout.str()
    assert "deprecated" not in new.stderr.str()
    both = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-s", "--secctx-mode", "offline",
                                         "--mode", "online")
    assert "SEEN offline [] 1 False" in both.stdout.str()


def test_a_shared_message_names_the_plugins_spelling_in_a_pytest_line():
    """cluster/mode.py says `--mode online` (python -m secctx's spelling); a pytest run's
    INFRASTRUCTURE line must say what to type there."""
    from secctx.run import options as optionnames
    assert {"mode", "image-registry", "cri"} <= optionnames.NAMES  # the plugin added them
    line = optionnames.for_pytest("use --mode online, or drop --image-registry; check --kubeconfig")
    assert line == "use --secctx-mode online, or drop --secctx-image-registry; check --kubeconfig"
    assert optionnames.for_pytest("needs --cri crio") == "needs --secctx-cri crio"
    assert optionnames.for_pytest("--secctx-mode x --modern") == "--secctx-mode x --modern"


KIND_OPTIONS_SEEN = """
    def test_options(request):
        get = request.config.getoption
        print("SEEN", get("cluster_name"), get("keep_cluster"), get("kind_image"), get("kind_bin"),
              get("kubeconfig"))
"""


def test_the_kind_options_are_the_suites_own_without_pytest_kind(pytester):
    """pytest-kind is gone; its five options, which users know, are the suite's, under
    the same names (no prefix), and the cluster name defaults to the suite's own."""
    pytester.makepyfile(KIND_OPTIONS_SEEN)
    default = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-s")
    assert "SEEN secctx False None None None" in default.stdout.str(), default.stderr.str()
    kind = pytester.path / "kind"
    kind.touch()  # --kind-bin is checked: a file must be there
    given = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-s", "--cluster-name", "mine",
                                          "--keep-cluster", "--kind-image", "img:1",
                                          "--kind-bin", str(kind), "--kubeconfig", "/k/config")
    assert f"SEEN mine True img:1 {kind} /k/config" in given.stdout.str(), given.stderr.str()
    # pytest-kind's kubectl download, which the suite never used, is not taken silently
    unused = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--kind-kubectl-bin", "k")
    assert unused.ret == 4 and "unrecognized arguments: --kind-kubectl-bin" in unused.stderr.str()


def test_an_environment_that_still_has_pytest_kind_runs(pytester):
    """An upgrade leaves pytest-kind installed (pip does not remove a dropped dependency):
    both plugins load, in whatever order, and the five options are pytest-kind's, with
    the same meaning (its default cluster name is the suite's default there). A stand-in
    for pytest-kind, found as an installed distribution on the run's path."""
    dist = pytester.mkdir("pytest_kind-22.11.1.dist-info")
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: pytest-kind\nVersion: 22.11.1\n")
    (dist / "entry_points.txt").write_text("[pytest11]\npytest-kind = pytest_kind.plugin\n")
    package = pytester.mkpydir("pytest_kind")
    (package / "plugin.py").write_text(
        "def pytest_addoption(parser):\n"
        "    group = parser.getgroup('kind')\n"
        "    group.addoption('--cluster-name', default='pytest-kind')\n"
        "    group.addoption('--keep-cluster', action='store_true')\n"
        "    group.addoption('--kubeconfig', default=None)\n"
        "    group.addoption('--kind-image', default=None)\n"
        "    group.addoption('--kind-bin', default=None)\n"
        "    group.addoption('--kind-kubectl-bin', default=None)\n")
    pytester.makepyfile(KIND_OPTIONS_SEEN)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-s", "--keep-cluster")
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    # pytest-kind's own default name: the options are the stand-in's (the suite maps it)
    assert "SEEN pytest-kind True None None None" in result.stdout.str()
