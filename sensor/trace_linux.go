package sensor

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// ExecHelperArg makes the sensor binary install the trace filter on itself and exec the app: the filter must
// be installed after the tracer attached, and before the app's first instruction.
const ExecHelperArg = "__slimoci_exec"

// Record is what the sensor saw the app and every process it started do.
type Record struct {
	// Files maps each path the processes named (made absolute, not resolved: a symlink is recorded under the
	// name used) to how it was used: the op of each syscall that named it ("open", "exec", "stat", "chdir",
	// "mkdir", "rename", "rename-to", "unlink", "bind", ...: see pathCallsAMD64 for them all), and the paths the
	// sensor derived from those once the app stopped: "link", "resolved", "interp", "missing" (see complete).
	Files map[string][]string `json:"files"`
	// Execs are the programs started, in order.
	Execs []Exec `json:"execs"`
	// Syscalls counts the system calls made, by name, when every syscall was traced.
	Syscalls map[string]int `json:"syscalls,omitempty"`
	// ExitCode is the app's (128+N when killed by signal N).
	ExitCode int `json:"exitCode"`
	// Dropped counts the paths and execs not recorded because the record was full (see MaxFiles): a record
	// with Dropped > 0 is incomplete.
	Dropped int `json:"dropped,omitempty"`
	// pathBytes counts the bytes of the recorded paths, traced and derived (bounded by MaxPathBytes).
	pathBytes int
}

// The record's bounds: an app cannot make the sensor, or slimoci reading the record, grow without bound.
const (
	// MaxFiles is the most distinct paths recorded (the largest sample, ruby, names 2,200).
	MaxFiles = 200_000
	// MaxPathBytes bounds the bytes of all recorded paths together.
	MaxPathBytes = 32 << 20
	// MaxExecs is the most execs recorded, and MaxArgvBytes the bytes of one exec's argv.
	MaxExecs     = 10_000
	MaxArgvBytes = 8 << 10
)

// MaxRecordBytes bounds the JSON record the runner reads: MaxPathBytes of paths with their ops and JSON
// quoting, the execs, the derived ops.
const MaxRecordBytes = 8*MaxPathBytes + MaxExecs*(MaxArgvBytes/8)

// Exec is one program started.
type Exec struct {
	PID  int      `json:"pid"`
	PPID int      `json:"ppid"`
	Path string   `json:"path"`
	Argv []string `json:"argv"`
}

// TraceOptions say how to run the app under the tracer.
type TraceOptions struct {
	// Helper is the binary that runs with ExecHelperArg (the sensor itself; a test binary in tests).
	Helper string
	// AllSyscalls traces every syscall, to learn the set a seccomp profile must allow.
	AllSyscalls bool
	Env         []string
	Dir         string
	Stdout      *os.File
	Stderr      *os.File
	// Cred runs the app as this user (the helper drops to it before exec when set).
	Cred *syscall.Credential
	// Started is told the app's pid once it runs.
	Started func(pid int)
	// Emulation, when set, says the app's programs run under an emulator (see Emulation).
	Emulation *Emulation
}

// ExecHelper is the helper's main: args are [ExecHelperArg, "all"|"paths", CPUS, "--", app argv...], CPUS
// the CPUs the app may run on ("0,1,3"; "" leaves the affinity as it is). It never returns on success.
func ExecHelper(args []string) error {
	if len(args) < 5 || args[0] != ExecHelperArg || args[3] != "--" {
		return fmt.Errorf("usage: %s all|paths CPUS -- ARGV", ExecHelperArg)
	}
	argv := args[4:]
	// One thread from here to the exec: capabilities, no_new_privs and the filter are each a thread's, and
	// the exec'ing thread's are what the app gets.
	runtime.LockOSThread()
	if err := helperSetup(args[2]); err != nil {
		return err
	}
	if err := installFilter(traceFilter(args[1] == "all"), !hasSysAdmin()); err != nil {
		return err
	}
	// The PATH search comes after the filter: a program that is not there (a probe's curl dropped from a slim
	// image) is recorded as looked up and missing, so that verify can add it back.
	bin, err := exec.LookPath(argv[0])
	if err != nil {
		return err
	}
	return unix.Exec(bin, argv, os.Environ())
}

// observingCaps are the capabilities the sensor holds for observing only.
var observingCaps = []int{unix.CAP_SYS_PTRACE}

