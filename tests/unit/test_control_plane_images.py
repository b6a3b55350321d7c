"""ControlPlaneImages from `kubeadm config images list`, and the etcd/Go component recipes."""
import pytest

from secctx.images.build import ControlPlaneImages
from secctx.offline.components import COMPONENTS, GoComponent, etcd
from secctx.offline.gobuild import BuildError

# Exact stdout of `kubeadm config images list --kubernetes-version v1.37.2`.
KUBEADM_LIST = """\
registry.k8s.io/kube-apiserver:v1.37.2
registry.k8s.io/kube-controller-manager:v1.37.2
registry.k8s.io/kube-scheduler:v1.37.2
registry.k8s.io/kube-proxy:v1.37.2
registry.k8s.io/coredns/coredns:v1.14.6
registry.k8s.io/pause:3.10.2
registry.k8s.io/etcd:3.7.0-0
"""


def test_from_kubeadm_list():
    images = ControlPlaneImages.from_kubeadm_list(KUBEADM_LIST.splitlines())
    assert images == ControlPlaneImages(
        apiserver="registry.k8s.io/kube-apiserver:v1.37.2",
        controller_manager="registry.k8s.io/kube-controller-manager:v1.37.2",
        scheduler="registry.k8s.io/kube-scheduler:v1.37.2",
        proxy="registry.k8s.io/kube-proxy:v1.37.2",
        etcd="registry.k8s.io/etcd:3.7.0-0",
        coredns="registry.k8s.io/coredns/coredns:v1.14.6",
        pause="registry.k8s.io/pause:3.10.2",
    )


def test_from_kubeadm_list_tolerates_blank_lines_and_whitespace():
    lines = ["", *(f"  {ln}\r" for ln in KUBEADM_LIST.splitlines()), "   ", ""]
    assert (ControlPlaneImages.from_kubeadm_list(lines)
            == ControlPlaneImages.from_kubeadm_list(KUBEADM_LIST.splitlines()))


def test_all_lists_every_image_once():
    images = ControlPlaneImages.from_kubeadm_list(KUBEADM_LIST.splitlines())
    assert images.all() == [
        "registry.k8s.io/kube-apiserver:v1.37.2",
        "registry.k8s.io/kube-controller-manager:v1.37.2",
        "registry.k8s.io/kube-scheduler:v1.37.2",
        "registry.k8s.io/kube-proxy:v1.37.2",
        "registry.k8s.io/etcd:3.7.0-0",
        "registry.k8s.io/coredns/coredns:v1.14.6",
        "registry.k8s.io/pause:3.10.2",
    ]
    assert sorted(images.all()) == sorted(KUBEADM_LIST.split())


@pytest.mark.parametrize("image, tag", [
    ("registry.k8s.io/etcd:3.7.0-0", "3.7.0-0"),
    ("registry.k8s.io/coredns/coredns:v1.14.6", "v1.14.6"),
    ("registry.k8s.io/pause:3.10.2", "3.10.2"),
    ("registry.k8s.io/kube-apiserver:v1.37.2", "v1.37.2"),
    ("localhost:5000/pause:3.10.2", "3.10.2"),  # registry with a port
])
def test_tag_of(image, tag):
    assert ControlPlaneImages.tag_of(image) == tag


@pytest.mark.parametrize("missing", ["kube-apiserver", "kube-controller-manager", "kube-scheduler",
                                     "kube-proxy", "coredns", "pause", "etcd"])
def test_missing_image_is_a_build_error(missing):
    lines = [ln for ln in KUBEADM_LIST.splitlines() if f"/{missing}:" not in ln]
    assert len(lines) == 6
    with pytest.raises(BuildError) as err:
        ControlPlaneImages.from_kubeadm_list(lines)
    assert missing in str(err.value)


def test_empty_list_is_a_build_error():
    with pytest.raises(BuildError):
        ControlPlaneImages.from_kubeadm_list([])


# -- components --------------------------------------------------------------

def test_etcd_component_from_kubeadm_tag():
    c = etcd("3.7.0-0")
    assert c.name == "etcd"
    assert c.module == "go.etcd.io/etcd/server/v3"
    assert c.version == "v3.7.0"
    assert c.packages == (".",)
    assert c.binary_name(".") == "etcd"
    assert not c.cgo


def test_etcd_component_from_image_of_etcd_tag():
    tag = ControlPlaneImages.tag_of("registry.k8s.io/etcd:3.7.0-0")
    assert etcd(tag).version == "v3.7.0"
    assert etcd("v3.6.8").version == "v3.6.8"


def test_binary_name_root_package_uses_root_binary_or_component_name():
    runc = GoComponent("runc", "github.com/opencontainers/runc", "v1.4.3", (".",))
    assert runc.binary_name(".") == "runc"
    named = GoComponent("etcd", "go.etcd.io/etcd/server/v3", "v3.7.0", (".",),
                        root_binary="etcd-server")
    assert named.binary_name(".") == "etcd-server"


def test_binary_name_subpackage_is_the_last_path_element():
    containerd = COMPONENTS["containerd"]
    assert containerd.binary_name("cmd/ctr") == "ctr"
    assert containerd.binary_name("cmd/containerd-shim-runc-v2") == "containerd-shim-runc-v2"
    # root_binary only applies to the module root.
    assert etcd("3.7.0-0").binary_name("cmd/ctr") == "ctr"
    assert COMPONENTS["cni-plugins"].binary_name("plugins/ipam/host-local") == "host-local"
