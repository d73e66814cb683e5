package runner

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/slimoci/slimoci/rootfs"
)

// WorkPrefix starts the name of the work directory a slimoci process makes; its pid follows, so that a later
// run can tell a dead process's directory from a running one's.
const WorkPrefix = ".slimoci-work-"

// WorkPattern is the os.MkdirTemp pattern for this process's work directory.
func WorkPattern() string { return fmt.Sprintf("%s%d-", WorkPrefix, os.Getpid()) }

// CleanStale removes what a slimoci process killed outright (SIGKILL, a crash) left under dir: its work
// directories, with the overlays mounted in them, and its empty sandbox cgroups. Its sandboxes' processes
// are already gone: the container's init gets SIGKILL when slimoci dies. It returns what it removed and
// what it could not.
func CleanStale(dir string) (removed []string, err error) {
	var errs []error
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), WorkPrefix)
		if !ok || !e.IsDir() {
			continue
		}
		pidStr, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid == os.Getpid() || !isDead(pid) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		unmountUnder(p)
		if err := rootfs.RemoveTree(p); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, p)
	}
	if os.Geteuid() == 0 {
		removeEmptyCgroups()
	}
	return removed, errors.Join(errs...)
}

// isDead reports whether pid names no process (kill(pid, 0) may also fail with EPERM for another user's).
func isDead(pid int) bool {
	return unix.Kill(pid, 0) == unix.ESRCH
}

// unmountUnder detaches every mount below p, deepest first, as this thread sees them (libcontainer may leave
// a thread of the process in another mount namespace: the table read and the unmounts must be one thread's).
func unmountUnder(p string) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	mi, err := os.ReadFile("/proc/thread-self/mountinfo")
	if err != nil {
		return
	}
	var points []string
	sc := bufio.NewScanner(bytes.NewReader(mi))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) > 4 && strings.HasPrefix(f[4], p+"/") {
			points = append(points, f[4])
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(points)))
	for _, m := range points {
		unix.Unmount(m, unix.MNT_DETACH)
	}
}

// removeEmptyCgroups removes slimoci/slimoci-* cgroups under slimoci's own that hold no process.
func removeEmptyCgroups() {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, mnt := range cgroupMounts(parts[1]) {
			parent := filepath.Join(mnt, parts[2], "slimoci")
			ids, _ := filepath.Glob(filepath.Join(parent, "slimoci-*"))
			for _, id := range ids {
				unix.Rmdir(id) // fails, as it should, while a process is in it
			}
			unix.Rmdir(parent)
		}
	}
}
