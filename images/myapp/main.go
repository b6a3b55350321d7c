// myapp stands in for the recipe's "myapp:1.0": an HTTP server on :8080 with
// /healthz and /ready. It runs as any uid with a read-only root: it writes
// nothing outside /tmp. At start it prints its own credentials, so a test can
// compare the workload's view with what an exec'd process sees.
package main

import (
	"fmt"
	"log"
	"net/http"
	"os"
	"strings"
)

func main() {
	log.SetFlags(log.LstdFlags | log.LUTC)
	log.Printf("myapp starting: %s", selfView())
	addr := ":8080"
	if v := os.Getenv("MYAPP_ADDR"); v != "" {
		addr = v
	}
	http.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	http.HandleFunc("/ready", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ready")
	})
	http.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "myapp:", selfView())
	})
	log.Fatal(http.ListenAndServe(addr, nil))
}

// selfView is the process's own Uid/Gid/Groups/Cap*/NoNewPrivs/Seccomp lines.
func selfView() string {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "status unreadable: " + err.Error()
	}
	var keep []string
	for _, line := range strings.Split(string(data), "\n") {
		for _, p := range []string{"Uid:", "Gid:", "Groups:", "Cap", "NoNewPrivs:", "Seccomp:"} {
			if strings.HasPrefix(line, p) {
				keep = append(keep, strings.Join(strings.Fields(line), " "))
			}
		}
	}
	return strings.Join(keep, "; ")
}
