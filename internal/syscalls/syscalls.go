// Package syscalls names the Linux system calls of each architecture slimoci knows, as the kernel's own
// syscall tables do; zsyscalls.go is generated from them by internal/gensyscalls (`go generate ./sensor`).
// It imports nothing, so that the sensor may use it.
package syscalls

import "sort"

// Arches are the architectures known, by GOARCH: amd64, 386, arm, arm64, ppc64le, riscv64, s390x.
func Arches() []string {
	out := make([]string, 0, len(byArch))
	for a := range byArch {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

// Names are goarch's system call names by number (shared: not to be changed), or nil for an architecture
// not known.
func Names(goarch string) map[uint32]string {
	return byArch[goarch]
}

// Set is the set of goarch's system call names (nil for an architecture not known).
func Set(goarch string) map[string]bool {
	names, ok := byArch[goarch]
	if !ok {
		return nil
	}
	set := make(map[string]bool, len(names))
	for _, n := range names {
		set[n] = true
	}
	return set
}
