// bind-low tries to bind a TCP port below 1024 (default 80; first argument
// to choose another) and prints the result, one key=value a line:
//
//	port=80
//	unprivileged_port_start=1024   (the netns sysctl: ports below it need CAP_NET_BIND_SERVICE)
//	file_caps=v2,effective,permitted=0x400   (its own security.capability xattr, or none)
//	cap_eff=0000000000000400   (CapEff of this process after exec)
//	bind=ok | bind=EACCES | bind=<errno>
//
// The escalation test image gives it the file capability
// cap_net_bind_service+ep. Run by a non-root uid, the kernel raises
// CAP_NET_BIND_SERVICE at exec unless no_new_privs is set
// (allowPrivilegeEscalation: false). The test only means something when
// unprivileged_port_start is above the port: containerd 2.x sets it to 0 in
// each pod unless the pod sets the sysctl net.ipv4.ip_unprivileged_port_start.
package main

import (
	"secctx.local/escalation/procstatus"

	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

func main() {
	port := 80
	if len(os.Args) > 1 {
		p, err := strconv.Atoi(os.Args[1])
		if err != nil || p <= 0 || p > 65535 {
			fmt.Fprintf(os.Stderr, "bind-low: bad port %q\n", os.Args[1])
			os.Exit(2)
		}
		port = p
	}
	fmt.Printf("port=%d\n", port)
	start, err := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start")
	if err != nil {
		fmt.Println("unprivileged_port_start=unknown")
	} else {
		fmt.Printf("unprivileged_port_start=%s\n", strings.TrimSpace(string(start)))
	}
	fmt.Printf("file_caps=%s\n", fileCaps())
	fmt.Printf("cap_eff=%s\n", procstatus.Field("CapEff"))
	fmt.Printf("bind=%s\n", tryBind(port))
}

func tryBind(port int) string {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		return errnoName(err)
	}
	defer syscall.Close(fd)
	_ = syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Port: port}); err != nil {
		return errnoName(err)
	}
	return "ok"
}

// fileCaps decodes the security.capability xattr of the running binary
// (struct vfs_cap_data, linux/capability.h).
func fileCaps() string {
	exe, err := os.Executable()
	if err != nil {
		return "unknown"
	}
	buf := make([]byte, 64)
	n, err := syscall.Getxattr(exe, "security.capability", buf)
	if errors.Is(err, syscall.ENODATA) {
		return "none"
	}
	if err != nil {
		return errnoName(err)
	}
	if n < 12 {
		return fmt.Sprintf("short(%d)", n)
	}
	magic := binary.LittleEndian.Uint32(buf[0:4])
	perm := uint64(binary.LittleEndian.Uint32(buf[4:8]))
	if n >= 20 {
		perm |= uint64(binary.LittleEndian.Uint32(buf[12:16])) << 32
	}
	out := fmt.Sprintf("v%d", magic>>24)
	if magic&1 != 0 {
		out += ",effective"
	}
	return fmt.Sprintf("%s,permitted=%#x", out, perm)
}

func errnoName(err error) string {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return "error"
	}
	switch errno {
	case syscall.EACCES:
		return "EACCES"
	case syscall.EPERM:
		return "EPERM"
	case syscall.EADDRINUSE:
		return "EADDRINUSE"
	case syscall.ENODATA:
		return "ENODATA"
	case syscall.ENOTSUP:
		return "ENOTSUP"
	}
	return fmt.Sprintf("errno%d", int(errno))
}
