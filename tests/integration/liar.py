"""A lying runtime, for real: install runc-liar/ into the nodes of a kind cluster.

The suite must fail when a runtime does not apply what Kubernetes asked for
(issue 14, items 9-13). This helper makes such a runtime out of the real one:
runc-liar (Go, in ./runc-liar) is an OCI runtime wrapper that edits the
bundle's config.json (and exec's process file) in one chosen way, then execs
the real runc. It reads /etc/secctx/lie on the node at every call: absent,
it is an honest pass-through; no containerd restart is needed to switch.

    from tests.integration import liar
    liar.install("secctx-liar")             # once per cluster (idempotent)
    liar.lie("secctx-liar", "rw-volumes")    # pods created from now on are lied to
    ...                                      # create the pod, run the check: red
    liar.honest("secctx-liar")               # back to the truth
    liar.uninstall("secctx-liar")            # the node's runc as it was

or from a shell, in the repository root:

    python -m tests.integration.liar install --cluster-name secctx-liar
    python -m tests.integration.liar lie rw-volumes [--namespace PREFIX] --cluster-name secctx-liar
    python -m tests.integration.liar honest --cluster-name secctx-liar
    python -m tests.integration.liar log --cluster-name secctx-liar

The lies (what each changes, as seen from inside the container: see
docs/lying-runtime.md):

    rw-volumes      "ro" -> "rw" on every bind mount that is not a system path
    no-seccomp      the seccomp filter allows everything (Seccomp: still 2)
    unshare-only    the seccomp filter refuses unshare (EPERM) and allows everything else
    no-nnp          noNewPrivileges false (PID 1 and exec'd processes)
    saved-uid-root  PID 1's real uid is 0 (effective, saved, fs uid as asked)
    crash-identity  PID 1 runs as uid+1, gid+1 (non-zero ids only)
    own-volumes     each emptyDir's directory on the node chowned to the process, mode 0700
    file-modes      every file of configMap/secret/downwardAPI/projected volumes 0644
    no-apparmor     no AppArmor profile (PID 1 and exec'd processes): unconfined

A lie applies to containers created after it is set (no-nnp also to each new
exec), only to application containers (never pod sandboxes), never in
kube-system or local-path-storage, and, with a namespace prefix, only in
namespaces that start with it.

Where the node already has the capability shim (/usr/local/sbin/runc execs
runc.real), the liar goes between the two: runc (shim) -> runc.real (liar)
-> runc.real.real (runc). Elsewhere it wraps runc itself.

On a CRI-O node (`install(cluster, handler=HANDLER)`) the liar is a runtime handler of
its own instead, as an operator adds one: a `[crio.runtime.runtimes.secctx-liar]`
drop-in (CRIO_DROP_IN) and the RuntimeClass `secctx-liar`; the node's runc handler is
left as it is. Its chain is runc-liar (the liar) -> runc-liar.real (a link to the
node's runc, the capability shim) -> runc.real; the suite runs under it with
`--secctx-runtime-class secctx-liar`.
"""
from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

from secctx.cluster import vmnode
from secctx.core import cache
from secctx.offline.gobuild import go, go_env

SOURCE = Path(__file__).with_name("runc-liar")
LIES = ("rw-volumes", "no-seccomp", "unshare-only", "no-nnp", "saved-uid-root", "crash-identity", "own-volumes",
        "file-modes", "no-apparmor")
LIE_FILE = "/etc/secctx/lie"
LOG_FILE = "/var/log/secctx-liar.log"
MARKER = "/etc/secctx/liar-installed"  # holds the path the liar took over
STAGED = "/usr/local/sbin/.secctx-liar.new"
# CRI-O: the liar as a runtime handler (and RuntimeClass) of its own.
HANDLER = "secctx-liar"
HANDLER_BINARY = "/usr/local/sbin/runc-liar"
CRIO_DROP_IN = f"/etc/crio/crio.conf.d/90-{HANDLER}.conf"
_CRIO_HANDLER = f"""# secctx-conformance: the lying runtime (tests/integration/liar.py), a handler of its own
[crio.runtime.runtimes.{HANDLER}]
runtime_path = "{HANDLER_BINARY}"
runtime_root = "/run/{HANDLER}"
runtime_type = "oci"
"""
_RUNTIME_CLASS = f"""apiVersion: node.k8s.io/v1
kind: RuntimeClass
metadata:
  name: {HANDLER}
handler: {HANDLER}
"""
KUBECTL = "kubectl --kubeconfig /etc/kubernetes/admin.conf"
# CRI-O reads its runtimes at start: a bounded wait for its socket after the restart.
_RESTART_CRIO = """systemctl restart crio
i=0
until crictl info >/dev/null 2>&1; do
  i=$((i+1)); [ $i -le 60 ] || { echo "CRI-O did not come back within 60 s" >&2; exit 1; }
  sleep 1
done
"""

