"""Thin wrappers over the docker CLI: inspect, build, import, run (the engine is ours or the user's).

Image builds here are keyed by their inputs (a label), so an unchanged image is
not rebuilt; the node image builder also runs and commits containers with `run`.
"""
from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path

from ..core import run_command, timeouts
from ..core.run_command import QUERY, CommandError
from ..offline import log
from ..offline.gobuild import BuildError

KEY_LABEL = "io.secctx.key"


def run(args: list[str], input: bytes | None = None, timeout: float = timeouts.DOCKER) -> str:
    try:
        with log.heartbeat("docker " + " ".join(args[:2])):
            return run_command.run(["docker", *args], input=input, timeout=timeout).stdout
    except CommandError as err:
        raise BuildError(str(err)) from None


def image_label(tag: str, label: str = KEY_LABEL) -> str | None:
    """A label of a local image, or None when the image is absent."""
    proc = run_command.run(["docker", "image", "inspect", "--format",
                            f'{{{{index .Config.Labels "{label}"}}}}', tag], timeout=QUERY, check=False)
    return proc.stdout.strip() if proc.ok else None


def config_user(tag: str) -> str | None:
    """The USER of a local image's config ("" when it sets none); None without a local
    engine or when the image is not there (existing clusters)."""
    if not shutil.which("docker"):
        return None
    proc = run_command.run(["docker", "image", "inspect", "--format", "{{.Config.User}}", tag],
                           timeout=QUERY, check=False)
    return proc.stdout.strip() if proc.ok else None


def image_exists(tag: str) -> bool:
    return run_command.run(["docker", "image", "inspect", tag], timeout=QUERY, check=False).ok


def content_key(dockerfile: str, files: dict[str, Path]) -> str:
    h = hashlib.sha256(dockerfile.encode())
    for name in sorted(files):
        src = files[name]
        h.update(name.encode())
        for f in sorted(src.rglob("*")) if src.is_dir() else [src]:
            h.update(str(f.relative_to(src) if src.is_dir() else "").encode())
            if f.is_symlink():
                h.update(str(f.readlink()).encode())
            elif f.is_file():
                h.update(hashlib.sha256(f.read_bytes()).digest())
    return h.hexdigest()[:16]


def build(tag: str, dockerfile: str, files: dict[str, Path], rebuild: bool = False) -> str:
    """Build `tag` unless an image with the same inputs exists; returns the key."""
    key = content_key(dockerfile, files)
    if not rebuild and image_label(tag) == key:
        return key
    log.step(f"docker build {tag}")
    with tempfile.TemporaryDirectory(prefix="secctx-ctx-") as ctx:
        for name, src in files.items():
            dest = Path(ctx, name)
            dest.parent.mkdir(parents=True, exist_ok=True)
            if src.is_dir():
                shutil.copytree(src, dest, symlinks=True)
            else:
                shutil.copy2(src, dest)
        Path(ctx, "Dockerfile").write_text(dockerfile)
        run(["build", "-q", "--label", f"{KEY_LABEL}={key}", "-t", tag, ctx])
    return key


def import_rootfs(tarball: Path, tag: str) -> None:
    """A base image from a rootfs tarball, once per tarball."""
    if image_label(tag, "io.secctx.rootfs") == tarball.name:
        return
    log.step(f"docker import {tarball.name} as {tag}")
    run(["import", "--change", f"LABEL io.secctx.rootfs={tarball.name}", str(tarball), tag])
