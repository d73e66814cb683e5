package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slimoci/slimoci/internal/testbed"
	"github.com/slimoci/slimoci/runner"
)

// Probes and --continue-after through the CLI on the python sample: docker-slim's probe file (a 404 and a
// 405 count as answers), exec probes whose files enter the record, and the enter and signal modes.
func TestE2EProfileProbes(t *testing.T) {
	sensorBin := rootSandbox(t, "these runs use the root sandbox; the rootless one has its own test")
	image := "oci:" + bed.Layout("python") + ":latest"
	probeFile := filepath.Join(t.TempDir(), "probes.json")
	os.WriteFile(probeFile, []byte(`{"commands":[{"method":"GET","resource":"/missing"},
		{"protocol":"http","method":"POST","resource":"/","port":8080,"headers":["Content-Type: text/plain"],"body":"x"}]}`), 0o644)
	state := filepath.Join(t.TempDir(), "state")
	out, errs, code := slimoci(t, "profile", "--sensor", sensorBin, "--state-path", state, "--http-probe-cmd-file", probeFile,
		"--http-probe-cmd=GET:/", "--exec=python3 -c 'import csv'", `--exec=["python3", "-c", "import sys; sys.exit(4)"]`, image)
	if code != 0 {
		t.Fatalf("exit %d: %s %s", code, out, errs)
	}
	var report struct {
		Probes         []runner.ProbeResult
		ExecProbes     []runner.ExecResult
		ContinuedAfter string
		Record         struct {
			Files map[string][]string
			Execs []struct{ Argv []string }
		}
	}
	b, _ := os.ReadFile(filepath.Join(state, "report.json"))
	if err := json.Unmarshal(b, &report); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range report.Probes {
		got = append(got, p.Method+" "+p.Path+" "+strconv.Itoa(p.Status))
	}
	if want := []string{"GET / 200", "GET /missing 404", "POST / 405"}; !slices.Equal(got, want) {
		t.Errorf("probes %v, want %v", got, want)
	}
	if len(report.ExecProbes) != 2 || report.ExecProbes[0].ExitCode != 0 || report.ExecProbes[1].ExitCode != 4 {
		t.Errorf("exec probes %+v", report.ExecProbes)
	}
	if report.ContinuedAfter != "probe" {
		t.Errorf("continued after %q", report.ContinuedAfter)
	}
	if !slices.Contains(report.Record.Files["/usr/lib/python3.11/csv.py"], "stat") || len(report.Record.Files["/bin/sh"]) == 0 {
		t.Errorf("the exec probe's files are not in the record: csv.py %v, /bin/sh %v",
			report.Record.Files["/usr/lib/python3.11/csv.py"], report.Record.Files["/bin/sh"])
	}
	if !strings.Contains(out, "exec python3 -c import sys; sys.exit(4): exit 4") {
		t.Errorf("summary %q", out)
	}

	// enter and signal: slimoci as a process of its own, told to go on by a line on stdin or SIGUSR1.
	for _, mode := range []string{"enter", "signal"} {
		t.Run(mode, func(t *testing.T) {
			state := filepath.Join(t.TempDir(), "state")
			cmd := exec.Command(os.Args[0], "profile", "--sensor", sensorBin, "--state-path", state, "--continue-after="+mode, image)
			cmd.Env = append(os.Environ(), "SLIMOCI_TEST_AS_CLI=1")
			stdin, _ := cmd.StdinPipe()
			var out, errb bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errb
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			deadline := time.Now().Add(30 * time.Second)
			for len(testbed.SensorProcesses()) == 0 && time.Now().Before(deadline) {
				time.Sleep(100 * time.Millisecond)
			}
			// The probe is done within seconds; the observation must still be waiting for us.
			time.Sleep(3 * time.Second)
			if cmd.ProcessState != nil {
				t.Fatalf("slimoci did not wait for %s: %s", mode, errb.String())
			}
			if mode == "enter" {
				io.WriteString(stdin, "\n")
			} else {
				cmd.Process.Signal(syscall.SIGUSR1)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				if err != nil || !strings.Contains(out.String(), "stopped after "+mode) {
					t.Errorf("%v: %s %s", err, out.String(), errb.String())
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("slimoci did not go on after %s", mode)
			}
		})
	}
}
