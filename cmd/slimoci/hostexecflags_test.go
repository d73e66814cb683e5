package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// hostExecOf parses the observe flags as the command line does (kong, with their defaults) and reads the
// host commands and the exec file into an observation.
func hostExecOf(t *testing.T, args ...string) (*ObserveFlags, *observation, error) {
	t.Helper()
	f, err := observeFlagsOf(t, args...)
	if err != nil {
		return nil, nil, err
	}
	o := &observation{}
	return f, o, f.parseHostExec(o)
}

func TestHostExecFlags(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "host.txt")
	os.WriteFile(file, []byte("# the suite\n  ./run-tests.sh --fast  \n\nredis-cli -u \"redis://$SLIMOCI_ADDR\" ping\n"), 0o644)
	script := filepath.Join(dir, "exec.sh")
	os.WriteFile(script, []byte("set -e\nfor f in /etc/os-release; do cat \"$f\"; done\n"), 0o644)

	_, o, err := hostExecOf(t)
	if err != nil || o.plan.HostExec != nil || o.plan.HostExecTimeout != 200*time.Second || o.plan.Exec != nil {
		t.Fatalf("defaults: %+v %v", o.plan, err)
	}
	_, o, err = hostExecOf(t, "--host-exec", "curl -fsS http://$SLIMOCI_ADDR/", "--host-exec-file", file, "--host-exec", "true",
		"--host-exec-timeout", "5s", "--exec-file", script)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"curl -fsS http://$SLIMOCI_ADDR/", "true", "./run-tests.sh --fast", `redis-cli -u "redis://$SLIMOCI_ADDR" ping`}
	if !slices.Equal(o.plan.HostExec, want) || o.plan.HostExecTimeout != 5*time.Second {
		t.Errorf("host commands %q (%s), want %q", o.plan.HostExec, o.plan.HostExecTimeout, want)
	}
	// The exec file is one script, as mint's sh -s: a loop spans lines.
	if len(o.plan.Exec) != 1 || !slices.Equal(o.plan.Exec[0][:2], []string{"/bin/sh", "-c"}) || !strings.Contains(o.plan.Exec[0][2], "for f in /etc/os-release; do") {
		t.Errorf("exec file: %q", o.plan.Exec)
	}

	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("\n# nothing\n   \n"), 0o644)
	blank := filepath.Join(dir, "blank")
	os.WriteFile(blank, []byte("\n  \n"), 0o644)
	nul := filepath.Join(dir, "nul")
	os.WriteFile(nul, []byte("echo a\x00b\n"), 0o644)
	big := filepath.Join(dir, "big")
	os.WriteFile(big, []byte(strings.Repeat("echo x\n", 20000)), 0o644)
	for name, c := range map[string]struct {
		args []string
		want string
	}{
		"empty host command":   {[]string{"--host-exec", "  "}, "--host-exec: empty command"},
		"host file of nothing": {[]string{"--host-exec-file", empty}, "no command in it"},
		"missing host file":    {[]string{"--host-exec-file", filepath.Join(dir, "nope")}, "nope"},
		"zero timeout":         {[]string{"--host-exec", "true", "--host-exec-timeout", "0s"}, "--host-exec-timeout 0s"},
		"bad timeout":          {[]string{"--host-exec-timeout", "soon"}, "--host-exec-timeout"},
		"empty exec file":      {[]string{"--exec-file", blank}, "--exec-file " + blank + ": empty"},
		"NUL in the exec file": {[]string{"--exec-file", nul}, "a NUL byte"},
		"exec file too big":    {[]string{"--exec-file", big}, "140000 bytes, more than the 131071"},
		"missing exec file":    {[]string{"--exec-file", filepath.Join(dir, "nope")}, "nope"},
	} {
		if _, _, err := hostExecOf(t, c.args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
}

// The combinations' errors reach the user in one line, before anything is pulled.
func TestContinueAfterFlag(t *testing.T) {
	image := filepath.Join(t.TempDir(), "never-read.tar")
	sensor := filepath.Join(t.TempDir(), "sensor")
	os.WriteFile(sensor, nil, 0o755)
	for mode, want := range map[string]string{
		"probe&later":     `"later" is not a mode`,
		"app-exit&probe":  "app-exit must come last",
		"probe&&exec":     "an empty mode",
		"exec&exec":       "exec twice",
		"container-probe": "Compose",
	} {
		out, errs, code := runCLI(t, "profile", "--sensor", sensor, "--continue-after", mode, image)
		if code != 2 || !strings.Contains(errs, want) || strings.Contains(errs, "never-read") || strings.Count(strings.TrimSpace(errs), "\n") > 0 {
			t.Errorf("%s: exit %d: %s %s", mode, code, out, errs)
		}
	}
	for _, mode := range []string{"probe&exec", "host-exec&probe", "exec&host-exec&enter", "signal&30"} {
		// Accepted: the error is the image's, which is read after the flags are.
		if _, errs, code := runCLI(t, "profile", "--sensor", sensor, "--continue-after", mode, image); code != 3 || !strings.Contains(errs, "never-read") {
			t.Errorf("%s: exit %d: %s", mode, code, errs)
		}
	}
}
