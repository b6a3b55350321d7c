package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// A lie edits config.json (create/run) and, for some, the process file of exec.
// Each returns what it changed, for the log; nothing means honest.
type lie struct {
	config  func(doc map[string]any, self string) ([]string, error)
	process func(proc map[string]any) ([]string, error)
}

var lies = map[string]lie{
	"rw-volumes":     {config: rwVolumes},
	"no-seccomp":     {config: allowAllSeccomp},
	"unshare-only":   {config: unshareOnlySeccomp},
	"no-nnp":         {config: func(doc map[string]any, _ string) ([]string, error) { return noNNP(process(doc)) }, process: noNNP},
	"saved-uid-root": {config: realUIDRoot},
	"crash-identity": {config: otherIdentity},
	"own-volumes":    {config: ownVolumes},
	"file-modes":     {config: fileModes},
	"no-apparmor":    {config: func(doc map[string]any, _ string) ([]string, error) { return noAppArmor(process(doc)) }, process: noAppArmor},
}

func lieNames() []string {
	names := make([]string, 0, len(lies))
	for n := range lies {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func process(doc map[string]any) map[string]any {
	p, _ := doc["process"].(map[string]any)
	if p == nil {
		p = map[string]any{}
		doc["process"] = p
	}
	return p
}

// System mounts a container gets whatever its pod says; everything else that is
// bind-mounted is a volume (or a subPath of one).
func systemPath(dest string) bool {
	for _, p := range []string{"/proc", "/sys", "/dev"} {
		if dest == p || strings.HasPrefix(dest, p+"/") {
			return true
		}
	}
	switch dest {
	case "/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/run/.containerenv": // the last: CRI-O's
		return true
	}
	return false
}

func rwVolumes(doc map[string]any, _ string) ([]string, error) {
	mounts, _ := doc["mounts"].([]any)
	var changed []string
	for _, m := range mounts {
		mount, _ := m.(map[string]any)
		dest, _ := mount["destination"].(string)
		opts, _ := mount["options"].([]any)
		if systemPath(dest) || !isBind(mount, opts) {
			continue
		}
		for i, o := range opts {
			if o == "ro" {
				opts[i] = "rw"
				changed = append(changed, dest+": ro->rw")
			}
		}
	}
	return changed, nil
}

func isBind(mount map[string]any, opts []any) bool {
	if mount["type"] == "bind" {
		return true
	}
	for _, o := range opts {
		if o == "bind" || o == "rbind" {
			return true
		}
	}
	return false
}

func allowAllSeccomp(doc map[string]any, _ string) ([]string, error) {
	return allowingSeccomp(doc, nil, "with none")
}

// unshareOnlySeccomp keeps a filter that refuses unshare(2) with EPERM and allows
// every other call: the one call the behavioural check makes is still refused.
func unshareOnlySeccomp(doc map[string]any, _ string) ([]string, error) {
	return allowingSeccomp(doc, []any{map[string]any{"names": []any{"unshare"},
		"action": "SCMP_ACT_ERRNO"}}, "unshare refused")
}

// allowingSeccomp replaces a container's filter by one whose default action is
// SCMP_ACT_ALLOW, with `rules` (none: no syscalls key), on the same architectures.
func allowingSeccomp(doc map[string]any, rules []any, what string) ([]string, error) {
	linux, _ := doc["linux"].(map[string]any)
	old, ok := linux["seccomp"].(map[string]any)
	if !ok {
		return nil, nil // Unconfined already
	}
	filter := map[string]any{"defaultAction": "SCMP_ACT_ALLOW"}
	if rules != nil {
		filter["syscalls"] = rules
	}
	if arch, ok := old["architectures"]; ok {
		filter["architectures"] = arch
	}
	linux["seccomp"] = filter
	before, _ := old["syscalls"].([]any)
	sep := " "
	if rules != nil {
		sep = ", "
	}
	return []string{fmt.Sprintf("seccomp: defaultAction %v with %d rules -> SCMP_ACT_ALLOW%s%s",
		old["defaultAction"], len(before), sep, what)}, nil
}

func noNNP(proc map[string]any) ([]string, error) {
	if proc["noNewPrivileges"] != true {
		return nil, nil
	}
	proc["noNewPrivileges"] = false
	return []string{"noNewPrivileges: true -> false"}, nil
}

// noAppArmor drops the process's AppArmor profile: it runs unconfined, whatever
// containerd asked for (the container's and each exec'd process's).
func noAppArmor(proc map[string]any) ([]string, error) {
	profile, _ := proc["apparmorProfile"].(string)
	if profile == "" {
		return nil, nil
	}
	delete(proc, "apparmorProfile")
	return []string{"apparmorProfile: " + profile + " -> none"}, nil
}

func user(doc map[string]any) map[string]any {
	p := process(doc)
	u, _ := p["user"].(map[string]any)
	if u == nil {
		u = map[string]any{}
		p["user"] = u
	}
	return u
}

func id(v any) int64 {
	switch n := v.(type) {
	case json.Number:
		i, _ := n.Int64()
		return i
	case float64:
		return int64(n)
	}
	return 0
}

func otherIdentity(doc map[string]any, _ string) ([]string, error) {
	u := user(doc)
	var changed []string
	for _, key := range []string{"uid", "gid"} {
		if v := id(u[key]); v != 0 {
			u[key] = json.Number(strconv.FormatInt(v+1, 10))
			changed = append(changed, fmt.Sprintf("%s: %d -> %d", key, v, v+1))
		}
	}
	return changed, nil
}

// editFile rewrites a JSON document in place when the lie changed something,
// keeping every other value as it was (numbers stay exact), and logs it under
// the container's name (from config, the container's config.json; nil: the
// document itself is one).
func editFile(path string, config map[string]any, edit func(map[string]any) ([]string, error)) error {
	doc, err := readJSON(path)
	if err != nil {
		return err
	}
	changed, err := edit(doc)
	if err != nil || len(changed) == 0 {
		return err
	}
	out, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, out, 0o600); err != nil {
		return err
	}
	if config == nil {
		config = doc
	}
	logChange(config, path, changed)
	return nil
}

func readJSON(path string) (map[string]any, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return doc, nil
}

func logChange(doc map[string]any, path string, changed []string) {
	lie, _ := readLie(lieFile)
	who := path
	if _, ok := doc["annotations"].(map[string]any); ok {
		w := identify(doc)
		who = fmt.Sprintf("%s/%s/%s", w.namespace, w.pod, w.container)
	}
	if !strings.HasSuffix(path, "config.json") {
		who += " (exec)"
	}
	f, err := os.OpenFile(logFile, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "%s %s %s: %s\n", time.Now().UTC().Format(time.RFC3339), lie, who,
		strings.Join(changed, "; "))
}

func json0() json.Number { return json.Number("0") }
