"""secctx.cluster.vmnode: the pure parts of the VM node (image key, actions, qemu, join)."""
from pathlib import Path

import pytest

from secctx.cluster import vmnode
from secctx.cluster.vmnode import VMNode, VMNodeError


def _key(**over):
    args = dict(node_image_id="sha256:aa", debs=["apparmor_3.0.8-3_amd64.deb",
                                                "linux-image-6.1.0-57-amd64_6.1.192-3_amd64.deb"],
                pieces={"init": b"#!/bin/sh", "build-image.sh": b"set -e"})
    args.update(over)
    return vmnode.image_key(**args)


def test_image_key_is_stable_and_ignores_the_order_of_debs():
    assert _key() == _key(debs=["linux-image-6.1.0-57-amd64_6.1.192-3_amd64.deb",
                                "apparmor_3.0.8-3_amd64.deb"])


@pytest.mark.parametrize("change", [
    dict(node_image_id="sha256:bb"),  # another kind node image: other containerd/kubelet
    dict(debs=["apparmor_3.0.8-3_amd64.deb", "linux-image-6.1.0-58-amd64_6.1.200-1_amd64.deb"]),
    dict(pieces={"init": b"#!/bin/sh -x", "build-image.sh": b"set -e"}),  # a builder edit
])
def test_image_key_changes_with_node_image_kernel_or_builder(change):
    assert _key(**change) != _key()


def test_image_key_changes_with_a_preloaded_image_or_its_digest():
    images = {"secctx.local/myapp:1.0": "sha256:01"}
    assert _key(images=images) != _key()
    assert _key(images=images) != _key(images={"secctx.local/myapp:1.0": "sha256:02"})


def test_image_refs_keep_named_images_with_their_digest_not_kind_loads_import_names():
    ls = ("REF                                   TYPE                                    "
          "DIGEST        SIZE     PLATFORMS   LABELS\n"
          "import-2026-12-07@sha256:39e5 application/vnd.oci.image.index.v1+json sha256:39e5 "
          "100.4 MiB linux/amd64 -\n"
          "secctx.local/myapp:1.0 application/vnd.oci.image.manifest.v1+json sha256:aa11 "
          "7.5 MiB linux/amd64 io.cri-containerd.image=managed\n"
          "sha256:145e application/vnd.oci.image.manifest.v1+json sha256:145e 1.4 MiB "
          "linux/amd64 -\n")
    assert vmnode.image_refs(ls) == {"secctx.local/myapp:1.0": "sha256:aa11"}


def test_every_shell_piece_ships_and_is_keyed():
    lsm_pieces = {name for names in vmnode.LSM_PIECES.values() for name in names}
    assert {p.name for p in vmnode.HERE.iterdir()} == set(vmnode.SHELL_PIECES) | lsm_pieces


def test_each_lsm_keys_its_own_pieces_so_an_selinux_edit_leaves_the_apparmor_image():
    assert "selinux-image.sh" in vmnode._pieces("selinux")
    assert "selinux-image.sh" not in vmnode._pieces("apparmor")


def test_the_selinux_node_adds_the_policy_and_its_module_build_not_apparmor():
    # The kernel is the same; Debian's refpolicy is installed, its source and the
    # module tools only unpacked to build the container module (vm/selinux-image.sh).
    debs = vmnode.debs_of("selinux")
    assert debs[0] == vmnode.KERNEL_DEB
    assert {"selinux-policy-default", "policycoreutils", "selinux-policy-src",
            "selinux-policy-dev", "checkpolicy"} <= set(debs)
    assert "apparmor" not in debs
    assert vmnode.debs_of("apparmor") == (vmnode.KERNEL_DEB, "apparmor", "libapparmor1")


def test_actions_boot_only_after_image_and_tap_and_wait_before_join():
    names = [a.name for a in vmnode.ACTIONS]
    assert names == ["check host", "learn cluster", "build image", "create tap", "boot",
                     "wait for agent", "prepare guest", "load images", "kubeadm join",
                     "wait for Ready"]


def test_a_failed_action_runs_down_and_keeps_its_error(monkeypatch, tmp_path):
    monkeypatch.setenv("SECCTX_CACHE", str(tmp_path))
    downs = []
    monkeypatch.setattr(vmnode, "down", lambda node: downs.append(node.name) or [])

    def learned(node):
        node.control_plane = "c-control-plane"

    def fails(node):
        raise VMNodeError("boot broke")

    actions = (vmnode.Action("learn", learned), vmnode.Action("boot", fails),
               vmnode.Action("never", lambda node: pytest.fail("ran after a failure")))
    with pytest.raises(VMNodeError, match="boot broke"):
        vmnode.up(VMNode("c"), actions)
    assert downs == ["c-vm"]


