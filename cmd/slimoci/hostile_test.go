package main

// The hostile-app suite (issue 9): each test runs an image built by testdata/testbed.sh whose app attacks the
// sandbox for real (testdata/samples/hostile/attack.py, testdata/samples/hostile-content), and checks that a
// victim directory on the host is unchanged, that the limit or timeout fired with its one-line error, and that
// no process, mount, cgroup or work directory is left.

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slimoci/slimoci/internal/testbed"
)

// victim is a host directory an attack aims at: a file, a directory, a symlink, a fifo.
func victim(t *testing.T) (dir, print string) {
	t.Helper()
	dir = t.TempDir()
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"precious":true}`), 0o600))
	must(os.WriteFile(filepath.Join(dir, "record.json"), []byte("the host's own file\n"), 0o644))
	must(os.Mkdir(filepath.Join(dir, "sub"), 0o750))
	must(os.Symlink("/etc/hostname", filepath.Join(dir, "link")))
	must(syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o600))
	fp, err := testbed.Fingerprint(dir)
	must(err)
	return dir, fp
}

func unchanged(t *testing.T, dir, before string) {
	t.Helper()
	after, err := testbed.Fingerprint(dir)
	if err != nil {
		t.Fatal(err)
	}
	if after != before {
		t.Errorf("the victim directory changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// attackProcesses lists the processes of the hostile app still running on the machine.
func attackProcesses() []string {
	var out []string
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err == nil && bytes.Contains(b, []byte("/attack.py")) {
			out = append(out, filepath.Base(filepath.Dir(p))+" "+strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	return out
}

func hostileImage(t *testing.T, name string) string {
	t.Helper()
	l := bed.Layout(name)
	if _, err := os.Stat(filepath.Join(l, "index.json")); err != nil {
		t.Fatalf("the test bed has no %s image (make testbed builds it): %v", name, err)
	}
	return "oci:" + l + ":latest"
}

func TestE2EHostileApp(t *testing.T) {
	sensorBin := rootSandbox(t, "the root sandbox; TestE2EHostileRootless attacks the rootless one")
	image := hostileImage(t, "hostile")
	vdir, vprint := victim(t)
	cases := []struct {
		name string
		args []string
		code int
		// want is in stderr's one line (failures) or in stdout (success).
		want   string
		report func(t *testing.T, r map[string]any)
	}{
		{name: "sensor directory", args: []string{"--cmd=sensor-dir", "--cmd=" + vdir, "--exec=true", "--exec=true"},
			want: "exec /bin/sh -c true: exit 0",
			report: func(t *testing.T, r map[string]any) {
				files, _ := r["record"].(map[string]any)["files"].(map[string]any)
				if _, forged := files["/forged"]; forged {
					t.Error("a forged record reached the report")
				}
				if _, ok := files["/attack.py"]; !ok {
					t.Error("the record lacks the app")
				}
			}},
		{name: "record flood", args: []string{"--cmd=record-flood", "--cmd=205000"},
			code: 1, want: "the sensor's record is full: the app named more than 200000 distinct paths"},
		{name: "fork bomb", args: []string{"--cmd=fork-bomb", "--pids-limit=200", "--stop-timeout=1s", "--continue-after=3"},
			code: 1, want: "the app hit a sandbox limit: processes (--pids-limit 200)",
			report: func(t *testing.T, r map[string]any) {
				if r["record"] == nil || len(r["limitsHit"].([]any)) == 0 {
					t.Errorf("the report lacks the record or the limit: %v", r["limitsHit"])
				}
			}},
		{name: "memory hog", args: []string{"--cmd=memory-hog", "--memory=256m", "--continue-after=3"},
			code: 1, want: "the app hit a sandbox limit: memory (--memory 256MiB)"},
		{name: "disk fill", args: []string{"--cmd=disk-fill", "--writable-size=64m", "--continue-after=3"},
			code: 1, want: "writable layer (--writable-size 64MiB): full"},
		{name: "ignores SIGTERM, leaves a daemon", args: []string{"--cmd=ignore-term", "--stop-timeout=1s"},
			want: "ignored its stop signal and was killed"},
		{name: "replaces /bin/sh", args: []string{"--cmd=replace-sh", "--exec=echo hello", "--exec-timeout=2s"},
			want: "exec /bin/sh -c echo hello: timed out after 2s (--exec-timeout)"},
		{name: "signals PID 1", args: []string{"--cmd=signal-pid1"}, want: "http 200",
			report: func(t *testing.T, r map[string]any) {
				if r["record"] == nil {
					t.Error("the sensor lost its record to the app's signals")
				}
			}},
		{name: "burns the CPU", args: []string{"--cmd=cpu-burn", "--cpus=1"}, want: "http 200"},
	}
	// Each attack against each of the sensor's backends: both keep their record and their limits.
	for _, backend := range []string{"notify", "ptrace"} {
		for _, c := range cases {
			t.Run(backend+"/"+c.name, func(t *testing.T) {
				before := testbed.Snapshot()
				state := profileCase(t, sensorBin, image, append([]string{"--sensor-backend=" + backend}, c.args...), c.code, c.want)
				if c.report != nil {
					c.report(t, readReport(t, state))
				}
				unchanged(t, vdir, vprint)
				if l := testbed.LeftoversSince(before, "", ""); len(l) > 0 {
					t.Errorf("left behind: %v", l)
				}
				if p := attackProcesses(); len(p) > 0 {
					t.Errorf("the app outlived the run: %v", p)
				}
			})
		}
	}
}

// slimoci killed outright (SIGKILL) at several points of a run, the app hostile (it ignores SIGTERM and
// leaves a daemon in a session of its own): every process of the sandbox dies with slimoci, and the next run
// removes what the killed one left.
func TestE2EHostileKilled(t *testing.T) {
	sensorBin := rootSandbox(t, "the root sandbox; TestE2EHostileRootless kills the rootless one")
	image := hostileImage(t, "hostile")
	points := []struct {
		name string
		// wait says when to kill: after this long, or (when 0) once procs processes of the app run.
		wait  time.Duration
		procs int
		args  []string
	}{
		{name: "at start", wait: 50 * time.Millisecond},
		{name: "unpacking", wait: 700 * time.Millisecond},
		{name: "app running", procs: 2, args: []string{"--cmd=ignore-term"}}, // the app and its daemon
		{name: "in an exec probe", procs: 1, args: []string{"--cmd=replace-sh", "--exec=true", "--exec-timeout=60s"}},
	}
	for _, p := range points {
		t.Run(p.name, func(t *testing.T) {
			state := filepath.Join(t.TempDir(), "state")
			args := append([]string{"profile", "--sensor", sensorBin, "--state-path", state, "--continue-after=600", "--stop-timeout=60s"}, p.args...)
			cmd := exec.Command(os.Args[0], append(args, image)...)
			cmd.Env = append(os.Environ(), "SLIMOCI_TEST_AS_CLI=1")
			killWhenRunning(t, cmd, p.wait, p.procs)
		})
	}
	// The next run removes every killed run's work directory, mount and cgroup, then does its own work.
	state := filepath.Join(t.TempDir(), "state")
	if out, errs, code := runCLI(t, "profile", "--sensor", sensorBin, "--state-path", state, image); code != 0 {
		t.Fatalf("exit %d: %s %s", code, out, errs)
	}
	// Absolute: whatever any killed run of root's left, before this test too, is the clean-up's to remove.
	if l := leftoversOf(0); len(l) > 0 {
		t.Errorf("left behind after the clean-up: %v", l)
	}
}

// The image's content alone is hostile: a FIFO for /etc/nsswitch.conf, a crafted /etc/ld.so.cache, a device
// node and a symlink to /dev/zero where libraries go, 20 MiB of /etc/passwd. slimoci neither blocks nor blows
// up: profile runs the app (the sensor reads what it executes without blocking), and build refuses the image
// with one line naming the FIFO, writing nothing.
func TestE2EHostileContent(t *testing.T) {
	sensorBin := rootSandbox(t, "profile and build run the root sandbox")
	image := hostileImage(t, "hostile-content")
	before := testbed.Snapshot()
	bounded := func(args ...string) (string, string, int) {
		done := make(chan struct{})
		var out, errs string
		var code int
		go func() {
			out, errs, code = runCLI(t, args...)
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(3 * time.Minute):
			t.Fatalf("slimoci %s blocked on the image's content", args[0])
		}
		return out, errs, code
	}
	state := filepath.Join(t.TempDir(), "state")
	if out, errs, code := bounded("profile", "--sensor", sensorBin, "--state-path", state, image); code != 0 || !strings.Contains(out, "http 200") {
		t.Errorf("profile: exit %d: %s %s", code, out, errs)
	}
	dest := filepath.Join(t.TempDir(), "slim")
	_, errs, code := bounded("build", "--sensor", sensorBin, "--state-path", state, "--output", "oci:"+dest+":slim", image)
	if code != exitImage || !strings.Contains(errorLine(errs), "/etc/nsswitch.conf: not a regular file: it is a FIFO") {
		t.Errorf("build: exit %d, stderr %q: want %d (an image error) and one line naming the FIFO", code, errs, exitImage)
	}
	if _, err := os.Stat(dest); err == nil {
		t.Errorf("a refused build wrote %s", dest)
	}
	if l := testbed.LeftoversSince(before, "", ""); len(l) > 0 {
		t.Errorf("left behind: %v", l)
	}
}

// The rootless sandbox under attack: no cgroup is delegated there, so rlimits stand in (the app meets them
// as its own errors); the sandbox still dies with a killed slimoci, and the host keeps its memory.
func TestE2EHostileRootless(t *testing.T) {
	needBed(t)
	if os.Geteuid() != 0 {
		t.Skip("the test runs slimoci as user 65534 and needs root to switch to it")
	}
	sensorBin := buildSensor(t)
	image := hostileImage(t, "hostile")
	for _, c := range []struct {
		name string
		args []string
	}{
		{"fork bomb", []string{"--cmd=fork-bomb", "--pids-limit=200", "--stop-timeout=1s"}},
		{"memory hog", []string{"--cmd=memory-hog", "--memory=256m", "--continue-after=3"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := testbed.Snapshot()
			cmd, home := rootlessCLI(t, sensorBin, append(append([]string{"profile", "--state-path", "state"}, c.args...), image)...)
			var out, errb bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errb
			done := make(chan error, 1)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			go func() { done <- cmd.Wait() }()
			select {
			case <-done:
			case <-time.After(2 * time.Minute):
				cmd.Process.Kill()
				t.Fatalf("slimoci did not finish: %s %s", out.String(), errb.String())
			}
			if !strings.Contains(out.String(), "http 200") {
				t.Errorf("the app was not probed: %s %s", out.String(), errb.String())
			}
			if l := testbed.LeftoversSince(before, "", ""); len(l) > 0 {
				t.Errorf("left behind: %v", l)
			}
			if p := attackProcesses(); len(p) > 0 {
				t.Errorf("the app outlived the run: %v", p)
			}
			rootlessLeftovers(t, home)
		})
	}
	t.Run("killed", func(t *testing.T) {
		cmd, _ := rootlessCLI(t, sensorBin, "profile", "--state-path", "state", "--continue-after=600", "--cmd=ignore-term", image)
		killWhenRunning(t, cmd, 0, 2)
		// The user's next run removes what the killed one left.
		cmd, home := rootlessCLI(t, sensorBin, "profile", "--state-path", "state", image)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil || !strings.Contains(errb.String(), "removed the work directory of a slimoci that was killed") {
			t.Fatalf("the next run: %v: %s %s", err, out.String(), errb.String())
		}
		if l := leftoversOf(nobody); len(l) > 0 {
			t.Errorf("left behind after the clean-up: %v", l)
		}
		rootlessLeftovers(t, home)
	})
}

// killWhenRunning starts slimoci (cmd), kills it with SIGKILL after wait, or (wait 0) once procs processes
// of the hostile app run and a moment more, and checks that no process of its sandbox outlives it.
func killWhenRunning(t *testing.T, cmd *exec.Cmd, wait time.Duration, procs int) {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if wait > 0 {
		time.Sleep(wait)
	} else {
		deadline := time.Now().Add(30 * time.Second)
		for len(attackProcesses()) < procs {
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatal("the sandbox did not start")
			}
			time.Sleep(50 * time.Millisecond)
		}
		time.Sleep(300 * time.Millisecond) // into the probes, or the exec probe
	}
	cmd.Process.Kill()
	cmd.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for len(testbed.SensorProcesses())+len(attackProcesses()) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the sandbox outlived slimoci: %v %v", testbed.SensorProcesses(), attackProcesses())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// leftoversOf is every leftover on the machine (before this test binary too) but other users' work
// directories: what uid's clean-up must have removed.
func leftoversOf(uid int) []string {
	var out []string
	own := fmt.Sprintf("/slimoci-%d/", uid)
	for _, l := range testbed.LeftoversSince(nil, "", "") {
		if strings.Contains(l, "/dev/shm/slimoci-") && !strings.Contains(l, own) {
			continue
		}
		out = append(out, l)
	}
	return out
}
