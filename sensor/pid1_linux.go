package sensor

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// Config is what the runner tells the sensor: the app to start. It comes on the sensor's standard input, a
// pipe from the runner: nothing the app can reach by path is read.
type Config struct {
	Args        []string `json:"args"`
	Env         []string `json:"env"`
	Cwd         string   `json:"cwd"`
	UID         int      `json:"uid"`
	GID         int      `json:"gid"`
	Groups      []int    `json:"groups,omitempty"`
	AllSyscalls bool     `json:"allSyscalls"`
	// Sensor is the backend that observes the app: SensorNotify (seccomp user notification) or SensorPtrace
	// (seccomp RET_TRACE and a ptrace stop per syscall); "" picks notify where the kernel has it. Both give
	// the same record.
	Sensor string `json:"sensor,omitempty"`
	// Control says the runner passed a control socket as ControlFD: it relays connections into the sandbox
	// (see ServeControl), and when the runner's end closes (slimoci died) the sensor kills every process of
	// the sandbox and exits.
	Control bool `json:"control,omitempty"`
	// Emulation, when set, says the app is of a foreign platform, run under an emulator: the record is the
	// guest's, without the emulator's own lookups (see Emulation).
	Emulation *Emulation `json:"emulation,omitempty"`
}

// The descriptors the runner passes to the sensor, after stdin, stdout and stderr.
const (
	// RecordFD is the write end of a pipe the record goes to, as one JSON document.
	RecordFD = 3
	// ControlFD is a SOCK_SEQPACKET unix socket to the runner (only when Config.Control is set).
	ControlFD = 4
)

// maxConfig bounds the config read from stdin.
const maxConfig = 16 << 20

// KillSignal, sent to the sensor, makes it kill every process of the app at once (SIGKILL) and write its
// record: what the runner does when the app ignores its stop signal. It is not forwarded to the app.
const KillSignal = unix.SIGPWR

// reservedThreads are OS threads the sensor makes before the app starts: an app that exhausts the sandbox's
// process limit (a fork bomb) must not leave the Go runtime unable to make a thread, which is fatal.
const reservedThreads = 24

