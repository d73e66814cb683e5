package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slimoci/slimoci/internal/testbed"
	"github.com/slimoci/slimoci/rootfs"
)

// slimoci profile as root with its work directory in a world-writable place where a local user (uid 65534)
// took the name of root's private directory first, as a symlink to a victim directory: slimoci stops
// before it unpacks anything, with one line naming the path and what is wrong, and the victim is as it was.
func TestWorkDirSquatted(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the attacker runs as uid 65534: the test needs root to switch to it")
	}
	dir, err := os.MkdirTemp("", "slimoci-cli-attack-")
	if err != nil {
		t.Fatal(err)
	}
	defer rootfs.RemoveTree(dir)
	os.Chmod(dir, 0o755)
	shm, victim := filepath.Join(dir, "shm"), filepath.Join(dir, "victim")
	for _, d := range []string{shm, filepath.Join(victim, "private")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(shm, os.ModeSticky|0o777)
	os.WriteFile(filepath.Join(victim, "private", "key"), []byte("secret"), 0o600)
	before, err := testbed.Fingerprint(victim)
	if err != nil {
		t.Fatal(err)
	}
	squat := filepath.Join(shm, "slimoci-0")
	if _, err := testbed.RunAs(testbed.Nobody, "ln", "-s", victim, squat); err != nil {
		t.Fatal(err)
	}
	layout, _ := sampleLayout(t)
	state := filepath.Join(t.TempDir(), "state")
	out, errs, code := runCLI(t, "profile", "--sensor", os.Args[0], "--state-path", state, "--work-dir", shm, "oci:"+layout+":v1")
	want := "slimoci: unsafe work directory: " + squat + " is a symlink"
	if code != 1 || strings.Count(errs, "\n") != 1 || !strings.HasPrefix(errs, want) || !strings.Contains(errs, "--work-dir") {
		t.Errorf("exit %d, stderr %q: want one line starting %q and naming --work-dir (stdout %q)", code, errs, want, out)
	}
	if after, _ := testbed.Fingerprint(victim); after != before {
		t.Errorf("the victim changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if target, err := os.Readlink(squat); err != nil || target != victim {
		t.Errorf("the attacker's symlink: %q, %v", target, err)
	}
	if entries, _ := os.ReadDir(state); len(entries) > 0 {
		t.Errorf("the state path holds %v", entries)
	}
}
