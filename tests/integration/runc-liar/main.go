// runc-liar is an OCI runtime wrapper that lies on purpose: it edits what
// runc is asked to do (the bundle's config.json for create/run, the process
// file of exec) in one chosen way, then execs the real runc, "<own path>.real".
// It exists to show that the suite's checks turn red when a runtime does not
// apply what Kubernetes asked for (issue 14, items 9-13).
//
// It reads /etc/secctx/lie at every call. Absent or empty: it changes nothing
// (an honest pass-through). Otherwise the file holds one lie word, optionally
// followed by a namespace prefix that limits the lie to pods whose namespace
// starts with it:
//
//	rw-volumes       "ro" becomes "rw" on every bind mount that is not a system
//	                 path (volumes, including configMap/secret/projected ones)
//	no-seccomp       linux.seccomp becomes an allow-everything filter
//	                 (defaultAction SCMP_ACT_ALLOW, no rules): Seccomp stays 2
//	no-nnp           process.noNewPrivileges false (container and exec processes)
//	saved-uid-root   PID 1 keeps root as its real uid (see helper.go)
//	crash-identity   PID 1 runs with uid+1 and gid+1 (non-zero ids only)
//	own-volumes      emptyDir directories chowned to the process, mode 0700 (volumes.go)
//	file-modes       files of configMap/secret/downwardAPI/projected volumes 0644
//	no-apparmor      process.apparmorProfile removed (container and exec processes)
//
// Only application containers lie (containerd's annotation
// io.kubernetes.cri.container-type or CRI-O's io.kubernetes.cri-o.ContainerType
// "container"), never pod sandboxes nor pods in kube-system or
// local-path-storage. Each lie that changes something is logged to
// /var/log/secctx-liar.log. tests/integration/liar.py installs it in a kind node.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

var (
	lieFile = envOr("SECCTX_LIE_FILE", "/etc/secctx/lie")
	logFile = envOr("SECCTX_LIAR_LOG", "/var/log/secctx-liar.log")
	// Where containerd keeps the bundles of running tasks (exec needs the
	// container's config.json to know its namespace).
	taskRoot = envOr("SECCTX_LIAR_TASKS", "/run/containerd/io.containerd.runtime.v2.task")
	// Where CRI-O keeps them: containers/storage's run root, overlay-containers/<id>/userdata
	// (CRI-O internal/storage runtime.go, the container's RunDir).
	crioRunRoot = envOr("SECCTX_LIAR_CRIO_CONTAINERS", "/run/containers/storage/overlay-containers")
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == helperFlag {
		helperMain(os.Args[2:]) // inside a container: see helper.go
		return
	}
	self, err := os.Executable()
	if err != nil {
		fail(err)
	}
	real := self + ".real"
	if lie, scope := readLie(lieFile); lie != "" {
		if err := tell(lie, scope, self, os.Args[1:]); err != nil {
			fail(err)
		}
	}
	argv := append([]string{filepath.Base(real)}, os.Args[1:]...)
	fail(syscall.Exec(real, argv, os.Environ()))
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "runc-liar: %v\n", err)
	os.Exit(1)
}

func readLie(path string) (string, string) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", ""
	}
	fields := strings.Fields(string(data))
	switch len(fields) {
	case 0:
		return "", ""
	case 1:
		return fields[0], ""
	}
	return fields[0], fields[1]
}

// tell applies the lie to the document of this runc call, if any.
func tell(lie, scope, self string, args []string) error {
	if _, ok := lies[lie]; !ok {
		return fmt.Errorf("unknown lie %q in %s (known: %s)", lie, lieFile, strings.Join(lieNames(), ", "))
	}
	cmd, rest := command(args)
	switch cmd {
	case "create", "run":
		bundle, ok := flagValue(rest, "bundle", "b")
		if !ok {
			bundle = "."
		}
		path := filepath.Join(bundle, "config.json")
		return editFile(path, nil, func(doc map[string]any) ([]string, error) {
			if !inScope(doc, scope) {
				return nil, nil
			}
			return lies[lie].config(doc, self)
		})
	case "exec":
		file, ok := flagValue(rest, "process", "p")
		if !ok || lies[lie].process == nil || len(rest) == 0 {
			return nil
		}
		config, err := readJSON(filepath.Join(bundleOf(rest[len(rest)-1]), "config.json"))
		if err != nil || !inScope(config, scope) {
			return nil // not a container we know: stay honest
		}
		return editFile(file, config, lies[lie].process)
	}
	return nil
}

// The bundle of a running container: containerd's task directory, else CRI-O's.
func bundleOf(id string) string {
	matches, _ := filepath.Glob(filepath.Join(taskRoot, "*", id))
	if len(matches) > 0 {
		return matches[0]
	}
	crio := filepath.Join(crioRunRoot, id, "userdata")
	if _, err := os.Stat(filepath.Join(crio, "config.json")); err == nil {
		return crio
	}
	return filepath.Join(taskRoot, "missing", id)
}

// Who a container is, from the annotations its CRI writes into config.json:
// containerd's (internal/cri/annotations) or CRI-O's (the kubelet's labels and
// io.kubernetes.cri-o.ContainerType, pkg/annotations).
type who struct{ kind, namespace, pod, container string }

func identify(doc map[string]any) who {
	ann, _ := doc["annotations"].(map[string]any)
	get := func(keys ...string) string {
		for _, k := range keys {
			if v, ok := ann[k].(string); ok {
				return v
			}
		}
		return ""
	}
	return who{
		kind:      get("io.kubernetes.cri.container-type", "io.kubernetes.cri-o.ContainerType"),
		namespace: get("io.kubernetes.cri.sandbox-namespace", "io.kubernetes.pod.namespace"),
		pod:       get("io.kubernetes.cri.sandbox-name", "io.kubernetes.pod.name"),
		container: get("io.kubernetes.cri.container-name", "io.kubernetes.container.name"),
	}
}

// Only application containers of pods outside the cluster's own namespaces.
func inScope(doc map[string]any, scope string) bool {
	w := identify(doc)
	if w.kind != "container" {
		return false
	}
	if w.namespace == "kube-system" || w.namespace == "local-path-storage" {
		return false
	}
	return strings.HasPrefix(w.namespace, scope)
}

// Global runc flags that take a value; the command is the first word that is
// neither such a flag, nor its value, nor another flag (as in capshim).
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
