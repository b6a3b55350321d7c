// capshim is an OCI runtime wrapper for hosts whose capability bounding set
// is shorter than the kernel's list (some VMs drop CAP_SYS_RESOURCE for every
// process). runc fails to start a privileged container there, because it is
// asked for capabilities it can never hold. capshim removes those
// capabilities from the container's config.json (create/run) and from the
// process file of `exec --process`, then execs the real runc, which lives
// next to it as "<own path>.real". On a host with a full bounding set it
// changes nothing.
//
// A file "<own path>.oci-version" names the OCI spec version the real runtime
// accepts (crun 1.8 refuses anything after 1.1, containerd 2 writes 1.3.0): a
// config.json of another version is relabelled with it, nothing else changed.
//
// Without CAP_SYS_RESOURCE no runtime can lower a process's oom_score_adj below
// its own (the kernel refuses the write, and runc's init fails on it). containerd
// clamps by itself (restrict_oom_score_adj, set by kindconfig on such hosts);
// CRI-O has no such setting, so the shim clamps process.oomScoreAdj to its own.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

func main() {
	self, err := os.Executable()
	if err != nil {
		fail(err)
	}
	real := self + ".real"
	allowed, err := boundingSet("/proc/self/status")
	if err != nil {
		fail(err)
	}
	if file, ok := specFile(os.Args[1:]); ok {
		if err := filterFile(file, allowed); err != nil {
			fail(err)
		}
		if cmd, _ := command(os.Args[1:]); cmd == "create" || cmd == "run" {
			if err := setOCIVersion(file, self+".oci-version"); err != nil {
				fail(err)
			}
			if !allowed["CAP_SYS_RESOURCE"] {
				if err := clampOOMScoreAdj(file, "/proc/self/oom_score_adj"); err != nil {
					fail(err)
				}
			}
		}
	}
	argv := append([]string{filepath.Base(real)}, os.Args[1:]...)
	fail(syscall.Exec(real, argv, os.Environ()))
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "capshim: %v\n", err)
	os.Exit(1)
}

// specFile finds the JSON document that carries capabilities for this call:
// <bundle>/config.json for create and run, the --process file for exec.
func specFile(args []string) (string, bool) {
	cmd, rest := command(args)
	switch cmd {
	case "create", "run":
		bundle, ok := flagValue(rest, "bundle", "b")
		if !ok {
			bundle = "."
		}
		return filepath.Join(bundle, "config.json"), true
	case "exec":
		return flagValue(rest, "process", "p")
	}
	return "", false
}

// Global runc flags that take a value; the command is the first word that is
// neither such a flag, nor its value, nor another flag.
var globalWithValue = map[string]bool{
	"--root": true, "--log": true, "--log-format": true, "--criu": true, "--rootless": true,
}

func command(args []string) (string, []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if globalWithValue[a] {
			i++
			continue
		}
		if strings.HasPrefix(a, "-") {
			continue
		}
		return a, args[i+1:]
	}
	return "", nil
}

func flagValue(args []string, long, short string) (string, bool) {
	for i, a := range args {
		for _, name := range []string{"--" + long, "-" + long, "-" + short} {
			if a == name && i+1 < len(args) {
				return args[i+1], true
			}
			if strings.HasPrefix(a, name+"=") {
				return strings.TrimPrefix(a, name+"="), true
			}
		}
	}
	return "", false
}
