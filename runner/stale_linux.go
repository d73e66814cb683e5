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

// WorkPrefix starts the name of the work directory a slimoci process makes in its user's PrivateDir; its pid
// follows, so that a later run can tell a dead process's directory from a running one's.
const WorkPrefix = ".slimoci-work-"

// WorkPattern is the os.MkdirTemp pattern for this process's work directory.
func WorkPattern() string { return fmt.Sprintf("%s%d-", WorkPrefix, os.Getpid()) }

// CleanStale removes what a slimoci process killed outright (SIGKILL, a crash) left in dir, this user's
// PrivateDir: its work directories, with the overlays mounted in them, and its empty sandbox cgroups. Its
// sandboxes' processes are already gone: the container's init gets SIGKILL when slimoci dies. It returns
// what it removed and what it could not.
//
// It removes only what slimoci made, and only there: dir must pass PrivateDir's check; a work directory is
// a directory of this user's named WorkPrefix, a dead pid and a suffix; its mounts are detached, and it is
// then removed through descriptors (rootfs.RemoveTreeAt), never following a symlink and never crossing
// into a mount that is still there.
func CleanStale(dir string) (removed []string, err error) {
	removed, err = removeStale(dir)
	if os.Geteuid() == 0 {
		removeEmptyCgroups()
	}
	return removed, err
}

// removeStale is CleanStale's part in dir.
func removeStale(dir string) (removed []string, err error) {
	fd, err := openPrivate(unix.AT_FDCWD, dir, dir)
	if err != nil {
		return nil, err
	}
	d := os.NewFile(uintptr(fd), dir)
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var errs []error
	live := false
	for _, name := range names {
		rest, ok := strings.CutPrefix(name, WorkPrefix)
		if !ok {
			continue
		}
		pidStr, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid <= 0 || pid == os.Getpid() || !isDead(pid) {
			live = live || err == nil && pid != os.Getpid()
			continue
		}
		var st unix.Stat_t
		if unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW) != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR || int(st.Uid) != os.Geteuid() {
			continue
		}
		p := filepath.Join(dir, name)
		// The mount table has the path with its symlinks resolved.
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			real = p
		}
		unmountUnder(real)
		if err := rootfs.RemoveTreeAt(d, name); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, p)
	}
	if !live && os.Geteuid() == 0 {
		// No other slimoci runs here: the search entries killed runs' sandboxes left in this directory's ACL
		// (see grantSearch) go too.
		if err := editACL(dir, func(a *acl) { a.dropBand() }); err != nil {
			errs = append(errs, fmt.Errorf("removing stale ACL entries of %s: %w", dir, err))
		}
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
		unix.Unmount(m, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW)
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
