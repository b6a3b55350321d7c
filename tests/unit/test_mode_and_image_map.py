"""secctx.cluster.mode.detect (no network, no Docker) and secctx.images.imagemap."""
import copy
import json

import pytest
import yaml

from secctx.cluster import mode
from secctx.images.imagemap import DEFAULT_MAP, ImageMap, ImageMapError, registry_problem, split_reference

NODE_IMAGE = "kindest/node:v1.37.0"


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No mode override, not in CI, and a HOME without Docker credentials."""
    for var in ("SECCTX_MODE", "GITHUB_ACTIONS", "DOCKER_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    return home


def _never(tag):
    return False


def _write_docker_config(directory, config):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(config))


# -- mode.detect -------------------------------------------------------------

def test_nothing_means_offline_with_a_hint(clean_env):
    seen = []
    chosen, why = mode.detect("auto", {}, lambda tag: seen.append(tag) or False)
    assert chosen == mode.OFFLINE
    assert "--mode online" in why
    assert seen == [NODE_IMAGE]  # asked about the tag, without the digest


@pytest.mark.parametrize("requested", [mode.ONLINE, mode.OFFLINE])
def test_explicit_mode_wins_over_every_sign(clean_env, monkeypatch, requested):
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("SECCTX_MODE", "offline" if requested == mode.ONLINE else "online")
    _write_docker_config(clean_env / ".docker", {"auths": {"https://index.docker.io/v1/": {}}})
    info = {"RegistryConfig": {"Mirrors": ["https://mirror.example/"]}}
    chosen, why = mode.detect(requested, info, lambda tag: True)
    assert chosen == requested
    assert "--mode" in why


@pytest.mark.parametrize("value", [mode.ONLINE, mode.OFFLINE])
def test_secctx_mode_env_overrides_auto(clean_env, monkeypatch, value):
    monkeypatch.setenv("SECCTX_MODE", value)
    if value == mode.OFFLINE:
        monkeypatch.setenv("GITHUB_ACTIONS", "true")  # would otherwise pick online
    chosen, why = mode.detect("auto", {}, _never)
    assert chosen == value
    assert "SECCTX_MODE" in why


def test_github_actions_means_online(clean_env, monkeypatch):
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    assert mode.detect("auto", {}, _never) == (mode.ONLINE, "running in GitHub Actions")


def test_github_actions_other_value_is_not_a_sign(clean_env, monkeypatch):
    monkeypatch.setenv("GITHUB_ACTIONS", "false")
    assert mode.detect("auto", {}, _never)[0] == mode.OFFLINE


def test_docker_config_dir_with_auths_means_online(clean_env, monkeypatch, tmp_path):
    cfg = tmp_path / "docker-config"
    _write_docker_config(cfg, {"auths": {"ghcr.io": {"auth": "eDp5"}}})
    monkeypatch.setenv("DOCKER_CONFIG", str(cfg))
    chosen, why = mode.detect("auto", {}, _never)
    assert chosen == mode.ONLINE
    assert "credentials" in why


@pytest.mark.parametrize("config", [{"credsStore": "desktop"},
                                    {"credHelpers": {"gcr.io": "gcloud"}}])
def test_docker_credential_helpers_mean_online(clean_env, monkeypatch, tmp_path, config):
    cfg = tmp_path / "docker-config"
    _write_docker_config(cfg, config)
    monkeypatch.setenv("DOCKER_CONFIG", str(cfg))
    assert mode.detect("auto", {}, _never)[0] == mode.ONLINE


def test_home_docker_config_is_read_without_docker_config_env(clean_env):
    _write_docker_config(clean_env / ".docker", {"auths": {"registry.example": {}}})
    assert mode.detect("auto", {}, _never)[0] == mode.ONLINE


@pytest.mark.parametrize("content", [
    json.dumps({"auths": {}}),
    json.dumps({"psFormat": "table"}),
    "{not json",
    "",
])
def test_docker_config_without_credentials_is_not_a_sign(clean_env, monkeypatch, tmp_path,
                                                          content):
    cfg = tmp_path / "docker-config"
    cfg.mkdir()
    (cfg / "config.json").write_text(content)
    monkeypatch.setenv("DOCKER_CONFIG", str(cfg))
    assert mode.detect("auto", {}, _never)[0] == mode.OFFLINE


def test_docker_config_env_takes_precedence_over_home(clean_env, monkeypatch, tmp_path):
    _write_docker_config(clean_env / ".docker", {"auths": {"registry.example": {}}})
    empty = tmp_path / "empty-docker-config"
    empty.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(empty))
    assert mode.detect("auto", {}, _never)[0] == mode.OFFLINE


def test_registry_mirrors_mean_online(clean_env):
    info = {"RegistryConfig": {"Mirrors": ["https://mirror.gcr.io/"]}}
    chosen, why = mode.detect("auto", info, _never)
    assert chosen == mode.ONLINE
    assert "mirrors" in why


@pytest.mark.parametrize("info", [{}, {"RegistryConfig": None}, {"RegistryConfig": {}},
                                  {"RegistryConfig": {"Mirrors": []}},
                                  {"RegistryConfig": {"Mirrors": None}}])
def test_no_mirrors_is_not_a_sign(clean_env, info):
    assert mode.detect("auto", info, _never)[0] == mode.OFFLINE


def test_present_node_image_means_online(clean_env):
    chosen, why = mode.detect("auto", {}, lambda tag: tag == NODE_IMAGE)
    assert chosen == mode.ONLINE
    assert "kindest/node" in why


def test_online_node_image_is_a_published_tag_pinned_where_known_else_built_by_kind():
    assert mode.online_node_image(None) == (mode.KIND_DEFAULT_NODE_IMAGE, False)
    assert mode.online_node_image("v1.37.0") == (mode.KIND_DEFAULT_NODE_IMAGE, False)
    assert mode.online_node_image("v1.36.4") == ("kindest/node:v1.36.4", False)
    # no published tag: kind build node-image --type release, cached under our name
    assert mode.online_node_image("v1.36.1") == ("secctx.local/kindest-node:v1.36.1", True)


@pytest.mark.parametrize("minor, newest", [("v1.36", "v1.36.4"), ("v1.34", "v1.34.11"),
                                           ("v1.33", None)])
def test_a_minor_resolves_online_to_its_newest_published_patch(minor, newest):
    assert mode.newest_published(minor) == newest


def test_a_minor_resolves_offline_to_the_newest_release_the_proxy_serves():
    from secctx.cluster.versions import newest_release
    served = ["v1.36.0", "v1.36.10", "v1.36.3", "v1.36.4-rc.0", "v1.37.1", "v1.3.6"]
    assert newest_release(served, "v1.36") == "v1.36.10"
    assert newest_release(served, "v1.35") is None


def test_a_full_version_is_taken_as_asked():
    from secctx.cluster.versions import resolve
    assert str(resolve("v1.36.3", "offline")[0]) == "v1.36.3"
    assert resolve("1.36", "online")[0] == resolve("v1.36.4", "online")[0]
    assert mode.KIND_DEFAULT_NODE_IMAGE.startswith(NODE_IMAGE + "@sha256:")


# -- the image map of an existing cluster ------------------------------------

@pytest.mark.parametrize("requested, env, expected", [
    ("offline", None, mode.OFFLINE),
    ("online", None, mode.ONLINE),
    ("auto", None, mode.ONLINE),
    ("auto", "offline", mode.OFFLINE),  # SECCTX_MODE stands in for --mode
    ("online", "offline", mode.ONLINE),  # an explicit --mode wins
])
def test_existing_cluster_map_mode(clean_env, monkeypatch, requested, env, expected):
    if env:
        monkeypatch.setenv("SECCTX_MODE", env)
    chosen, why = mode.existing_cluster_map_mode(requested)
    assert chosen == expected and why
    if chosen == mode.OFFLINE:
        assert "already be on" in why and "imagePullPolicy: Never" in why
    else:
        assert "--mode offline" in why


@pytest.mark.parametrize("requested, expected", [
    ("offline", "offline"), ("online", "online"), ("auto", "online")])
def test_existing_cluster_honours_mode_offline(clean_env, monkeypatch, tmp_path,
                                               requested, expected):
    """--existing-cluster --mode offline: offline names and imagePullPolicy Never;
    online/auto: the online map. One log line says which and why; the record
    shared by pytest-xdist workers keeps the choice."""
    from secctx.cluster import existing, provision
    from secctx.cluster.shared import SharedCluster
    from secctx.offline import log
    lines: list[str] = []
    monkeypatch.setattr(log, "_sink", lines.append)  # progress lines, as the terminal gets them
    monkeypatch.setattr(existing, "check_kubeconfig", lambda path, context: "https://127.0.0.1:1")
    monkeypatch.setattr(existing, "preflight_api", lambda path, context, server: "v1.37.2")
    opts = provision.Options(existing_kubeconfig=tmp_path / "kubeconfig", mode=requested)
    cluster = SharedCluster(tmp_path / "state", "run1").acquire(opts)
    assert cluster.mode == "existing" and cluster.kind is None
    assert cluster.image_map.mode == expected
    assert cluster.image_map == ImageMap.load(expected)
    pod = cluster.image_map.rewrite({"kind": "Pod", "spec": {"containers": [
        {"name": "c", "image": "busybox:1.36"}]}})["spec"]["containers"][0]
    assert pod["image"] == ImageMap.load(expected).resolve("busybox:1.36")
    assert (pod.get("imagePullPolicy") == "Never") == (expected == "offline")
    said = [ln for ln in lines if "image map:" in ln]
    assert len(said) == 1 and f"image map: {expected} (" in said[0]
    # A second worker reads the record: the same map.
    other = SharedCluster(tmp_path / "state", "run1").acquire(opts)
    assert other.image_map == cluster.image_map


# -- ImageMap ----------------------------------------------------------------

RECIPE_REFS = ["nginx:1.25", "busybox:1.36", "nicolaka/netshoot:latest", "myapp:1.0",
               "secctx/nginx-user1000:1.25"]
# The suite's own test images: built here offline, published under SUITE_REGISTRY online.
TEST_IMAGE_REFS = {"secctx/identity:named-user": "identity:named-user",
                   "secctx/identity:uid-with-passwd": "identity:uid-with-passwd",
                   "secctx/identity:uid-gid": "identity:uid-gid",
                   "secctx/identity:root-in-wheel": "identity:root-in-wheel",
                   "secctx/escalation:1": "escalation:1"}


def test_load_default_map_online():
    m = ImageMap.load("online")
    assert m.mode == "online"
    assert sorted(m.entries) == sorted(RECIPE_REFS + list(TEST_IMAGE_REFS))
    assert m.resolve("nginx:1.25") == "docker.io/library/nginx:1.25"
    assert m.resolve("busybox:1.36") == "docker.io/library/busybox:1.36"
    assert m.resolve("nicolaka/netshoot:latest") == "docker.io/nicolaka/netshoot:latest"
    assert m.resolve("myapp:1.0") == "ghcr.io/secctx-conformance/myapp:1.0"
    assert m.resolve("secctx/nginx-user1000:1.25") == "ghcr.io/secctx-conformance/nginx-user1000:1.25"


def test_load_default_map_offline():
    m = ImageMap.load("offline")
    assert m.mode == "offline"
    assert sorted(m.entries) == sorted(RECIPE_REFS + list(TEST_IMAGE_REFS))
    assert m.resolve("nginx:1.25") == "secctx.local/standin/nginx:1.22-bookworm"
    assert m.resolve("busybox:1.36") == "secctx.local/standin/busybox:1.35-bookworm"
    assert m.resolve("nicolaka/netshoot:latest") == "secctx.local/standin/netshoot:bookworm"
    assert m.resolve("myapp:1.0") == "secctx.local/myapp:1.0"
    assert (m.resolve("secctx/nginx-user1000:1.25")
            == "secctx.local/standin/nginx-user1000:1.22-bookworm")
    assert all(v.startswith("secctx.local/") for v in m.entries.values())


def test_offline_names_match_the_images_the_builder_tags():
    from secctx.images import build as images
    m = ImageMap.load("offline")
    assert set(m.local_images()) == {images.BUSYBOX, images.NGINX, images.NETSHOOT,
                                     images.MYAPP, images.NGINX_USER1000,
                                     *images.IDENTITY_IMAGES, images.ESCALATION}


@pytest.mark.parametrize("mode, prefix", [("online", "ghcr.io/secctx-conformance/"),
                                          ("offline", "secctx.local/")])
def test_test_images_are_published_online_and_built_here_offline(mode, prefix):
    m = ImageMap.load(mode)
    for ref, name in TEST_IMAGE_REFS.items():
        assert m.resolve(ref) == prefix + name


def test_the_suite_owns_its_test_images_myapp_and_the_user1000_rebuild_not_the_recipe_images():
    owned = ImageMap.load("online").suite_owned()
    assert sorted(owned.values()) == sorted(["myapp:1.0", "secctx/nginx-user1000:1.25",
                                             *TEST_IMAGE_REFS])
    assert ImageMap.load("offline").suite_owned() == {}


@pytest.mark.parametrize("reference, registry, path", [
    ("busybox:1.36", "docker.io", "library/busybox:1.36"),
    ("nicolaka/netshoot:latest", "docker.io", "nicolaka/netshoot:latest"),
    ("docker.io/library/nginx:1.25", "docker.io", "library/nginx:1.25"),
    ("ghcr.io/secctx-conformance/identity:uid-gid", "ghcr.io", "secctx-conformance/identity:uid-gid"),
    ("localhost/x:1", "localhost", "x:1"),
    ("registry:5000/x:1", "registry:5000", "x:1"),
    ("registry.k8s.io/pause@sha256:abc", "registry.k8s.io", "pause@sha256:abc"),
])
def test_split_reference_like_containerd(reference, registry, path):
    assert split_reference(reference) == (registry, path)


def test_image_registry_keeps_repository_path_and_tag_as_a_mirror_does():
    m = ImageMap.load("online", registry="mirror.example.com:5000/prefix")
    assert m.resolve("busybox:1.36") == "mirror.example.com:5000/prefix/library/busybox:1.36"
    assert (m.resolve("secctx/identity:named-user")
            == "mirror.example.com:5000/prefix/secctx-conformance/identity:named-user")
    assert m.rewrite(POD)["spec"]["containers"][0]["image"].startswith("mirror.example.com:5000/")
    # the suite's own images keep being recognised under the registry
    assert "mirror.example.com:5000/prefix/secctx-conformance/escalation:1" in m.suite_owned()


@pytest.mark.parametrize("value, ok", [
    ("registry.example.com", True), ("localhost:5000/mirror", True), ("kind-registry:5000", True),
    ("http://registry.example.com", False), ("registry.example.com/", False),
    ("registry", False), ("", False),
])
def test_image_registry_values(value, ok):
    assert (registry_problem(value) is None) is ok


def test_unknown_reference_resolves_to_itself():
    assert ImageMap.load("offline").resolve("alpine:3.20") == "alpine:3.20"


def test_extra_map_overrides_one_entry_and_adds_another(tmp_path):
    extra = tmp_path / "map.yaml"
    extra.write_text(yaml.safe_dump({
        "busybox:1.36": {"offline": "registry.local/busybox:1.36"},
        "alpine:3.20": {"online": "docker.io/library/alpine:3.20"},
    }))
    offline = ImageMap.load("offline", extra)
    online = ImageMap.load("online", extra)
    default_offline = ImageMap.load("offline")
    assert offline.resolve("busybox:1.36") == "registry.local/busybox:1.36"
    # The entry's other mode is kept from the default map.
    assert online.resolve("busybox:1.36") == "docker.io/library/busybox:1.36"
    # Untouched entries are unchanged.
    for ref in RECIPE_REFS:
        if ref != "busybox:1.36":
            assert offline.resolve(ref) == default_offline.resolve(ref)
    # A new entry without this mode's image keeps the reference.
    assert online.resolve("alpine:3.20") == "docker.io/library/alpine:3.20"
    assert offline.resolve("alpine:3.20") == "alpine:3.20"


def test_empty_extra_map_changes_nothing(tmp_path):
    extra = tmp_path / "empty.yaml"
    extra.write_text("# nothing\n")
    assert ImageMap.load("offline", extra) == ImageMap.load("offline")


@pytest.mark.parametrize("text", [
    "- nginx:1.25\n- busybox:1.36\n",                       # a list, not a mapping
    "nginx:1.25: docker.io/library/nginx:1.25\n",           # a string, not per-mode
    "nginx:1.25:\n  staging: docker.io/library/nginx:1.25\n",  # no online/offline key
    "nginx:1.25:\n",                                        # null
])
def test_malformed_map_raises(tmp_path, text):
    extra = tmp_path / "bad.yaml"
    extra.write_text(text)
    with pytest.raises(ImageMapError) as err:
        ImageMap.load("offline", extra)
    assert str(extra) in str(err.value)


def test_default_map_file_is_the_fixture():
    assert DEFAULT_MAP.name == "images.yaml"
    assert DEFAULT_MAP.parent.name == "fixtures"
    assert DEFAULT_MAP.is_file()


POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "p"},
    "spec": {
        "initContainers": [{"name": "init", "image": "busybox:1.36"}],
        "containers": [
            {"name": "web", "image": "nginx:1.25", "securityContext": {"runAsUser": 1000}},
            {"name": "other", "image": "alpine:3.20"},
            {"name": "no-image"},
        ],
    },
}

DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "d"},
    "spec": {
        "replicas": 2,
        "template": {
            "metadata": {"labels": {"app": "d"}},
            "spec": {
                "initContainers": [{"name": "init", "image": "busybox:1.36"}],
                "containers": [{"name": "app", "image": "myapp:1.0"},
                               {"name": "debug", "image": "nicolaka/netshoot:latest"}],
            },
        },
    },
}


def test_rewrite_pod_without_mutating_input():
    m = ImageMap.load("offline")
    before = copy.deepcopy(POD)
    out = m.rewrite(POD)
    assert POD == before
    assert out is not POD
    assert out["spec"]["initContainers"][0]["image"] == "secctx.local/standin/busybox:1.35-bookworm"
    web, other, no_image = out["spec"]["containers"]
    assert web["image"] == "secctx.local/standin/nginx:1.22-bookworm"
    assert web["securityContext"] == {"runAsUser": 1000}
    assert other["image"] == "alpine:3.20"
    assert no_image == {"name": "no-image"}
    # Offline, every container with an image must use the node's copy.
    for c in (out["spec"]["initContainers"][0], web, other):
        assert c.pop("imagePullPolicy") == "Never"
    # Everything but the images is unchanged.
    out["spec"]["initContainers"][0]["image"] = "busybox:1.36"
    web["image"] = "nginx:1.25"
    assert out == POD


def test_rewrite_deployment_template_without_mutating_input():
    m = ImageMap.load("online")
    before = copy.deepcopy(DEPLOYMENT)
    out = m.rewrite(DEPLOYMENT)
    assert DEPLOYMENT == before
    spec = out["spec"]["template"]["spec"]
    assert spec["initContainers"][0]["image"] == "docker.io/library/busybox:1.36"
    assert [c["image"] for c in spec["containers"]] == ["ghcr.io/secctx-conformance/myapp:1.0",
                                                        "docker.io/nicolaka/netshoot:latest"]
    assert out["spec"]["replicas"] == 2
    assert out["spec"]["template"]["metadata"] == {"labels": {"app": "d"}}
    # The output does not share containers with the input.
    spec["containers"][0]["image"] = "changed"
    assert DEPLOYMENT == before


def test_rewrite_object_without_pod_spec_is_a_copy():
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
          "data": {"image": "nginx:1.25"}}
    out = ImageMap.load("offline").rewrite(cm)
    assert out == cm and out is not cm


IMAGE_VOLUME_POD = {
    "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "iv"},
    "spec": {"containers": [{"name": "app", "image": "busybox:1.36"}],
             "volumes": [{"name": "img", "image": {"reference": "secctx/identity:named-user",
                                                   "pullPolicy": "IfNotPresent"}},
                         {"name": "scratch", "emptyDir": {}}]},
}


def test_rewrite_maps_image_volumes_and_offline_never_pulls_them():
    out = ImageMap.load("offline").rewrite(IMAGE_VOLUME_POD)
    assert out["spec"]["volumes"][0]["image"] == {"reference": "secctx.local/identity:named-user",
                                                  "pullPolicy": "Never"}
    assert out["spec"]["volumes"][1] == {"name": "scratch", "emptyDir": {}}
    assert IMAGE_VOLUME_POD["spec"]["volumes"][0]["image"]["pullPolicy"] == "IfNotPresent"


def test_rewrite_online_keeps_an_image_volumes_pull_policy():
    (volume, _) = ImageMap.load("online").rewrite(IMAGE_VOLUME_POD)["spec"]["volumes"]
    assert volume["image"] == {"reference": "ghcr.io/secctx-conformance/identity:named-user",
                               "pullPolicy": "IfNotPresent"}


@pytest.mark.parametrize("requested, env, refused", [
    ("offline", None, True), ("auto", "offline", True), ("online", None, False),
    ("auto", None, False)])
def test_image_registry_and_offline_mode_do_not_go_together(monkeypatch, requested, env, refused):
    monkeypatch.delenv("SECCTX_MODE", raising=False)
    if env:
        monkeypatch.setenv("SECCTX_MODE", env)
    problem = mode.registry_problem("registry.example.com", requested, "why")
    assert (problem is not None) is refused
    if refused:
        assert problem.startswith("--image-registry registry.example.com pulls every image")
    assert mode.registry_problem(None, requested, "why") is None
