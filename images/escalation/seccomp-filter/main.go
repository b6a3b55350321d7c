// seccomp-filter prints the seccomp filters the kernel holds for a process, as the
// kernel gives them to a tracer (ptrace PTRACE_SECCOMP_GET_FILTER): one line per
// filter, the most recently installed first (index 0), each a hex string of its
// classic BPF program (struct sock_filter, 8 bytes an instruction, native byte order):
//
//	seccomp-filter PID
//	filter=0 <hex>
//	filter=1 <hex>
//
// It needs CAP_SYS_ADMIN in the initial user namespace and no seccomp filter of its
// own (the kernel refuses the request otherwise: EACCES), and a kernel built with
// CONFIG_CHECKPOINT_RESTORE (EINVAL otherwise). The process is seized and interrupted
// (no SIGSTOP is sent) and detached again; a process without filters prints
// "filters=none".
// Errors: one line "error=<what>: <errno>" and exit status 1.
package main

import (
	"encoding/hex"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"unsafe"
)

const (
	ptraceSeize           = 0x4206
	ptraceInterrupt       = 0x4207
	ptraceSeccompGetFiltr = 0x420c
	wall                  = 0x40000000 // __WALL
	maxFilters            = 64
)

func ptrace(request, pid int, addr, data uintptr) (uintptr, syscall.Errno) {
	r, _, errno := syscall.Syscall6(syscall.SYS_PTRACE, uintptr(request), uintptr(pid), addr, data, 0, 0)
	return r, errno
}

func fail(what string, errno syscall.Errno) {
	fmt.Printf("error=%s: %s\n", what, errno.Error())
	os.Exit(1)
}

func main() {
	if len(os.Args) != 2 {
		fmt.Println("error=usage: seccomp-filter PID")
		os.Exit(2)
	}
	pid, err := strconv.Atoi(os.Args[1])
	if err != nil || pid <= 0 {
		fmt.Printf("error=not a PID: %q\n", os.Args[1])
		os.Exit(2)
	}
	// Every ptrace request of a tracee must come from the thread that seized it.
	runtime.LockOSThread()
	if _, errno := ptrace(ptraceSeize, pid, 0, 0); errno != 0 {
		fail("PTRACE_SEIZE", errno)
	}
	if _, errno := ptrace(ptraceInterrupt, pid, 0, 0); errno != 0 {
		syscall.PtraceDetach(pid)
		fail("PTRACE_INTERRUPT", errno)
	}
	var status syscall.WaitStatus
	if _, err := syscall.Wait4(pid, &status, wall, nil); err != nil {
		fmt.Printf("error=wait4: %s\n", err)
		os.Exit(1)
	}
	for index := 0; index < maxFilters; index++ {
		count, errno := ptrace(ptraceSeccompGetFiltr, pid, uintptr(index), 0)
		if errno == syscall.ENOENT {
			break // no filter at this index: all printed
		}
		if errno == syscall.EINVAL && index == 0 {
			fmt.Println("filters=none") // not in seccomp filter mode
			break
		}
		if errno != 0 {
			syscall.PtraceDetach(pid)
			fail(fmt.Sprintf("PTRACE_SECCOMP_GET_FILTER %d", index), errno)
		}
		program := make([]byte, 8*count)
		if _, errno := ptrace(ptraceSeccompGetFiltr, pid, uintptr(index),
			uintptr(unsafe.Pointer(&program[0]))); errno != 0 {
			syscall.PtraceDetach(pid)
			fail(fmt.Sprintf("PTRACE_SECCOMP_GET_FILTER %d", index), errno)
		}
		fmt.Printf("filter=%d %s\n", index, hex.EncodeToString(program))
	}
	syscall.PtraceDetach(pid)
}
