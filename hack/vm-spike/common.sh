# Shared settings of the VM-node spike (issue 26). Sourced by the other scripts.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
CACHE="${SECCTX_CACHE:-$HOME/.cache/secctx}/vm"     # kernel, initramfs, disk image (never in git)
RUN="${VM_RUN:-/tmp/vm-spike}"                       # per-run state: share dir, pid, logs
KVER="${VM_KVER:-6.1.0-57-amd64}"                   # Debian bookworm's linux-image-amd64
CLUSTER="${VM_CLUSTER:-secctx-vm-spike}"
VM_NAME="${VM_NAME:-$CLUSTER-vm}"                    # hostname = node name
VM_IP_SUFFIX="${VM_IP_SUFFIX:-255.200}"             # last two octets in the kind /16, far above docker's allocations
VM_MEM="${VM_MEM:-3072}"
VM_CPUS="${VM_CPUS:-2}"
TAP="${VM_TAP:-tap-vmspike}"
# Modules the initramfs needs to reach the root disk and the 9p share (virtio, ext4).
INITRD_MODULES="virtio_pci virtio_blk virtio_net ext4 9pnet_virtio 9p"

log() { printf '%s [%5.1fs load %s] %s\n' "$(date -u +%T)" "$SECONDS" \
  "$(cut -d' ' -f1-3 /proc/loadavg)" "$*" >&2; }
die() { echo "vm-spike: $*" >&2; exit 1; }

cp_container() { echo "$CLUSTER-control-plane"; }
kctl() { docker exec -i "$(cp_container)" kubectl --kubeconfig /etc/kubernetes/admin.conf "$@"; }

kind_bridge() {  # the Linux bridge of docker's "kind" network
  local id; id=$(docker network inspect kind -f '{{.Id}}') || die "no docker network 'kind': create the cluster first"
  echo "br-${id:0:12}"
}
kind_prefix() {  # "172.18" of the kind network's IPv4 /16
  docker network inspect kind -f '{{range .IPAM.Config}}{{.Subnet}} {{end}}' \
    | tr ' ' '\n' | grep -E '^[0-9]+\.[0-9]+\.0\.0/16$' | head -1 | cut -d. -f1-2
}
kind_gateway() {
  docker network inspect kind -f '{{range .IPAM.Config}}{{.Gateway}} {{end}}' | tr ' ' '\n' | grep -E '^[0-9.]+$' | head -1
}
