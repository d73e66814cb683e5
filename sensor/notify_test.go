package sensor_test

import (
	"os"
	"strings"
	"testing"

	"github.com/slimoci/slimoci/internal/testbed"
	"github.com/slimoci/slimoci/sensor"
)

// The test binary is the notify backend's helper too (trace_test.go makes it the ptrace one's).
func init() {
	if len(os.Args) > 1 && os.Args[1] == sensor.NotifyHelperArg {
		if err := sensor.NotifyHelper(os.Args[1:]); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(127)
		}
	}
}

// backendWorkload touches files every way the record tells apart: opened, stat'ed, missing, made and
// removed, through a symlinked directory, relative to the cwd, a failed PATH search, a child and its own
// child, a background process that outlives the shell, and an exit code.
func backendWorkload(dir string) []string {
	return []string{"sh", "-c", "cat /etc/hostname >/dev/null; ls /nonexistent-slimoci 2>/dev/null; cd /etc && cat ./os-release >/dev/null; " +
		"cd " + dir + "/link && mkdir made && ln -s made ln && rm ln && rmdir made; cd /nowhere-slimoci 2>/dev/null; " +
		"no-such-program-slimoci 2>/dev/null; sh -c 'test -e /etc/passwd && readlink /proc/self/exe >/dev/null'; " +
		"(sleep 0.2; stat " + dir + "/real >/dev/null) & exit 7"}
}

// The notify backend records what the ptrace one does, in both modes.
func TestNotifySameRecordAsPtrace(t *testing.T) {
	sensor.SkipWithoutPtrace(t)
	if !sensor.NotifySupported() {
		t.Skip("the kernel has no seccomp user notification with CONTINUE (Linux 5.5)")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	os.Mkdir(dir+"/real", 0o755)
	os.Symlink("real", dir+"/link")
	for _, all := range []bool{false, true} {
		o := sensor.TraceOptions{Helper: self, AllSyscalls: all, Env: []string{"PATH=/usr/bin:/bin"}}
		p, err := sensor.Trace(backendWorkload(dir), o)
		if err != nil {
			t.Fatal(err)
		}
		n, err := sensor.TraceNotify(backendWorkload(dir), o)
		if err != nil {
			t.Fatal(err)
		}
		// Not two empty records: the workload's files, its programs, every syscall in all mode.
		if n.ExitCode != 7 || len(n.Files[dir+"/real/made"]) == 0 || len(n.Execs) < 6 || all && n.Syscalls["vfork"]+n.Syscalls["clone"] == 0 {
			t.Fatalf("all=%v: notify recorded %d files, %d execs, exit code %d, syscalls %v", all, len(n.Files), len(n.Execs), n.ExitCode, n.Syscalls)
		}
		// futex and sched_yield are made only when a lock is contended, which is timing: the slower ptrace
		// run made a futex call once in CI where the notify run made none.
		if diffs := testbed.RecordDiff(p, n, nil, []string{"futex", "sched_yield"}); len(diffs) > 0 {
			t.Errorf("all=%v: ptrace and notify records differ:\n%s", all, strings.Join(diffs, "\n"))
		}
	}
}
