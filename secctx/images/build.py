"""The images the suite builds, and their recipes.

Workload images: myapp in both modes (the recipe's myapp:1.0 is a
placeholder), the recipe's USER 1000 rebuild of nginx in both modes (FROM the
mode's nginx), and offline the stand-ins for nginx, busybox and netshoot.

Control-plane images, for the offline node image: they carry exactly the names
`kubeadm config images list` prints, so kubeadm and containerd find them
without a registry.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .. import cache
from ..offline import rootfs
from ..offline.gobuild import BuildError, go, go_env
from . import docker

PROJECT = Path(__file__).resolve().parents[2]
IMAGE_SOURCES = PROJECT / "images"
NODE_ROOTFS = "secctx.local/rootfs/node:bookworm"
WORKLOAD_ROOTFS = "secctx.local/rootfs/workload:bookworm"

BUSYBOX = "secctx.local/standin/busybox:1.35-bookworm"
NGINX = "secctx.local/standin/nginx:1.22-bookworm"
NETSHOOT = "secctx.local/standin/netshoot:bookworm"
MYAPP = "secctx.local/myapp:1.0"
NGINX_USER1000 = "secctx.local/standin/nginx-user1000:1.22-bookworm"


@dataclass(frozen=True)
class ControlPlaneImages:
    """Image names kubeadm expects for one Kubernetes version."""
    apiserver: str
    controller_manager: str
    scheduler: str
    proxy: str
    etcd: str
    coredns: str
    pause: str

    @classmethod
    def from_kubeadm_list(cls, lines: list[str]) -> ControlPlaneImages:
        by_name = {}
        for line in (ln.strip() for ln in lines):
            if not line:
                continue
            repo = line.rsplit(":", 1)[0]
            by_name[repo.rsplit("/", 1)[-1]] = line
        try:
            return cls(by_name["kube-apiserver"], by_name["kube-controller-manager"],
                       by_name["kube-scheduler"], by_name["kube-proxy"], by_name["etcd"],
                       by_name["coredns"], by_name["pause"])
        except KeyError as missing:
            raise BuildError(f"kubeadm did not list an image for {missing}: {lines}") from None

    def all(self) -> list[str]:
        return [self.apiserver, self.controller_manager, self.scheduler, self.proxy,
                self.etcd, self.coredns, self.pause]

    @staticmethod
    def tag_of(image: str) -> str:
        return image.rsplit(":", 1)[1]


def go_program(name: str) -> Path:
    """A static binary from images/<name>/ (pause, myapp), cached by source."""
    src = IMAGE_SOURCES / name
    key = docker.content_key("", {f.name: f for f in src.glob("*.go")} | {"go.mod": src / "go.mod"})
    out = cache.path("programs", name, key, name)
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        go(["build", "-trimpath", "-ldflags", "-s -w", "-o", str(out), "."], src,
           go_env(CGO_ENABLED="0"))
    return out


def busybox_tree() -> Path:
    """/bin/busybox from Debian's busybox-static plus its applet links and /etc files."""
    binary = Path(shutil.which("busybox") or "/bin/busybox")
    if not binary.exists():
        raise BuildError("busybox-static is missing: apt-get install busybox-static")
    version = subprocess.run([str(binary)], capture_output=True, text=True).stdout.split("\n")[0]
    tree = cache.path("busybox-tree", docker.content_key(version, {"busybox": binary}))
    if tree.exists():
        return tree
    tree.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=tree.parent))  # same filesystem: the rename below is atomic
    (tmp / "bin").mkdir(parents=True)
    shutil.copy2(binary, tmp / "bin" / "busybox")
    applets = subprocess.run([str(binary), "--list"], capture_output=True, text=True).stdout.split()
    for applet in applets:
        if applet != "busybox":
            (tmp / "bin" / applet).symlink_to("busybox")
    etc = tmp / "etc"
    etc.mkdir()
    (etc / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n"
                                "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
    (etc / "group").write_text("root:x:0:\nnogroup:x:65534:\n")
    for d in ("tmp", "root", "data"):
        (tmp / d).mkdir()
    (tmp / "tmp").chmod(0o1777)
    tmp.rename(tree)
    return tree


def scratch_binary(tag: str, binary: Path, dest: str, entrypoint: list[str] | None = None) -> None:
    entry = entrypoint or [dest]
    dockerfile = (f"FROM scratch\nCOPY {binary.name} {dest}\n"
                  "ENV PATH=/usr/local/bin:/usr/bin:/bin\n"
                  f"ENTRYPOINT {json.dumps(entry)}\n")
    docker.build(tag, dockerfile, {binary.name: binary})


def base_images() -> None:
    docker.import_rootfs(rootfs.tarball(rootfs.NODE_PACKAGES), NODE_ROOTFS)
    docker.import_rootfs(rootfs.tarball(rootfs.WORKLOAD_PACKAGES), WORKLOAD_ROOTFS)


def build_workload_images(offline: bool) -> dict[str, str]:
    """Build the images the suite needs locally; returns {role: local tag}.

    myapp is built in both modes (the recipe's myapp:1.0 is a placeholder);
    the stand-ins only offline.
    """
    bb = busybox_tree()
    docker.build(MYAPP, "FROM scratch\nCOPY rootfs/ /\nCOPY myapp /myapp\n"
                 "ENV PATH=/bin\nEXPOSE 8080\nENTRYPOINT [\"/myapp\"]\n",
                 {"rootfs": bb, "myapp": go_program("myapp")})
    built = {"myapp": MYAPP}
    if not offline:
        return built
    base_images()
    docker.build(BUSYBOX, "FROM scratch\nCOPY rootfs/ /\nENV PATH=/bin\nCMD [\"sh\"]\n",
                 {"rootfs": bb})
    docker.build(NGINX, f"FROM {WORKLOAD_ROOTFS}\n"
                 "RUN groupadd -r -g 101 nginx && useradd -r -u 101 -g nginx -M -d /nonexistent "
                 "-s /sbin/nologin nginx \\\n"
                 " && mkdir -p /var/cache/nginx /usr/share/nginx/html /var/log/nginx \\\n"
                 " && echo 'secctx nginx stand-in' > /usr/share/nginx/html/index.html\n"
                 "COPY nginx.conf /etc/nginx/nginx.conf\n"
                 "EXPOSE 80\nSTOPSIGNAL SIGQUIT\nCMD [\"nginx\", \"-g\", \"daemon off;\"]\n",
                 {"nginx.conf": IMAGE_SOURCES / "nginx" / "nginx.conf"})
    docker.build(NETSHOOT, f"FROM {WORKLOAD_ROOTFS}\nCMD [\"sleep\", \"infinity\"]\n", {})
    # The recipe's own fix for "Container Fails to Start as Non-Root".
    build_user1000(NGINX, NGINX_USER1000)
    built.update(busybox=BUSYBOX, nginx=NGINX, netshoot=NETSHOOT, nginx_user1000=NGINX_USER1000)
    return built


def build_control_plane_images(names: ControlPlaneImages, k8s_bin: Path, etcd_bin: Path,
                               coredns_bin: Path | None) -> list[str]:
    """Control-plane images FROM scratch (kube-proxy from the workload rootfs: it needs iptables)."""
    base_images()
    for image, binary in ((names.apiserver, "kube-apiserver"),
                          (names.controller_manager, "kube-controller-manager"),
                          (names.scheduler, "kube-scheduler")):
        scratch_binary(image, k8s_bin / binary, f"/usr/local/bin/{binary}")
    docker.build(names.proxy, f"FROM {WORKLOAD_ROOTFS}\nCOPY kube-proxy /usr/local/bin/kube-proxy\n"
                 "ENTRYPOINT [\"/usr/local/bin/kube-proxy\"]\n",
                 {"kube-proxy": k8s_bin / "kube-proxy"})
    scratch_binary(names.etcd, etcd_bin / "etcd", "/usr/local/bin/etcd")
    scratch_binary(names.pause, go_program("pause"), "/pause")
    images = [names.apiserver, names.controller_manager, names.scheduler, names.proxy,
              names.etcd, names.pause]
    if coredns_bin:
        scratch_binary(names.coredns, coredns_bin / "coredns", "/coredns")
        images.append(names.coredns)
    return images


def build_user1000(nginx: str, tag: str) -> None:
    """The recipe's "Container Fails to Start as Non-Root" fix, its Dockerfile
    lines verbatim, FROM the nginx of the mode (stand-in offline, nginx:1.25 online)."""
    docker.build(tag, f"FROM {nginx}\n"
                 "RUN chown -R 1000:1000 /var/cache/nginx /var/run /var/log/nginx\nUSER 1000\n", {})
