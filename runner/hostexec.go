package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Host commands (--host-exec): shell lines the user runs on the host while the app runs, as the user running
// slimoci and not sandboxed (they are the user's own test suite, or a client for a service that does not
// speak HTTP), with the app's ports reachable on the host's loopback.

// DefaultHostExecTimeout is how long a host command may run, as mint's.
const DefaultHostExecTimeout = 200 * time.Second

// HostExecOutputTail is how much of a host command's output its result keeps.
const HostExecOutputTail = 4 << 10

// The environment variables a host command finds the app's ports in.
const (
	// HostExecPortVar + "8080" is the host address the app's port 8080 is reachable at ("127.0.0.1:41234").
	HostExecPortVar = "SLIMOCI_PORT_"
	// HostExecAddrVar is the first port's address.
	HostExecAddrVar = "SLIMOCI_ADDR"
)

// HostExecResult is what one host command did.
type HostExecResult struct {
	Command  string `json:"command"`
	ExitCode int    `json:"exitCode"`
	// Output is the tail of what it wrote (stdout and stderr as they came), at most HostExecOutputTail bytes;
	// OutputSize counts all of it.
	Output     string        `json:"output,omitempty"`
	OutputSize int64         `json:"outputSize"`
	Duration   time.Duration `json:"durationNs"`
	// Error says why it did not run or did not end by itself (timed out, killed, the app had exited).
	Error string `json:"error,omitempty"`
}

// OK reports whether the command ran and exited 0.
func (r HostExecResult) OK() bool { return r.Error == "" && r.ExitCode == 0 }

// hostExecError fails an observation with a failed host command, as a failed probe fails it: the user's own
// test of the app failed, so the run did not exercise it as intended.
func (o *Observation) hostExecError() error {
	for _, r := range o.HostExecs {
		if r.OK() {
			continue
		}
		why := r.Error
		if why == "" {
			why = fmt.Sprintf("exit %d", r.ExitCode)
		}
		if last := lastOutputLine(r.Output); last != "" {
			why += ": " + last
		}
		return fmt.Errorf("host command %q failed (%s); a failed --host-exec fails the observation as a failed probe does (its output is in report.json)", r.Command, why)
	}
	return nil
}

// HostExecDiff lists how slim's host commands differ from fat's: each one's exit code (verify).
func HostExecDiff(fat, slim *Observation) []string {
	var out []string
	for i, f := range fat.HostExecs {
		got := "not run"
		if i < len(slim.HostExecs) {
			s := slim.HostExecs[i]
			if s.ExitCode == f.ExitCode && s.Error == f.Error {
				continue
			}
			got = fmt.Sprintf("exit %d", s.ExitCode)
			if s.Error != "" {
				got = s.Error
			}
			if last := lastOutputLine(s.Output); last != "" {
				got += ": " + last
			}
		}
		out = append(out, fmt.Sprintf("host command %q: %s, the fat image gave exit %d", f.Command, got, f.ExitCode))
	}
	return out
}

func lastOutputLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return s
}

// hostExecAddrs says where each of the app's ports is reachable from the host: with the host's network, at
// 127.0.0.1 on the port itself; else at the address --publish-port relays to it, or, for a port not
// published, at a free loopback port to be relayed (returned in missing; its HostAddr is filled in once it is
// bound). Ports are taken in order, each once.
func hostExecAddrs(ports []int, hostNetwork bool, published []PublishedPort) (addrs []PublishedPort, missing []PortMapping) {
	seen := map[int]bool{}
	for _, p := range ports {
		if seen[p] {
			continue
		}
		seen[p] = true
		a := PublishedPort{Port: p}
		switch i := slices.IndexFunc(published, func(pp PublishedPort) bool { return pp.Port == p }); {
		case hostNetwork:
			a.HostAddr = "127.0.0.1:" + strconv.Itoa(p)
		case i >= 0:
			a.HostAddr = published[i].HostAddr
		default:
			missing = append(missing, PortMapping{HostIP: "127.0.0.1", Port: p})
		}
		addrs = append(addrs, a)
	}
	return addrs, missing
}

// hostExecEnv is a host command's environment: base (slimoci's own) without the SLIMOCI_PORT_* and
// SLIMOCI_ADDR it may have had, then SLIMOCI_PORT_<port>=<host address> for each of addrs and SLIMOCI_ADDR,
// the first one's address (unset when the app has no port).
func hostExecEnv(base []string, addrs []PublishedPort) []string {
	env := slices.DeleteFunc(slices.Clone(base), func(kv string) bool {
		name, _, _ := strings.Cut(kv, "=")
		return name == HostExecAddrVar || strings.HasPrefix(name, HostExecPortVar)
	})
	for _, a := range addrs {
		env = append(env, HostExecPortVar+strconv.Itoa(a.Port)+"="+a.HostAddr)
	}
	if len(addrs) > 0 {
		env = append(env, HostExecAddrVar+"="+addrs[0].HostAddr)
	}
	return env
}

