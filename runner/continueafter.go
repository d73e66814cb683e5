package runner

import (
	"bufio"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Continue-after modes, as docker-slim's and mint's --continue-after: what the observation does, in which
// order, and when it ends and the app is asked to stop. probe, exec and host-exec are steps that exercise
// the app; the others wait.
const (
	// AfterProbe ends once every probe is done.
	AfterProbe = "probe"
	// AfterExec ends once the exec probes are done (HTTP probes run first).
	AfterExec = "exec"
	// AfterHostExec ends once the host commands are done (HTTP and exec probes run first).
	AfterHostExec = "host-exec"
	// AfterAppExit waits for the app to exit by itself (a command-style image).
	AfterAppExit = "app-exit"
	// AfterEnter waits for a line on Plan.Enter (the user pressing Enter).
	AfterEnter = "enter"
	// AfterSignal waits for a value on Plan.Signal (slimoci receiving SIGUSR1).
	AfterSignal = "signal"
	// AfterTimeout waits Plan.Timeout.
	AfterTimeout = "timeout"
)

// ParseContinueAfter checks a --continue-after value: a mode above or a number of seconds, or several joined
// by & as mint's (probe&exec, host-exec&probe, exec&enter, ...), done in the order given. Each mode may come
// once; app-exit and timeout only last (nothing can follow them: the app is gone, or the observation's
// time is over). mint's container-probe (a probe container from a Compose file) is refused. See Plan.ContinueAfter.
func ParseContinueAfter(s string) error {
	_, err := continueModes(s)
	return err
}

// continueModes splits a --continue-after value into its modes and checks them.
func continueModes(s string) ([]string, error) {
	if s == "" {
		return nil, nil
	}
	modes := strings.Split(s, "&")
	for i, m := range modes {
		switch m {
		case AfterProbe, AfterExec, AfterHostExec, AfterEnter, AfterSignal:
		case AfterAppExit, AfterTimeout:
			if i != len(modes)-1 {
				return nil, fmt.Errorf("--continue-after %q: %s must come last (nothing can follow it: %s)", s, m, map[string]string{
					AfterAppExit: "the app has exited", AfterTimeout: "the observation's time is over"}[m])
			}
		case "container-probe":
			return nil, fmt.Errorf("--continue-after %q: container-probe is mint's probe container from a Compose file, which slimoci does not run (a client on the host is --host-exec)", s)
		case "":
			return nil, fmt.Errorf("--continue-after %q: an empty mode (modes are joined by a single &)", s)
		default:
			if n, err := strconv.Atoi(m); err != nil || n <= 0 {
				return nil, fmt.Errorf("--continue-after %q: %q is not a mode: want probe, exec, host-exec, app-exit, enter, signal, timeout or a number of seconds, alone or joined by & (probe&exec)", s, m)
			}
		}
		if slices.Contains(modes[:i], m) {
			return nil, fmt.Errorf("--continue-after %q: %s twice", s, m)
		}
	}
	return modes, nil
}

func isStep(m string) bool { return m == AfterProbe || m == AfterExec || m == AfterHostExec }

// continueSteps is the observation's sequence for modes: the modes in order, with the steps they do not name
// added in slimoci's order (HTTP probes, exec probes, host commands), also for a single mode: the HTTP probes
// first (mint sends them from the start), each other step right after the one before it in that order. So
// enter is probe, exec, host-exec, enter; host-exec&probe is host-exec, probe, exec; enter&host-exec is
// probe, exec, enter, host-exec. A step with nothing to do is done at once.
func continueSteps(modes []string) []string {
	steps := slices.Clone(modes)
	order := []string{AfterProbe, AfterExec, AfterHostExec}
	for i, m := range order {
		if slices.Contains(steps, m) {
			continue
		}
		at := 0
		if i > 0 {
			at = slices.Index(steps, order[i-1]) + 1
		}
		steps = slices.Insert(steps, at, m)
	}
	return steps
}

// continuedAfter says what ended an observation run by modes: the value as given, a number of seconds as a
// duration (30s).
func continuedAfter(modes []string) string {
	out := slices.Clone(modes)
	for i, m := range out {
		if n, err := strconv.Atoi(m); err == nil {
			out[i] = (time.Duration(n) * time.Second).String()
		}
	}
	return strings.Join(out, "&")
}

// waitFor waits as a waiting mode says (enter, signal, app-exit, timeout, a number of seconds), or until the
// app exits; it reports whether octx, the observation's time, ended the wait.
func (s *Sandbox) waitFor(octx context.Context, mode string, plan Plan) (timedOut bool) {
	defer s.status.wait(waitMessage(mode, plan))()
	var ch <-chan struct{}
	switch mode {
	case AfterAppExit, AfterTimeout:
	case AfterEnter:
		c := make(chan struct{})
		if plan.Enter != nil {
			go func() { bufio.NewReader(plan.Enter).ReadString('\n'); close(c) }()
		}
		ch = c
	case AfterSignal:
		c := make(chan struct{})
		go func() {
			select {
			case <-plan.Signal:
				close(c)
			case <-s.done:
			}
		}()
		ch = c
	default:
		n, _ := strconv.Atoi(mode)
		t := time.NewTimer(time.Duration(n) * time.Second)
		defer t.Stop()
		select {
		case <-t.C:
			return false
		case <-s.done:
			return false
		case <-octx.Done():
			return true
		}
	}
	select {
	case <-ch:
	case <-s.done:
	case <-octx.Done():
		return true
	}
	return false
}

// waitMessage says what waitFor waits for, for Plan.Status (after "waiting ").
func waitMessage(mode string, plan Plan) string {
	switch mode {
	case AfterAppExit:
		return "for the app to exit (--continue-after app-exit)"
	case AfterTimeout:
		return fmt.Sprintf("for the observation's time to end (--continue-after timeout, %s)", plan.Timeout)
	case AfterEnter:
		return "for Enter (--continue-after enter)"
	case AfterSignal:
		return "for a signal (--continue-after signal)"
	}
	n, _ := strconv.Atoi(mode)
	return fmt.Sprintf("%s (--continue-after %s)", time.Duration(n)*time.Second, mode)
}
