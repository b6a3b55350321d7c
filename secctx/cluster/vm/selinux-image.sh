#!/bin/bash
# The SELinux VM node's additions to its root filesystem (build-image.sh, LSM=selinux).
#   selinux-image.sh install ROOTFS  Debian's refpolicy ("default", MCS) and its tools,
#                                    enforcing; the container module; containerd's CRI
#                                    with SELinux enabled
#   selinux-image.sh label ROOTFS    every file labelled from the policy's file_contexts
# mke2fs -d copies the security.selinux xattrs into the disk (checked with debugfs
# ea_list), so the guest boots labelled.
set -euo pipefail
step=$1; root=$2
case "$step" in
install)
  mkdir -p "$root/tmp/lsm-debs"
  for p in $LSM_DEBS; do cp "$DEBS"/${p}_*.deb "$root/tmp/lsm-debs/"; done
  # libselinux1, libsepol2, libsemanage2 are in the node image already; policycoreutils'
  # lsb-base (init-script helpers only) is not: --force-depends.
  chroot "$root" sh -c 'dpkg -i --force-depends /tmp/lsm-debs/*.deb' >/dev/null
  rm -rf "$root/tmp/lsm-debs"
  [ -s "$root/etc/selinux/default/policy/policy.33" ] || { echo "no policy.33 built"; exit 1; }
  # selinux-policy-default does not build refpolicy's container module (no container_t,
  # container_file_t: the types its own lxc_contexts names, which containerd reads);
  # selinux-policy-src has its source, selinux-policy-dev the headers to build it
  # against. Built in the chroot (its libsepol) with the build tools unpacked, not
  # installed, and removed after.
  b=/tmp/selinux-build
  mkdir -p "$root$b/src"
  for p in $LSM_BUILD_DEBS; do dpkg-deb -x "$DEBS"/${p}_*.deb "$root$b"; done
  tar --zstd -xf "$root$b/usr/src/selinux-policy-src.tar.zst" -C "$root$b/src" \
    selinux-policy-src/policy/modules/services/container.te \
    selinux-policy-src/policy/modules/services/container.fc
  mkdir "$root$b/mod"
  cp "$root$b"/src/selinux-policy-src/policy/modules/services/container.{te,fc} "$root$b/mod/"
  chroot "$root" sh -ec "cd $b/mod; export LD_LIBRARY_PATH=$b/usr/lib/x86_64-linux-gnu
    $b/usr/bin/make -s -f $b/usr/share/selinux/devel/include/Makefile \
      HEADERDIR=$b/usr/share/selinux/devel/include NAME=default AWK=awk \
      M4=$b/usr/bin/m4 CHECKMODULE=$b/usr/bin/checkmodule SEMOD_PKG=$b/usr/bin/semodule_package \
      container.pp
    semodule -i container.pp"
  rm -rf "$root$b"
  grep -aq container_t "$root/etc/selinux/default/policy/policy.33" \
    || { echo "container module not in policy.33"; exit 1; }
  sed -i 's/^SELINUX=.*/SELINUX=enforcing/' "$root/etc/selinux/config"
  # containerd 2's CRI reads the v2 file's [plugins."io.containerd.grpc.v1.cri"]
  # enable_selinux (migrated to the runtime plugin's EnableSELinux).
  sed -i '/^\[plugins."io.containerd.grpc.v1.cri"\]$/a\  enable_selinux = true' \
    "$root/etc/containerd/config.toml"
  grep -q '^  enable_selinux = true' "$root/etc/containerd/config.toml"
  ;;
label)
  # libselinux labels through /proc/self/fd: the chroot needs /proc.
  mount -t proc proc "$root/proc"
  chroot "$root" setfiles -F -e /proc /etc/selinux/default/contexts/files/file_contexts /
  umount "$root/proc"
  ;;
esac
