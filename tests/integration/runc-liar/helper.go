package main

// The saved-uid-root lie. OCI cannot say "saved uid 0": runc sets real,
// effective and saved uid together (setuid(2) as root), and execve(2) copies
// the effective uid into the saved one anyway. The lie that survives the exec
// into the workload is the real uid: a runtime that calls seteuid(1000)
// instead of setuid(1000) leaves real (and, until execve, saved) uid 0.
//
// So the liar makes runc start this binary, bind-mounted read-only at
// helperPath, as uid 0, with CAP_SETUID, CAP_SETPCAP and CAP_CHOWN added for
// the moment, and the workload's argv after "--". The helper then
//   1. sets SECBIT_NOROOT, so that execve(2) with real uid 0 does not fill
//      the permitted set (capabilities(7), "root" rules): the lie shows in
//      the ids only, not in CapPrm/CapEff;
//   2. drops from the bounding set what the container did not ask for;
//   3. gives stdio to the uid, as runc does;
//   4. setresuid(0, uid, uid); then capset(2) back to the asked effective,
//      permitted and inheritable sets (and raises the asked ambient ones);
//   5. puts HOME back to the uid's home if runc chose it (from /etc/passwd);
//   6. execs the workload.
// PID 1 then shows "Uid: 0 1000 1000 1000" (real, effective, saved, fs):
// effective, saved and fs uid are as asked, real is root, and the process can
// become root again with setuid(0) (an unprivileged process may set any id
// to its real uid). A check of the effective uid alone cannot see it.
// Containers asking for uid 0, or with no args, are left alone.

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"unsafe"
)

const (
	helperFlag  = "--secctx-liar-helper"
	tryRootFlag = "--secctx-liar-try-root"
	helperPath  = "/.secctx-liar"

	prCapbsetDrop     = 24
	prSetSecurebits   = 28
	prCapAmbient      = 47
	prCapAmbientRaise = 2
	secbitNoroot      = 1 << 0
	capV3             = 0x20080522
)

// Capability names by bit number, as the kernel and the OCI spec name them.
var capNames = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
	"CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP",
	"CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
	"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
	"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
	"CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD",
	"CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP",
	"CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

var capSets = []string{"bounding", "effective", "permitted", "inheritable", "ambient"}

// What the helper needs for a moment as root.
var helperCaps = []string{"CAP_SETUID", "CAP_SETPCAP", "CAP_CHOWN"}

func realUIDRoot(doc map[string]any, self string) ([]string, error) {
	u := user(doc)
	uid := id(u["uid"])
	p := process(doc)
	args, _ := p["args"].([]any)
	if uid == 0 || len(args) == 0 {
		return nil, nil
	}
	caps, _ := p["capabilities"].(map[string]any)
	if caps == nil {
		caps = map[string]any{}
		p["capabilities"] = caps
	}
	helperArgs := []any{helperPath, helperFlag, fmt.Sprintf("uid=%d", uid)}
	for _, set := range capSets {
		list, _ := caps[set].([]any)
		helperArgs = append(helperArgs, fmt.Sprintf("%s=%x", set, maskOf(list)))
		if set == "bounding" || set == "effective" || set == "permitted" {
			for _, c := range helperCaps {
				if !contains(list, c) {
					list = append(list, c)
				}
			}
			caps[set] = list
		}
	}
	home := "home=keep"
	if !hasHome(p["env"]) {
		home = "home=passwd" // runc would look it up for uid 0: /root
	}
	helperArgs = append(helperArgs, home, "--")
	p["args"] = append(helperArgs, args...)
	u["uid"] = json0()
	mounts, _ := doc["mounts"].([]any)
	doc["mounts"] = append(mounts, map[string]any{
		"destination": helperPath, "type": "bind", "source": self,
		"options": []any{"rbind", "ro"},
	})
	return []string{fmt.Sprintf("uid %d -> real uid 0, effective/saved/fs uid %d (helper %s)",
		uid, uid, helperPath)}, nil
}

func maskOf(list []any) uint64 {
	var m uint64
	for _, c := range list {
		for bit, name := range capNames {
			if c == name {
				m |= 1 << uint(bit)
			}
		}
	}
	return m
}

