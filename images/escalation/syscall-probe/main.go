// syscall-probe attempts system calls that containerd's and CRI-O's default
// seccomp profiles (RuntimeDefault) refuse to a process without
// CAP_SYS_ADMIN, and prints one key=value line per call: "ok", or the errno
// name. Under RuntimeDefault each is EPERM (the filter answers before the
// kernel looks at the arguments); Unconfined, the kernel answers:
//
//	unshare_user   unshare(CLONE_NEWUSER), in a forked single-threaded child
//	               (a threaded process gets EINVAL): ok where user namespaces
//	               are allowed
//	keyctl         keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0): ok
//	add_key        add_key("user", "secctx-probe", "x", 1, KEY_SPEC_PROCESS_KEYRING): ok
//	mount          mount("none", "/secctx-probe-missing", "tmpfs", 0, ""): ENOENT,
//	               since the target is looked up before the capability check
//	               (EPERM only when a filter answers)
//
// Then the kernel's own view: seccomp=<Seccomp: of /proc/self/status> and
// seccomp_filters=<Seccomp_filters:>.
package main

import (
	"secctx.local/escalation/procstatus"

	"errors"
	"fmt"
	"os"
	"syscall"
	"unsafe"
)

const (
	keyctlGetKeyringID    = 0
	keySpecSessionKeyring = -3
	keySpecProcessKeyring = -2
	childFlag             = "--secctx-child-exit"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == childFlag {
		os.Exit(0)
	}
	fmt.Printf("unshare_user=%s\n", unshareUser())
	fmt.Printf("keyctl=%s\n", result(keyctl()))
	fmt.Printf("add_key=%s\n", result(addKey()))
	fmt.Printf("mount=%s\n", result(syscall.Mount("none", "/secctx-probe-missing", "tmpfs", 0, "")))
	fmt.Printf("seccomp=%s\n", procstatus.Field("Seccomp"))
	fmt.Printf("seccomp_filters=%s\n", procstatus.Field("Seccomp_filters"))
}

// unshareUser forks a child that calls unshare(CLONE_NEWUSER) before it execs
// this program again (which exits 0); the child's errno comes back from ForkExec.
func unshareUser() string {
	pid, err := syscall.ForkExec("/proc/self/exe", []string{"syscall-probe", childFlag},
		&syscall.ProcAttr{Sys: &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWUSER}})
	if err != nil {
		return result(err)
	}
	var ws syscall.WaitStatus
	if _, err := syscall.Wait4(pid, &ws, 0, nil); err != nil {
		return result(err)
	}
	if !ws.Exited() || ws.ExitStatus() != 0 {
		return fmt.Sprintf("child-status-%d", ws.ExitStatus())
	}
	return "ok"
}

func keyctl() error {
	session := keySpecSessionKeyring
	_, _, errno := syscall.Syscall(syscall.SYS_KEYCTL, keyctlGetKeyringID, uintptr(session), 0)
	return errnoOrNil(errno)
}

func addKey() error {
	typ, _ := syscall.BytePtrFromString("user")
	desc, _ := syscall.BytePtrFromString("secctx-probe")
	payload := []byte("x")
	keyring := keySpecProcessKeyring
	_, _, errno := syscall.Syscall6(syscall.SYS_ADD_KEY, uintptr(unsafe.Pointer(typ)),
		uintptr(unsafe.Pointer(desc)), uintptr(unsafe.Pointer(&payload[0])), 1,
		uintptr(keyring), 0)
	return errnoOrNil(errno)
}

func errnoOrNil(errno syscall.Errno) error {
	if errno == 0 {
		return nil
	}
	return errno
}

func result(err error) string {
	if err == nil {
		return "ok"
	}
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return "error"
	}
	if name, ok := errnoNames[errno]; ok {
		return name
	}
	return fmt.Sprintf("errno%d", int(errno))
}

var errnoNames = map[syscall.Errno]string{
	syscall.EPERM: "EPERM", syscall.ENOENT: "ENOENT", syscall.EACCES: "EACCES",
	syscall.EINVAL: "EINVAL", syscall.ENOSYS: "ENOSYS", syscall.EEXIST: "EEXIST",
	syscall.ENOSPC: "ENOSPC", syscall.EDQUOT: "EDQUOT", syscall.EUSERS: "EUSERS",
	syscall.ENOMEM: "ENOMEM", syscall.EFAULT: "EFAULT", syscall.EBUSY: "EBUSY",
	syscall.ENOTDIR: "ENOTDIR", syscall.EOPNOTSUPP: "EOPNOTSUPP", syscall.ENOKEY: "ENOKEY",
}
