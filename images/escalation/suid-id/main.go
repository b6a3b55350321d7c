// suid-id prints the ids it runs with, one key=value a line. The escalation
// test image installs it setuid root (owner 0, mode 4755): run by uid 1000
// it shows euid=0 and suid=0 when the kernel honours the setuid bit, and
// euid=1000 when no_new_privs is set (allowPrivilegeEscalation: false).
package main

import (
	"secctx.local/escalation/procstatus"

	"fmt"
	"os"
	"syscall"
	"unsafe"
)

func main() {
	u := getres(syscall.SYS_GETRESUID)
	g := getres(syscall.SYS_GETRESGID)
	fmt.Printf("ruid=%d\neuid=%d\nsuid=%d\n", u[0], u[1], u[2])
	fmt.Printf("rgid=%d\negid=%d\nsgid=%d\n", g[0], g[1], g[2])
	fmt.Printf("no_new_privs=%s\n", procstatus.Field("NoNewPrivs"))
}

// getres calls getresuid(2) or getresgid(2): real, effective, saved.
func getres(nr uintptr) [3]uint32 {
	var ids [3]uint32
	_, _, errno := syscall.RawSyscall(nr, uintptr(unsafe.Pointer(&ids[0])),
		uintptr(unsafe.Pointer(&ids[1])), uintptr(unsafe.Pointer(&ids[2])))
	if errno != 0 {
		fmt.Fprintf(os.Stderr, "suid-id: %v\n", errno)
		os.Exit(1)
	}
	return ids
}
