"""Stand-ins of the recipe's real images that keep what the oracle reads from them.

The tests that take the online path push these to a local registry under the
real names (`busybox:1.36`, `nginx:1.25`, `nicolaka/netshoot:latest`), so that
an online run is green for the right reasons: the users, groups, config USER,
WORKDIR, Cmd, Entrypoint and symlinks are those of the published images
(sources in images/README.md, "Faithful stand-ins"); the programs are Debian's.
What still differs from the real image is listed there too.

Kept apart from build.py: these are no input of the offline node image.
"""
from __future__ import annotations

import shlex

from ..core import cache
from . import build, docker

BUSYBOX = "secctx.local/faithful/busybox:1.36"
NGINX = "secctx.local/faithful/nginx:1.25"
NETSHOOT = "secctx.local/faithful/netshoot:latest"
# real reference -> faithful stand-in
IMAGES = {"docker.io/library/busybox:1.36": BUSYBOX, "docker.io/library/nginx:1.25": NGINX,
          "docker.io/nicolaka/netshoot:latest": NETSHOOT}

DEBIAN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# buildroot's system/skeleton/etc/{passwd,group}, as docker-library/busybox copies them.
BUSYBOX_PASSWD = (
    "root:x:0:0:root:/root:/bin/sh", "daemon:x:1:1:daemon:/usr/sbin:/bin/false",
    "bin:x:2:2:bin:/bin:/bin/false", "sys:x:3:3:sys:/dev:/bin/false",
    "sync:x:4:100:sync:/bin:/bin/sync", "mail:x:8:8:mail:/var/spool/mail:/bin/false",
    "www-data:x:33:33:www-data:/var/www:/bin/false", "operator:x:37:37:Operator:/var:/bin/false",
    "nobody:x:65534:65534:nobody:/home:/bin/false")
BUSYBOX_GROUP = (
    "root:x:0:", "daemon:x:1:", "bin:x:2:", "sys:x:3:", "adm:x:4:", "tty:x:5:", "disk:x:6:",
    "lp:x:7:", "mail:x:8:", "kmem:x:9:", "wheel:x:10:root", "cdrom:x:11:", "dialout:x:18:",
    "floppy:x:19:", "video:x:28:", "audio:x:29:", "tape:x:32:", "www-data:x:33:",
    "operator:x:37:", "utmp:x:43:", "plugdev:x:46:", "staff:x:50:", "lock:x:54:",
    "netdev:x:82:", "users:x:100:", "nobody:x:65534:")

# alpine-baselayout 3.6 (Alpine 3.20+), netshoot's base: root is in eleven groups.
ALPINE_PASSWD = (
    "root:x:0:0:root:/root:/bin/sh", "bin:x:1:1:bin:/bin:/sbin/nologin",
    "daemon:x:2:2:daemon:/sbin:/sbin/nologin", "lp:x:4:7:lp:/var/spool/lpd:/sbin/nologin",
    "sync:x:5:0:sync:/sbin:/bin/sync", "shutdown:x:6:0:shutdown:/sbin:/sbin/shutdown",
    "halt:x:7:0:halt:/sbin:/sbin/halt", "mail:x:8:12:mail:/var/mail:/sbin/nologin",
    "news:x:9:13:news:/usr/lib/news:/sbin/nologin",
    "uucp:x:10:14:uucp:/var/spool/uucppublic:/sbin/nologin",
    "cron:x:16:16:cron:/var/spool/cron:/sbin/nologin", "ftp:x:21:21::/var/lib/ftp:/sbin/nologin",
    "sshd:x:22:22:sshd:/dev/null:/sbin/nologin", "games:x:35:35:games:/usr/games:/sbin/nologin",
    "ntp:x:123:123:NTP:/var/empty:/sbin/nologin", "guest:x:405:100:guest:/dev/null:/sbin/nologin",
    "nobody:x:65534:65534:nobody:/:/sbin/nologin")
