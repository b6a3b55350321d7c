"""`python -m secctx ...`: engine, node image, cluster and report commands.

Errors a user can fix end the command with one message (cause and fix) and
exit code 2, not a traceback.
"""
from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

from .cluster import engine, hostneeds, provision
from .cluster.kind import ClusterError
from .core.run_command import CommandError
from .images.imagemap import ImageMapError
from .kube import rbac
from .offline.gobuild import BuildError
from .offline.gomod import KubeVersion, VersionError

# (CommandError: a command no caller turned into its own error still says what ran.)
USER_ERRORS = (engine.EngineError, ClusterError, BuildError, VersionError, ImageMapError,
               CommandError)


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args, rest = parser.parse_known_args(argv)
    if args.command == "host-needs":  # the suite's pytest options, read by hostneeds.parse
        sys.stdout.write(hostneeds.report(rest))
        return 0
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    try:
        return _run(args)
    except USER_ERRORS as err:
        print(f"secctx: {err}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m secctx")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("engine", help="make a Docker engine available (start dockerd if needed)")
    sub.add_parser("host-needs", help="what hack/lib.sh installs for a run of these pytest "
                   "options: `engine yes|no`, then `missing PACKAGE<TAB>WHY` lines",
                   usage="python -m secctx host-needs [PYTEST OPTIONS]")
    sub.add_parser("host-restore", help="restore host sysctls kubelet changed (if we started dockerd)")

    p = sub.add_parser("node-image", help="build the offline kind node image")
    p.add_argument("--kubernetes-version", default=provision.DEFAULT_KUBERNETES_VERSION)
    p.add_argument("--rebuild", action="store_true", help="rebuild even if cached")
    p.add_argument("--cri", choices=provision.CRIS, default="containerd",
                   help="the node's CRI implementation (default containerd)")

    p = sub.add_parser("prepare", help="build what a run of this mode needs, before any test "
                       "(offline: the node image and the workload images; online: nothing)")
    _prepare_args(p)

    p = sub.add_parser("cluster-up", help="create (or reuse) the kind cluster and load images")
    _cluster_args(p)
    p = sub.add_parser("images-publish", help="build the suite's own test images and push them "
                       "to a registry (for --secctx-image-registry)")
    p.add_argument("registry", metavar="HOST[/PREFIX]")

    p = sub.add_parser("cluster-down", help="delete the kind cluster")
    p.add_argument("--cluster-name", default=provision.DEFAULT_CLUSTER_NAME)

    p = sub.add_parser("vm-node", help="a worker node with its own kernel (qemu; cgroup v2, "
                       "AppArmor, or SELinux permissive) joined to an offline kind "
                       "cluster: up or down")
    p.add_argument("action", choices=("up", "down"))
    p.add_argument("--cluster-name", default=provision.DEFAULT_CLUSTER_NAME)
    p.add_argument("--lsm", default="apparmor", choices=("apparmor", "selinux"),
                   help="the node's LSM (docs/vm-node.md)")
    p.add_argument("--cpus", type=int, default=2)
    p.add_argument("--memory-mib", type=int, default=3072)

    sub.add_parser("rbac-manifest", help="print deploy/rbac.yaml, the RBAC the suite needs on "
                   "an existing cluster (for kubectl apply -f -)")
    p = sub.add_parser("rbac-kubeconfig",
                       help="a kubeconfig for the suite's ServiceAccount of deploy/rbac.yaml "
                            "(a token from the TokenRequest API, with an expiry)")
    p.add_argument("--kubeconfig", type=Path, required=True,
                   help="an admin kubeconfig that may create serviceaccounts/token")
    p.add_argument("--kube-context", default=None)
    p.add_argument("--out", type=Path, required=True, help="where to write the kubeconfig")
    p.add_argument("--duration", type=_duration, default="2h",
                   help="how long the token is valid: 90m, 2h (default 2h; at least 10m)")
    p.add_argument("--namespace", default=rbac.NAMESPACE)
    p.add_argument("--service-account", default=rbac.SERVICE_ACCOUNT)
    return parser


def _prepare_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kubernetes-version", default=provision.DEFAULT_KUBERNETES_VERSION)
    p.add_argument("--mode", choices=("auto", "online", "offline"), default="auto")
    p.add_argument("--cri", action="append", choices=provision.CRIS, default=None,
                   help="a node image to build, by its CRI (repeatable; default containerd "
                   "alone; crio as cluster-up --cri crio needs it)")
    p.add_argument("--if-cached", action="append", choices=[c for c in provision.CRIS
                                                           if c != "containerd"], default=[],
                   help="also this CRI's node image, but only when its slow part (CRI-O's Go "
                   "build) is cached; else say so and leave it out (CI's 60-minute budget)")


