"""The test images of issue 14 (secctx/images/build.py, images/README.md): exactly the
USER, /etc/passwd and /etc/group each promises, and a file capability written
the way libcap's setcap writes it."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from secctx.images import build as images

ESCALATION_SRC = images.IMAGE_SOURCES / "escalation"


@pytest.mark.parametrize("tag,user", [
    (images.IDENTITY_NAMED_USER, "app"),
    (images.IDENTITY_UID_WITH_PASSWD, "1000"),
    (images.IDENTITY_UID_GID, "1000:2000"),
    (images.IDENTITY_ROOT_IN_WHEEL, ""),
])
def test_identity_image_user_passwd_and_group(tag, user, tmp_path):
    want_user, passwd, group = images.IDENTITY_IMAGES[tag]
    assert want_user == user
    dockerfile = images.identity_dockerfile(*images.IDENTITY_IMAGES[tag])
    lines = dockerfile.splitlines()
    assert lines[:2] == ["FROM scratch", "COPY rootfs/ /"]
    assert ("USER " + user in lines) if user else not any(ln.startswith("USER") for ln in lines)
    assert lines[-1] == 'CMD ["sleep", "infinity"]'
    # Run the RUN step's shell with /etc redirected: the files hold exactly these lines.
    run = dockerfile.split("RUN ", 1)[1].split("\nENV", 1)[0].replace("\\\n", "")
    if user:
        assert run.endswith(" && mkdir -p /home/app && chown 1000:1000 /home/app")
    script = run.split(" && mkdir")[0].replace("> /etc/", f"> {tmp_path}/")
    proc = subprocess.run(["sh", "-c", script], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "passwd").read_text().splitlines() == list(passwd)
    assert (tmp_path / "group").read_text().splitlines() == list(group)


def test_identity_files_say_what_the_issue_asks():
    assert "app:x:1000:1000:app:/home/app:/bin/sh" in images.APP_PASSWD
    assert {"app:x:1000:", "extra:x:50000:app"} <= set(images.APP_GROUP)
    assert "wheel:x:10:root" in images.WHEEL_GROUP
    # root is in no other group than wheel (buildroot's skeleton, as the official busybox)
    assert [g for g in images.WHEEL_GROUP if g.split(":")[3] == "root"] == ["wheel:x:10:root"]


def test_escalation_dockerfile_setuid_and_file_capability():
    d = images.ESCALATION_DOCKERFILE
    assert not any(ln.startswith("USER") for ln in d.splitlines())
    assert "chown 0:0 /usr/local/bin/suid-id && chmod 4755 /usr/local/bin/suid-id" in d
    assert "setfcap cap_net_bind_service+ep /usr/local/bin/bind-low" in d
    assert "rm /usr/local/bin/setfcap" in d
    assert 'CMD ["sleep", "infinity"]' in d
    for p in images.ESCALATION_PROGRAMS:
        assert (ESCALATION_SRC / p / "main.go").is_file()
        assert (ESCALATION_SRC / p / "main.go").is_file()
    assert (ESCALATION_SRC / "go.mod").is_file(), "one Go module for the test programs"


def _go_build(name: str, out: Path) -> Path:
    go = shutil.which("go")
    if go is None:
        pytest.skip("`go` is not on PATH")
    env = dict(os.environ, CGO_ENABLED="0", GOFLAGS="-buildvcs=false", GOTOOLCHAIN="local",
               GOPROXY="off")
    binary = out / name
    proc = subprocess.run([go, "build", "-trimpath", "-o", str(binary), "."],
                          cwd=ESCALATION_SRC / name, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    return binary


def test_setfcap_writes_what_libcap_setcap_writes(tmp_path):
    """struct vfs_cap_data revision 2, effective flag, permitted bit 10 (checked once
    against `setcap cap_net_bind_service+ep`: 0100000200040000 then 12 zero bytes)."""
    setfcap = _go_build("setfcap", tmp_path)
    bind_low = _go_build("bind-low", tmp_path)
    target = tmp_path / "target"
    shutil.copy2(bind_low, target)
    proc = subprocess.run([str(setfcap), "cap_net_bind_service+ep", str(target)],
                          capture_output=True, text=True)
    if proc.returncode != 0 and ("operation not permitted" in proc.stderr
                                 or "not supported" in proc.stderr):
        pytest.skip(f"cannot write security.capability here: {proc.stderr.strip()}")
    assert proc.returncode == 0, proc.stderr
    assert os.getxattr(target, "security.capability") == bytes.fromhex(
        "01000002" "00040000" "00000000" "00000000" "00000000")
    # bind-low reads its own file capability back.
    out = subprocess.run([str(target), "1"], capture_output=True, text=True).stdout
    assert "file_caps=v2,effective,permitted=0x400" in out.splitlines()
    if shutil.which("setcap"):
        ref = tmp_path / "ref"
        shutil.copy2(bind_low, ref)
        subprocess.run(["setcap", "cap_net_bind_service+ep", str(ref)], check=True)
        assert os.getxattr(ref, "security.capability") == os.getxattr(target,
                                                                      "security.capability")


def test_setfcap_refuses_what_it_cannot_write(tmp_path):
    setfcap = _go_build("setfcap", tmp_path)
    for text in ("cap_net_bind_service=ep", "cap_nonsense+ep", "cap_kill+i"):
        proc = subprocess.run([str(setfcap), text, str(tmp_path / "x")], capture_output=True,
                              text=True)
        assert proc.returncode == 1 and proc.stderr.startswith("setfcap: "), text


def test_probe_programs_print_key_value_lines(tmp_path):
    for name, keys in (("suid-id", ["ruid", "euid", "suid", "rgid", "egid", "sgid",
                                    "no_new_privs"]),
                       ("syscall-probe", ["unshare_user", "keyctl", "add_key", "mount",
                                          "seccomp", "seccomp_filters"]),
                       ("bind-low", ["port", "unprivileged_port_start", "file_caps", "cap_eff",
                                     "bind"])):
        binary = _go_build(name, tmp_path)
        args = [str(binary)] + (["65000"] if name == "bind-low" else [])
        out = subprocess.run(args, capture_output=True, text=True, timeout=20).stdout
        assert [ln.split("=", 1)[0] for ln in out.splitlines()] == keys, name
