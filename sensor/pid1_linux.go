package sensor

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// Config is what the runner tells the sensor: the app to start and where to leave the record.
type Config struct {
	Args        []string `json:"args"`
	Env         []string `json:"env"`
	Cwd         string   `json:"cwd"`
	UID         int      `json:"uid"`
	GID         int      `json:"gid"`
	Groups      []int    `json:"groups,omitempty"`
	AllSyscalls bool     `json:"allSyscalls"`
	// Record is the file the record is written to (a directory the runner mounts in).
	Record string `json:"record"`
	// Control, when set, is a unix socket the sensor listens on for the runner: a connection that sends
	// "HOST:PORT\n" is relayed to that TCP address inside the sandbox's network (see Relay).
	Control string `json:"control,omitempty"`
}

// KillSignal, sent to the sensor, makes it kill every process of the app at once (SIGKILL) and write its
// record: what the runner does when the app ignores its stop signal. It is not forwarded to the app.
const KillSignal = unix.SIGPWR

// Main is the sensor's PID 1: it reads the config, starts the app under the tracer as the image's user,
// forwards the signals it gets to the app, reaps every process, writes the record and exits with the app's
// code. It returns only on error.
func Main(configPath string) error {
	// First: a signal from the runner that comes before a handler would kill PID 1 before it records.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, unix.SIGTERM, unix.SIGINT, unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2, KillSignal)
	b, err := os.ReadFile(configPath)
	if err != nil {
		return err
	}
	var cfg Config
	if err := json.Unmarshal(b, &cfg); err != nil {
		return fmt.Errorf("reading %s: %w", configPath, err)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	appPID := make(chan int, 1)
	go func() {
		pid := <-appPID
		for s := range sigs {
			if s != KillSignal {
				unix.Kill(pid, s.(syscall.Signal))
			} else if os.Getpid() == 1 {
				// From PID 1 of a pid namespace, -1 is every other process in it.
				unix.Kill(-1, unix.SIGKILL)
			} else {
				unix.Kill(-pid, unix.SIGKILL)
			}
		}
	}()
	if cfg.Control != "" {
		ln, err := net.Listen("unix", cfg.Control)
		if err != nil {
			return fmt.Errorf("listening for the runner: %w", err)
		}
		go Relay(ln)
	}
	groups := make([]uint32, len(cfg.Groups))
	for i, g := range cfg.Groups {
		groups[i] = uint32(g)
	}
	cred := &syscall.Credential{Uid: uint32(cfg.UID), Gid: uint32(cfg.GID), Groups: groups}
	if cfg.UID == os.Getuid() && cfg.GID == os.Getgid() && len(groups) == 0 {
		// Already the app's user: nothing to change (and in a rootless user namespace, setgroups is denied).
		cred = nil
	}
	rec, err := Trace(cfg.Args, TraceOptions{
		Helper: self, AllSyscalls: cfg.AllSyscalls, Env: cfg.Env, Dir: cfg.Cwd,
		Stdout: os.Stdout, Stderr: os.Stderr,
		Cred:    cred,
		Started: func(pid int) { appPID <- pid },
	})
	if err != nil {
		return err
	}
	out, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	tmp := filepath.Join(filepath.Dir(cfg.Record), ".record.tmp")
	if err := os.WriteFile(tmp, out, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, cfg.Record); err != nil {
		return err
	}
	os.Exit(rec.ExitCode)
	return nil
}
