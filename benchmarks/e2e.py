"""The peer (issue 11): upstream's e2e.test, built for the cluster's Kubernetes version
from the k8s.io/kubernetes Go module (like the node's binaries, secctx/offline/gobuild),
with the test images its Security Context specs use built here as stand-ins under
their exact names, and run on the same ready cluster.

    python -m benchmarks.e2e --cluster-name secctx-bench [--kubernetes-version v1.37.2]

builds (once per version, cached in ~/.cache/secctx/e2e/VERSION), loads the images
into the cluster and runs `e2e.test --ginkgo.focus='Security Context'`; benchmarks.run
does the same and times the run.

The stand-ins (FROM scratch with the suite's busybox tree, images/README.md):
busybox as the suite's busybox; agnhost with upstream's agnhost binary (built from the
same module) at /agnhost and its image's user-defined-in-image (uid 1000, member of
group-defined-in-image 50000); nonewprivs with upstream's nnp setuid root as
/usr/local/bin/nnp; nonroot with USER 1234 (upstream's Dockerfiles, test/images/*).
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

from filelock import FileLock

from secctx.core import cache
from secctx.images import docker
from secctx.images.build import busybox_tree
from secctx.offline import log
from secctx.offline.gobuild import go, go_env, module_info
from secctx.offline.gomod import KubeVersion, build_go_mod, version_ldflags

FOCUS = "Security Context"
PROGRAMS = {"agnhost": "test/images/agnhost", "nnp": "test/images/nonewprivs"}
STAND_INS = ("busybox", "agnhost", "nonewprivs", "nonroot")  # e2e image names (last path part)

AGNHOST_PASSWD = ("root:x:0:0:root:/root:/bin/sh",
                  "user-defined-in-image:x:1000:1000:Linux User,,,:/home/user-defined-in-image:/bin/sh",
                  "nobody:x:65534:65534:nobody:/nonexistent:/bin/false")
AGNHOST_GROUP = ("root:x:0:", "user-defined-in-image:x:1000:",
                 "group-defined-in-image:x:50000:user-defined-in-image", "nogroup:x:65534:")


def e2e_dir(version: str) -> Path:
    return cache.root() / "e2e" / version


def _building_elsewhere(out: Path) -> bool:
    """Another process builds into `out` (go test -c writing its e2e.test)."""
    target = str(out / "e2e.test")
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"test" in argv and b"-c" in argv and any(target.encode() in a for a in argv):
            return True
    return False


def build(version: KubeVersion, wait: float = 3600) -> Path:
    """e2e.test and the programs of the stand-ins (bin/agnhost, bin/nnp), built once (a
    build another process runs into the same directory is waited for, bounded)."""
    out = e2e_dir(str(version))
    binary, bin_dir = out / "e2e.test", out / "bin"
    out.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out) + ".lock", timeout=wait):
        deadline = time.monotonic() + wait
        if _building_elsewhere(out):
            with log.heartbeat(f"waiting for another process's build of {binary}"):
                while _building_elsewhere(out) and time.monotonic() < deadline:
                    time.sleep(5)
        if binary.exists() and all((bin_dir / p).exists() for p in PROGRAMS):
            return out
        return _build(version, out, binary, bin_dir)


def _build(version: KubeVersion, out: Path, binary: Path, bin_dir: Path) -> Path:
    work = out / "work"
    work.mkdir(parents=True, exist_ok=True)
    (work / "go.mod").write_text("module secctx.local/probe\n\ngo 1.22\n")
    info = module_info("k8s.io/kubernetes", str(version), work)
    (work / "go.mod").write_text(build_go_mod("secctx.local/e2ebuild", version,
                                              Path(info["GoMod"]).read_text()))
    (work / "go.sum").unlink(missing_ok=True)
    e2e_pkg = "k8s.io/kubernetes/test/e2e"
    programs = {name: f"k8s.io/kubernetes/{path}" for name, path in PROGRAMS.items()}
    log.step(f"building e2e.test {version}: step 1 of 3, go get (test dependencies)")
    go(["get", "-t", f"{e2e_pkg}@{version}", *[f"{p}@{version}" for p in programs.values()]],
       work)
    commit = (info.get("Origin") or {}).get("Hash", "0" * 40)
    built = datetime.fromisoformat(info.get("Time", "1970-01-01T00:00:00Z").replace("Z", "+00:00"))
    ldflags = version_ldflags(version, commit,
                              built.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    env = go_env(CGO_ENABLED="0")
    log.step(f"building e2e.test {version}: step 2 of 3, go test -c {e2e_pkg}")
    go(["test", "-c", "-vet=off", "-trimpath", "-ldflags", ldflags, "-o", str(binary) + ".tmp", e2e_pkg],
       work, env)
    log.step(f"building e2e.test {version}: step 3 of 3, the stand-ins' programs")
    bin_dir.mkdir(exist_ok=True)
    for name, pkg in programs.items():
        go(["build", "-trimpath", "-ldflags", "-s -w", "-o", str(bin_dir / name), pkg], work, env)
    Path(str(binary) + ".tmp").rename(binary)
    return out


def image_names(e2e_test: Path) -> dict[str, list[str]]:
    """The exact references e2e.test uses for the stand-ins (`--list-images`): some
    are listed at two tags (busybox 1.36.1-1 and 1.37.0-2), each gets its image."""
    listed = subprocess.run([str(e2e_test), "--list-images"], capture_output=True, text=True,
                            timeout=60).stdout.split()
    names: dict[str, list[str]] = {}
    for ref in listed:
        short = ref.rsplit("/", 1)[-1].split(":")[0]
        if short in STAND_INS and "/e2e-test-images/" in ref:
            names.setdefault(short, []).append(ref)
    missing = [s for s in STAND_INS if s not in names]
    if missing:
        raise RuntimeError(f"e2e.test --list-images names no {', '.join(missing)}")
    return names


def _lines(path: str, lines: tuple[str, ...]) -> str:
    return "printf '%s\\n' " + " ".join(f"'{x}'" for x in lines) + f" > {path}"


def build_stand_ins(out: Path) -> list[str]:
    """The four images under e2e.test's names; returns them."""
    names = image_names(out / "e2e.test")
    bb = busybox_tree()
    base = "FROM scratch\nCOPY rootfs/ /\nENV PATH=/usr/local/bin:/bin\n"
    recipes = {
        "busybox": (base + 'CMD ["sh"]\n', {"rootfs": bb}),
        "nonroot": (base + "USER 1234\n", {"rootfs": bb}),
        "nonewprivs": (base + "COPY nnp /usr/local/bin/nnp\n"
                       "RUN chmod +s /usr/local/bin/nnp\nCMD [\"nnp\"]\n",
                       {"rootfs": bb, "nnp": out / "bin" / "nnp"}),
        "agnhost": (base + "COPY agnhost /agnhost\nRUN " + _lines("/etc/passwd", AGNHOST_PASSWD)
                    + " && " + _lines("/etc/group", AGNHOST_GROUP)
                    + " && mkdir -p /home/user-defined-in-image /uploads\n"
                    "ENTRYPOINT [\"/agnhost\"]\nCMD [\"pause\"]\n",
                    {"rootfs": bb, "agnhost": out / "bin" / "agnhost"}),
    }
    built = []
    for short, refs in names.items():
        for ref in refs:
            docker.build(ref, *recipes[short])
            built.append(ref)
    return built


