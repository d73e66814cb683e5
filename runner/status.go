package runner

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Status is what an observation is doing or waiting for, for Plan.Status: the sandbox started, what it waits
// for ("waiting for the app on :8080 (4s)"), each probe's answer as it comes, each exec probe, host command,
// HEALTHCHECK run and crawl round, the continue-after wait, the app's stop.
type Status struct {
	// Message is one line for people. It quotes the user's probes and commands and the app (a probe's
	// error, a path): escape it before it reaches a terminal.
	Message string `json:"message"`
	// Waiting says Message is what the observation now waits for: it is sent again every few seconds with
	// the time so far, until the next Status supersedes it. Otherwise Message is something that happened.
	// A waiting Message, and only such a Message, begins "waiting ", so that what reads messages alone (a
	// progress event's) can tell the two apart.
	Waiting bool `json:"waiting,omitempty"`
	// Probe is the HTTP probe's result when Message reports one.
	Probe *ProbeResult `json:"probe,omitempty"`
}

// statusEvery is how often a wait is reported again.
const statusEvery = 2 * time.Second

// status sends Statuses to Plan.Status, one at a time (probes answer concurrently); nil or with a nil
// func, it sends nothing.
type status struct {
	mu sync.Mutex
	fn func(Status)
}

func newStatus(fn func(Status)) *status { return &status{fn: fn} }

func (s *status) send(st Status) {
	if s == nil || s.fn == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fn(st)
}

// say reports something that happened.
func (s *status) say(format string, args ...any) {
	s.send(Status{Message: fmt.Sprintf(format, args...)})
}

// probe reports a probe's result.
func (s *status) probe(r ProbeResult) {
	s.send(Status{Message: r.String(), Probe: &r})
}

// wait reports "waiting "+what as what the observation waits for, now and every statusEvery with the time
// so far, until stop is called (stop waits until nothing more is sent).
func (s *status) wait(what string) (stop func()) {
	if s == nil || s.fn == nil {
		return func() {}
	}
	msg := "waiting " + what
	s.send(Status{Message: msg, Waiting: true})
	start := time.Now()
	done, quit := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(statusEvery)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				s.send(Status{Message: fmt.Sprintf("%s (%s)", msg, time.Since(start).Round(time.Second)), Waiting: true})
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(quit); <-done }) }
}

// String is the probe's outcome on one line, as slimoci's summary prints it: "probe GET :8080/: http 200,
// 512 bytes", or its error.
func (r ProbeResult) String() string {
	status := r.Error
	if r.OK() {
		status = fmt.Sprintf("%s %d, %d bytes", r.Proto, r.Status, r.Size)
	}
	return fmt.Sprintf("probe %s :%d%s: %s", r.Method, r.Port, r.Path, status)
}

// String is the exec probe's outcome on one line: "exec ls /: exit 0, 52 bytes of output", or its error.
func (r ExecResult) String() string {
	status := fmt.Sprintf("exit %d, %d bytes of output", r.ExitCode, r.OutputSize)
	if r.Error != "" {
		status = r.Error
	}
	return fmt.Sprintf("exec %s: %s", strings.Join(r.Args, " "), status)
}

// String is the host command's outcome on one line: "host-exec curl ...: exit 0, 10 bytes of output,
// 0.3s", or its error.
func (r HostExecResult) String() string {
	status := fmt.Sprintf("exit %d, %d bytes of output, %.1fs", r.ExitCode, r.OutputSize, r.Duration.Seconds())
	if r.Error != "" {
		status = r.Error
	}
	return fmt.Sprintf("host-exec %s: %s", r.Command, status)
}

// signalName is SIGTERM for syscall.SIGTERM; a signal that is not a syscall.Signal by its String.
func signalName(sig os.Signal) string {
	if n, ok := sig.(syscall.Signal); ok {
		if name := unix.SignalName(n); name != "" {
			return name
		}
	}
	return sig.String()
}

// portList is ":8080, :9000".
func portList(ports []int) string {
	var b strings.Builder
	for i, p := range ports {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, ":%d", p)
	}
	return b.String()
}
