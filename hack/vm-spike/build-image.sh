#!/bin/bash
# Build the VM node's kernel, initramfs and root disk from the offline kind node
# image (secctx/offline/nodeimage.py) and Debian's kernel. Output under $CACHE.
#   build-image.sh [NODE_IMAGE]   (default: newest secctx.local/kind-node image)
source "$(dirname "$0")/common.sh"
IMAGE="${1:-$(docker images secctx.local/kind-node --format '{{.Repository}}:{{.Tag}}' | head -1)}"
[ -n "$IMAGE" ] || die "no secctx.local/kind-node image: run 'python -m secctx cluster-up --mode offline' first"
for t in qemu-system-x86_64 mkfs.ext4 depmod cpio busybox; do
  command -v "$t" >/dev/null || die "$t missing: apt-get install qemu-system-x86 e2fsprogs kmod cpio busybox-static"
done
mkdir -p "$CACHE/debs"; cd "$CACHE/debs"
for p in "linux-image-$KVER" apparmor libapparmor1; do
  ls "${p}"_*.deb >/dev/null 2>&1 || apt-get download "$p" >/dev/null
done
cd "$CACHE"
if [ ! -f kernel/boot/vmlinuz-$KVER ]; then
  log "extracting linux-image-$KVER"
  rm -rf kernel; mkdir kernel; dpkg-deb -x debs/linux-image-"$KVER"_*.deb kernel
  depmod -b "$CACHE/kernel" "$KVER"
fi
cp kernel/boot/vmlinuz-$KVER vmlinuz

log "initramfs (busybox + $INITRD_MODULES)"
rm -rf initrd.d; mkdir -p initrd.d/{bin,dev,proc,sys,modules,newroot}
cp /bin/busybox initrd.d/bin/busybox; cp "$HERE/init" initrd.d/init; chmod 755 initrd.d/init
: > initrd.d/modules.order
for m in $INITRD_MODULES; do
  modprobe -d "$CACHE/kernel" -S "$KVER" --show-depends "$m" | awk '$1=="insmod"{print $2}'
done | awk '!seen[$0]++' | while read -r ko; do
  b=$(basename "$ko" .ko); cp "$ko" "initrd.d/modules/$b.ko"; echo "$b" >> initrd.d/modules.order
done
(cd initrd.d && find . | cpio -o -H newc --quiet | gzip -1) > initrd.img

log "root filesystem from $IMAGE"
rm -rf rootfs; mkdir rootfs
cid=$(docker create "$IMAGE"); trap 'docker rm -f "$cid" >/dev/null' EXIT
docker export "$cid" | tar -C rootfs -xf - --numeric-owner
mkdir -p rootfs/lib/modules; cp -a "kernel/lib/modules/$KVER" rootfs/lib/modules/
# --keep-directory-symlink: the debs ship ./sbin and ./lib, which are usrmerge symlinks here
for p in apparmor libapparmor1; do dpkg-deb --fsys-tarfile debs/${p}_*.deb | tar -C rootfs -x --keep-directory-symlink; done
# Files docker provides at run time, a VM must have itself.
rm -f rootfs/.dockerenv
echo "$VM_NAME" > rootfs/etc/hostname
: > rootfs/etc/machine-id
printf '/dev/vda / ext4 rw,noatime 0 1\n' > rootfs/etc/fstab
printf 'nameserver 127.0.0.1\n' > rootfs/etc/resolv.conf   # no DNS: nothing resolves outside /etc/hosts
# The guest agent: runs the commands the host drops in the 9p share (vm.sh exec).
install -m 755 "$HERE/guest-agent.sh" rootfs/usr/local/bin/vm-spike-agent
cp "$HERE/vm-spike-agent.service" rootfs/etc/systemd/system/
ln -sf /etc/systemd/system/vm-spike-agent.service rootfs/etc/systemd/system/multi-user.target.wants/
# kind's kubelet drop-in makes the /kubelet cgroup for a node in a container (cgroup
# namespace root); in a VM systemd owns the tree: kubelet.slice needs every controller
# (kind's cgroupRoot /kubelet; systemd 252 enables hugetlb and misc nowhere), and the
# product files kind's entrypoint writes for containerd's mount-product-files hook.
rm -f rootfs/etc/systemd/system/kubelet.service.d/11-kind.conf
cat > rootfs/etc/systemd/system/kubelet.service.d/20-vm-node.conf <<'UNIT'
[Service]
ExecStartPre=/bin/sh -ec 'for c in $$(cat /sys/fs/cgroup/cgroup.controllers); do echo +$$c > /sys/fs/cgroup/cgroup.subtree_control; done; mkdir -p /sys/fs/cgroup/kubelet.slice; for c in $$(cat /sys/fs/cgroup/cgroup.controllers); do echo +$$c > /sys/fs/cgroup/kubelet.slice/cgroup.subtree_control || true; done'
ExecStartPre=/bin/sh -ec 'cp /sys/class/dmi/id/product_name /kind/product_name; cp /sys/class/dmi/id/product_uuid /kind/product_uuid'
UNIT
# Emulation tuning that changes no security behaviour: a serial console only.
ln -sf /dev/null rootfs/etc/systemd/system/getty@tty1.service
size=$(( $(du -sm rootfs | cut -f1) + 3072 ))
log "mkfs.ext4 -d rootfs (${size} MiB)"
rm -f disk.img; truncate -s "${size}M" disk.img
mkfs.ext4 -q -F -L vmroot -d rootfs disk.img
rm -rf rootfs initrd.d
echo "$IMAGE" > disk.image
log "built $CACHE/{vmlinuz,initrd.img,disk.img} from $IMAGE"
