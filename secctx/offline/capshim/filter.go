package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
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

// boundingSet returns the capability names this process may still grant.
func boundingSet(statusPath string) (map[string]bool, error) {
	f, err := os.Open(statusPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "CapBnd:"); ok {
			mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				return nil, err
			}
			return namesOf(mask), nil
		}
	}
	return nil, fmt.Errorf("no CapBnd line in %s", statusPath)
}

func namesOf(mask uint64) map[string]bool {
	names := map[string]bool{}
	for bit, name := range capNames {
		if mask&(1<<uint(bit)) != 0 {
			names[name] = true
		}
	}
	return names
}

// filterFile rewrites a config.json or process.json in place, keeping every
// field it does not touch byte-for-byte equal in value (numbers stay exact).
func filterFile(path string, allowed map[string]bool) error {
	return rewriteFile(path, func(data []byte) ([]byte, bool, error) {
		return filterDocument(data, allowed)
	})
}

// rewriteFile writes edit's result over path, only when edit changed something.
func rewriteFile(path string, edit func([]byte) ([]byte, bool, error)) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	out, changed, err := edit(data)
	if err != nil || !changed {
		return err
	}
	return os.WriteFile(path, out, 0o600)
}

func filterDocument(data []byte, allowed map[string]bool) ([]byte, bool, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return nil, false, err
	}
	process := doc
	if p, ok := doc["process"].(map[string]any); ok {
		process = p // config.json; a process file is the process object itself
	}
	caps, ok := process["capabilities"].(map[string]any)
	if !ok {
		return data, false, nil
	}
	changed := false
	for set, v := range caps {
		list, ok := v.([]any)
		if !ok {
			continue
		}
		kept := make([]any, 0, len(list))
		for _, c := range list {
			if name, ok := c.(string); ok && !allowed[name] {
				changed = true
				continue
			}
			kept = append(kept, c)
		}
		caps[set] = kept
	}
	if !changed {
		return data, false, nil
	}
	out, err := json.Marshal(doc)
	return out, true, err
}

// setOCIVersion sets config.json's ociVersion to the one in versionFile, if that
// file exists; fields are kept as filterFile keeps them.
func setOCIVersion(path, versionFile string) error {
	want, err := os.ReadFile(versionFile)
	if os.IsNotExist(err) {
		return nil
	} else if err != nil {
		return err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return err
	}
	version := strings.TrimSpace(string(want))
	if doc["ociVersion"] == version {
		return nil
	}
	doc["ociVersion"] = version
	out, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	return os.WriteFile(path, out, 0o600)
}

// clampOOMScoreAdj raises config.json's process.oomScoreAdj to the value in
// ownPath (this process's oom_score_adj) when it is lower; nothing else changes.
func clampOOMScoreAdj(path, ownPath string) error {
	raw, err := os.ReadFile(ownPath)
	if err != nil {
		return err
	}
	own, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		return err
	}
	return rewriteFile(path, func(data []byte) ([]byte, bool, error) {
		return clampDocument(data, own)
	})
}

func clampDocument(data []byte, own int) ([]byte, bool, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return nil, false, err
	}
	process, _ := doc["process"].(map[string]any)
	adj, ok := process["oomScoreAdj"].(json.Number)
	if !ok {
		return data, false, nil
	}
	if v, err := adj.Int64(); err != nil || v >= int64(own) {
		return data, false, err
	}
	process["oomScoreAdj"] = own
	out, err := json.Marshal(doc)
	return out, true, err
}
