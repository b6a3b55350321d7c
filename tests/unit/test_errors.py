"""User-fixable errors name their cause and their fix, and come early.

No cluster, no Docker engine and no network: the environment is simulated
with monkeypatch; the only sockets are local ones opened here.
"""
from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException
from kubernetes.utils import FailToCreateError

from secctx import cli, kube
from secctx.cluster import engine, existing, provision, versions
from secctx.cluster.kind import ClusterError, KindCluster
from secctx.core import errors, exitcodes
from secctx.images import build as image_build
from secctx.images import load as image_load
from secctx.images.imagemap import ImageMap
from secctx.offline import gobuild, gomod, nodeimage
from secctx.offline.gomod import KubeVersion, VersionError, check_offline_buildable
from secctx.run import boundary


def _must_not_run(what):
    def fail(*args, **kwargs):
        raise AssertionError(f"{what} ran, but the error should have come first")
    return fail


# -- 1. no Docker engine, and none can be started -------------------------------

@pytest.fixture
def no_engine(monkeypatch):
    monkeypatch.setattr(engine, "docker_info", lambda: None)
    monkeypatch.setattr(engine.shutil, "which", lambda name: None)
    monkeypatch.setattr(engine.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(engine, "_start_dockerd", _must_not_run("starting dockerd"))
    monkeypatch.setattr(engine.run_command, "run", _must_not_run("a command (apt-get)"))


def test_no_engine_no_dockerd_not_root(no_engine):
    with pytest.raises(engine.EngineError) as err:
        engine.ensure_engine()
    assert "No Docker engine runs and dockerd is not installed" in str(err.value)  # cause
    assert "apt-get install docker.io" in str(err.value) and "run as root" in str(err.value)  # fix


def test_dockerd_installed_but_not_root(monkeypatch):
    monkeypatch.setattr(engine, "docker_info", lambda: None)
    monkeypatch.setattr(engine.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(engine.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(engine.subprocess, "Popen", _must_not_run("dockerd"))
    with pytest.raises(engine.EngineError) as err:
        engine.ensure_engine()
    assert "No Docker engine answers, and starting dockerd needs root" in str(err.value)
    assert "systemctl start docker" in str(err.value)


def test_cli_prints_one_line_and_exits_2(no_engine, capsys):
    assert cli.main(["engine"]) == 2
    out = capsys.readouterr()
    lines = out.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("secctx: No Docker engine runs")
    assert "Traceback" not in out.err and out.out == ""


# -- 2. kind missing ----------------------------------------------------------

def test_kind_cluster_with_missing_kind_names_the_fix(monkeypatch, tmp_path):
    monkeypatch.setenv("SECCTX_CACHE", str(tmp_path / "cache"))
    kind = KindCluster("unit-test", kind_path=tmp_path / "no" / "kind",
                       image=None, config={})
    for action in (kind.exists, kind.create, kind.delete, kind.nodes):
        with pytest.raises(ClusterError) as err:
            action()
        assert f"kind is missing at {tmp_path / 'no' / 'kind'}" in str(err.value)
        assert "--kind-bin" in str(err.value) and "kind >= v0.32" in str(err.value)


def test_kind_that_cannot_run_names_the_fix(monkeypatch, tmp_path):
    monkeypatch.setenv("SECCTX_CACHE", str(tmp_path / "cache"))
    not_executable = tmp_path / "kind"
    not_executable.write_text("not a program")
    kind = KindCluster("unit-test", kind_path=not_executable, image=None,
                       config={})
    with pytest.raises(ClusterError) as err:
        kind.exists()
    assert "cannot run kind at" in str(err.value) and "--kind-bin" in str(err.value)


def test_bring_up_checks_kind_bin_before_anything_else(monkeypatch, tmp_path):
    monkeypatch.setattr(engine, "ensure_engine", _must_not_run("the engine check"))
    with pytest.raises(ClusterError) as err:
        provision.bring_up(provision.Options(name="unit", kind_bin=tmp_path / "kind"))
    assert "kind is missing at" in str(err.value) and "drop --kind-bin" in str(err.value)


# -- 3. a node image that does not exist (offline) --------------------------------

@pytest.fixture
def offline_engine(monkeypatch):
    """An engine that answers and holds no image; nothing long may start."""
    monkeypatch.setattr(engine, "ensure_engine", lambda: {"ServerVersion": "test"})
    monkeypatch.setattr(provision.docker, "image_exists", lambda tag: False)
    monkeypatch.setattr(provision.nodeimage, "build", _must_not_run("the node image build"))
    monkeypatch.setattr(image_build, "build_workload_images",
                        _must_not_run("the workload image build"))
    monkeypatch.setattr(KindCluster, "create", _must_not_run("kind create"))
    monkeypatch.setattr(KindCluster, "exists", _must_not_run("kind"))


def test_missing_node_image_fails_before_kind_pulls(offline_engine):
    with pytest.raises(ClusterError) as err:
        provision.bring_up(provision.Options(name="unit", mode="offline",
                                             node_image="secctx.local/kind-node:does-not-exist"))
    message = str(err.value)
    assert "node image secctx.local/kind-node:does-not-exist does not exist" in message
    assert "offline mode never pulls" in message
    assert "python -m secctx node-image" in message and "--kind-image" in message


def test_images_missing_from_the_engine_are_named_before_loading(monkeypatch, offline_engine):
    monkeypatch.setattr(provision.docker, "image_exists", lambda tag: tag != "secctx.local/gone:1")
    monkeypatch.setattr(image_build, "build_workload_images", lambda offline: {})
    imap = ImageMap("offline", {"busybox:1.36": "secctx.local/gone:1"})
    with pytest.raises(ClusterError) as err:
        image_load.check_local(["secctx.local/gone:1", "secctx.local/here:1"], imap, None)
    assert "secctx.local/gone:1 (for busybox:1.36)" in str(err.value)
    assert "here" not in str(err.value) and "fix the image map" in str(err.value)


# -- 4 and 5. an existing cluster: unreachable API server, invalid kubeconfig -----

def _kubeconfig(path: Path, server: str, **top) -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "ctx",
        "clusters": [{"name": "c", "cluster": {"server": server,
                                               "insecure-skip-tls-verify": True}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "u"}}], **top}))
    return path


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_api_server(tmp_path):
    server = f"https://127.0.0.1:{_closed_port()}"
    path = _kubeconfig(tmp_path / "kc", server)
    t0 = time.monotonic()
    with pytest.raises(ClusterError) as err:
        provision.bring_up(provision.Options(existing_kubeconfig=path))
    assert time.monotonic() - t0 < 5
    assert str(err.value) == (f"cannot reach the API server at {server} (Failed to establish a "
                              "new connection: [Errno 111] Connection refused); check "
                              "--kubeconfig/--kube-context")


