package main

// The volume lies change the node, not config.json: the directories and files
// the kubelet made for the pod's volumes (the sources of the container's bind
// mounts), just before runc mounts them.
//
//	own-volumes  each emptyDir volume's directory is handed to the process:
//	             chowned to its uid:gid and made 0700. The mount stays writable,
//	             so only the directory's owner and mode show the lie.
//	file-modes   every file in the pod's configMap, secret, downwardAPI and
//	             projected volumes becomes 0644, whatever defaultMode and
//	             items[].mode asked for.

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// The sources of the container's bind mounts of these kubelet volume plugins
// (/var/lib/kubelet/pods/<uid>/volumes/kubernetes.io~<plugin>/<name>); a
// subPath's source is under volume-subpaths/ and is left alone.
func volumeSources(doc map[string]any, plugins ...string) []string {
	mounts, _ := doc["mounts"].([]any)
	var sources []string
	for _, m := range mounts {
		mount, _ := m.(map[string]any)
		dest, _ := mount["destination"].(string)
		src, _ := mount["source"].(string)
		opts, _ := mount["options"].([]any)
		if systemPath(dest) || !isBind(mount, opts) {
			continue
		}
		for _, p := range plugins {
			if strings.Contains(src, "/volumes/kubernetes.io~"+p+"/") {
				sources = append(sources, src)
			}
		}
	}
	return sources
}

func ownVolumes(doc map[string]any, _ string) ([]string, error) {
	u := user(doc)
	uid, gid := id(u["uid"]), id(u["gid"])
	var changed []string
	for _, src := range volumeSources(doc, "empty-dir") {
		if err := os.Chown(src, int(uid), int(gid)); err != nil {
			return nil, err
		}
		if err := os.Chmod(src, 0o700); err != nil {
			return nil, err
		}
		changed = append(changed, fmt.Sprintf("%s: owner %d:%d, mode 0700", src, uid, gid))
	}
	return changed, nil
}

func fileModes(doc map[string]any, _ string) ([]string, error) {
	var changed []string
	for _, src := range volumeSources(doc, "configmap", "secret", "downward-api", "projected") {
		n := 0
		err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return err // symlinks (the keys, ..data) are not followed
			}
			info, err := d.Info()
			if err != nil || info.Mode().Perm() == 0o644 {
				return err
			}
			n++
			return os.Chmod(path, 0o644)
		})
		if err != nil {
			return nil, err
		}
		if n > 0 {
			changed = append(changed, fmt.Sprintf("%s: %d file(s) -> 0644", src, n))
		}
	}
	return changed, nil
}
