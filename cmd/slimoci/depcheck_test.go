package main

import (
	"os/exec"
	"strings"
	"testing"
)

// The dependency direction is part of the design: image handling (oci, reverse, rootfs) and the slim image
// (emit) never pull in the sandbox, and build without cgo; the sensor, which runs inside it, holds only the
// standard library, golang.org/x/sys and internal/syscalls (the syscall names, which import nothing). The pipeline that joins them is the root package, slimoci.
func TestDependencies(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go tool is not on PATH")
	}
	deps := func(pkg string) []string {
		out, err := exec.Command(goBin, "list", "-deps", "github.com/slimoci/slimoci/"+pkg).Output()
		if err != nil {
			t.Fatalf("go list %s: %v", pkg, err)
		}
		return strings.Fields(string(out))
	}
	for _, pkg := range []string{"oci", "reverse", "rootfs", "emit"} {
		for _, d := range deps(pkg) {
			if strings.Contains(d, "slimoci/runner") || strings.Contains(d, "opencontainers/runc") {
				t.Errorf("%s imports %s", pkg, d)
			}
		}
	}
	// Without cgo: libcontainer's nsenter needs it, so this fails as soon as one of them reaches it.
	for _, pkg := range []string{"oci", "reverse", "rootfs", "emit"} {
		cmd := exec.Command(goBin, "build", "-o", "/dev/null", "github.com/slimoci/slimoci/"+pkg)
		cmd.Env = append(cmd.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s does not build without cgo: %v\n%s", pkg, err, out)
		}
	}
	for _, d := range deps("sensor") {
		if strings.Contains(d, ".") && !strings.HasPrefix(d, "golang.org/x/sys") && !strings.HasPrefix(d, "github.com/slimoci/slimoci/sensor") &&
			d != "github.com/slimoci/slimoci/internal/syscalls" && !strings.HasPrefix(d, "vendor/") {
			t.Errorf("sensor imports %s", d)
		}
	}
}
