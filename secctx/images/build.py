"""The images the suite builds, and their recipes.

Workload images: myapp in both modes (the recipe's myapp:1.0 is a
placeholder), the recipe's USER 1000 rebuild of nginx in both modes (FROM the
mode's nginx), the identity and escalation test images in both modes, and
offline the stand-ins for nginx, busybox and netshoot.

Control-plane images, for the offline node image: they carry exactly the names
`kubeadm config images list` prints, so kubeadm and containerd find them
without a registry.
"""
from __future__ import annotations

import json
import shlex
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..core import cache, paths, run_command
from ..offline import rootfs
from ..offline.gobuild import BuildError, go, go_env
from . import docker

IMAGE_SOURCES = paths.IMAGE_SOURCES  # images/ in the repository
NODE_ROOTFS = "secctx.local/rootfs/node:bookworm"
WORKLOAD_ROOTFS = "secctx.local/rootfs/workload:bookworm"

BUSYBOX = "secctx.local/standin/busybox:1.35-bookworm"
NGINX = "secctx.local/standin/nginx:1.22-bookworm"
NETSHOOT = "secctx.local/standin/netshoot:bookworm"
MYAPP = "secctx.local/myapp:1.0"
NGINX_USER1000 = "secctx.local/standin/nginx-user1000:1.22-bookworm"

# Test images (issue 14), built in both modes like myapp: each makes one rule of
# the oracle observable. Contents and sources: images/README.md.
IDENTITY_NAMED_USER = "secctx.local/identity:named-user"
IDENTITY_UID_WITH_PASSWD = "secctx.local/identity:uid-with-passwd"
IDENTITY_UID_GID = "secctx.local/identity:uid-gid"
IDENTITY_ROOT_IN_WHEEL = "secctx.local/identity:root-in-wheel"
ESCALATION = "secctx.local/escalation:1"

# uid 1000 with primary gid 1000 and a member of 50000, like upstream's agnhost
# (test/images/agnhost/Dockerfile: adduser -u 1000, addgroup -g 50000, addgroup user group).
APP_PASSWD = ("root:x:0:0:root:/root:/bin/sh", "app:x:1000:1000:app:/home/app:/bin/sh",
              "nobody:x:65534:65534:nobody:/nonexistent:/bin/false")
APP_GROUP = ("root:x:0:", "app:x:1000:", "extra:x:50000:app", "nogroup:x:65534:")
# root in wheel, as the official busybox image has it (buildroot's skeleton /etc/group).
WHEEL_PASSWD = ("root:x:0:0:root:/root:/bin/sh",
                "nobody:x:65534:65534:nobody:/nonexistent:/bin/false")
WHEEL_GROUP = ("root:x:0:", "wheel:x:10:root", "nogroup:x:65534:")
# tag: (image config USER, /etc/passwd lines, /etc/group lines)
IDENTITY_IMAGES = {
    IDENTITY_NAMED_USER: ("app", APP_PASSWD, APP_GROUP),
    IDENTITY_UID_WITH_PASSWD: ("1000", APP_PASSWD, APP_GROUP),
    IDENTITY_UID_GID: ("1000:2000", APP_PASSWD, APP_GROUP),
    IDENTITY_ROOT_IN_WHEEL: ("", WHEEL_PASSWD, WHEEL_GROUP),
}
ESCALATION_PROGRAMS = ("suid-id", "bind-low", "syscall-probe", "setfcap", "seccomp-filter")


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
    """A static binary from images/<name>/ (pause, myapp, escalation/suid-id), cached by
    the source of its Go module (which may hold several programs)."""
    src = IMAGE_SOURCES / name
    root = next(d for d in (src, *src.parents) if (d / "go.mod").exists())
    key = docker.content_key("", {str(f.relative_to(root)): f for f in sorted(root.rglob("*.go"))}
                             | {"go.mod": root / "go.mod"})
    out = cache.path("programs", name, key, src.name)
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        package = "." if src == root else "./" + str(src.relative_to(root))
        go(["build", "-trimpath", "-ldflags", "-s -w", "-o", str(out), package], root,
           go_env(CGO_ENABLED="0"))
    return out


def busybox_tree() -> Path:
    """/bin/busybox from Debian's busybox-static plus its applet links and /etc files."""
    binary = Path(shutil.which("busybox") or "/bin/busybox")
    if not binary.exists():
        raise BuildError("busybox-static is missing: apt-get install busybox-static")
    version = run_command.run([binary], timeout=run_command.QUERY, check=False).stdout.split("\n")[0]
    tree = cache.path("busybox-tree", docker.content_key(version, {"busybox": binary}))
    if tree.exists():
        return tree
    tree.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=tree.parent))  # same filesystem: the rename below is atomic
    (tmp / "bin").mkdir(parents=True)
    shutil.copy2(binary, tmp / "bin" / "busybox")
    applets = run_command.run([binary, "--list"], timeout=run_command.QUERY, check=False).stdout.split()
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
    built.update(build_test_images(bb))
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


def identity_dockerfile(user: str, passwd: tuple[str, ...], group: tuple[str, ...]) -> str:
    """busybox FROM scratch with exactly these /etc/passwd and /etc/group lines and
    image config USER (none when empty); the default command sleeps."""
    def printf(lines: tuple[str, ...], dest: str) -> str:
        return "printf '%s\\n' " + " ".join(shlex.quote(ln) for ln in lines) + f" > {dest}"
    homes = sorted({ln.split(":")[5] for ln in passwd} - {"/root", "/nonexistent"})
    owners = {ln.split(":")[5]: ":".join(ln.split(":")[2:4]) for ln in passwd}
    run = [printf(passwd, "/etc/passwd"), printf(group, "/etc/group")]
    run += [f"mkdir -p {h} && chown {owners[h]} {h}" for h in homes]
    return ("FROM scratch\nCOPY rootfs/ /\nRUN " + " \\\n && ".join(run) + "\n"
            "ENV PATH=/bin\n" + (f"USER {user}\n" if user else "")
            + 'CMD ["sleep", "infinity"]\n')


# No USER (root). suid-id setuid root; bind-low with the file capability
# cap_net_bind_service+ep, written by setfcap in a RUN of this very image (no
# COPY between stages, which may drop xattrs), so it lives in the layer's tar as
# SCHILY.xattr.security.capability and containerd restores it on the node.
ESCALATION_DOCKERFILE = """FROM scratch
COPY rootfs/ /
COPY suid-id bind-low syscall-probe setfcap seccomp-filter /usr/local/bin/
RUN chown 0:0 /usr/local/bin/suid-id && chmod 4755 /usr/local/bin/suid-id \\
 && /usr/local/bin/setfcap cap_net_bind_service+ep /usr/local/bin/bind-low \\
 && rm /usr/local/bin/setfcap
ENV PATH=/usr/local/bin:/bin
CMD ["sleep", "infinity"]
"""


def build_test_images(bb: Path) -> dict[str, str]:
    """The identity and escalation test images (both modes); returns {role: tag}."""
    built = {}
    for tag, (user, passwd, group) in IDENTITY_IMAGES.items():
        docker.build(tag, identity_dockerfile(user, passwd, group), {"rootfs": bb})
        built["identity_" + tag.rsplit(":", 1)[1].replace("-", "_")] = tag
    programs = {p: go_program(f"escalation/{p}") for p in ESCALATION_PROGRAMS}
    docker.build(ESCALATION, ESCALATION_DOCKERFILE, {"rootfs": bb} | programs)
    built["escalation"] = ESCALATION
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
