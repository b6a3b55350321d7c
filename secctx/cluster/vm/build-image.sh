#!/bin/bash
# Build the VM node's kernel, initramfs and root disk (secctx/cluster/vmnode.py, action
# build-image) from the offline kind node image and Debian's kernel and LSM debs.
# Inputs (environment): NODE_IMAGE, KVER, DEBS (dir with the debs), OUT (an empty dir),
# MODULES (the initramfs's modules), LSM (apparmor|selinux), LSM_DEBS (the LSM's
# packages). Writes OUT/{vmlinuz,initrd.img,disk.img}.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
: "${NODE_IMAGE:?}" "${KVER:?}" "${DEBS:?}" "${OUT:?}" "${MODULES:?}" "${LSM:?}" "${LSM_DEBS:?}" "${LSM_BUILD_DEBS?}"
cd "$OUT"
echo "extracting linux-image-$KVER"
mkdir kernel; dpkg-deb -x "$DEBS"/linux-image-"$KVER"_*.deb kernel
depmod -b "$OUT/kernel" "$KVER"
cp "kernel/boot/vmlinuz-$KVER" vmlinuz

echo "initramfs (busybox + $MODULES)"
mkdir -p initrd.d/{bin,dev,proc,sys,modules,newroot}
cp "$(command -v busybox)" initrd.d/bin/busybox; install -m 755 "$HERE/init" initrd.d/init
: > initrd.d/modules.order
for m in $MODULES; do
  modprobe -d "$OUT/kernel" -S "$KVER" --show-depends "$m" | awk '$1=="insmod"{print $2}'
done | awk '!seen[$0]++' | while read -r ko; do
  b=$(basename "$ko" .ko); cp "$ko" "initrd.d/modules/$b.ko"; echo "$b" >> initrd.d/modules.order
done
(cd initrd.d && find . | cpio -o -H newc --quiet | gzip -1) > initrd.img

echo "root filesystem from $NODE_IMAGE"
mkdir rootfs
cid=$(docker create "$NODE_IMAGE"); pre=""
trap 'umount rootfs/proc 2>/dev/null || true; docker rm -f "$cid" $pre >/dev/null' EXIT
docker export "$cid" | tar -C rootfs -xf - --numeric-owner
if [ -s "${IMAGES_TAR:-}" ]; then
  # The workload images, unpacked here by the node's own containerd (natively) into the
  # VM's /var/lib/containerd: in the VM, under emulation, the import took minutes.
  echo "preloading images into the VM's containerd"
  pre=$(docker run -d --privileged --entrypoint containerd \
        -v "$OUT/rootfs/var/lib/containerd:/var/lib/containerd" \
        -v "$IMAGES_TAR:/images.tar:ro" "$NODE_IMAGE")
  for i in $(seq 1 60); do docker exec "$pre" ctr version >/dev/null 2>&1 && break; sleep 1; done
  docker exec "$pre" ctr -n k8s.io images import /images.tar
  docker stop -t 30 "$pre" >/dev/null
fi
mkdir -p rootfs/lib/modules; cp -a "kernel/lib/modules/$KVER" rootfs/lib/modules/
if [ "$LSM" = apparmor ]; then
  # --keep-directory-symlink: the debs ship ./sbin and ./lib, usrmerge symlinks here
  # (without it /sbin/init is gone: switch_root fails).
  for p in $LSM_DEBS; do
    dpkg-deb --fsys-tarfile "$DEBS"/${p}_*.deb | tar -C rootfs -x --keep-directory-symlink
  done
else
  # SELinux: the policy package's postinst compiles the module store into policy.33
  # (semodule), so these are installed, not unpacked (selinux-image.sh).
  LSM_DEBS="$LSM_DEBS" LSM_BUILD_DEBS="$LSM_BUILD_DEBS" DEBS="$DEBS" \
    bash "$HERE/selinux-image.sh" install rootfs
fi
# What docker provides a container at run time, a VM has itself. The hostname comes
# from the kernel command line (systemd.hostname=), so one image serves every cluster.
rm -f rootfs/.dockerenv rootfs/etc/hostname
: > rootfs/etc/machine-id
printf '/dev/vda / ext4 rw,noatime 0 1\n' > rootfs/etc/fstab
printf 'nameserver 127.0.0.1\n' > rootfs/etc/resolv.conf   # no DNS: only /etc/hosts resolves
install -m 755 "$HERE/guest-agent.sh" rootfs/usr/local/bin/secctx-vm-agent
install -m 644 "$HERE/secctx-vm-agent.service" rootfs/etc/systemd/system/
ln -sf /etc/systemd/system/secctx-vm-agent.service rootfs/etc/systemd/system/multi-user.target.wants/
rm -f rootfs/etc/systemd/system/kubelet.service.d/11-kind.conf
install -m 644 "$HERE/20-vm-node.conf" rootfs/etc/systemd/system/kubelet.service.d/
# Emulation tuning that changes no security behaviour: a serial console only.
ln -sf /dev/null rootfs/etc/systemd/system/getty@tty1.service
# Labelled here, on the host, once: the guest under TCG would take minutes to relabel.
[ "$LSM" = selinux ] && bash "$HERE/selinux-image.sh" label rootfs
size=$(( $(du -sm rootfs | cut -f1) + 3072 ))
echo "mkfs.ext4 -d rootfs (${size} MiB)"
truncate -s "${size}M" disk.img
mkfs.ext4 -q -F -L vmroot -d rootfs disk.img
rm -rf rootfs initrd.d kernel
