#!/bin/bash
# What the joined VM node reports: kernel, LSMs, cgroup version, AppArmor state, and
# whether containerd loads and applies its default AppArmor profile (RuntimeDefault).
source "$(dirname "$0")/common.sh"
VM="$HERE/vm.sh"
source <(sed -n '/^pod_yaml()/,/^}/p; /^pod_running()/p; /^until_true()/,/^}/p' "$HERE/measure.sh")
POD_IMAGE="${VM_POD_IMAGE:-secctx.local/standin/busybox:1.35-bookworm}"
echo "== guest"
"$VM" exec 'uname -a; echo "lsm: $(cat /sys/kernel/security/lsm)"; echo "cgroup fs: $(stat -fc %T /sys/fs/cgroup)";
  echo "controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"; echo "apparmor enabled: $(cat /sys/module/apparmor/parameters/enabled)";
  containerd --version; runc.real --version | head -1; crun.real --version | head -1; kubelet --version; nproc; free -m | head -2;
  echo "-- aa-status (before pods)"; aa-status 2>&1 | head -5'
for aa in RuntimeDefault Unconfined; do
  n="aa-$(echo $aa | tr A-Z a-z)"
  pod_yaml "$n" "$aa" | kctl apply -f - >/dev/null
  until_true 300 pod_running "$n" || { echo "$n not Running"; kctl describe pod "$n" | tail -20; continue; }
  echo "== pod $n (appArmorProfile $aa)"
  echo "label of PID 1: $(kctl exec "$n" -- cat /proc/1/attr/current 2>&1)"
  echo "read /proc/sysrq-trigger (the containerd profile denies it): $(kctl exec "$n" -- sh -c 'cat /proc/sysrq-trigger >/dev/null 2>&1; echo rc=$?; cat /proc/sysrq-trigger 2>&1 | head -1')"
done
echo "== guest after the pods"
"$VM" exec 'aa-status 2>&1 | head -12; echo "-- profiles with cri-containerd:"; grep cri-containerd /sys/kernel/security/apparmor/profiles;
  echo "-- kernel audit lines"; dmesg | grep -i "apparmor=\"DENIED\"" | tail -3; echo "-- kubelet/containerd processes"; ps -eo pid,etime,time,rss,comm --sort=-time | head -12'
kctl delete pod aa-runtimedefault aa-unconfined --wait=false >/dev/null 2>&1 || true
