package testbed

import (
	"bufio"
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
)

// Work directories, as runner makes them: a run's directory (its name starts with the prefix and carries
// the pid) inside a per-user private directory in /dev/shm (or the state path, or --work-dir).
const (
	workDirs   = "/dev/shm/slimoci-[0-9]*/.slimoci-work-*"
	workPrefix = ".slimoci-work-"
)

// Baseline is the leftovers on the machine at one moment, as Snapshot lists them.
type Baseline map[string]bool

// Snapshot lists what is left on the machine now: work directories, mounts under them, any sandbox's
// cgroups, sensor processes. A test takes one before it runs anything and checks LeftoversSince it.
func Snapshot() Baseline {
	b := Baseline{}
	for _, l := range all("", "") {
		b[l] = true
	}
	return b
}

// start is the Snapshot Find took when it first ran (in TestMain, or at the first end-to-end test's start).
var (
	startOnce sync.Once
	start     Baseline
)

func takeStart() { startOnce.Do(func() { start = Snapshot() }) }

// Leftovers is LeftoversSince the snapshot Find took when it first ran, before any of the test binary's
// sandboxes: what an earlier, killed run left on the machine is not this test's doing, and fails only the
// test that checks its clean-up. Without a Find, it is everything found.
func Leftovers(state, id string) []string {
	return LeftoversSince(start, state, id)
}

// LeftoversSince lists what a finished sandbox must not leave behind, but what before already held: the
// directory state (when not ""), mounts whose paths contain state, slimoci's work directories in /dev/shm
// and mounts under them, its cgroups (the sandbox id's; any sandbox's when id is ""), and sensor processes
// still running.
func LeftoversSince(before Baseline, state, id string) []string {
	var out []string
	for _, l := range all(state, id) {
		if !before[l] {
			out = append(out, l)
		}
	}
	return out
}

// all is every leftover found, whatever was there before.
func all(state, id string) []string {
	var out []string
	if state != "" {
		if _, err := os.Stat(state); err == nil {
			out = append(out, "state directory "+state)
		}
	}
	// slimoci's work directories (in /dev/shm when it has room), and mounts under them or under state. The
	// calling thread's mount table: libcontainer may leave a thread (even the main one, which Go never ends)
	// in a container's mount namespace, and /proc/self shows the main thread's.
	work, _ := filepath.Glob(workDirs)
	for _, w := range work {
		out = append(out, "work directory "+w)
	}
	runtime.LockOSThread()
	mi, _ := os.ReadFile("/proc/thread-self/mountinfo")
	runtime.UnlockOSThread()
	sc := bufio.NewScanner(bytes.NewReader(mi))
	for sc.Scan() {
		if (state != "" && strings.Contains(sc.Text(), state)) || strings.Contains(sc.Text(), "/"+workPrefix) {
			out = append(out, "mount "+sc.Text())
		}
	}
	filepath.WalkDir("/sys/fs/cgroup", func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		if (id != "" && strings.HasSuffix(p, "/"+id)) || (id == "" && strings.Contains(p, "/slimoci/slimoci-")) {
			out = append(out, "cgroup "+p)
			return fs.SkipDir
		}
		if strings.Count(p, "/") > 8 {
			return fs.SkipDir
		}
		return nil
	})
	return append(out, SensorProcesses()...)
}

// SensorProcesses lists the slimoci sensors running on the machine (as "sensor process PID").
func SensorProcesses() []string {
	var out []string
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err == nil && bytes.HasPrefix(b, []byte("/dev/.slimoci/sensor\x00")) {
			out = append(out, "sensor process "+filepath.Base(filepath.Dir(p)))
		}
	}
	return out
}
