"""secctx.cluster.kindconfig: the kind Cluster configuration as plain data."""
import yaml

from secctx.cluster.kindconfig import dump, host_cgroup_version, kind_config


def _plain(**overrides):
    args = dict(name="secctx", cgroup_v1=False, short_bounding_set=False)
    args.update(overrides)
    return kind_config(**args)


def _patches(config, kind):
    return [p for p in map(yaml.safe_load, config.get("kubeadmConfigPatches", []))
            if p.get("kind") == kind]


def test_plain_config_has_no_patches():
    config = _plain()
    assert config == {
        "kind": "Cluster",
        "apiVersion": "kind.x-k8s.io/v1alpha4",
        "name": "secctx",
        "nodes": [{"role": "control-plane"}],
    }


def test_cgroup_v1_adds_kubelet_patch_with_fail_cgroup_v1_false():
    config = _plain(cgroup_v1=True)
    assert len(config["kubeadmConfigPatches"]) == 1
    assert _patches(config, "KubeletConfiguration") == [
        {"kind": "KubeletConfiguration", "failCgroupV1": False}]
    # Patches are YAML strings, as kind expects.
    assert all(isinstance(p, str) for p in config["kubeadmConfigPatches"])
    assert "containerdConfigPatches" not in config


def test_without_coredns_skip_phases_repeats_preflight():
    config = _plain(coredns=False)
    (patch,) = _patches(config, "InitConfiguration")
    assert patch["skipPhases"] == ["preflight", "addon/coredns"]
    assert _patches(config, "KubeletConfiguration") == []


def test_both_kubeadm_patches():
    config = _plain(cgroup_v1=True, coredns=False)
    kinds = [yaml.safe_load(p)["kind"] for p in config["kubeadmConfigPatches"]]
    assert sorted(kinds) == ["InitConfiguration", "KubeletConfiguration"]


def test_short_bounding_set_restricts_oom_score_adj():
    config = _plain(short_bounding_set=True)
    (patch,) = config["containerdConfigPatches"]
    assert '[plugins."io.containerd.grpc.v1.cri"]' in patch
    assert "restrict_oom_score_adj = true" in patch
    assert "kubeadmConfigPatches" not in config


def test_short_bounding_set_patch_is_valid_toml():
    import tomllib
    (patch,) = _plain(short_bounding_set=True)["containerdConfigPatches"]
    assert tomllib.loads(patch) == {
        "plugins": {"io.containerd.grpc.v1.cri": {"restrict_oom_score_adj": True}}}


def test_workers():
    config = _plain(workers=2)
    assert config["nodes"] == [{"role": "control-plane"}, {"role": "worker"}, {"role": "worker"}]
    assert len(config["nodes"]) == 3


def test_equal_requests_give_equal_configs():
    a = kind_config(name="x", cgroup_v1=True, short_bounding_set=True, coredns=False, workers=1)
    b = kind_config(name="x", cgroup_v1=True, short_bounding_set=True, coredns=False, workers=1)
    assert a == b
    assert a != kind_config(name="x", cgroup_v1=True, short_bounding_set=True, coredns=True,
                            workers=1)


def test_dump_is_yaml_that_round_trips():
    config = kind_config(name="secctx-e2e", cgroup_v1=True, short_bounding_set=True,
                         coredns=False, workers=2)
    text = dump(config)
    assert isinstance(text, str)
    loaded = yaml.safe_load(text)
    assert loaded == config
    assert dump(loaded) == text
    # Key order is kept (sort_keys=False): kind first, as kind's docs write it.
    assert text.startswith("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\n")
    # The embedded patches parse on their own.
    for patch in loaded["kubeadmConfigPatches"]:
        assert isinstance(yaml.safe_load(patch), dict)


def test_host_cgroup_version(tmp_path):
    assert host_cgroup_version(tmp_path) == 1
    (tmp_path / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    assert host_cgroup_version(tmp_path) == 2


def test_host_cgroup_version_missing_root(tmp_path):
    assert host_cgroup_version(tmp_path / "absent") == 1


def test_seccomp_default_sets_the_kubelets_seccompDefault():
    assert _patches(_plain(seccomp_default=True), "KubeletConfiguration") == [
        {"kind": "KubeletConfiguration", "seccompDefault": True}]


def test_seccomp_default_and_cgroup_v1_share_one_kubelet_patch():
    (patch,) = _patches(_plain(cgroup_v1=True, seccomp_default=True), "KubeletConfiguration")
    assert patch == {"kind": "KubeletConfiguration", "failCgroupV1": False, "seccompDefault": True}


def test_a_seccomp_default_config_differs_from_the_plain_one():
    # A kept cluster is reused only with an equal config: the two are not mixed up.
    assert dump(_plain(seccomp_default=True)) != dump(_plain())


def test_crio_points_kubeadm_init_and_join_at_crio_socket():
    """kind's kubeadm config names containerd's socket; a CRI-O node's kubelet must talk
    to CRI-O's (kubeadm writes containerRuntimeEndpoint from nodeRegistration.criSocket)."""
    config = _plain(cri="crio")
    for kind in ("InitConfiguration", "JoinConfiguration"):
        (patch,) = _patches(config, kind)
        assert patch["nodeRegistration"] == {"criSocket": "unix:///var/run/crio/crio.sock"}
    assert "containerdConfigPatches" not in config


def test_crio_on_a_short_bounding_set_gets_no_containerd_patch():
    config = _plain(cri="crio", short_bounding_set=True)
    assert "containerdConfigPatches" not in config  # the capability shim clamps instead


def test_containerd_config_names_no_socket():
    assert _patches(_plain(), "InitConfiguration") == []  # kind's default stays


def test_crio_refuses_registry_mirrors_and_unknown_cri():
    import pytest
    with pytest.raises(ValueError, match="CRI-O node does not read it"):
        _plain(cri="crio", mirrors={"docker.io": "http://m:5000"})
    with pytest.raises(ValueError, match="unknown CRI 'docker'"):
        _plain(cri="docker")
