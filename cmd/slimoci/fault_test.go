package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slimoci/slimoci/internal/testbed"
)

// Faults while observing, through the CLI on the python sample: each gives a clear one-line message and its
// exit code, and leaves nothing behind (no sandbox state, mount, cgroup or sensor process).
func TestE2EProfileFaults(t *testing.T) {
	sensorBin := rootSandbox(t, "these runs use the root sandbox; the rootless one has its own test")
	image := "oci:" + bed.Layout("python") + ":latest"
	// A server that ignores SIGTERM, or dies of SIGSEGV on its first request.
	server := func(handler string) []string {
		return []string{"--entrypoint=python3", "--cmd=-c", "--cmd=import http.server, os, signal\n" +
			"class H(http.server.BaseHTTPRequestHandler):\n" +
			"  def do_GET(self):\n" + handler +
			"    self.send_response(200); self.end_headers(); self.wfile.write(b'ok')\n" +
			"signal.signal(signal.SIGTERM, signal.SIG_IGN)\n" +
			"http.server.HTTPServer(('', 8080), H).serve_forever()\n"}
	}
	cases := []struct {
		name  string
		args  []string
		code  int
		want  string // in stderr (failures) or stdout (success)
		check func(t *testing.T, report map[string]any)
	}{
		{name: "app exits at once", args: []string{"--entrypoint=python3", "--cmd=-c", "--cmd=import sys; sys.exit(3)"},
			code: exitApp, want: "the app exited with code 3 before answering"},
		{name: "app crashes mid-probe", args: server("    os.kill(os.getpid(), signal.SIGSEGV)\n"),
			code: exitApp, want: "the app exited with code 139 before answering"},
		{name: "app ignores SIGTERM", args: append(server(""), "--stop-timeout=1s"),
			code: 0, want: "ignored its stop signal and was killed",
			check: func(t *testing.T, report map[string]any) {
				if report["killed"] != true || report["record"] == nil {
					t.Errorf("report: killed %v, record %v", report["killed"], report["record"] != nil)
				}
				files, _ := report["record"].(map[string]any)["files"].(map[string]any)
				if _, ok := files["/usr/lib/python3.11/http/server.py"]; !ok {
					t.Errorf("the killed app's record lacks http/server.py")
				}
			}},
		{name: "probe to a closed port", args: []string{"--http-probe-ports=9999", "--probe-timeout=3s"},
			code: exitApp, want: "every probe failed: the app was not exercised"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			state := profileCase(t, sensorBin, image, c.args, c.code, c.want)
			if c.check != nil {
				c.check(t, readReport(t, state))
			}
			noLeftovers(t, state)
		})
	}

	// Ctrl-C while the app runs: slimoci (a process of its own) stops it, cleans up, says so, exits 130.
	t.Run("ctrl-c", func(t *testing.T) {
		state := filepath.Join(t.TempDir(), "state")
		cmd := exec.Command(os.Args[0], "profile", "--sensor", sensorBin, "--state-path", state, "--continue-after=600", image)
		cmd.Env = append(os.Environ(), "SLIMOCI_TEST_AS_CLI=1")
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		interruptWhenRunning(t, cmd, &errb)
		noLeftovers(t, state)
	})
}

// slimoci killed outright (SIGKILL) while the app runs: its sandbox dies with it (no process goes on), and the
// next run removes what it left (the work directory with its overlay mount, the cgroup) before its own work.
func TestE2EProfileKilled(t *testing.T) {
	sensorBin := rootSandbox(t, "this run uses the root sandbox")
	image := "oci:" + bed.Layout("python") + ":latest"
	state := filepath.Join(t.TempDir(), "state")
	cmd := exec.Command(os.Args[0], "profile", "--sensor", sensorBin, "--state-path", state, "--continue-after=600", image)
	cmd.Env = append(os.Environ(), "SLIMOCI_TEST_AS_CLI=1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(testbed.SensorProcesses()) == 0 {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("the sandbox did not start")
		}
		time.Sleep(100 * time.Millisecond)
	}
	cmd.Process.Kill()
	cmd.Wait()
	deadline = time.Now().Add(10 * time.Second)
	for len(testbed.SensorProcesses()) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the sandbox outlived slimoci: %v", testbed.SensorProcesses())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(testbed.Leftovers("", "")) == 0 {
		t.Fatal("a killed slimoci left nothing: the test does not test the clean-up")
	}
	out, errs, code := runCLI(t, "profile", "--sensor", sensorBin, "--state-path", state, image)
	if code != 0 || !strings.Contains(errs, "removed the work directory of a slimoci that was killed") {
		t.Fatalf("exit %d: %s %s", code, out, errs)
	}
	noLeftovers(t, state)
	// Absolute: what any killed run of root's left, before this test too, is the clean-up's to remove.
	if l := leftoversOf(0); len(l) > 0 {
		t.Errorf("left behind after the clean-up: %v", l)
	}
}

// profileCase runs slimoci profile with args on image and checks its exit code and its one-line error
// (code != 0) or its output (code 0) for want; it returns the state path.
func profileCase(t *testing.T, sensorBin, image string, args []string, code int, want string) string {
	t.Helper()
	state := filepath.Join(t.TempDir(), "state")
	start := time.Now()
	out, errs, got := runCLI(t, append(append([]string{"profile", "--sensor", sensorBin, "--state-path", state}, args...), image)...)
	t.Logf("profile %v in %.1fs", args, time.Since(start).Seconds())
	if got != code {
		t.Fatalf("exit %d, want %d: %s %s", got, code, out, errs)
	}
	if code != 0 && !strings.Contains(errorLine(errs), want) {
		t.Errorf("stderr %q: want one line with %q", errs, want)
	}
	if code == 0 && !strings.Contains(out, want) {
		t.Errorf("stdout %q: want %q", out, want)
	}
	return state
}

// readReport reads the report.json profile wrote to state.
func readReport(t *testing.T, state string) map[string]any {
	t.Helper()
	var r map[string]any
	b, err := os.ReadFile(filepath.Join(state, "report.json"))
	if err == nil {
		err = json.Unmarshal(b, &r)
	}
	if err != nil {
		t.Fatalf("report: %v", err)
	}
	return r
}

// noLeftovers checks that nothing of a finished profile remains but its artifacts.
func noLeftovers(t *testing.T, state string) {
	t.Helper()
	if l := testbed.Leftovers("", ""); len(l) > 0 {
		t.Errorf("left behind: %v", l)
	}
	entries, _ := os.ReadDir(state)
	for _, e := range entries {
		if e.Name() != "report.json" && e.Name() != "seccomp.json" {
			t.Errorf("left behind in the state path: %s", e.Name())
		}
	}
	if l := testbed.Leftovers(filepath.Join(state, ".slimoci-work"), ""); len(l) > 0 {
		t.Errorf("left behind: %v", l)
	}
}

// interruptWhenRunning starts cmd (slimoci as a process of its own), waits until its sandbox runs, sends it
// SIGINT as Ctrl-C does, and checks that it says so and exits 130.
func interruptWhenRunning(t *testing.T, cmd *exec.Cmd, stderr *bytes.Buffer) {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(testbed.SensorProcesses()) == 0 {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("the sandbox did not start: %s", stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second)
	cmd.Process.Signal(syscall.SIGINT)
	cmd.Wait()
	if cmd.ProcessState.ExitCode() != 130 || !strings.HasSuffix(strings.TrimSpace(stderr.String()), "slimoci: interrupted") {
		t.Errorf("after Ctrl-C: exit %d, stderr %q", cmd.ProcessState.ExitCode(), stderr.String())
	}
}
