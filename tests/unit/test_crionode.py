"""secctx.offline.crionode: the CRI-O node image's own files (pure parts)."""
import io
import json
import tarfile
import tomllib

from secctx.offline import crionode


def _archive(path, tags):
    """A docker-save archive with only its manifest (what archive_names reads)."""
    data = json.dumps([{"Config": "c.json", "RepoTags": tags, "Layers": []}]).encode()
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("manifest.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return path


def test_runtimes_drop_in_adds_runc_and_changes_no_crio_default():
    """The point of the CRI-O node is CRI-O's defaults: the drop-in adds the runc handler
    and makes it the default (crun 1.8.1 runs nothing under CRI-O on cgroup v1), no more."""
    doc = tomllib.loads(crionode.RUNTIMES_DROP_IN)
    assert doc == {"crio": {"runtime": {"default_runtime": "runc", "runtimes": {"runc": {
        "runtime_path": "/usr/local/sbin/runc", "runtime_root": "/run/runc"}}}}}
    assert set(crionode.HANDLERS) == {"crun", "runc"}


def test_archive_names_reads_repo_tags(tmp_path):
    a = _archive(tmp_path / "a.tar", ["registry.k8s.io/pause:3.10.1"])
    assert crionode.archive_names(a) == ["registry.k8s.io/pause:3.10.1"]


def test_node_files_list_each_image_and_pause_under_crio_default_name(tmp_path):
    root = tmp_path / "root"
    for d in ("usr/local/bin", "etc/systemd/system", "kind/bin"):
        (root / d).mkdir(parents=True)
    for name in ("containerd", "ctr", "containerd-shim-runc-v2", "kubelet-not-here"):
        (root / "usr/local/bin" / name).write_text("x")
    (root / "kind/secctx-offline.json").write_text(json.dumps({"kubernetes": "v1.37.2"}))
    crio, pinns = tmp_path / "bin" / "crio", tmp_path / "pinns"
    crio.parent.mkdir()
    crio.write_text("crio")
    pinns.write_text("pinns")
    pause = _archive(tmp_path / "p.tar", ["registry.k8s.io/pause:3.10.1"])
    etcd = _archive(tmp_path / "e.tar", ["registry.k8s.io/etcd:3.6.5-0"])
    crionode._add_crio(root, crio, pinns, [pause, etcd], "registry.k8s.io/pause:3.10.1")
    lines = (root / "kind/images/list").read_text().splitlines()
    assert lines == ["p.tar registry.k8s.io/pause:3.10.1", f"p.tar {crionode.CRIO_PAUSE}",
                     "e.tar registry.k8s.io/etcd:3.6.5-0"]
    assert sorted(p.name for p in (root / "usr/local/bin").iterdir()) == [
        "crio", "kubelet-not-here", "pinns"]  # no containerd on a CRI-O node
    assert crionode.SOCKET in (root / "etc/crictl.yaml").read_text()
    offline = json.loads((root / "kind/secctx-offline.json").read_text())
    assert offline["cri"] == {"name": "crio", "version": "v1.34.0", "handlers": ["crun", "runc"]}
    unit = (root / "etc/systemd/system/crio.service").read_text()
    assert "Requires=secctx-crio-images.service" in unit and "ExecStart=/usr/local/bin/crio\n" in unit
