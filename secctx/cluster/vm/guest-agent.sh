#!/bin/bash
# In the VM node: mount the host's 9p share and run each command file the host drops in
# cmd/ (NAME.sh -> NAME.out, NAME.rc), one at a time, polling every second
# (secctx/cluster/vmnode.py Guest.run).
set -u
S=/run/secctx-vm
mkdir -p $S
mountpoint -q $S || mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 secctxvm $S || exit 1
cat /proc/uptime > $S/agent-up.tmp && mv $S/agent-up.tmp $S/agent-up   # boot marker
while :; do
  for f in $S/cmd/*.sh; do
    [ -e "$f" ] || continue
    n=${f%.sh}; mv "$f" "$n.run"
    bash "$n.run" > "$n.out" 2>&1; echo $? > "$n.rc.tmp"; mv "$n.rc.tmp" "$n.rc"
  done
  sleep 1
done
