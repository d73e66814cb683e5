package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slimoci/slimoci/internal/testbed"
)

// linesClient is a user's client for the lines sample's line protocol (bash's /dev/tcp, on the host): one
// question, one answer, checked.
const linesClient = `#!/bin/bash
set -euo pipefail
addr=${SLIMOCI_PORT_7070:?}
exec 3<>"/dev/tcp/${addr%:*}/${addr##*:}"
echo 'HSV 0.2 0.4 0.4' >&3
read -r -t 10 answer <&3 || { echo "no answer from $addr"; exit 1; }
echo "answer: $answer"
[ "$answer" = '0.500 0.500 0.400' ]
`

// linesAnswer is what the client prints when the app answers right.
const linesAnswer = "answer: 0.500 0.500 0.400"

// The lines sample slimmed with a --host-exec client speaking its TCP line protocol (port 7070, beside the
// HTTP page that is probed): the client gets its answer in the fat run and in verify's, through the relay,
// and then from the slim image under podman. The protocol's code imports colorsys, which the HTTP part never
// does: slimmed without the client, the image lacks it and the same client gets no answer under podman.
func TestE2EHostExecLineProtocol(t *testing.T) {
	sensorBin := rootSandbox(t, "these builds use the root sandbox")
	ctx := context.Background()
	src := "oci:" + bed.Layout("lines") + ":latest"
	client := filepath.Join(t.TempDir(), "client.sh")
	if err := os.WriteFile(client, []byte(linesClient), 0o755); err != nil {
		t.Fatal(err)
	}
	const colorsys = "/usr/lib/python3.11/colorsys.py"
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"host-exec", []string{"--host-exec", "bash " + client,
			// Loopback only; the first port (--http-probe-ports' first) is SLIMOCI_ADDR.
			"--host-exec", `case $SLIMOCI_PORT_7070 in 127.0.0.1:*) test "$SLIMOCI_ADDR" = "$SLIMOCI_PORT_8080";; *) exit 1;; esac`}},
		{"without", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			state := filepath.Join(dir, "state")
			archive := filepath.Join(dir, "slim.tar")
			image := "localhost/slimoci-e2e/lines-" + tc.name + ":latest"
			args := append([]string{"build", "--sensor", sensorBin, "--state-path", state, "--http-probe-ports", "8080",
				"--output", "docker-archive:" + archive + ":" + image}, tc.args...)
			out, errs, code := runCLI(t, append(args, src)...)
			if code != 0 {
				t.Fatalf("exit %d: %s %s", code, out, errs)
			}
			r := buildReport(t, state)
			kept := keptPaths(t, state)
			if tc.args != nil {
				if !strings.Contains(out, "host-exec bash "+client+": exit 0") {
					t.Errorf("the summary:\n%s", out)
				}
				for name, obs := range map[string][]hostExecReport{"fat": hostExecsOf(t, r.Fat), "verify": hostExecsOf(t, r.Verify)} {
					if len(obs) != 2 || !strings.Contains(obs[0].Output, linesAnswer) || obs[0].ExitCode != 0 || obs[1].ExitCode != 0 {
						t.Errorf("%s run's host commands: %+v", name, obs)
					}
				}
				if len(kept[colorsys]) == 0 {
					t.Errorf("%s not kept", colorsys)
				}
			} else if kept[colorsys] != nil {
				t.Errorf("%s kept without the client, for %v", colorsys, kept[colorsys])
			}

			if _, err := testbed.Run(ctx, "podman", "load", "-i", archive); err != nil {
				t.Fatal(err)
			}
			defer testbed.Run(ctx, "podman", "rmi", "-f", image)
			name, _ := podmanServePort(t, image, "8080", "-p", "127.0.0.1::7070")
			port, err := testbed.Run(ctx, "podman", "port", name, "7070")
			if err != nil {
				t.Fatal(err)
			}
			cmd := exec.CommandContext(ctx, "bash", client)
			cmd.Env = append(os.Environ(), "SLIMOCI_PORT_7070="+strings.TrimSpace(string(port)))
			answer, err := cmd.CombinedOutput()
			if tc.args == nil {
				// The page answered (podmanServePort waited for it); the protocol lost colorsys.
				if err == nil || strings.Contains(string(answer), linesAnswer) {
					t.Fatalf("the image slimmed without the client answered it: %v: %s", err, answer)
				}
				return
			}
			if err != nil || !strings.Contains(string(answer), linesAnswer) {
				t.Fatalf("the client against the slim image under podman: %v: %s", err, answer)
			}
		})
	}
}

// The host commands of an unprivileged slimoci: the app in the rootless sandbox's own network, its ports
// relayed to the host's loopback by the sensor. mint's host-exec&probe runs the client first, before any
// probe has seen the app up: it waits for the app's port, and the protocol's colorsys is in the record; an
// --exec-file script's imports too.
func TestE2EHostExecRootless(t *testing.T) {
	needBed(t)
	if os.Geteuid() != 0 {
		t.Skip("the test runs slimoci as user 65534 and needs root to switch to it")
	}
	sensorBin := buildSensor(t)
	cmd, home := rootlessCLI(t, sensorBin, "profile", "--state-path", "state", "--http-probe-ports", "8080",
		"--continue-after", "host-exec&probe", "--host-exec", "bash client.sh", "--exec-file", "probe.sh", "oci:"+bed.Layout("lines")+":latest")
	if err := os.WriteFile(filepath.Join(home, "client.sh"), []byte(linesClient), 0o644); err != nil {
		t.Fatal(err)
	}
	// mint's --exec-file: one script, a loop over lines, run in the sandbox as an exec probe.
	probe := "set -e\nfor m in json csv; do\n  python3 -c \"import $m\"\ndone\n"
	if err := os.WriteFile(filepath.Join(home, "probe.sh"), []byte(probe), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "host-exec bash client.sh: exit 0") {
		t.Fatalf("%v: %s", err, out)
	}
	var report struct {
		Rootless       bool
		ContinuedAfter string
		Record         struct{ Files map[string][]string }
	}
	b, err := os.ReadFile(filepath.Join(home, "state", "report.json"))
	if err == nil {
		err = json.Unmarshal(b, &report)
	}
	if err != nil {
		t.Fatal(err)
	}
	h := hostExecsOf(t, json.RawMessage(b))
	if !report.Rootless || report.ContinuedAfter != "host-exec&probe" || len(h) != 1 || !strings.Contains(h[0].Output, linesAnswer) {
		t.Errorf("rootless %v, continued after %q, host commands %+v", report.Rootless, report.ContinuedAfter, h)
	}
	for _, p := range []string{"/usr/lib/python3.11/colorsys.py", "/usr/lib/python3.11/json/__init__.py", "/usr/lib/python3.11/csv.py"} {
		if len(report.Record.Files[p]) == 0 {
			t.Errorf("%s is not in the record", p)
		}
	}
	if !strings.Contains(string(out), "exec /bin/sh -c set -e") {
		t.Errorf("the exec file's probe: %s", out)
	}
	os.Remove(filepath.Join(home, "probe.sh"))
	rootlessLeftoversExcept(t, home, "client.sh")
}

// hostExecReport is a host command's result as report.json has it.
type hostExecReport struct {
	Command  string
	ExitCode int
	Output   string
	Error    string
	Duration time.Duration `json:"durationNs"`
}

// hostExecsOf reads an observation's host commands back from its JSON, as a user of report.json would.
func hostExecsOf(t *testing.T, obs any) []hostExecReport {
	t.Helper()
	b, err := json.Marshal(obs)
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		HostExec []hostExecReport `json:"hostExec"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r.HostExec
}
