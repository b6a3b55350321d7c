#!/bin/bash
# Start, use and stop the spike's VM node.
#   vm.sh up            TAP on the kind bridge + qemu (TCG) booting $CACHE/disk.img (snapshot: writes are thrown away)
#   vm.sh exec [-t S] CMD...  run CMD in the VM through the guest agent (default time-out 300 s)
#   vm.sh wait-agent [S]      wait until the guest agent answers
#   vm.sh down          stop qemu (by its pid file) and delete the TAP
source "$(dirname "$0")/common.sh"
mkdir -p "$RUN"

vm_ip() { echo "$(kind_prefix).$VM_IP_SUFFIX"; }

up() {
  [ -f "$CACHE/disk.img" ] || die "no disk image: run build-image.sh first"
  [ -f "$RUN/qemu.pid" ] && kill -0 "$(cat "$RUN/qemu.pid")" 2>/dev/null && die "a VM already runs (pid $(cat "$RUN/qemu.pid")): vm.sh down"
  local br ip gw; br=$(kind_bridge); ip=$(vm_ip); gw=$(kind_gateway)
  # An address no container holds (docker allocates from the bottom of the /16).
  docker network inspect kind -f '{{range .Containers}}{{.IPv4Address}} {{end}}' | grep -qw "$ip/16" \
    && die "$ip is taken on the kind network: set VM_IP_SUFFIX"
  rm -rf "$RUN/share"; mkdir -p "$RUN/share/cmd"
  ip link show "$TAP" >/dev/null 2>&1 || ip tuntap add dev "$TAP" mode tap
  ip link set "$TAP" master "$br" up
  log "qemu: $VM_CPUS vCPU, $VM_MEM MiB, TCG; $ip on $br via $TAP"
  date +%s.%N > "$RUN/qemu.start"
  qemu-system-x86_64 -name "$VM_NAME" -accel tcg,thread=multi -cpu max -smp "$VM_CPUS" -m "$VM_MEM" -uuid "$(cat /proc/sys/kernel/random/uuid)" \
    -kernel "$CACHE/vmlinuz" -initrd "$CACHE/initrd.img" \
    -append "console=ttyS0 loglevel=4 vm.ip=$ip/16 vm.gw=$gw ${VM_APPEND:-}" \
    -drive file="$CACHE/disk.img",if=virtio,format=raw,cache=unsafe -snapshot \
    -netdev tap,id=n0,ifname="$TAP",script=no,downscript=no \
    -device virtio-net-pci,netdev=n0,mac=52:54:00:5e:c0:01 \
    -device virtio-rng-pci \
    -virtfs local,path="$RUN/share",mount_tag=spike,security_model=none,id=spike \
    -display none -serial file:"$RUN/console.log" -monitor none \
    -daemonize -pidfile "$RUN/qemu.pid"
}

down() {
  if [ -f "$RUN/qemu.pid" ]; then
    local pid; pid=$(cat "$RUN/qemu.pid")
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid"; for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    fi
    rm -f "$RUN/qemu.pid"
  fi
  ip link show "$TAP" >/dev/null 2>&1 && ip link del "$TAP"
  return 0
}

wait_agent() {
  local limit=${1:-300} t0=$SECONDS
  until [ -f "$RUN/share/agent-up" ]; do
    [ -f "$RUN/qemu.pid" ] && kill -0 "$(cat "$RUN/qemu.pid")" 2>/dev/null || die "qemu is gone; see $RUN/console.log"
    (( SECONDS - t0 < limit )) || die "no guest agent after ${limit}s; see $RUN/console.log"
    sleep 0.5
  done
}

vexec() {
  local limit=300
  [ "${1:-}" = -t ] && { limit=$2; shift 2; }
  local n; n="c$(date +%s%N)"
  printf '%s\n' "$*" > "$RUN/share/cmd/$n.tmp"; mv "$RUN/share/cmd/$n.tmp" "$RUN/share/cmd/$n.sh"
  local t0=$SECONDS
  until [ -f "$RUN/share/cmd/$n.rc" ]; do
    (( SECONDS - t0 < limit )) || die "no answer from the VM in ${limit}s to: $*"
    sleep 0.3
  done
  cat "$RUN/share/cmd/$n.out"; return "$(cat "$RUN/share/cmd/$n.rc")"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  exec) shift; vexec "$@" ;;
  wait-agent) shift; wait_agent "$@" ;;
  ip) vm_ip ;;
  *) die "usage: vm.sh up|down|exec [-t S] CMD|wait-agent [S]|ip" ;;
esac