ALPINE_GROUP = (
    "root:x:0:root", "bin:x:1:root,bin,daemon", "daemon:x:2:root,bin,daemon", "sys:x:3:root,bin",
    "adm:x:4:root,daemon", "tty:x:5:", "disk:x:6:root", "lp:x:7:lp", "kmem:x:9:",
    "wheel:x:10:root", "floppy:x:11:root", "mail:x:12:mail", "news:x:13:news", "uucp:x:14:uucp",
    "cron:x:16:cron", "audio:x:18:", "cdrom:x:19:", "dialout:x:20:root", "ftp:x:21:",
    "sshd:x:22:", "input:x:23:", "tape:x:26:root", "video:x:27:root", "netdev:x:28:",
    "kvm:x:34:kvm", "games:x:35:", "shadow:x:42:", "www-data:x:82:", "users:x:100:games",
    "ntp:x:123:", "abuild:x:300:", "utmp:x:406:", "ping:x:999:", "nogroup:x:65533:",
    "nobody:x:65534:")

# Ours, not upstream's: the official entrypoint runs /docker-entrypoint.d/*
# (IPv6 listen, templates, worker tuning) before it execs the command; none of
# them changes users, groups or modes, so the stand-in only execs.
ENTRYPOINT = "#!/bin/sh\n# stand-in of nginx's /docker-entrypoint.sh: exec the command\nexec \"$@\"\n"


def _write(lines: tuple[str, ...], dest: str) -> str:
    return "printf '%s\\n' " + " ".join(shlex.quote(ln) for ln in lines) + f" > {dest}"


def build_all() -> dict[str, str]:
    """Build the three stand-ins; returns IMAGES."""
    bb = build.busybox_tree()
    build.base_images()
    # No /run, no /var/run; home directories owned as the image's own loop leaves them.
    docker.build(BUSYBOX, "FROM scratch\nCOPY rootfs/ /\nRUN " + " \\\n && ".join([
        _write(BUSYBOX_PASSWD, "/etc/passwd"), _write(BUSYBOX_GROUP, "/etc/group"),
        "mkdir -p /home /usr/sbin /var/spool/mail /var/www",
        "chown 65534:65534 /home && chown 1:1 /usr/sbin && chown 8:8 /var/spool/mail",
        "chmod 0700 /root && chmod 1777 /tmp && rm -rf /data"]) + "\n"
        f"ENV PATH={DEBIAN_PATH}\nCMD [\"sh\"]\n", {"rootfs": bb})
    docker.build(NGINX, f"FROM {build.WORKLOAD_ROOTFS}\n"
                 "RUN groupadd --system --gid 101 nginx \\\n"
                 " && useradd --system --gid nginx --no-create-home --home /nonexistent "
                 "--comment 'nginx user' --shell /bin/false --uid 101 nginx \\\n"
                 " && mkdir -p /var/cache/nginx /usr/share/nginx/html /var/log/nginx "
                 "/docker-entrypoint.d \\\n"
                 " && ln -sf /dev/stdout /var/log/nginx/access.log \\\n"
                 " && ln -sf /dev/stderr /var/log/nginx/error.log \\\n"
                 " && echo 'secctx nginx stand-in' > /usr/share/nginx/html/index.html\n"
                 "COPY nginx.conf /etc/nginx/nginx.conf\n"
                 "COPY docker-entrypoint.sh /docker-entrypoint.sh\n"
                 "RUN chmod 0755 /docker-entrypoint.sh\n"
                 "ENTRYPOINT [\"/docker-entrypoint.sh\"]\n"
                 "EXPOSE 80\nSTOPSIGNAL SIGQUIT\nCMD [\"nginx\", \"-g\", \"daemon off;\"]\n",
                 {"nginx.conf": build.IMAGE_SOURCES / "nginx" / "nginx.conf",
                  "docker-entrypoint.sh": _entrypoint_file()})
    docker.build(NETSHOOT, f"FROM {build.WORKLOAD_ROOTFS}\nRUN " + " \\\n && ".join([
        _write(ALPINE_PASSWD, "/etc/passwd"), _write(ALPINE_GROUP, "/etc/group"),
        "chmod -R g=u /root"]) + "\n"
        "ENV HOSTNAME=netshoot\nUSER root\nWORKDIR /root\nCMD [\"sleep\", \"infinity\"]\n", {})
    return IMAGES


def _entrypoint_file():
    path = cache.path("faithful", "docker-entrypoint.sh")
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != ENTRYPOINT:
        path.write_text(ENTRYPOINT)
    return path