// Main is the sensor's PID 1 (or, for an exec probe, a sensor started beside it): it reads the config from
// stdin, starts the app under the tracer as the image's user, forwards the signals it gets to the app,
// reaps every process, writes the record to RecordFD and exits with the app's code. It returns only on
// error.
func Main() error {
	// First: a signal from the runner that comes before a handler would kill PID 1 before it records.
	// Every signal comes to the channel: the app (root in its namespace, with CAP_KILL) may send PID 1 any,
	// and one the Go runtime handles by crashing (SIGABRT, SIGTRAP, a SIGSEGV sent with kill) would lose the
	// record. Those the runner sends to stop the app are forwarded to it; the others are dropped.
	sigs := make(chan os.Signal, 64)
	signal.Notify(sigs)
	// The app runs as root in most images, as the sensor does: not dumpable, the sensor's memory, its
	// descriptors (the record pipe, the control socket) and /proc entries are out of the app's reach, and
	// the app gets none of its descriptors (inherited ones are not close-on-exec).
	unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
	syscall.CloseOnExec(RecordFD)
	syscall.CloseOnExec(ControlFD)
	reserveThreads(reservedThreads)
	var cfg Config
	if err := json.NewDecoder(io.LimitReader(os.Stdin, maxConfig)).Decode(&cfg); err != nil {
		return fmt.Errorf("reading the config from stdin: %w", err)
	}
	recOut := os.NewFile(RecordFD, "record")
	if recOut == nil {
		return errors.New("no record descriptor")
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	var appPID atomic.Int64
	started := make(chan struct{})
	killAll := func() {
		if os.Getpid() == 1 {
			// From PID 1 of a pid namespace, -1 is every other process in it.
			unix.Kill(-1, unix.SIGKILL)
		} else if pid := int(appPID.Load()); pid > 0 {
			unix.Kill(-pid, unix.SIGKILL)
		}
	}
	go func() {
		for s := range sigs {
			switch s {
			case KillSignal:
				killAll()
			case unix.SIGTERM, unix.SIGINT, unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2, unix.SIGWINCH:
				<-started // a stop signal that comes before the app runs is for the app
				unix.Kill(int(appPID.Load()), s.(syscall.Signal))
			}
		}
	}()
	if cfg.Control {
		f := os.NewFile(ControlFD, "control")
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("opening the control socket: %w", err)
		}
		uc, ok := c.(*net.UnixConn)
		if !ok {
			return errors.New("the control descriptor is not a unix socket")
		}
		go func() {
			ServeControl(uc)
			// The runner is gone: nothing of the sandbox may outlive it.
			killAll()
			os.Exit(137)
		}()
	}
	groups := make([]uint32, len(cfg.Groups))
	for i, g := range cfg.Groups {
		groups[i] = uint32(g)
	}
	cred := &syscall.Credential{Uid: uint32(cfg.UID), Gid: uint32(cfg.GID), Groups: groups}
	if cfg.UID == os.Getuid() && cfg.GID == os.Getgid() && (sameGroups(cfg.Groups) || setgroupsDenied()) {
		// Already the app's user: nothing to change. In a rootless user namespace setgroups is denied, so the
		// app keeps the groups slimoci's user had (a login user's, a container's --user 1000:1000 gives group
		// 1000), mapped: changing them would fail the app's start with EPERM.
		cred = nil
	}
	trace := Trace
	switch cfg.Sensor {
	case SensorNotify:
		trace = TraceNotify
	case "":
		if NotifySupported() {
			trace = TraceNotify
		}
	case SensorPtrace:
	default:
		return fmt.Errorf("unknown sensor backend %q", cfg.Sensor)
	}
	rec, err := trace(cfg.Args, TraceOptions{
		Helper: self, AllSyscalls: cfg.AllSyscalls, Env: cfg.Env, Dir: cfg.Cwd,
		Stdout: os.Stdout, Stderr: os.Stderr,
		Cred:      cred,
		Started:   func(pid int) { appPID.Store(int64(pid)); close(started) },
		Emulation: cfg.Emulation,
	})
	if err != nil {
		return err
	}
	cfg.Emulation.drop(rec)
	if err := json.NewEncoder(recOut).Encode(rec); err != nil {
		return fmt.Errorf("writing the record: %w", err)
	}
	recOut.Close()
	os.Exit(rec.ExitCode)
	return nil
}

// sameGroups reports whether the process's supplementary groups are want.
func sameGroups(want []int) bool {
	have, err := os.Getgroups()
	if err != nil || len(have) != len(want) {
		return len(want) == 0 && (err != nil || len(have) == 0)
	}
	seen := map[int]bool{}
	for _, g := range have {
		seen[g] = true
	}
	for _, g := range want {
		if !seen[g] {
			return false
		}
	}
	return true
}

// setgroupsDenied reports whether this user namespace refuses setgroups (/proc/self/setgroups says "deny",
// as in a user namespace an unprivileged user made with a single id mapped).
func setgroupsDenied() bool {
	b, err := os.ReadFile("/proc/self/setgroups")
	return err == nil && strings.TrimSpace(string(b)) == "deny"
}

// reserveThreads makes the Go runtime start n OS threads now and keep them idle for later use: goroutines
// each hold a thread at once, then give them back.
func reserveThreads(n int) {
	var ready, release sync.WaitGroup
	ready.Add(n)
	release.Add(1)
	var done sync.WaitGroup
	done.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			runtime.LockOSThread()
			ready.Done()
			release.Wait()
			// Unlocked before returning: a goroutine that exits locked takes its thread with it.
			runtime.UnlockOSThread()
			done.Done()
		}()
	}
	ready.Wait()
	release.Done()
	done.Wait()
}
