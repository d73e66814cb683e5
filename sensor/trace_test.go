package sensor

import (
	"os"
	"slices"
	"strings"
	"testing"
)

// The test binary is its own exec helper, as the sensor binary is in the sandbox.
func init() {
	if len(os.Args) > 1 && os.Args[1] == ExecHelperArg {
		if err := ExecHelper(os.Args[1:]); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(127)
		}
	}
}

func TestTrace(t *testing.T) {
	SkipWithoutPtrace(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	os.Mkdir(dir+"/real", 0o755)
	os.Symlink("real", dir+"/link")
	for _, all := range []bool{false, true} {
		rec, err := Trace([]string{"sh", "-c", "cat /etc/hostname >/dev/null; ls /nonexistent-slimoci 2>/dev/null; cd /etc && cat ./os-release >/dev/null; " +
			"cd " + dir + "/link && mkdir made && rmdir made; cd /nowhere-slimoci 2>/dev/null; exit 7"},
			TraceOptions{Helper: self, AllSyscalls: all, Env: []string{"PATH=/usr/bin:/bin"}})
		if err != nil {
			t.Fatal(err)
		}
		if rec.ExitCode != 7 {
			t.Fatalf("exit code %d", rec.ExitCode)
		}
		for p, op := range map[string]string{"/etc/hostname": "open", "/nonexistent-slimoci": "", "/etc/os-release": "open",
			dir + "/link": "chdir", dir + "/real/made": "mkdir", "/nowhere-slimoci": "chdir"} {
			ops, ok := rec.Files[p]
			if !ok || (op != "" && !slices.Contains(ops, op)) {
				t.Errorf("all=%v: %s recorded as %v, want %q", all, p, ops, op)
			}
		}
		if !slices.Contains(rec.Files["/nowhere-slimoci"], "missing") || !slices.Contains(rec.Files[dir+"/link"], "link") ||
			!slices.Contains(rec.Files[dir+"/real/made"], "rmdir") {
			t.Errorf("all=%v: the failed chdir %v, the symlink %v, the directory made and removed %v", all,
				rec.Files["/nowhere-slimoci"], rec.Files[dir+"/link"], rec.Files[dir+"/real/made"])
		}
		var argvs []string
		for _, e := range rec.Execs {
			argvs = append(argvs, strings.Join(e.Argv, " "))
		}
		if !slices.Contains(argvs, "cat /etc/hostname") || !slices.Contains(argvs, "ls /nonexistent-slimoci") {
			t.Errorf("execs %v", argvs)
		}
		for p := range rec.Files {
			if p == self {
				t.Errorf("the sensor's own binary is in the record")
			}
		}
		if all {
			for _, sc := range []string{"execve", "openat", "exit_group", "write"} {
				if rec.Syscalls[sc] == 0 {
					t.Errorf("syscall %s not counted: %v", sc, rec.Syscalls)
				}
			}
		} else if rec.Syscalls != nil {
			t.Errorf("syscalls counted without AllSyscalls")
		}
	}
}

// A program that is not on PATH is recorded as looked up and missing there (what verify adds back to a slim
// image that lost it), and the app's exit is 127.
func TestTraceMissingProgram(t *testing.T) {
	SkipWithoutPtrace(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	rec, err := Trace([]string{"no-such-program-slimoci"}, TraceOptions{Helper: self, Env: []string{"PATH=" + dir + ":/bin"}})
	if err != nil {
		t.Fatal(err)
	}
	if rec.ExitCode != 127 {
		t.Errorf("exit code %d, want 127", rec.ExitCode)
	}
	for _, p := range []string{dir + "/no-such-program-slimoci", "/bin/no-such-program-slimoci"} {
		if !slices.Contains(rec.Files[p], "missing") {
			t.Errorf("%s recorded as %v, want missing", p, rec.Files[p])
		}
	}
}

// Syscall numbers the tables do not name are counted under one key: an app cannot grow the record's map a
// number at a time.
func TestUnknownSyscallsOneKey(t *testing.T) {
	tr := &tracer{rec: &Record{Files: map[string][]string{}, Syscalls: map[string]int{}}, all: true}
	for nr := uint32(1000); nr < 1100; nr++ {
		tr.onSyscall(syscallStop{arch: arches[0].audit, nr: nr})
		tr.onSyscall(syscallStop{arch: 0x1234, nr: nr})
	}
	if len(tr.rec.Syscalls) != 2 || tr.rec.Syscalls["syscall_unknown"] != 100 {
		t.Errorf("syscalls %v", tr.rec.Syscalls)
	}
}