def load(cluster_name: str, images: list[str]) -> None:
    from secctx.offline import nodeimage
    log.step(f"kind load docker-image {len(images)} e2e image(s) into {cluster_name}")
    subprocess.run([str(nodeimage.kind_binary()), "load", "docker-image", "--name", cluster_name,
                    *images], check=True, capture_output=True, timeout=600)


def command(out: Path, kubeconfig: Path, report_dir: Path) -> list[str]:
    return [str(out / "e2e.test"), f"--kubeconfig={kubeconfig}", "--provider=skeleton",
            f"--ginkgo.focus={FOCUS}", "--ginkgo.no-color", "--ginkgo.timeout=30m",
            f"--report-dir={report_dir}", "--disable-log-dump"]


def spec_counts(report_dir: Path) -> dict | None:
    """Specs run, passed, failed and skipped, from e2e's JUnit report (its specs are
    "[It] ..."; the suite's own nodes, "[SynchronizedBeforeSuite]" and the reports, are
    no specs)."""
    files = sorted(report_dir.glob("junit*.xml"))
    if not files:
        return None
    counts = {"tests": 0, "passed": 0, "failed": 0, "skipped": 0}
    for f in files:
        for case in ET.parse(f).iter("testcase"):
            if not (case.get("name") or "").startswith("[It]"):
                continue
            kinds = {child.tag for child in case}
            if "skipped" in kinds:
                counts["skipped"] += 1
                continue
            counts["tests"] += 1
            counts["failed" if kinds & {"failure", "error"} else "passed"] += 1
    return counts


_RAN = re.compile(r"Ran (\d+) of (\d+) Specs in ([\d.]+) seconds")


def ran_line(output: str) -> dict | None:
    """Ginkgo's "Ran 30 of 7000 Specs in 101.2 seconds"."""
    m = _RAN.search(output)
    return {"ran": int(m[1]), "of": int(m[2]), "ginkgo_seconds": float(m[3])} if m else None


def main(argv: list[str] | None = None) -> int:
    from secctx.cluster.provision import DEFAULT_KUBERNETES_VERSION
    p = argparse.ArgumentParser(prog="python -m benchmarks.e2e")
    p.add_argument("--cluster-name", required=True)
    p.add_argument("--kubernetes-version", default=DEFAULT_KUBERNETES_VERSION)
    p.add_argument("--prepare-only", action="store_true", help="build and load, do not run")
    p.add_argument("--report-dir", type=Path, default=Path("reports/e2e"))
    args = p.parse_args(argv)
    out = build(KubeVersion.parse(args.kubernetes_version))
    load(args.cluster_name, build_stand_ins(out))
    if args.prepare_only:
        print(json.dumps({"e2e_test": str(out / "e2e.test")}))
        return 0
    args.report_dir.mkdir(parents=True, exist_ok=True)
    kubeconfig = cache.cluster_state(args.cluster_name) / "kubeconfig"
    return subprocess.run(command(out, kubeconfig, args.report_dir.resolve())).returncode


if __name__ == "__main__":
    sys.exit(main())