def test_silent_api_server_is_bounded(tmp_path):
    """A server that accepts connections and never answers: one bounded try."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted = []
    thread = threading.Thread(target=lambda: accepted.append(listener.accept()), daemon=True)
    thread.start()
    server = f"https://127.0.0.1:{listener.getsockname()[1]}"
    try:
        t0 = time.monotonic()
        with pytest.raises(ClusterError) as err:
            existing.preflight_api(_kubeconfig(tmp_path / "kc", server), None, server, timeout=1)
        assert time.monotonic() - t0 < 4  # no retries
        assert f"cannot reach the API server at {server} (" in str(err.value)
        assert "timed out" in str(err.value)
    finally:
        listener.close()
        for conn, _ in accepted:
            conn.close()


@pytest.mark.parametrize("text, context, expected", [
    ("a: b: c\n", None, "is not valid YAML at line 1 (mapping values are not allowed here)"),
    ("just a string\n", None, "has no contexts list: it is not a kubeconfig"),
    ("", None, "has no contexts list"),
    (None, "elsewhere", "context 'elsewhere' is not in kubeconfig"),
    (None, None, None),
])
def test_invalid_kubeconfig(tmp_path, text, context, expected):
    path = tmp_path / "kc"
    if text is None:
        _kubeconfig(path, "https://example.invalid:6443")
    else:
        path.write_text(text)
    if expected is None:
        assert existing.check_kubeconfig(path, context) == "https://example.invalid:6443"
        return
    with pytest.raises(ClusterError) as err:
        existing.check_kubeconfig(path, context)
    assert str(path) in str(err.value) and expected in str(err.value)
    assert "--kube-context" in str(err.value)


def test_missing_kubeconfig_and_missing_current_context(tmp_path):
    with pytest.raises(ClusterError, match=r"cannot read kubeconfig .*No such file or directory"):
        existing.check_kubeconfig(tmp_path / "absent", None)
    path = _kubeconfig(tmp_path / "kc", "https://x:1", **{"current-context": ""})
    with pytest.raises(ClusterError, match=r"sets no current-context; pass --kube-context "
                                           r"\(contexts in it: ctx\)"):
        existing.check_kubeconfig(path, None)


def test_context_naming_a_missing_cluster(tmp_path):
    path = _kubeconfig(tmp_path / "kc", "https://x:1")
    data = yaml.safe_load(path.read_text())
    data["contexts"][0]["context"]["cluster"] = "gone"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ClusterError, match="names cluster 'gone', which has no server URL"):
        existing.check_kubeconfig(path, None)


def test_short_reason_drops_urllib3_object_reprs():
    from urllib3.exceptions import MaxRetryError, NewConnectionError
    inner = NewConnectionError(None, "HTTPSConnection(host='h', port=1): Failed to establish a "
                                     "new connection: [Errno 111] Connection refused")
    assert existing.short_reason(MaxRetryError(None, "/version", inner)) == \
        "Failed to establish a new connection: [Errno 111] Connection refused"


# -- 7. an image missing from the node -------------------------------------------

POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
       "spec": {"containers": [{"name": "a", "image": "busybox:1.36", "imagePullPolicy": "Always"},
                               {"name": "b", "image": "unmapped:1"}]}}


def test_offline_rewrite_never_pulls_online_keeps_the_policy():
    offline = ImageMap.load("offline").rewrite(POD)["spec"]["containers"]
    assert [c["imagePullPolicy"] for c in offline] == ["Never", "Never"]
    online = ImageMap.load("online").rewrite(POD)["spec"]["containers"]
    assert [c.get("imagePullPolicy") for c in online] == ["Always", None]
    # The mode can be given; the map's own is the default.
    assert ImageMap.load("online").rewrite(POD, mode="offline")["spec"]["containers"][1][
        "imagePullPolicy"] == "Never"


def waiting_pod(image: str, reason: str, message: str) -> client.V1Pod:
    """A Pending pod whose one container waits with `reason` for `image`."""
    return client.V1Pod(
        spec=client.V1PodSpec(containers=[], restart_policy="Always"),
        status=client.V1PodStatus(phase="Pending", container_statuses=[client.V1ContainerStatus(
            name="app", image=image, image_id="", ready=False, restart_count=0,
            state=client.V1ContainerState(waiting=client.V1ContainerStateWaiting(
                reason=reason, message=message)))]))


def test_missing_image_waiting_error_says_how_to_load_it():
    pod = waiting_pod("secctx.local/absent:1.0", "ErrImageNeverPull",
                      'Container image "secctx.local/absent:1.0" is not present with pull '
                      'policy of Never')
    reason, message = kube.terminal_problem(pod)
    assert reason == "ErrImageNeverPull"
    assert message.endswith("image secctx.local/absent:1.0 is not on the node: load it (kind load "
                            "docker-image secctx.local/absent:1.0) or fix the image map")


def test_an_image_the_node_could_not_pull_is_not_called_missing_from_the_node():
    pod = waiting_pod("docker.io/library/busybox:1.36", "ErrImagePull",
                      "failed to resolve reference: not found")
    reason, message = kube.terminal_problem(pod)
    assert reason == "ErrImagePull" and "not on the node" not in message
    assert message.endswith("the node could not pull image docker.io/library/busybox:1.36: fix "
                            "the registry or its mirror, --image-registry, or the image map")


# -- 9. a Kubernetes version the offline builder cannot build ---------------------

@pytest.mark.parametrize("version", ["v1.99.0", "v1.33.9", "v1.38.0", "v2.35.0"])
def test_version_outside_the_offline_range(version):
    with pytest.raises(VersionError) as err:
        check_offline_buildable(KubeVersion.parse(version))
    assert str(err.value).startswith(f"offline builds support v1.34-v1.37; {version} is not one")
    assert "--kubernetes-version" in str(err.value) and "--mode online" in str(err.value)


@pytest.mark.parametrize("version", ["v1.34.0", "v1.35.4", "v1.37.2"])
def test_versions_in_the_offline_range(version):
    check_offline_buildable(KubeVersion.parse(version))


def test_version_the_module_proxy_does_not_serve():
    served = ["v1.13.0", "v1.36.3", "v1.37.0", "v1.37.2"]
    check_offline_buildable(KubeVersion.parse("v1.37.2"), served)
    with pytest.raises(VersionError) as err:
        check_offline_buildable(KubeVersion.parse("v1.37.99"), served)
    assert "k8s.io/kubernetes v1.37.99 is not served by the Go module proxy" in str(err.value)
    assert "v1.37.0, v1.37.2" in str(err.value)
    with pytest.raises(VersionError, match=r"serves in v1.34-v1.37: v1.36.3, v1.37.0, v1.37.2"):
        check_offline_buildable(KubeVersion.parse("v1.35.1"), served)


def test_bring_up_checks_the_version_before_any_long_step(monkeypatch, offline_engine):
    monkeypatch.setattr(versions, "served_kubernetes_versions", _must_not_run("go list"))
    with pytest.raises(VersionError, match="support v1.34-v1.37; v1.99.0 is not one"):
        provision.bring_up(provision.Options(name="unit", mode="offline",
                                             kubernetes_version="v1.99.0"))


def test_bring_up_asks_the_proxy_only_when_not_cached(monkeypatch, tmp_path, offline_engine):
    monkeypatch.setenv("SECCTX_CACHE", str(tmp_path))
    asked = []
    monkeypatch.setattr(versions, "served_kubernetes_versions",
                        lambda: asked.append(1) or ["v1.37.2"])
    with pytest.raises(VersionError, match="v1.37.99 is not served"):
        versions.check_offline_version(KubeVersion.parse("v1.37.99"))
    assert asked == [1]
    bin_dir = tmp_path / "kubernetes" / "v1.37.2" / "bin"
    bin_dir.mkdir(parents=True)
    for command in gobuild.KUBERNETES_COMMANDS:
        (bin_dir / command).write_text("")
    versions.check_offline_version(KubeVersion.parse("v1.37.2"))
    assert asked == [1]  # cached binaries: no need to ask


def test_unknown_proxy_answer_does_not_block(monkeypatch, tmp_path):
    monkeypatch.setenv("SECCTX_CACHE", str(tmp_path))
    monkeypatch.setattr(versions, "served_kubernetes_versions", lambda: None)
    versions.check_offline_version(KubeVersion.parse("v1.36.3"))  # the build will tell


@pytest.fixture
def no_node_image_build(monkeypatch):
    monkeypatch.setattr(nodeimage.docker, "image_label", lambda tag, label=None: None)
    monkeypatch.setattr(nodeimage, "build_kubernetes", _must_not_run("the Kubernetes build"))


def test_node_image_build_checks_the_range_first(no_node_image_build):
    with pytest.raises(VersionError, match="v1.99.0 is not one"):
        nodeimage.build(KubeVersion.parse("v1.99.0"))


def test_cli_node_image_with_an_unsupported_version(no_node_image_build, capsys):
    assert cli.main(["node-image", "--kubernetes-version", "v1.99.0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["secctx: offline builds support v1.34-v1.37; v1.99.0 is not one. Choose a "
                   "version in that range with --kubernetes-version, or use --mode online "
                   "(kindest/node images)"]


def test_offline_minors_constant_is_the_documented_range():
    assert gomod.OFFLINE_MINORS == (34, 37)


# -- 10. a permission the API server refuses (RBAC) -------------------------------
# Bodies and the WebSocket client's reason as a v1.37 API server sent them, to a
# ServiceAccount `limited` bound to a Role with `get, list pods` only.

def _body(message: str, details: str) -> str:
    return ('{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":'
            f'{json.dumps(message)},"reason":"Forbidden","details":{details},"code":403}}\n')


USER = "system:serviceaccount:rbac-scratch:limited"
PROXY_BODY = _body(f'nodes "secctx-rbac-control-plane" is forbidden: User "{USER}" cannot get '
                   'resource "nodes/proxy" in API group "" at the cluster scope',
                   '{"name":"secctx-rbac-control-plane","kind":"nodes"}')
CONFIGMAP_BODY = _body(f'configmaps is forbidden: User "{USER}" cannot create resource "configmaps" '
                       'in API group "" in the namespace "rbac-scratch"', '{"kind":"configmaps"}')
STORAGECLASS_BODY = _body(f'storageclasses.storage.k8s.io is forbidden: User "{USER}" cannot create '
                          'resource "storageclasses" in API group "storage.k8s.io" at the cluster '
                          'scope', '{"group":"storage.k8s.io","kind":"storageclasses"}')
PSA_BODY = _body('pods "priv" is forbidden: violates PodSecurity "restricted:latest": privileged '
                 '(container "c" must not set securityContext.privileged=true)',
                 '{"name":"priv","kind":"pods"}')
HEADERS = ("{'audit-id': '9f67d821-faac-4504-a7f8-532862121190', 'cache-control': 'no-cache, "
           "private', 'content-type': 'application/json', 'content-length': '325'}")
EXEC_GET_REFUSED = (f"Handshake status 403 Forbidden -+-+- {HEADERS} -+-+- " + _body(
    f'pods "sleeper" is forbidden: User "{USER}" cannot get resource "pods/exec" in API group "" '
    'in the namespace "rbac-scratch"', '{"name":"sleeper","kind":"pods"}'))
# With `get pods/exec` granted and `create` not: the upgrade's extra check gives no reason.
EXEC_CREATE_REFUSED = (f"Handshake status 403 Forbidden -+-+- {HEADERS} -+-+- "
                       + _body('pods "sleeper" is forbidden: ', '{"name":"sleeper","kind":"pods"}'))
GRANT = "grant it: see deploy/rbac.yaml"


def _refused(body: str, status: int = 403) -> ApiException:
    err = ApiException(status=status, reason="Forbidden")
    err.body = body
    return err


@pytest.mark.parametrize("body, line", [
    (PROXY_BODY, f"permission missing: {USER} cannot get nodes/proxy at the cluster scope; {GRANT}"),
    (CONFIGMAP_BODY, f"permission missing: {USER} cannot create configmaps in namespace "
                     f"rbac-scratch; {GRANT}"),
    (STORAGECLASS_BODY, f"permission missing: {USER} cannot create storageclasses in API group "
                        f"storage.k8s.io at the cluster scope; {GRANT}"),
])
def test_a_refused_permission_names_verb_resource_scope_and_the_fix(body, line):
    assert errors.denial(_refused(body)).message() == line


def test_admission_refusals_are_no_missing_permission():
    """Pod Security Admission (and webhooks) refuse with 403 too: a result to judge."""
    assert errors.denial(_refused(PSA_BODY)) is None
    assert errors.denial(_refused(PROXY_BODY, status=404)) is None


def test_a_refusal_inside_a_failed_apply_or_a_chain_is_found():
    failed = FailToCreateError([_refused(CONFIGMAP_BODY)])
    assert errors.denial(failed).verb == "create"
    try:
        try:
            raise _refused(PROXY_BODY)
        except ApiException:
            raise RuntimeError("while reading node facts")  # noqa: B904 - the chain is the point
    except RuntimeError as chained:
        assert errors.denial(chained).resource == "nodes/proxy"
    assert errors.denial(FailToCreateError([_refused(PSA_BODY)])) is None


def test_a_refused_exec_handshake_names_the_verb_the_server_checked():
    get = kube.handshake_refusal(ApiException(status=0, reason=EXEC_GET_REFUSED), "rbac-scratch")
    assert (get.status, json.loads(get.body)["code"]) == (403, 403)
    assert errors.denial(get).message() == (
        f"permission missing: {USER} cannot get pods/exec in namespace rbac-scratch; {GRANT}")
    create = kube.handshake_refusal(ApiException(status=0, reason=EXEC_CREATE_REFUSED),
                                    "rbac-scratch")
    assert errors.denial(create).message() == (
        "permission missing: the user of --kubeconfig cannot create pods/exec in namespace "
        "rbac-scratch (exec is a WebSocket GET, which the API server also authorizes as create); "
        f"{GRANT}")
    other = ApiException(status=0, reason="Connection to remote host was lost.")
    assert kube.handshake_refusal(other, "x") is other


def test_permissions_turns_a_refusal_into_one_line_and_lets_the_rest_through():
    with pytest.raises(errors.PermissionMissing) as stopped:
        with errors.permissions():
            raise FailToCreateError([_refused(CONFIGMAP_BODY)])
    assert str(stopped.value) == (f"INFRASTRUCTURE: permission missing: {USER} cannot create "
                                  f"configmaps in namespace rbac-scratch; {GRANT}")
    assert not stopped.value.pytrace
    with pytest.raises(ApiException):
        with errors.permissions():
            raise _refused(PSA_BODY)


def test_set_up_refused_a_permission_ends_with_the_same_line(tmp_path):
    with pytest.raises(errors.PermissionMissing) as stopped:
        with boundary.infrastructure(tmp_path, "suite set-up on the cluster failed"):
            raise _refused(PROXY_BODY)
    assert str(stopped.value) == ("INFRASTRUCTURE: suite set-up on the cluster failed: permission "
                                  f"missing: {USER} cannot get nodes/proxy at the cluster scope; "
                                  f"{GRANT}")
    assert (tmp_path / "categories.json").is_file()  # the report files it under Infrastructure
    # A 403 that is no authorizer's refusal keeps the general message.
    with pytest.raises(pytest.fail.Exception) as other:
        with boundary.infrastructure(None):
            raise _refused(PSA_BODY)
    assert not isinstance(other.value, errors.PermissionMissing)
    assert "the API server refused a request (403 Forbidden" in str(other.value)



def test_a_refused_permission_stops_the_run_at_its_one_line(pytester):
    """Three tests would be refused the same: the first shows the line, the run stops."""
    pytester.makepyfile(f"""
        from kubernetes.client.rest import ApiException

        def refused():
            err = ApiException(status=403, reason="Forbidden")
            err.body = {CONFIGMAP_BODY!r}
            raise err

        def test_passes():
            pass

        def test_call_refused():
            refused()

        def test_never_runs():
            refused()
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rA")
    lines = [ln for ln in result.outlines if ln.startswith("INFRASTRUCTURE: ")]
    assert lines == [f"INFRASTRUCTURE: permission missing: {USER} cannot create configmaps in "
                     f"namespace rbac-scratch; {GRANT}"], result.outlines
    result.assert_outcomes(passed=1, failed=1)
    assert "test_never_runs" not in result.stdout.str()
    assert "run stopped at the first INFRASTRUCTURE error" in result.stdout.str()
    # Only an INFRASTRUCTURE error failed (test_passes passed): exit 6, not 1 (secctx.core.exitcodes).
    assert result.ret == exitcodes.INFRASTRUCTURE_ERROR and "Traceback" not in result.stdout.str()


def test_a_failed_set_up_stops_the_run_at_its_one_line(pytester):
    """A session fixture's INFRASTRUCTURE error: one error, not one per test."""
    pytester.makepyfile("""
        import pytest
        from secctx.run.boundary import infrastructure
        from secctx.cluster.kind import ClusterError

        @pytest.fixture(scope="session")
        def cluster():
            with infrastructure(None):
                raise ClusterError("kind create cluster failed: no node image; pull it")

        def test_one(cluster):
            pass

        def test_two(cluster):
            pass
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rA")
    lines = [ln for ln in result.outlines if ln.startswith("INFRASTRUCTURE: ")]
    assert lines == ["INFRASTRUCTURE: kind create cluster failed: no node image; pull it"]
    result.assert_outcomes(errors=1)
    assert "test_two" not in result.stdout.str()