// dropCaps removes caps from the effective, permitted and inheritable sets.
func dropCaps(caps []int) error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return err
	}
	for _, c := range caps {
		i, bit := c/32, uint32(1)<<(c%32)
		data[i].Effective &^= bit
		data[i].Permitted &^= bit
		data[i].Inheritable &^= bit
	}
	return unix.Capset(&hdr, &data[0])
}

func hasSysAdmin() bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return false
	}
	return data[0].Effective&(1<<unix.CAP_SYS_ADMIN) != 0
}

// Trace runs argv under seccomp-trace and records every path syscall (and, with AllSyscalls, every syscall)
// of the app and its descendants until the last of them exits.
func Trace(argv []string, o TraceOptions) (*Record, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	// The tracer thread stays on one CPU: a tracee stopped on that CPU hands over to it without a cross-CPU
	// wake-up, which dominated the cost of a stop (ruby's start: 1.2 s traced on any CPU, 0.66 s on one).
	// The helper restores the whole set before the app starts: the app is not pinned.
	var all unix.CPUSet
	if err := unix.SchedGetaffinity(0, &all); err == nil && all.Count() > 1 {
		for c := 0; c < len(all)*64; c++ {
			if all.IsSet(c) {
				var one unix.CPUSet
				one.Set(c)
				unix.SchedSetaffinity(0, &one)
				defer unix.SchedSetaffinity(0, &all)
				break
			}
		}
	}
	t, err := startTraced(ExecHelperArg, argv, o, &all, unix.PTRACE_O_TRACESECCOMP, nil)
	if err != nil {
		return nil, err
	}
	if o.Started != nil {
		o.Started(t.root)
	}
	rec, err := t.loop()
	complete(rec)
	return rec, err
}

// startTraced starts the helper helperArg on argv under ptrace (fork, clone and exec events, plus opts),
// in a process group of its own, with the CPUs in cpus given back to the app and files as its descriptors
// from 3, and returns the tracer of its processes with the helper running.
func startTraced(helperArg string, argv []string, o TraceOptions, cpus *unix.CPUSet, opts int, files []*os.File) (*tracer, error) {
	mode := "paths"
	if o.AllSyscalls {
		mode = "all"
	}
	cmd := exec.Command(o.Helper, append([]string{helperArg, mode, cpuList(cpus), "--"}, argv...)...)
	cmd.Env, cmd.Dir, cmd.Stdout, cmd.Stderr = o.Env, o.Dir, o.Stdout, o.Stderr
	cmd.ExtraFiles = files
	// Its own process group: the sensor can kill the app's processes at once when it will not stop.
	cmd.SysProcAttr = &syscall.SysProcAttr{Ptrace: true, Credential: o.Cred, Setpgid: true}
	err := cmd.Start()
	for _, f := range files {
		f.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("starting %v: %w", argv, err)
	}
	pid := cmd.Process.Pid
	var ws unix.WaitStatus
	if _, err := unix.Wait4(pid, &ws, unix.WALL, nil); err != nil {
		return nil, err
	}
	opts |= unix.PTRACE_O_TRACEFORK | unix.PTRACE_O_TRACEVFORK | unix.PTRACE_O_TRACECLONE | unix.PTRACE_O_TRACEEXEC | unix.PTRACE_O_EXITKILL
	if err := unix.PtraceSetOptions(pid, opts); err != nil {
		return nil, fmt.Errorf("setting trace options: %w", err)
	}
	t := &tracer{rec: &Record{Files: map[string][]string{}}, parent: map[int]int{}, live: map[int]bool{pid: true}, root: pid, all: o.AllSyscalls, emu: o.Emulation}
	if o.AllSyscalls {
		t.rec.Syscalls = map[string]int{}
	}
	if err := unix.PtraceCont(pid, 0); err != nil {
		return nil, err
	}
	return t, nil
}

type tracer struct {
	rec    *Record
	parent map[int]int
	live   map[int]bool
	root   int
	all    bool
	// emu is the emulator the app's foreign programs run under, or nil.
	emu *Emulation
	// helperExec is the helper's own exec of the app, which is the app's first record, not the helper's.
	sawFirstExec bool
}