// hostExecStep runs plan's host commands in order, with the app's ports (plan.HostExecPorts) published on the
// host's loopback through the sensor's relay where the sandbox has its own network (unless --publish-port
// already relays them), once one of them takes connections (waitForPort); those relays close when stop is
// called. A command that cannot run because the
// observation's time is over or the app has exited is recorded as failed: the user's test did not run.
func (s *Sandbox) hostExecStep(ctx context.Context, plan Plan, obs *Observation) (stop func(), err error) {
	stop = func() {}
	if len(plan.HostExec) == 0 {
		return stop, nil
	}
	addrs, missing := hostExecAddrs(plan.HostExecPorts, s.spec.HostNetwork, obs.Published)
	if len(missing) > 0 {
		bound, stopRelay, err := s.publish(ctx, missing)
		if err != nil {
			return stop, fmt.Errorf("publishing the app's ports for --host-exec: %w", err)
		}
		stop = stopRelay
		for _, b := range bound {
			for i := range addrs {
				if addrs[i].Port == b.Port {
					addrs[i].HostAddr = b.HostAddr
				}
			}
		}
	}
	if len(addrs) > 0 && !s.Exited() {
		done := s.status.wait("for the app on " + portList(plan.HostExecPorts) + " before the host commands")
		s.waitForPort(ctx, plan.HostExecPorts, plan.ProbeTimeout)
		done()
	}
	obs.HostExecPorts = addrs
	base := plan.HostExecEnv
	if base == nil {
		base = os.Environ()
	}
	env := hostExecEnv(base, addrs)
	timeout := plan.HostExecTimeout
	if timeout <= 0 {
		timeout = DefaultHostExecTimeout
	}
	for _, line := range plan.HostExec {
		switch {
		case ctx.Err() != nil:
			obs.HostExecs = append(obs.HostExecs, HostExecResult{Command: line, ExitCode: -1, Error: "not run: the observation's time (--timeout) was over"})
		case s.Exited():
			obs.HostExecs = append(obs.HostExecs, HostExecResult{Command: line, ExitCode: -1, Error: "not run: the app had exited"})
		default:
			done := s.status.wait("for the host command " + line)
			obs.HostExecs = append(obs.HostExecs, runHostCommand(ctx, line, env, timeout, plan.ExecOutput))
			done()
		}
		s.status.say("%s", obs.HostExecs[len(obs.HostExecs)-1])
	}
	return stop, nil
}

// waitForPort waits until one of ports takes a connection in the sandbox, the app exits, ctx ends or timeout
// (0: a minute) is over: the host commands may come before the HTTP probes (host-exec&probe), and a
// client must not race the app's start. What then fails is the command's to say.
func (s *Sandbox) waitForPort(ctx context.Context, ports []int, timeout time.Duration) {
	if timeout <= 0 {
		timeout = time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		for _, p := range ports {
			dctx, dcancel := context.WithTimeout(ctx, time.Second)
			c, err := s.Dial(dctx, "tcp", "127.0.0.1:"+strconv.Itoa(p))
			dcancel()
			if err == nil {
				c.Close()
				return
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-s.done:
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// runHostCommand runs line with /bin/sh -c on the host, in env, from slimoci's working directory, with no
// input, its output to out and into the result's tail. It runs in a process group of its own, which is killed
// when the shell ends (what it left running in the background), when timeout or ctx ends, and, by the
// kernel, should slimoci die (the shell's parent-death signal).
func runHostCommand(ctx context.Context, line string, env []string, timeout time.Duration, out io.Writer) HostExecResult {
	res := HostExecResult{Command: line, ExitCode: -1}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tail := &tailWriter{max: HostExecOutputTail}
	w := io.MultiWriter(tail, orDiscard(out))
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", line)
	cmd.Env = env
	// One writer for both: exec shares one pipe, so the tail keeps their order.
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = hostExecAttr()
	cmd.Cancel = func() error { return killGroup(cmd.Process.Pid) }
	// A background process that keeps the output pipe open must not hold the command's end.
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	// The parent-death signal follows the thread that started the shell: the thread stays this goroutine's
	// (and alive) until the shell is waited for.
	runtime.LockOSThread()
	err := cmd.Start()
	if err == nil {
		err = cmd.Wait()
		killGroup(cmd.Process.Pid)
	}
	runtime.UnlockOSThread()
	res.Duration = time.Since(start)
	res.Output, res.OutputSize = tail.String(), tail.n
	var exit *exec.ExitError
	switch {
	case cmd.ProcessState == nil:
		res.Error = fmt.Sprintf("starting /bin/sh: %v", err)
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		res.Error = fmt.Sprintf("timed out after %s (--host-exec-timeout)", timeout)
	case ctx.Err() != nil:
		res.Error = ctx.Err().Error()
	case errors.As(err, &exit) && exit.ExitCode() < 0:
		res.Error = "killed by " + exit.String()
	case err != nil && !errors.As(err, &exit):
		// exec.ErrWaitDelay: the shell exited, something it started held its output open.
		res.ExitCode = cmd.ProcessState.ExitCode()
		res.Error = err.Error()
	default:
		res.ExitCode = cmd.ProcessState.ExitCode()
	}
	return res
}

// tailWriter keeps the last max bytes written and counts them all.
type tailWriter struct {
	mu  sync.Mutex
	max int
	buf []byte
	n   int64
}

func (t *tailWriter) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.n += int64(len(p))
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailWriter) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