_INSTALL = f"""set -eu
if [ -f {MARKER} ]; then            # installed already: replace the binary only
  mv -f {STAGED} "$(cat {MARKER})"
  exit 0
fi
runc=$(command -v runc)
target=$runc
[ -e "$runc.real" ] && target=$runc.real
cp -p "$target" "$target.real"
mv -f {STAGED} "$target"            # atomic: runc is never missing
mkdir -p /etc/secctx
echo "$target" > {MARKER}
"""

_INSTALL_HANDLER = f"""set -eu
mv -f {STAGED} {HANDLER_BINARY}
ln -sfn "$(command -v runc)" {HANDLER_BINARY}.real   # the node's own runc handler
mkdir -p /etc/secctx
cat > {CRIO_DROP_IN} <<'EOF'
{_CRIO_HANDLER}EOF
echo handler:{HANDLER} > {MARKER}
""" + _RESTART_CRIO

_UNINSTALL = f"""set -eu
[ -f {MARKER} ] || exit 0
target=$(cat {MARKER})
case "$target" in
  handler:*)
    rm -f {CRIO_DROP_IN} {HANDLER_BINARY} {HANDLER_BINARY}.real {MARKER} {LIE_FILE}
    {_RESTART_CRIO.replace(chr(10), chr(10) + "    ")};;
  *)
    mv -f "$target.real" "$target"
    rm -f {MARKER} {LIE_FILE};;
esac
"""


class LiarError(RuntimeError):
    pass


def build() -> Path:
    """The static runc-liar binary, rebuilt when its source changes."""
    h = hashlib.sha256()
    for f in sorted(SOURCE.glob("*")):
        if f.suffix in (".go", ".mod"):
            h.update(f.name.encode() + b"\0" + f.read_bytes())
    out = cache.path("runc-liar", h.hexdigest()[:16], "runc-liar")
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        go(["build", "-trimpath", "-ldflags", "-s -w", "-o", str(out), "."], SOURCE,
           go_env(CGO_ENABLED="0"))
    return out


VM_PREFIX = "vm:"  # a cluster's VM node (secctx.cluster.vmnode), reached by its guest agent


def nodes(cluster_name: str) -> list[str]:
    """The node containers of a kind cluster (by kind's label), and its VM node if one
    runs ("vm:<cluster>")."""
    out = _docker(["ps", "--filter", f"label=io.x-k8s.kind.cluster={cluster_name}",
                   "--format", "{{.Names}}"])
    names = sorted(out.split())
    if not names:
        raise LiarError(f"no running kind node for cluster {cluster_name!r}")
    if vmnode.VMNode(cluster_name).pid() is not None:
        names.append(VM_PREFIX + cluster_name)
    return names


def install(cluster_name: str, handler: str | None = None) -> None:
    """Put the liar in front of runc on every node, honest until lie() is called. With
    `handler` (HANDLER, CRI-O nodes only), add it as that runtime handler instead, with
    its RuntimeClass, and leave the node's runc alone."""
    binary = build()
    if handler is not None:
        _install_handler(cluster_name, handler, binary)
        return
    for node in nodes(cluster_name):
        if node.startswith(VM_PREFIX):  # through the guest agent's 9p share
            vm = vmnode.VMNode(node[len(VM_PREFIX):])
            shutil.copy(binary, vm.run_dir / "share" / "runc-liar")
            _sh(node, f"cp /run/secctx-vm/runc-liar {STAGED}")
        else:
            _docker(["cp", str(binary), f"{node}:{STAGED}"])
        _sh(node, f"chmod 755 {STAGED}\n" + _INSTALL)


