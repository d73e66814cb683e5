package runner

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// An observation says what it does and waits for as it goes: the sandbox's start, the wait for an app slow
// to listen (sent again with the time so far), the probe's answer as it comes, the exec probe, the
// continue-after wait and the stop, in that order.
func TestE2EObserveStatus(t *testing.T) {
	tree := unpackedTree(t, "python")
	sensorBin := buildSensor(t)
	cfg := tree.Config.Config
	app := strings.Join(append(append([]string(nil), cfg.Entrypoint...), cfg.Cmd...), " ")
	state := filepath.Join(t.TempDir(), "sandbox")
	var mu sync.Mutex
	var got []Status
	var out syncBuffer
	obs, err := Observe(context.Background(), tree.Dir, Spec{
		// Listening only after 3 s: the wait for it is reported, and again with the time so far.
		Args: []string{"/bin/sh", "-c", "sleep 3; exec " + app}, Env: cfg.Env, Cwd: cfg.WorkingDir,
		Stdout: &out, Stderr: &out, Sensor: sensorBin,
	}, Plan{
		HTTP: []HTTPCommand{{Method: "GET", Resource: "/"}}, Ports: []int{8080}, ProbeTimeout: 60 * time.Second,
		Exec: [][]string{{"python3", "-c", "print(1)"}}, ContinueAfter: "probe&exec&1",
		Status: func(s Status) {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, s)
		},
	}, &Options{StateDir: state, WorkRoot: filepath.Dir(filepath.Dir(state))})
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if len(obs.Probes) != 1 || obs.Probes[0].Status != 200 {
		t.Fatalf("probes %+v\n%s", obs.Probes, out.String())
	}
	mu.Lock()
	defer mu.Unlock()
	var lines []string
	for _, s := range got {
		lines = append(lines, s.Message)
	}
	all := strings.Join(lines, "\n")
	// Each wanted status, in order, with whether it is a wait.
	want := []struct {
		prefix  string
		waiting bool
	}{
		{"sandbox started", false},
		{"waiting for the app on :8080", true},
		{"waiting for the app on :8080 (2s)", true},
		{"probe GET :8080/: http 200, ", false},
		{"waiting for the exec probe python3 -c print(1)", true},
		{"exec python3 -c print(1): exit 0, 2 bytes of output", false},
		{"waiting 1s (--continue-after 1)", true},
		{"waiting for the app to stop (SIGTERM, killed after 10s)", true},
		{"the app stopped, with ", false},
	}
	i := 0
	for _, s := range got {
		if s.Waiting != strings.HasPrefix(s.Message, "waiting ") {
			t.Errorf("%q: Waiting %v (a wait, and only a wait, says \"waiting \")", s.Message, s.Waiting)
		}
		if i < len(want) && strings.HasPrefix(s.Message, want[i].prefix) {
			if s.Waiting != want[i].waiting {
				t.Errorf("%q: Waiting %v", s.Message, s.Waiting)
			}
			if strings.HasPrefix(s.Message, "probe ") && (s.Probe == nil || s.Probe.Status != 200) {
				t.Errorf("%q carries probe %+v", s.Message, s.Probe)
			}
			i++
		}
	}
	if i < len(want) {
		t.Errorf("no status %q (in order) among:\n%s", want[i].prefix, all)
	}
}

// A wait is reported at once, as a wait, and nothing comes after its stop; with no hook nothing is sent.
func TestStatusWait(t *testing.T) {
	var got []Status
	s := newStatus(func(st Status) { got = append(got, st) })
	stop := s.wait("for the app on " + portList([]int{8080, 9000}))
	stop()
	stop()
	s.say("%s", ProbeResult{Port: 8080, Method: "GET", Path: "/", Proto: "http", Status: 200, Size: 3})
	want := []Status{
		{Message: "waiting for the app on :8080, :9000", Waiting: true},
		{Message: "probe GET :8080/: http 200, 3 bytes"},
	}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("statuses %+v, want %+v", got, want)
	}
	time.Sleep(10 * time.Millisecond)
	if len(got) != 2 {
		t.Errorf("sent after stop: %+v", got[2:])
	}
	var none *status
	none.say("x")
	none.wait("y")()
	newStatus(nil).probe(ProbeResult{})
}
