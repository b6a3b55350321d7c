// setfcap writes a file capability, as `setcap cap_a,cap_b+ep FILE` of
// libcap does for an owner in the initial user namespace: the extended
// attribute security.capability holding struct vfs_cap_data revision 2
// (linux/capability.h: magic_etc = VFS_CAP_REVISION_2 | VFS_CAP_FLAGS_EFFECTIVE,
// then permitted/inheritable as two little-endian 32-bit words each).
// Used only while building the escalation test image (no Debian stage, so it
// works in both modes); the image build removes it again.
//
//	setfcap cap_net_bind_service+ep /usr/local/bin/bind-low
package main

import (
	"encoding/binary"
	"fmt"
	"os"
	"strings"
	"syscall"
)

const (
	vfsCapRevision2 = 0x02000000
	vfsCapEffective = 0x000001
)

// Capability names by bit number (capabilities(7)).
var capNames = []string{
	"chown", "dac_override", "dac_read_search", "fowner", "fsetid", "kill", "setgid",
	"setuid", "setpcap", "linux_immutable", "net_bind_service", "net_broadcast",
	"net_admin", "net_raw", "ipc_lock", "ipc_owner", "sys_module", "sys_rawio",
	"sys_chroot", "sys_ptrace", "sys_pacct", "sys_admin", "sys_boot", "sys_nice",
	"sys_resource", "sys_time", "sys_tty_config", "mknod", "lease", "audit_write",
	"audit_control", "setfcap", "mac_override", "mac_admin", "syslog", "wake_alarm",
	"block_suspend", "audit_read", "perfmon", "bpf", "checkpoint_restore",
}

func main() {
	if len(os.Args) != 3 {
		fail("usage: setfcap cap_x[,cap_y]+ep FILE")
	}
	data, err := encode(os.Args[1])
	if err != nil {
		fail(err.Error())
	}
	if err := syscall.Setxattr(os.Args[2], "security.capability", data, 0); err != nil {
		fail(fmt.Sprintf("setxattr %s: %v", os.Args[2], err))
	}
}

func encode(text string) ([]byte, error) {
	names, flags, ok := strings.Cut(text, "+")
	if !ok || (flags != "ep" && flags != "pe" && flags != "p") {
		return nil, fmt.Errorf("%q: only NAMES+ep and NAMES+p are supported", text)
	}
	var perm uint64
	for _, n := range strings.Split(names, ",") {
		bit := -1
		for i, c := range capNames {
			if "cap_"+c == strings.ToLower(n) {
				bit = i
			}
		}
		if bit < 0 {
			return nil, fmt.Errorf("unknown capability %q", n)
		}
		perm |= 1 << uint(bit)
	}
	magic := uint32(vfsCapRevision2)
	if strings.Contains(flags, "e") {
		magic |= vfsCapEffective
	}
	out := make([]byte, 20)
	binary.LittleEndian.PutUint32(out[0:], magic)
	binary.LittleEndian.PutUint32(out[4:], uint32(perm))      // permitted, bits 0-31
	binary.LittleEndian.PutUint32(out[8:], 0)                 // inheritable, bits 0-31
	binary.LittleEndian.PutUint32(out[12:], uint32(perm>>32)) // permitted, bits 32-63
	binary.LittleEndian.PutUint32(out[16:], 0)                // inheritable, bits 32-63
	return out, nil
}

func fail(msg string) {
	fmt.Fprintf(os.Stderr, "setfcap: %s\n", msg)
	os.Exit(1)
}
