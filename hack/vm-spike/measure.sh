#!/bin/bash
# The spike's measurement (issue 26): boot the VM node, join it to the kind cluster
# $CLUSTER, time one pod's apply -> Running, measure idle CPU, record the node's facts.
#   measure.sh [RUNS]      (default 1; each run boots a fresh copy of the disk image)
# Results: $RUN/results.tsv (one line per run) and $RUN/run-N/ (facts, logs).
# Cleans up the VM and TAP on exit (also on failure); the cluster is yours to delete.
source "$(dirname "$0")/common.sh"
RUNS=${1:-1}
VM="$HERE/vm.sh"
POD_IMAGE="${VM_POD_IMAGE:-secctx.local/standin/busybox:1.35-bookworm}"  # preloaded in the node image
docker inspect "$(cp_container)" >/dev/null 2>&1 || die "no cluster $CLUSTER: python -m secctx cluster-up --cluster-name $CLUSTER --mode offline"
trap '"$VM" down' EXIT
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; }
load() { cut -d' ' -f1 /proc/loadavg; }
until_true() {  # until_true LIMIT CMD...: poll CMD every 0.5 s, bounded
  local limit=$1 t0=$SECONDS; shift
  until "$@" >/dev/null 2>&1; do (( SECONDS - t0 < limit )) || return 1; sleep 0.5; done
}
node_ready() { [ "$(kctl get node "$VM_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" = True ]; }
pod_running() { [ "$(kctl get pod "$1" -o jsonpath='{.status.phase}')" = Running ]; }
qemu_cpu() {  # qemu's user+system CPU seconds
  awk -v hz="$(getconf CLK_TCK)" '{print ($14+$15)/hz}' "/proc/$(cat "$RUN/qemu.pid")/stat"
}
pod_yaml() {  # pod_yaml NAME [APPARMOR]: busybox sleep pinned to the VM node
  cat <<YAML
apiVersion: v1
kind: Pod
metadata: {name: $1, labels: {app: vm-spike}}
spec:
  nodeName: $VM_NAME
  terminationGracePeriodSeconds: 0
  containers:
  - name: c
    image: $POD_IMAGE
    imagePullPolicy: Never
    command: [sleep, "3600"]
YAML
  [ -n "${2:-}" ] && printf '    securityContext:\n      appArmorProfile: {type: %s}\n' "$2"
  return 0
}
apply_and_time() {  # apply_and_time NAME [APPARMOR] -> seconds apply -> Running
  local t; t=$(now)
  pod_yaml "$@" | kctl apply -f - >/dev/null
  until_true 300 pod_running "$1" || { kctl describe pod "$1" >&2; die "pod $1 not Running in 300 s"; }
  since "$t"
}

CP_IP=$(docker inspect "$(cp_container)" -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}')
printf 'run\tboot_agent_s\tsystemd_s\tjoin_ready_s\tpod1_s\tpod2_s\tpod3_s\tidle_host_cores\tidle_guest_busy\tload_at_boot\tload_at_idle\n' > "$RUN/results.tsv.new"
for r in $(seq 1 "$RUNS"); do
  D="$RUN/run-$r"; rm -rf "$D"; mkdir -p "$D"
  kctl delete node "$VM_NAME" --ignore-not-found >/dev/null
  kctl delete pod -l app=vm-spike --ignore-not-found --wait=false >/dev/null
  lb=$(load); log "run $r: boot"
  "$VM" up; t0=$(cat "$RUN/qemu.start")
  "$VM" wait-agent 600; boot=$(since "$t0")
  log "run $r: agent up after ${boot}s (guest uptime $(cut -d' ' -f1 "$RUN/share/agent-up"))"
  "$VM" exec -t 300 'systemctl is-system-running --wait; systemd-analyze; systemd-analyze blame | head -15' > "$D/systemd.txt" || true
  sysd=$(grep -oE '= [0-9.]+s' "$D/systemd.txt" | head -1 | tr -dc '0-9.')
  # kubeadm's prerequisites a node provides itself (kind's entrypoint does them in the container).
  "$VM" exec "echo '$CP_IP $(cp_container)' >> /etc/hosts; modprobe br_netfilter; modprobe overlay;
    sysctl -qw net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1 net.bridge.bridge-nf-call-ip6tables=1;
    systemctl is-active containerd"
  join=$(docker exec "$(cp_container)" kubeadm token create --print-join-command --ttl 2h | tail -1)
  log "run $r: kubeadm join"; tj=$(now)
  "$VM" exec -t 600 "$join --node-name $VM_NAME ${VM_JOIN_FLAGS:---ignore-preflight-errors=SystemVerification} 2>&1" > "$D/join.txt" || { cat "$D/join.txt"; die "kubeadm join failed"; }
  until_true 600 node_ready || die "node $VM_NAME not Ready in 600 s"
  ready=$(since "$tj"); log "run $r: node Ready ${ready}s after join started"
  p=()
  for i in 1 2 3; do p+=("$(apply_and_time "spike-$i")"); log "run $r: pod spike-$i Running after ${p[-1]}s"
    kctl delete pod "spike-$i" --wait=true >/dev/null; done
  # Idle: only the node's own (kubelet, containerd, kube-proxy if scheduled); 60 s host- and guest-side.
  sleep 20; li=$(load); c0=$(qemu_cpu)
  "$VM" exec -t 120 'read -r _ a b c d e f g h _ < /proc/stat; sleep 60; read -r _ A B C D E F G H _ < /proc/stat
    busy=$(( (A+B+C+F+G+H)-(a+b+c+f+g+h) )); all=$(( busy + (D+E)-(d+e) )); echo "guest_busy $busy/$all"
    top -bn1 -o TIME+ | head -20' > "$D/idle.txt"
  c1=$(qemu_cpu); host=$(awk -v a="$c0" -v b="$c1" 'BEGIN{printf "%.2f", (b-a)/60}')
  guest=$(awk '/^guest_busy/{split($2,x,"/"); printf "%.2f", x[1]/x[2]*'"$VM_CPUS"'}' "$D/idle.txt")
  log "run $r: idle: qemu $host cores (host), guest busy $guest cores"
  "$HERE/facts.sh" > "$D/facts.txt" 2>&1 || true
  cp "$RUN/console.log" "$D/console.log"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$boot" "$sysd" "$ready" "${p[@]}" "$host" "$guest" "$lb" "$li" >> "$RUN/results.tsv.new"
  kctl delete node "$VM_NAME" >/dev/null
  "$VM" down
done
mv "$RUN/results.tsv.new" "$RUN/results.tsv"; column -t "$RUN/results.tsv"