func contains(list []any, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func hasHome(env any) bool {
	list, _ := env.([]any)
	for _, e := range list {
		if s, ok := e.(string); ok && strings.HasPrefix(s, "HOME=") && s != "HOME=" {
			return true
		}
	}
	return false
}

// --- inside the container ---

func helperMain(args []string) {
	runtime.LockOSThread() // credentials are per thread until execve
	if len(args) > 0 && args[0] == tryRootFlag {
		tryRoot()
		return
	}
	opts := map[string]string{}
	i := 0
	for ; i < len(args) && args[i] != "--"; i++ {
		k, v, _ := strings.Cut(args[i], "=")
		opts[k] = v
	}
	argv := args[min(i+1, len(args)):]
	if len(argv) == 0 {
		die("no workload after --")
	}
	uid, err := strconv.Atoi(opts["uid"])
	if err != nil {
		die("bad uid: " + opts["uid"])
	}
	mask := func(set string) uint64 {
		m, err := strconv.ParseUint(opts[set], 16, 64)
		if err != nil {
			die("bad " + set + " mask: " + opts[set])
		}
		return m
	}
	bnd, eff, prm, inh, amb := mask("bounding"), mask("effective"), mask("permitted"),
		mask("inheritable"), mask("ambient")

	check("prctl(PR_SET_SECUREBITS)", prctl(prSetSecurebits, secbitNoroot, 0))
	for bit := 0; bit < 64; bit++ {
		if bnd&(1<<uint(bit)) == 0 {
			if err := prctl(prCapbsetDrop, uintptr(bit), 0); err != nil && err != syscall.EINVAL {
				die(fmt.Sprintf("prctl(PR_CAPBSET_DROP, %d): %v", bit, err))
			}
		}
	}
	for fd := 0; fd < 3; fd++ {
		var st syscall.Stat_t
		if syscall.Fstat(fd, &st) == nil && int(st.Uid) != uid && !devNull(&st) {
			_ = syscall.Fchown(fd, uid, -1)
		}
	}
	_, _, e := syscall.RawSyscall(syscall.SYS_SETRESUID, 0, uintptr(uid), uintptr(uid))
	check("setresuid", errnoErr(e))
	check("capset", capset(eff, prm, inh))
	for bit := 0; bit < 64; bit++ {
		if amb&(1<<uint(bit)) != 0 {
			check("prctl(PR_CAP_AMBIENT_RAISE)", prctl(prCapAmbient, prCapAmbientRaise, uintptr(bit)))
		}
	}
	env := os.Environ()
	if opts["home"] == "passwd" {
		env = setEnv(env, "HOME", homeOf(uid))
	}
	path, err := lookPath(argv[0], env)
	if err != nil {
		die(err.Error())
	}
	die(fmt.Sprintf("exec %s: %v", path, syscall.Exec(path, argv, env)))
}

// tryRoot shows what the lie allows: a process whose real uid is 0 becomes
// uid 0 again with setresuid(0, 0, 0), no capability needed.
func tryRoot() {
	fmt.Println("before:", resuid())
	_, _, e := syscall.RawSyscall(syscall.SYS_SETRESUID, 0, 0, 0)
	if e != 0 {
		fmt.Println("setresuid(0,0,0):", e)
	} else {
		fmt.Println("setresuid(0,0,0): ok")
	}
	fmt.Println("after:", resuid())
}

func resuid() string {
	var r, e, s uint32
	syscall.RawSyscall(syscall.SYS_GETRESUID, uintptr(unsafe.Pointer(&r)),
		uintptr(unsafe.Pointer(&e)), uintptr(unsafe.Pointer(&s)))
	return fmt.Sprintf("ruid=%d euid=%d suid=%d", r, e, s)
}

func prctl(op, a, b uintptr) error {
	_, _, e := syscall.RawSyscall6(syscall.SYS_PRCTL, op, a, b, 0, 0, 0)
	return errnoErr(e)
}

func capset(eff, prm, inh uint64) error {
	hdr := struct {
		version uint32
		pid     int32
	}{capV3, 0}
	var data [2]struct{ effective, permitted, inheritable uint32 }
	for i := 0; i < 2; i++ {
		shift := uint(32 * i)
		data[i].effective = uint32(eff >> shift)
		data[i].permitted = uint32(prm >> shift)
		data[i].inheritable = uint32(inh >> shift)
	}
	_, _, e := syscall.RawSyscall(syscall.SYS_CAPSET, uintptr(unsafe.Pointer(&hdr)),
		uintptr(unsafe.Pointer(&data[0])), 0)
	return errnoErr(e)
}

func errnoErr(e syscall.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

func devNull(st *syscall.Stat_t) bool {
	return st.Mode&syscall.S_IFMT == syscall.S_IFCHR && st.Rdev == uint64(1<<8|3)
}

func homeOf(uid int) string {
	data, err := os.ReadFile("/etc/passwd")
	if err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			f := strings.Split(line, ":")
			if len(f) >= 6 && f[2] == strconv.Itoa(uid) && f[5] != "" {
				return f[5]
			}
		}
	}
	return "/" // runc's default
}

func setEnv(env []string, key, value string) []string {
	out := env[:0:0]
	for _, e := range env {
		if !strings.HasPrefix(e, key+"=") {
			out = append(out, e)
		}
	}
	return append(out, key+"="+value)
}

func lookPath(file string, env []string) (string, error) {
	if strings.Contains(file, "/") {
		return file, nil
	}
	path := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range strings.Split(path, ":") {
		p := dir + "/" + file
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: not found in PATH %s", file, path)
}

func check(what string, err error) {
	if err != nil {
		die(fmt.Sprintf("%s: %v", what, err))
	}
}

func die(msg string) {
	fmt.Fprintf(os.Stderr, "secctx-liar helper: %s\n", msg)
	os.Exit(127)
}