def _cluster_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cluster-name", default=provision.DEFAULT_CLUSTER_NAME)
    p.add_argument("--kubernetes-version", default=None)
    p.add_argument("--mode", choices=("auto", "online", "offline"), default="auto")
    p.add_argument("--node-image", default=None)
    p.add_argument("--image-map", type=Path, default=None)
    p.add_argument("--image-registry", default=None, metavar="HOST[/PREFIX]")
    p.add_argument("--registry-mirror", action="append", default=[], metavar="[REGISTRY=]URL")
    p.add_argument("--rebuild", action="store_true")
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--kubelet-seccomp-default", action="store_true",
                   help="kubelet seccompDefault: true (pods without a profile get RuntimeDefault)")
    p.add_argument("--cri", choices=provision.CRIS, default="containerd",
                   help="the kind nodes' CRI implementation (crio: an offline CRI-O node image)")


def _duration(text: str) -> int:
    """Seconds of "90m", "2h" or "600s" (TokenRequest's minimum is 10 minutes)."""
    m = re.fullmatch(r"(\d+)([smh])", text.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration such as 90m or 2h")
    seconds = int(m[1]) * {"s": 1, "m": 60, "h": 3600}[m[2]]
    if seconds < 600:
        raise argparse.ArgumentTypeError(f"{text!r} is shorter than the API's minimum of 10m")
    return seconds


def _run(args: argparse.Namespace) -> int:
    if args.command == "engine":
        info = engine.ensure_engine()
        print(f"docker {info['ServerVersion']}, default runtime {info['DefaultRuntime']}")
    elif args.command == "host-restore":
        engine.restore_sysctls()
    elif args.command == "node-image":
        from .offline import crionode, nodeimage
        builder = crionode if args.cri == crionode.CRI else nodeimage
        print(builder.build(KubeVersion.parse(args.kubernetes_version), args.rebuild).tag)
    elif args.command == "prepare":
        _prepare(args.mode, KubeVersion.parse(args.kubernetes_version),
                 args.cri or ["containerd"], args.if_cached)
    elif args.command == "cluster-up":
        cluster = provision.bring_up(provision.Options(
            name=args.cluster_name, kubernetes_version=args.kubernetes_version, mode=args.mode,
            node_image=args.node_image, image_map=args.image_map,
            image_registry=args.image_registry, registry_mirrors=tuple(args.registry_mirror),
            rebuild=args.rebuild, workers=args.workers,
            seccomp_default=args.kubelet_seccomp_default, cri=args.cri))
        print(f"export KUBECONFIG={cluster.kubeconfig}")
    elif args.command == "images-publish":
        from .images.imagemap import ImageMapError, registry_problem
        if registry_problem(args.registry):
            raise ImageMapError(registry_problem(args.registry))
        from .images import load
        for image in load.publish(args.registry):
            print(image)
    elif args.command == "rbac-manifest":
        from .core import paths
        sys.stdout.write(paths.RBAC_MANIFEST.read_text())
    elif args.command == "rbac-kubeconfig":
        expires = rbac.service_account_kubeconfig(args.kubeconfig, args.out, args.kube_context,
                                                  args.namespace, args.service_account,
                                                  args.duration)
        print(f"wrote {args.out} (ServiceAccount {args.namespace}/{args.service_account}, "
              f"token valid until {expires:%Y-%m-%d %H:%M %Z})")
    elif args.command == "vm-node":
        from .cluster import vmnode
        node = vmnode.VMNode(args.cluster_name, lsm=args.lsm, cpus=args.cpus,
                             memory_mib=args.memory_mib)
        if args.action == "up":
            vmnode.up(node)
            print(f"node {node.name} Ready at {node.ip} ({node.lsm}); "
                  + ", ".join(f"{k} {v}s" for k, v in node.timings.items()))
        else:
            print("removed: " + (", ".join(vmnode.down(node)) or "nothing (no VM node)"))
    elif args.command == "cluster-down":
        from .cluster.kind import KindCluster
        from .offline import nodeimage
        KindCluster(args.cluster_name, kind_path=nodeimage.kind_binary(),
                    image=None, config={}).delete()
    return 0


def _prepare(requested: str, version: KubeVersion, cris: list[str], if_cached: list[str]) -> None:
    """The cold build as a step of its own: a test's bounded wait (a nested cluster-up)
    must not be where 20 minutes of compiling happen. `cris`: node images always built;
    `if_cached`: those built only when their slow part is cached."""
    from .cluster import mode as modes
    from .images import build as images
    from .images import docker
    from .offline import crionode, nodeimage
    mode, why = modes.detect(requested, engine.docker_info() or {}, docker.image_exists)
    if mode != modes.OFFLINE:
        print(f"mode {mode} ({why}): nothing to build")
        return
    builders = {"containerd": nodeimage, crionode.CRI: crionode}
    tags = []
    for cri in dict.fromkeys(cris + if_cached):
        if cri not in cris and not (crionode.up_to_date(version) or crionode.slow_part_cached()):
            print(f"left out: the {cri} node image (CRI-O's Go build is not cached: 17-25 min on "
                  f"2 cores, over CI's budget); `python -m secctx prepare --cri {cri}` builds it")
            continue
        started = time.monotonic()
        builders[cri].build(version)
        tags.append(f"{builders[cri].image_tag(version)} ({time.monotonic() - started:.0f}s)")
    started = time.monotonic()
    images.build_workload_images(offline=True)
    print(f"mode offline ({why}): node images {', '.join(tags)}; the workload images "
          f"ready in {time.monotonic() - started:.0f}s")