def _install_handler(cluster_name: str, handler: str, binary: Path) -> None:
    if handler != HANDLER:
        raise LiarError(f"the liar's handler is {HANDLER!r}, not {handler!r}")
    kind_nodes = nodes(cluster_name)
    for node in kind_nodes:
        if node.startswith(VM_PREFIX) or _sh(node, "test -d /etc/crio/crio.conf.d && echo crio "
                                                   "|| true").strip() != "crio":
            raise LiarError(f"{node} does not run CRI-O: a handler of its own is for CRI-O "
                            "nodes; install without `handler` to wrap the node's runc")
        if _sh(node, f"cat {MARKER} 2>/dev/null || true").strip() not in ("", f"handler:{handler}"):
            raise LiarError(f"{node} has the liar wrapping its runc: uninstall() first")
        _docker(["cp", str(binary), f"{node}:{STAGED}"])
        _sh(node, f"chmod 755 {STAGED}\n" + _INSTALL_HANDLER)
    control_plane = next(n for n in kind_nodes if n.endswith("-control-plane"))
    _sh(control_plane, f"{KUBECTL} apply -f - <<'EOF'\n{_RUNTIME_CLASS}EOF\n")


def uninstall(cluster_name: str) -> None:
    """Give every node its own runc back (and forget the lie); a CRI-O handler goes with
    its RuntimeClass."""
    kind_nodes = nodes(cluster_name)
    handlers = [n for n in kind_nodes
                if _sh(n, f"cat {MARKER} 2>/dev/null || true").startswith("handler:")]
    for node in kind_nodes:
        _sh(node, _UNINSTALL)
    if handlers:
        control_plane = next(n for n in kind_nodes if n.endswith("-control-plane"))
        _sh(control_plane, f"{KUBECTL} delete runtimeclass {HANDLER} --ignore-not-found")


def lie(cluster_name: str, word: str, namespace: str | None = None) -> None:
    """From now on, containers created on the cluster's nodes (in namespaces
    starting with `namespace`, if given) are lied to in the way `word` says."""
    if word not in LIES:
        raise LiarError(f"unknown lie {word!r}; known: {', '.join(LIES)}")
    if namespace is not None and not namespace.replace("-", "").isalnum():
        raise LiarError(f"bad namespace prefix {namespace!r}")
    line = word if namespace is None else f"{word} {namespace}"
    for node in nodes(cluster_name):
        _require_installed(node)
        _sh(node, f"mkdir -p /etc/secctx && echo '{line}' > {LIE_FILE}.new "
                  f"&& mv -f {LIE_FILE}.new {LIE_FILE}")


def honest(cluster_name: str) -> None:
    """No more lies for containers created from now on."""
    for node in nodes(cluster_name):
        _sh(node, f"rm -f {LIE_FILE}")


def log(cluster_name: str) -> str:
    """What the liar changed, per node (/var/log/secctx-liar.log)."""
    return "".join(f"== {node}\n" + _sh(node, f"cat {LOG_FILE} 2>/dev/null || true")
                   for node in nodes(cluster_name))


def _require_installed(node: str) -> None:
    if _sh(node, f"test -f {MARKER} && echo yes || true").strip() != "yes":
        raise LiarError(f"the liar is not installed on {node}: call install() first")


def _sh(node: str, script: str) -> str:
    if node.startswith(VM_PREFIX):
        try:
            return vmnode.VMNode(node[len(VM_PREFIX):]).guest(script, "liar", timeout=120)
        except vmnode.VMNodeError as err:
            raise LiarError(str(err)) from None
    return _docker(["exec", "-i", node, "sh", "-c", script])


def _docker(args: list[str]) -> str:
    proc = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise LiarError(f"docker {' '.join(args[:3])} failed: {proc.stderr.strip()}")
    return proc.stdout


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.integration.liar", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=("install", "uninstall", "lie", "honest", "log"))
    p.add_argument("word", nargs="?", choices=LIES)
    p.add_argument("--namespace", default=None, help="lie only in namespaces with this prefix")
    p.add_argument("--cluster-name", required=True)
    p.add_argument("--handler", choices=(HANDLER,), default=None,
                   help="install: as this CRI-O runtime handler and RuntimeClass (CRI-O nodes)")
    args = p.parse_args(argv)
    try:
        if args.command == "lie":
            if not args.word:
                p.error("lie needs a word: " + ", ".join(LIES))
            lie(args.cluster_name, args.word, args.namespace)
        elif args.command == "log":
            print(log(args.cluster_name), end="")
        elif args.command == "install":
            install(args.cluster_name, args.handler)
        else:
            {"uninstall": uninstall, "honest": honest}[args.command](args.cluster_name)
    except LiarError as err:
        print(f"liar: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
