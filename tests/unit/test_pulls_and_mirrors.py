"""Where the nodes get images: --secctx-registry-mirror in the kind config, the pull
check's reading of container states and its one line, the image store's USER."""
from __future__ import annotations

import json
from types import SimpleNamespace as NS

import pytest

from secctx.cluster import kindconfig
from secctx.kube import pullcheck
from secctx.oracle import nodefacts


def test_a_mirror_without_registry_serves_the_suites_registries_and_its_own_host():
    assert kindconfig.registry_mirrors(["http://kind-registry:5000"]) == {
        "docker.io": "http://kind-registry:5000", "registry.k8s.io": "http://kind-registry:5000",
        "ghcr.io": "http://kind-registry:5000", "kind-registry:5000": "http://kind-registry:5000"}


def test_a_mirror_for_one_registry():
    assert kindconfig.registry_mirrors(["quay.io=https://mirror.example.com/"]) == {
        "quay.io": "https://mirror.example.com"}


@pytest.mark.parametrize("value", ["kind-registry:5000", "ftp://x", "http://", "docker.io="])
def test_a_mirror_that_is_not_a_url_says_how_to_write_one(value):
    with pytest.raises(ValueError, match="http:// or https://HOST"):
        kindconfig.registry_mirrors([value])


def test_mirrors_reach_containerd_through_hosts_files_mounted_into_every_node(tmp_path):
    mirrors = {"docker.io": "http://kind-registry:5000"}
    config = kindconfig.kind_config(name="c", cgroup_v1=False, short_bounding_set=False,
                                    workers=1, mirrors=mirrors, certs_dir=tmp_path)
    assert 'config_path = "/etc/containerd/certs.d"' in config["containerdConfigPatches"][0]
    assert all(n["extraMounts"] == [{"hostPath": str(tmp_path), "readOnly": True,
                                     "containerPath": "/etc/containerd/certs.d"}]
               for n in config["nodes"])
    kindconfig.write_hosts_files(tmp_path, mirrors)
    text = (tmp_path / "docker.io" / "hosts.toml").read_text()
    # the mirror is also the server: an image it lacks is not fetched from the internet
    assert 'server = "http://kind-registry:5000"' in text
    assert '[host."http://kind-registry:5000"]' in text and '"pull", "resolve"' in text


def test_no_mirror_changes_nothing_in_the_kind_config():
    assert "extraMounts" not in str(kindconfig.kind_config(
        name="c", cgroup_v1=False, short_bounding_set=False))


def _status(waiting=None, running=False, terminated=False, message=""):
    state = NS(waiting=NS(reason=waiting, message=message) if waiting else None,
               running=NS() if running else None, terminated=NS() if terminated else None)
    return NS(state=state)


@pytest.mark.parametrize("status, answer", [
    (_status("ErrImagePull"), False), (_status("ImagePullBackOff"), False),
    (_status("ErrImageNeverPull"), False), (_status("InvalidImageName"), False),
    (_status("ContainerCreating"), None),  # still pulling
    (_status(running=True), True), (_status(terminated=True), True),
    (_status("CreateContainerError"), True),  # pulled; it did not start, which is not asked
])
def test_a_container_state_answers_whether_the_node_got_its_image(status, answer):
    assert pullcheck.pulled(status) is answer


@pytest.mark.parametrize("image, policy", [
    ("docker.io/nicolaka/netshoot:latest", "Always"), ("docker.io/nicolaka/netshoot", "Always"),
    ("registry:5000/busybox", "Always"), ("registry:5000/busybox:1.36", "IfNotPresent"),
    ("busybox@sha256:abc", "IfNotPresent"),
])
def test_the_check_pulls_as_a_manifest_without_a_policy_would(image, policy):
    assert pullcheck.default_pull_policy(image) == policy


def test_the_check_pod_is_pinned_to_its_node_and_offline_never_pulls():
    pod = pullcheck.pod("kind-worker", ["a:1", "b"], never_pull=True)
    assert pod["spec"]["nodeName"] == "kind-worker" and pod["spec"]["restartPolicy"] == "Never"
    assert {c["imagePullPolicy"] for c in pod["spec"]["containers"]} == {"Never"}


def test_one_line_names_the_image_the_registry_the_reason_and_the_rest():
    missing = [pullcheck.Unavailable("docker.io/library/busybox:1.36", "n1", "ErrImagePull",
                                     'failed to pull "docker.io/library/busybox:1.36": not found'),
               pullcheck.Unavailable("docker.io/library/nginx:1.25", "n1", "ErrImagePull", "x")]
    line = pullcheck.one_line(missing)
    assert "\n" not in line
    assert line.startswith("node n1 cannot get image docker.io/library/busybox:1.36 from "
                           "docker.io: ErrImagePull: failed to pull")
    assert "(also: docker.io/library/nginx:1.25)" in line and "--secctx-image-registry" in line


def test_one_line_for_an_image_that_must_already_be_on_the_node():
    line = pullcheck.one_line([pullcheck.Unavailable("secctx.local/x:1", "n1",
                                                     "ErrImageNeverPull", "not present")])
    assert "must already be on the nodes" in line


def test_the_image_store_config_user_is_read_per_image_and_unreadable_ones_left_out():
    stdout = ("--- docker.io/library/busybox:1.36\n"
              + json.dumps({"status": {}, "info": {"imageSpec": {"config": {"Cmd": ["sh"]}}}})
              + "\n--- secctx.local/identity:named-user\n"
              + json.dumps({"info": {"imageSpec": {"config": {"User": "app"}}}})
              + "\n--- absent:1\nE1201 no such image\n(not readable)\n")
    assert nodefacts.parse_image_users(stdout) == {"docker.io/library/busybox:1.36": "",
                                                   "secctx.local/identity:named-user": "app"}


def test_rewriting_the_hosts_files_keeps_the_directory_the_nodes_have_mounted(tmp_path):
    kindconfig.write_hosts_files(tmp_path, {"docker.io": "http://a:5000", "quay.io": "http://a:5000"})
    inode = tmp_path.stat().st_ino
    kindconfig.write_hosts_files(tmp_path, {"docker.io": "http://b:5000"})
    assert tmp_path.stat().st_ino == inode
    assert sorted(p.name for p in tmp_path.iterdir()) == ["docker.io"]
    assert "http://b:5000" in (tmp_path / "docker.io" / "hosts.toml").read_text()
