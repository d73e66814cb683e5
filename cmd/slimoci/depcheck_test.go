package main

import (
	"os/exec"
	"strings"
	"testing"
)

// The dependency direction is part of the design: image handling (oci, reverse, rootfs) never pulls in the
// sandbox, and the sensor, which runs inside it, holds only the standard library and golang.org/x/sys. emit
// may: its build pipeline runs the sandbox to observe and to verify.
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
	for _, pkg := range []string{"oci", "reverse", "rootfs"} {
		for _, d := range deps(pkg) {
			if strings.Contains(d, "slimoci/runner") || strings.Contains(d, "opencontainers/runc") {
				t.Errorf("%s imports %s", pkg, d)
			}
		}
	}
	for _, d := range deps("sensor") {
		if strings.Contains(d, ".") && !strings.HasPrefix(d, "golang.org/x/sys") && !strings.HasPrefix(d, "github.com/slimoci/slimoci/sensor") && !strings.HasPrefix(d, "vendor/") {
			t.Errorf("sensor imports %s", d)
		}
	}
}
