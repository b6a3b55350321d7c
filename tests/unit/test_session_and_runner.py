"""The pure parts of a run: what set-up prepares on the node, what tear-down deletes
and waits for, how a case's objects are prepared, and what the report redacts."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from secctx import report
from secctx.cases import load_cases
from secctx.core.paths import CASES
from secctx.images.imagemap import ImageMap
from secctx.run import runner, session


def ns(name, phase="Active", deleting=False):
    return SimpleNamespace(metadata=SimpleNamespace(name=name, deletion_timestamp="now" if deleting else None),
                           status=SimpleNamespace(phase=phase))


def pv(name, deleting, claim_namespace=None):
    claim = SimpleNamespace(namespace=claim_namespace) if claim_namespace else None
    return SimpleNamespace(metadata=SimpleNamespace(name=name, deletion_timestamp="now" if deleting else None),
                           spec=SimpleNamespace(claim_ref=claim))


def test_local_volume_plan_names_each_directory_once_per_worker():
    dirs, prepared, script = session.local_volume_plan("0123456789abcdef", "gw1", 2)
    assert dirs == ["0123456789ab-gw1-0", "0123456789ab-gw1-1"]
    assert set(prepared) == {name for name, _ in session.PREPARED_VOLUMES}
    for d in dirs:
        assert f"mkdir -p /host/local-pv/{d} && chmod 0777 /host/local-pv/{d}" in script
    # The prepared volumes hold a group-0 file under a root of the volume's gid, setgid.
    differs = prepared["root-differs"]
    assert (f"chgrp 0 /host/local-pv/{differs} && chmod 2775 /host/local-pv/{differs} && "
            f"touch /host/local-pv/{differs}/preexisting") in script
    other, _, _ = session.local_volume_plan("0123456789abcdef", "gw2", 2)
    assert not set(dirs) & set(other), "two workers never share a directory"


def test_leftover_namespaces_spare_the_kept_and_the_terminating():
    listed = [ns("a"), ns("kept"), ns("going", phase="Terminating")]
    assert session.leftover_namespaces(listed, kept={"kept"}) == ["a"]


def test_being_deleted_skips_pvs_bound_in_a_namespace_that_stays():
    items = [pv("free", True), pv("bound-kept", True, "kept-ns"), pv("bound-going", True, "gone"),
             pv("alive", False)]
    assert session.being_deleted(items, "persistentvolume", {"kept-ns"}) == {"free", "bound-going"}
    assert session.being_deleted([ns("x", deleting=True), ns("y")], "namespace", set()) == {"x"}


def suite_with(mode: str):
    return SimpleNamespace(image_map=ImageMap.load(mode))


def test_prepare_objects_maps_images_and_puts_claims_on_the_local_class():
    cases, errors = load_cases([CASES])
    assert not errors
    case = next(c for c in cases if c.name == "fsgroup-demo")
    objects = runner.prepare_objects(case, suite_with("offline"), "local")
    claims = [o for o in objects if o["kind"] == "PersistentVolumeClaim"]
    assert claims and all(c["spec"]["storageClassName"] == session.LOCAL_CLASS for c in claims)
    pod = next(o for o in objects if o["kind"] == "Pod")
    assert all(c["imagePullPolicy"] == "Never" for c in pod["spec"]["containers"])
    assert case.objects[0] is not objects[0], "the case's own objects are not changed"
    default = runner.prepare_objects(case, suite_with("offline"), "default")
    assert all("storageClassName" not in o.get("spec", {}) or
               o["spec"]["storageClassName"] != session.LOCAL_CLASS for o in default)


def test_image_pairs_show_every_mapped_container_image():
    original = {"kind": "Deployment", "spec": {"template": {"spec": {
        "initContainers": [{"name": "i", "image": "busybox:1.36"}],
        "containers": [{"name": "c", "image": "nginx:1.25"}]}}}}
    mapped = ImageMap("offline", {"busybox:1.36": "b:1", "nginx:1.25": "n:1"}).rewrite(original)
    assert runner._image_pairs(original, mapped) == [("busybox:1.36", "b:1"), ("nginx:1.25", "n:1")]
    assert runner._image_pairs({"kind": "ConfigMap", "data": {}}, {"kind": "ConfigMap"}) == []


def test_redact_blanks_secret_data_and_credentials_everywhere():
    secret = {"kind": "Secret", "data": {"password": "c2VjcmV0"}, "stringData": {"k": "v"},
              "metadata": {"name": "s"}}
    pod = {"kind": "Pod", "spec": {"containers": [{"env": [{"name": "X", "token": "abc"}]}]},
           "users": [{"user": {"client-key-data": "LS0t", "certificate-authority-data": "LS0t"}}]}
    assert report.redact(secret)["data"] == {"password": "<redacted>"}
    assert report.redact(secret)["stringData"] == {"k": "<redacted>"}
    out = report.redact(pod)
    assert out["spec"]["containers"][0]["env"][0] == {"name": "X", "token": "<redacted>"}
    assert out["users"][0]["user"] == {"client-key-data": "<redacted>",
                                       "certificate-authority-data": "<redacted>"}
    assert pod["spec"]["containers"][0]["env"][0]["token"] == "abc", "the input is not changed"


def test_the_case_files_ship_with_the_package():
    assert CASES.is_dir() and (CASES / "README.md").is_file()
    assert Path(session.__file__).parents[1].name == "secctx"


def test_an_images_config_user_comes_from_the_nodes_image_store_first(monkeypatch):
    from secctx.images import docker
    from secctx.oracle.nodefacts import Environment
    env = Environment(per_node={"n1": {"image_users": {"a:1": "app", "b:1": ""}}})
    suite = session.Suite(kube=None, cluster=None, run_id="r", env=env)
    monkeypatch.setattr(docker, "config_user", lambda image: f"engine's {image}")
    assert suite.image_user("a:1", "n1") == "app"
    assert suite.image_user("b:1", "n1") == ""  # read there: no USER, not "unknown"
    # not in that node's store (or another node): the local engine's copy, if any
    assert suite.image_user("c:1", "n1") == "engine's c:1"
    assert suite.image_user("a:1", "n2") == "engine's a:1"
