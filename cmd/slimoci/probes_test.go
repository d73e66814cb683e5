package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
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
	out, errs, code := runCLI(t, "profile", "--sensor", sensorBin, "--state-path", state, "--http-probe-cmd-file", probeFile,
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

// profileReport is what profile wrote to its state path: the observation.
func profileReport(t *testing.T, state string) *runner.Observation {
	t.Helper()
	var r runner.Observation
	b, err := os.ReadFile(filepath.Join(state, "report.json"))
	if err == nil {
		err = json.Unmarshal(b, &r)
	}
	if err != nil {
		t.Fatal(err)
	}
	return &r
}

// probeSummary is each probe's method, path, status and attempts.
func probeSummary(probes []runner.ProbeResult) []string {
	var out []string
	for _, p := range probes {
		out = append(out, fmt.Sprintf("%s %s %d x%d", p.Method, p.Path, p.Status, p.Attempts))
	}
	return out
}

// The probe file docker-slim users have, which slimoci refused (json: unknown field "username"), on the
// probes sample: its credentials reach the app, whose /private page then reads a file no other request
// reads; the page answers 200 in the fat run, in verify's run of the slim image, and under podman from the
// slim image, which has the file. An upload (--http-probe-cmd-upload) reaches /upload likewise. Without the
// credentials the page answers 401 and the file is not in the record: they are what keeps it.
func TestE2EBuildProbeFile(t *testing.T) {
	sensorBin := rootSandbox(t, "these runs use the root sandbox")
	ctx := t.Context()
	src := "oci:" + bed.Layout("probes") + ":latest"
	dir := t.TempDir()
	probeFile := filepath.Join(dir, "probes.json")
	os.WriteFile(probeFile, []byte(`{"commands":[
		{"method":"GET","resource":"/private","username":"admin","password":"s3cret","headers":["Accept: text/plain"]}
	]}`), 0o644)
	state := filepath.Join(dir, "state")
	archive := filepath.Join(dir, "slim.tar")
	image := "localhost/slimoci-e2e/probes-slim:latest"
	out, errs, code := runCLI(t, "build", "--sensor", sensorBin, "--state-path", state, "--http-probe-cmd-file", probeFile,
		"--http-probe-cmd-upload", "generate.text.json:/upload", "--output", "docker-archive:"+archive+":"+image, src)
	if code != 0 {
		t.Fatalf("exit %d: %s %s", code, out, errs)
	}
	r := buildReport(t, state)
	want := []string{"POST /upload 200 x1", "GET /private 200 x1"}
	if got := probeSummary(r.Fat.Probes); !slices.Equal(got, want) {
		t.Errorf("the fat run's probes %v, want %v", got, want)
	}
	if r.Verify == nil || !slices.Equal(probeSummary(r.Verify.Probes), want) {
		t.Errorf("verify's probes: %+v", r.Verify)
	}
	secret, _ := os.ReadFile("../../testdata/samples/probes/private/secret.txt")
	if sum := sha256.Sum256(secret); r.Fat.Probes[1].BodySHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("GET /private's body hashes to %s, not the secret page's", r.Fat.Probes[1].BodySHA256)
	}
	kept := keptPaths(t, state)
	for _, p := range []string{"/app/private/secret.txt", "/app/private/upload.txt"} {
		if kept[p] == nil {
			t.Errorf("%s is not kept", p)
		}
	}

	if _, err := testbed.Run(ctx, "podman", "load", "-i", archive); err != nil {
		t.Fatal(err)
	}
	defer testbed.Run(ctx, "podman", "rmi", "-f", image)
	name, _ := podmanServe(t, image)
	port, err := testbed.Run(ctx, "podman", "port", name, "8080")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + strings.TrimSpace(string(port))
	client := &http.Client{Timeout: 10 * time.Second}
	for _, tc := range []struct {
		name   string
		req    func() *http.Request
		status int
		body   string
	}{
		{"with the credentials", func() *http.Request {
			req, _ := http.NewRequest("GET", base+"/private", nil)
			req.SetBasicAuth("admin", "s3cret")
			return req
		}, 200, string(secret)},
		{"without", func() *http.Request { req, _ := http.NewRequest("GET", base+"/private", nil); return req }, 401, "who are you?\n"},
		{"an upload", func() *http.Request {
			req, _ := http.NewRequest("POST", base+"/upload", strings.NewReader("--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\r\nabc\r\n--b--\r\n"))
			req.Header.Set("Content-Type", "multipart/form-data; boundary=b")
			return req
		}, 200, `{"name":"a.txt","note":"an upload was received","size":3}` + "\n"},
	} {
		resp, err := client.Do(tc.req())
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || string(body) != tc.body {
			t.Errorf("%s: the slim image answers %d %q, want %d %q", tc.name, resp.StatusCode, body, tc.status, tc.body)
		}
	}

	// Without the credentials: a 401 is an answer, and the page's file is not read.
	state = filepath.Join(dir, "profile")
	out, errs, code = runCLI(t, "profile", "--sensor", sensorBin, "--state-path", state, "--http-probe-cmd", "/private", src)
	if code != 0 {
		t.Fatalf("profile: exit %d: %s %s", code, out, errs)
	}
	o := profileReport(t, state)
	if got := probeSummary(o.Probes); !slices.Equal(got, []string{"GET /private 401 x1"}) {
		t.Errorf("probes without the credentials: %v", got)
	}
	if ops := o.Record.Files["/app/private/secret.txt"]; ops != nil {
		t.Errorf("the secret page's file was read without the credentials: %v", ops)
	}
}

