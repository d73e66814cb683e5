package emit

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/slimoci/slimoci/sensor"
)

// AppArmorProfile writes an AppArmor profile for the slim image's app: read (and map) access to the files
// the app was seen using, execute (inheriting the profile) for the programs it ran, write for what it
// wrote; network and the kernel filesystems a runtime provides; mounts and ptrace denied. Load it with
// apparmor_parser -r FILE and run with --security-opt apparmor=NAME. rec is the run's record, written the
// paths it created or changed (runner.Observation's Record and Written).
func AppArmorProfile(name string, rec *sensor.Record, written []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# AppArmor profile made by slimoci from an observed run.\n#include <tunables/global>\n\n")
	fmt.Fprintf(&b, "profile %s flags=(attach_disconnected,mediate_deleted) {\n", safeName(name))
	b.WriteString("  #include <abstractions/base>\n\n  network,\n  signal (receive) peer=unconfined,\n  signal,\n\n")
	b.WriteString("  deny mount,\n  deny umount,\n  deny ptrace (readby, tracedby),\n  deny /sys/[^f]*/** wklx,\n  deny /proc/sys/kernel/** wklx,\n\n")
	b.WriteString("  /proc/** r,\n  /sys/** r,\n  /dev/** rw,\n  /etc/hosts r,\n  /etc/hostname r,\n  /etc/resolv.conf r,\n\n")
	wrote := map[string]bool{}
	for _, p := range written {
		wrote[p] = true
	}
	var rules []string
	for p, ops := range rec.Files {
		changes := changed(ops)
		if strings.HasPrefix(p, "/proc/") || strings.HasPrefix(p, "/sys/") || strings.HasPrefix(p, "/dev/") || slices.Contains(ops, "missing") && !wrote[p] && !changes {
			continue
		}
		perm := "r"
		switch {
		case slices.Contains(ops, "hardlink-to"):
			perm = "rwl"
		case wrote[p] || changes:
			perm = "rw"
		case slices.Contains(ops, "exec") || slices.Contains(ops, "interp"):
			perm = "rmix"
		case strings.Contains(p, ".so"):
			perm = "rm"
		}
		rules = append(rules, fmt.Sprintf("  %s %s,", quote(p), perm))
	}
	for _, p := range written {
		if _, ok := rec.Files[p]; !ok {
			rules = append(rules, fmt.Sprintf("  %s rw,", quote(p)))
		}
	}
	sort.Strings(rules)
	b.WriteString(strings.Join(rules, "\n"))
	b.WriteString("\n}\n")
	return b.String()
}

// writeOps are the sensor's ops that create, remove or change a file: the app needs write access to it even
// when nothing of it is left at the end (a socket bound and removed, a directory made and removed).
var writeOps = []string{"creat", "mkdir", "mknod", "rename", "rename-to", "hardlink-to", "symlink", "unlink", "rmdir",
	"truncate", "chmod", "chown", "utime", "bind"}

func changed(ops []string) bool {
	for _, op := range writeOps {
		if slices.Contains(ops, op) {
			return true
		}
	}
	return false
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

func safeName(s string) string { return unsafeName.ReplaceAllString(s, "-") }

// quote writes a path as an AppArmor file rule's path: quoted, its glob characters escaped, and "{,/}" after
// it so that the rule also matches it as a directory (the record does not say which it is).
func quote(p string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "*", `\*`, "?", `\?`, "[", `\[`, "]", `\]`, "{", `\{`, "}", `\}`, "^", `\^`)
	return `"` + r.Replace(p) + `{,/}"`
}