func (t *tracer) loop() (*Record, error) {
	for len(t.live) > 0 {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WALL, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if errors.Is(err, unix.ECHILD) {
			// No tracee is left. Threads that vanished without a word (the other threads of a process that
			// execs) may still be counted as live: nothing more will come from them.
			return t.rec, nil
		}
		if err != nil {
			return t.rec, err
		}
		switch {
		case ws.Exited() || ws.Signaled():
			delete(t.live, pid)
			if pid == t.root {
				if ws.Exited() {
					t.rec.ExitCode = ws.ExitStatus()
				} else {
					t.rec.ExitCode = 128 + int(ws.Signal())
				}
			}
			continue
		case !ws.Stopped():
			continue
		}
		t.live[pid] = true
		sig := ws.StopSignal()
		forward := 0
		switch {
		case sig == unix.SIGTRAP && ws.TrapCause() == unix.PTRACE_EVENT_SECCOMP:
			t.syscall(pid)
		case sig == unix.SIGTRAP && (ws.TrapCause() == unix.PTRACE_EVENT_FORK || ws.TrapCause() == unix.PTRACE_EVENT_VFORK || ws.TrapCause() == unix.PTRACE_EVENT_CLONE):
			if msg, err := unix.PtraceGetEventMsg(pid); err == nil {
				t.parent[int(msg)] = pid
				t.live[int(msg)] = true
			}
		case sig == unix.SIGTRAP && ws.TrapCause() == unix.PTRACE_EVENT_EXEC:
			t.exec(pid)
		case sig == unix.SIGTRAP || sig == unix.SIGSTOP:
			// A new tracee's first stop, or a plain trap.
		default:
			forward = int(sig)
		}
		if err := unix.PtraceCont(pid, forward); err != nil && !errors.Is(err, unix.ESRCH) {
			return t.rec, fmt.Errorf("continuing %d: %w", pid, err)
		}
	}
	return t.rec, nil
}

func (t *tracer) exec(pid int) {
	exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	cmdline := make([]byte, MaxArgvBytes)
	n := 0
	if f, err := os.Open(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil {
		n, _ = io.ReadFull(f, cmdline)
		f.Close()
	}
	argv := strings.Split(strings.TrimSuffix(string(cmdline[:n]), "\x00"), "\x00")
	// An emulated program's exe is the emulator's interpreter, a host file: the exec is the guest's.
	if file, guestArgv, ok := t.emu.guest(pid, argv); ok {
		exe, argv = file, guestArgv
	}
	if exe != "" {
		t.file(exe, "exec")
	}
	if len(t.rec.Execs) >= MaxExecs {
		t.rec.Dropped++
		return
	}
	t.rec.Execs = append(t.rec.Execs, Exec{PID: pid, PPID: t.parent[pid], Path: exe, Argv: argv})
}

func (t *tracer) syscall(pid int) {
	s, err := seccompStop(pid)
	if err != nil {
		return
	}
	t.onSyscall(s)
}

func (t *tracer) file(p, op string) {
	ops, ok := t.rec.Files[p]
	if slices.Contains(ops, op) {
		return
	}
	if !ok {
		if len(t.rec.Files) >= MaxFiles || t.rec.pathBytes+len(p) > MaxPathBytes {
			t.rec.Dropped++
			return
		}
		t.rec.pathBytes += len(p)
	}
	t.rec.Files[p] = insertSorted(ops, op)
}

// readString reads a NUL-terminated string from the tracee, a page at a time so as not to cross into an
// unmapped one.
func readString(pid int, addr uintptr) (string, error) {
	var out []byte
	for len(out) < 4096 {
		n := 4096 - int(addr%4096)
		buf := make([]byte, n)
		local := []unix.Iovec{{Base: &buf[0], Len: uint64(n)}}
		remote := []unix.RemoteIovec{{Base: addr, Len: n}}
		got, err := unix.ProcessVMReadv(pid, local, remote, 0)
		if err != nil {
			// Reading another user's memory needs CAP_SYS_PTRACE; a stopped tracee's can be peeked anyway.
			if got, err = unix.PtracePeekData(pid, addr, buf); err != nil {
				return "", err
			}
		}
		if i := bytes.IndexByte(buf[:got], 0); i >= 0 {
			return string(append(out, buf[:i]...)), nil
		}
		out = append(out, buf[:got]...)
		addr += uintptr(got)
	}
	return string(out), nil
}

// cpuList renders a CPU set as "0,1,3" for the helper.
func cpuList(set *unix.CPUSet) string {
	var out []string
	for c := 0; c < len(set)*64; c++ {
		if set.IsSet(c) {
			out = append(out, strconv.Itoa(c))
		}
	}
	return strings.Join(out, ",")
}