// The failure policy on the probes sample's /fail, which answers 500: with --http-probe-fail-on-status-5xx
// the 500 is a failed attempt, retried (--http-probe-retry-count 2, 1 s apart), and the build fails in one
// line, writing no image; without the flag the 500 is an answer, and with --no-http-probe-exit-on-failure
// the failure is recorded but fails nothing.
func TestE2EBuildFailOn5xx(t *testing.T) {
	sensorBin := rootSandbox(t, "these runs use the root sandbox")
	src := "oci:" + bed.Layout("probes") + ":latest"
	dir := t.TempDir()
	state := filepath.Join(dir, "build")
	start := time.Now()
	out, errs, code := runCLI(t, "build", "--sensor", sensorBin, "--state-path", state, "--http-probe-cmd", "/", "--http-probe-cmd", "/fail",
		"--http-probe-fail-on-status-5xx", "--http-probe-retry-count", "2", "--http-probe-retry-wait", "1", src)
	want := "probe GET :8080/fail: status 500, a failure with --http-probe-fail-on-status-5xx (2 attempts)"
	if code != exitApp || !strings.Contains(errorLine(errs), want) {
		t.Fatalf("exit %d, stderr %q; want a failure saying %q in one line (stdout %s)", code, errs, want, out)
	}
	if _, err := os.Stat(filepath.Join(state, "image")); !os.IsNotExist(err) {
		t.Errorf("a failed build wrote an image: %v", err)
	}
	r := buildReport(t, state)
	if got := probeSummary(r.Fat.Probes); !slices.Equal(got, []string{"GET / 200 x1", "GET /fail 500 x2"}) || r.Fat.ProbeFailure == "" || r.Verify != nil {
		t.Errorf("the fat run's probes %v, failure %q, verify %v", got, r.Fat.ProbeFailure, r.Verify != nil)
	}
	if d := time.Since(start); d > 2*time.Minute {
		t.Errorf("the failing build took %v", d)
	}

	for _, tc := range []struct {
		name  string
		args  []string
		probe string
	}{
		{"any status is an answer", nil, "GET /fail 500 x1"},
		{"failures allowed", []string{"--http-probe-fail-on-status-5xx", "--http-probe-retry-count", "2", "--http-probe-retry-wait", "500ms",
			"--no-http-probe-exit-on-failure"}, "GET /fail 500 x2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			state := filepath.Join(t.TempDir(), "state")
			args := append([]string{"profile", "--sensor", sensorBin, "--state-path", state, "--http-probe-cmd", "/fail"}, tc.args...)
			out, errs, code := runCLI(t, append(args, src)...)
			if code != 0 {
				t.Fatalf("exit %d: %s %s", code, out, errs)
			}
			o := profileReport(t, state)
			if got := probeSummary(o.Probes); !slices.Equal(got, []string{tc.probe}) || o.ProbeFailure != "" {
				t.Errorf("probes %v, failure %q", got, o.ProbeFailure)
			}
		})
	}
}