def test_a_bad_input_failure_before_anything_exists_cleans_nothing(monkeypatch, tmp_path):
    monkeypatch.setenv("SECCTX_CACHE", str(tmp_path))
    monkeypatch.setattr(vmnode, "down", lambda node: pytest.fail("nothing to clean"))
    with pytest.raises(VMNodeError, match="--lsm smack"):
        vmnode.up(VMNode("c", lsm="smack"), (vmnode.Action("check host", vmnode.check_host),))


def test_missing_qemu_is_one_line_naming_the_package(monkeypatch, tmp_path):
    monkeypatch.setenv("SECCTX_CACHE", str(tmp_path))
    monkeypatch.setattr(vmnode.shutil, "which",
                        lambda tool, path=None: None if tool == "qemu-system-x86_64" else tool)
    with pytest.raises(VMNodeError) as err:
        vmnode.check_host(VMNode("c"))
    assert str(err.value) == ("the VM node needs host tools that are missing; "
                              "fix: apt-get install qemu-system-x86")


def _qemu(**over):
    args = dict(name="c-vm", image_dir=Path("/cache/vm/k"), run_dir=Path("/state/vm-node"),
                tap="vmn-1", ip="172.18.254.9", gateway="172.18.0.1", lsm="apparmor",
                machine_uuid="u-1")
    args.update(over)
    return vmnode.qemu_command(**args)


def test_qemu_boots_a_snapshot_of_the_cached_disk_with_address_hostname_and_lsm():
    cmd = _qemu()
    append = cmd[cmd.index("-append") + 1].split()
    assert {"vm.ip=172.18.254.9/16", "vm.gw=172.18.0.1", "systemd.hostname=c-vm",
            "apparmor=1", "security=apparmor"} <= set(append)
    assert "-snapshot" in cmd  # the cached image is never written
    assert "file=/cache/vm/k/disk.img,if=virtio,format=raw,cache=unsafe" in cmd
    assert "tap,id=n0,ifname=vmn-1,script=no,downscript=no" in cmd
    assert cmd[cmd.index("-uuid") + 1] == "u-1"  # kubelet's product_uuid, one per boot
    assert cmd[cmd.index("-accel") + 1] == "tcg,thread=multi"


def test_qemu_boots_the_selinux_node_with_selinux_the_major_lsm_permissive():
    append = _qemu(lsm="selinux")[_qemu(lsm="selinux").index("-append") + 1].split()
    # enforcing=0: enforcing is blocked (docs/vm-node.md, SELinux); labels still apply
    assert {"security=selinux", "selinux=1", "enforcing=0"} <= set(append)
    assert not [a for a in append if a.startswith("apparmor")]


def test_qemu_mac_differs_per_node_name():
    def mac(cmd):
        return next(a for a in cmd if a.startswith("virtio-net-pci"))
    assert mac(_qemu()) != mac(_qemu(name="d-vm"))


def test_tap_name_fits_ifnamsiz_and_differs_per_cluster():
    assert len(vmnode.tap_name("secctx-a-very-long-cluster-name")) <= 15
    assert vmnode.tap_name("a") != vmnode.tap_name("b")


def test_vm_address_is_stable_and_skips_taken_addresses():
    ip = vmnode.vm_address("172.18", "secctx-x", set())
    assert ip.startswith("172.18.254.") and ip == vmnode.vm_address("172.18", "secctx-x", set())
    assert vmnode.vm_address("172.18", "secctx-x", {ip}) != ip


def test_join_arguments_add_node_name_and_ignore_only_system_verification():
    printed = ("W1207 warning line\n"
               "kubeadm join c-control-plane:6443 --token abc.def "
               "--discovery-token-ca-cert-hash sha256:0123 \n")
    assert vmnode.join_arguments(printed, "c-vm", "apparmor") == [
        "kubeadm", "join", "c-control-plane:6443", "--token", "abc.def",
        "--discovery-token-ca-cert-hash", "sha256:0123", "--node-name", "c-vm",
        "--ignore-preflight-errors=SystemVerification"]


def test_join_arguments_without_a_join_line_is_an_error():
    with pytest.raises(VMNodeError, match="no join command"):
        vmnode.join_arguments("error: token\n", "c-vm", "apparmor")


def test_a_command_failure_carries_command_exit_output_and_console():
    err = VMNodeError("kubeadm join failed", command=["kubeadm", "join", "x"], rc=1,
                      output="[preflight] boom", console="[  1.0] kernel line")
    text = str(err)
    assert text.splitlines()[0] == "kubeadm join failed"
    assert "command: kubeadm join x (exit 1)" in text
    assert "[preflight] boom" in text and "kernel line" in text
