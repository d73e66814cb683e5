package testbed

import (
	"bufio"
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// Leftovers lists what a finished sandbox must not leave behind: the directory state (when not ""), mounts
// whose paths contain state, slimoci's work directories in /dev/shm and mounts under them, its cgroups (the sandbox id's; any sandbox's when id is ""), and sensor
// processes still running.
func Leftovers(state, id string) []string {
	var out []string
	if state != "" {
		if _, err := os.Stat(state); err == nil {
			out = append(out, "state directory "+state)
		}
	}
	// slimoci's work directories (in /dev/shm when it has room), and mounts under them or under state. The
	// calling thread's mount table: libcontainer may leave a thread (even the main one, which Go never ends)
	// in a container's mount namespace, and /proc/self shows the main thread's.
	work, _ := filepath.Glob("/dev/shm/.slimoci-work-*")
	for _, w := range work {
		out = append(out, "work directory "+w)
	}
	runtime.LockOSThread()
	mi, _ := os.ReadFile("/proc/thread-self/mountinfo")
	runtime.UnlockOSThread()
	sc := bufio.NewScanner(bytes.NewReader(mi))
	for sc.Scan() {
		if (state != "" && strings.Contains(sc.Text(), state)) || strings.Contains(sc.Text(), ".slimoci-work-") {
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
