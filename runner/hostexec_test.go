package runner

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestHostExecEnv(t *testing.T) {
	base := []string{"PATH=/usr/bin:/bin", "SLIMOCI_PORT_9999=127.0.0.1:1", "SLIMOCI_ADDR=stale", "SLIMOCI_PORTS=kept", "HOME=/root"}
	got := hostExecEnv(base, []PublishedPort{{Port: 8080, HostAddr: "127.0.0.1:41234"}, {Port: 7070, HostAddr: "[::1]:5000"}})
	want := []string{"PATH=/usr/bin:/bin", "SLIMOCI_PORTS=kept", "HOME=/root",
		"SLIMOCI_PORT_8080=127.0.0.1:41234", "SLIMOCI_PORT_7070=[::1]:5000", "SLIMOCI_ADDR=127.0.0.1:41234"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if base[1] != "SLIMOCI_PORT_9999=127.0.0.1:1" {
		t.Errorf("the base was changed: %q", base)
	}
	// No port: no SLIMOCI_ADDR, and none inherited either.
	if got := hostExecEnv(base, nil); strings.Contains(strings.Join(got, " "), "SLIMOCI_ADDR") || len(got) != 3 {
		t.Errorf("without ports: %q", got)
	}
}

func TestHostExecAddrs(t *testing.T) {
	pub := []PublishedPort{{Port: 8080, HostAddr: "127.0.0.1:18080"}}
	addrs, missing := hostExecAddrs([]int{8080, 7070, 8080, 9000}, false, pub)
	if len(addrs) != 3 || addrs[0] != (PublishedPort{8080, "127.0.0.1:18080"}) || addrs[1].Port != 7070 || addrs[1].HostAddr != "" || addrs[2].Port != 9000 {
		t.Errorf("addrs %+v", addrs)
	}
	// What --publish-port does not relay is bound on a free loopback port, never on another address.
	if len(missing) != 2 || missing[0] != (PortMapping{HostIP: "127.0.0.1", Port: 7070}) || missing[1] != (PortMapping{HostIP: "127.0.0.1", Port: 9000}) {
		t.Errorf("missing %+v", missing)
	}
	addrs, missing = hostExecAddrs([]int{7070, 8080}, true, nil)
	if len(missing) != 0 || addrs[0].HostAddr != "127.0.0.1:7070" || addrs[1].HostAddr != "127.0.0.1:8080" {
		t.Errorf("host network: %+v %+v", addrs, missing)
	}
}

// Host commands run through the real /bin/sh, as slimoci runs them.
func TestRunHostCommand(t *testing.T) {
	ctx := context.Background()
	env := hostExecEnv([]string{"PATH=" + os.Getenv("PATH")}, []PublishedPort{{Port: 8080, HostAddr: "127.0.0.1:4321"}})
	var out syncBuffer
	r := runHostCommand(ctx, `echo "addr $SLIMOCI_ADDR port $SLIMOCI_PORT_8080"; echo oops >&2; exit 3`, env, time.Minute, &out)
	if r.ExitCode != 3 || r.Error != "" || r.OK() || r.Output != "addr 127.0.0.1:4321 port 127.0.0.1:4321\noops\n" || r.OutputSize != int64(len(r.Output)) {
		t.Errorf("%+v", r)
	}
	if out.String() != r.Output {
		t.Errorf("streamed %q", out.String())
	}
	if r := runHostCommand(ctx, "true", env, time.Minute, nil); !r.OK() || r.ExitCode != 0 {
		t.Errorf("true: %+v", r)
	}

	// The tail keeps the end of a long output and counts all of it.
	r = runHostCommand(ctx, `head -c 10000 /dev/zero | tr '\0' a; echo END`, env, time.Minute, nil)
	if r.OutputSize != 10004 || len(r.Output) != HostExecOutputTail || !strings.HasSuffix(r.Output, "aaaEND\n") {
		t.Errorf("size %d, tail of %d ending %q", r.OutputSize, len(r.Output), r.Output[max(0, len(r.Output)-10):])
	}

	// A timeout kills the whole process group, background children too; so does the shell's end.
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	start := time.Now()
	r = runHostCommand(ctx, "sleep 300 & echo $! > "+pidFile+"; wait", env, 500*time.Millisecond, nil)
	if !strings.Contains(r.Error, "timed out after 500ms (--host-exec-timeout)") || r.OK() || time.Since(start) > 20*time.Second {
		t.Errorf("timeout: %+v after %s", r, time.Since(start))
	}
	gone(t, pidFile)
	pidFile2 := filepath.Join(dir, "pid2")
	r = runHostCommand(ctx, "sleep 300 >/dev/null 2>&1 & echo $! > "+pidFile2, env, time.Minute, nil)
	if !r.OK() {
		t.Errorf("background: %+v", r)
	}
	gone(t, pidFile2)

	if r := runHostCommand(ctx, "kill -9 $$", env, time.Minute, nil); r.Error != "killed by signal: killed" || r.ExitCode != -1 {
		t.Errorf("killed: %+v", r)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if r := runHostCommand(cctx, "true", env, time.Minute, nil); r.OK() {
		t.Errorf("after the observation's end: %+v", r)
	}
}

// gone waits for the process whose pid is in file to be gone (killed and reaped by its new parent).
func gone(t *testing.T, file string) {
	t.Helper()
	b, err := os.ReadFile(file)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		t.Fatalf("pid file: %q %v", b, err)
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil || strings.Contains(string(stat), ") Z ") {
			return
		}
	}
	syscall.Kill(pid, syscall.SIGKILL)
	t.Errorf("process %d outlived its host command", pid)
}

func TestHostExecVerdicts(t *testing.T) {
	ok := HostExecResult{Command: "make test", ExitCode: 0}
	failed := HostExecResult{Command: "make test", ExitCode: 2, Output: "ok 1\nFAIL: TestCache\n"}
	timedOut := HostExecResult{Command: "make test", ExitCode: -1, Error: "timed out after 1s (--host-exec-timeout)"}

	if err := (&Observation{HostExecs: []HostExecResult{ok}}).ProbeError(); err != nil {
		t.Errorf("ok: %v", err)
	}
	// One failed command fails the observation, even when every other probe answered.
	obs := &Observation{Probes: []ProbeResult{{Status: 200}}, HostExecs: []HostExecResult{ok, failed}}
	if err := obs.ProbeError(); err == nil || !strings.Contains(err.Error(), `"make test" failed (exit 2: FAIL: TestCache)`) {
		t.Errorf("failed: %v", err)
	}
	if err := (&Observation{HostExecs: []HostExecResult{timedOut}}).ProbeError(); err == nil || !strings.Contains(err.Error(), "timed out after 1s") {
		t.Errorf("timed out: %v", err)
	}
	if ok, total := obs.ProbesOK(); ok != 2 || total != 3 {
		t.Errorf("ProbesOK %d/%d", ok, total)
	}

	fat := &Observation{HostExecs: []HostExecResult{ok, ok}}
	if d := HostExecDiff(fat, fat); len(d) != 0 {
		t.Errorf("same: %q", d)
	}
	d := HostExecDiff(fat, &Observation{HostExecs: []HostExecResult{failed}})
	if len(d) != 2 || d[0] != `host command "make test": exit 2: FAIL: TestCache, the fat image gave exit 0` || !strings.Contains(d[1], "not run") {
		t.Errorf("diff %q", d)
	}
}

// A host command does not outlive slimoci killed with SIGKILL: this test runs itself as the "slimoci"
// whose host command is a shell, kills it, and the shell is gone (its parent-death signal).
func TestHostCommandDiesWithSlimoci(t *testing.T) {
	if pidFile := os.Getenv("SLIMOCI_HOSTEXEC_CHILD"); pidFile != "" {
		runHostCommand(context.Background(), "echo $$ > "+pidFile+"; while :; do sleep 1; done", nil, time.Minute, nil)
		return
	}
	pidFile := filepath.Join(t.TempDir(), "pid")
	cmd := exec.Command(os.Args[0], "-test.run", "^TestHostCommandDiesWithSlimoci$")
	cmd.Env = append(os.Environ(), "SLIMOCI_HOSTEXEC_CHILD="+pidFile)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if b, _ := os.ReadFile(pidFile); strings.HasSuffix(string(b), "\n") {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("the host command did not start")
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	gone(t, pidFile)
}
