// Package procstatus reads this process's /proc/self/status, for the test programs.
package procstatus

import (
	"os"
	"strings"
)

// Field is the value of one line of /proc/self/status ("unknown" if absent).
func Field(name string) string {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}
