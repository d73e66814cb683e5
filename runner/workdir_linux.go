package runner

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// PrivateDirMode is the mode of the per-user directory that holds slimoci's work directories, and of each
// run's directory in it: no one else may list, enter or write them. A root sandbox in a user namespace needs
// its mapped root, an unprivileged host id, to search its way to its state directory under them: it gets a
// search-only ACL entry for that id alone (see grantSearch), not 0711, which would let any local user who
// knows a run's directory name (the mount table shows it) reach the unpacked image's files.
const PrivateDirMode = 0o700

// ErrUnsafeWorkDir is a work directory slimoci will not use, since another user could change what it
// holds or where it leads; the error names the path and what is wrong with it.
var ErrUnsafeWorkDir = errors.New("unsafe work directory")

// unsafeDir is an ErrUnsafeWorkDir about one path.
type unsafeDir struct{ path, problem string }

func (e *unsafeDir) Error() string {
	return fmt.Sprintf("%s: %s %s", ErrUnsafeWorkDir, e.path, e.problem)
}

func (e *unsafeDir) Is(target error) bool { return target == ErrUnsafeWorkDir }

// PrivateDir returns parent/slimoci-EUID, the directory this user's work directories go in, and makes it
// (PrivateDirMode) when it is missing. The parent may be writable by anyone, as /dev/shm is: another user
// may have taken the name first, as a symlink to somewhere else or as a directory of theirs holding what
// looks like a killed run's work directory. So an existing one is opened without following a symlink and
// used only when it is a directory of this user's that no one else may read or write; otherwise the error
// (ErrUnsafeWorkDir, one line) names it and what is wrong. The parent itself must be this user's or root's,
// and have the sticky bit if others may write in it: else they could swap the directory after the check.
func PrivateDir(parent string) (string, error) {
	parent, err := filepath.Abs(parent)
	if err != nil {
		return "", err
	}
	euid := os.Geteuid()
	name := fmt.Sprintf("slimoci-%d", euid)
	p := filepath.Join(parent, name)
	pfd, err := unix.Open(parent, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", &os.PathError{Op: "open", Path: parent, Err: err}
	}
	defer unix.Close(pfd)
	var st unix.Stat_t
	if err := unix.Fstat(pfd, &st); err != nil {
		return "", &os.PathError{Op: "fstat", Path: parent, Err: err}
	}
	switch {
	case st.Uid != 0 && int(st.Uid) != euid:
		return "", &unsafeDir{parent, fmt.Sprintf("belongs to uid %d, who could replace what slimoci makes in it", st.Uid)}
	case st.Mode&0o022 != 0 && st.Mode&unix.S_ISVTX == 0:
		return "", &unsafeDir{parent, fmt.Sprintf("has mode %04o: others may write in it, and without the sticky bit they could replace what slimoci makes in it", st.Mode&0o7777)}
	}
	made := true
	if err := unix.Mkdirat(pfd, name, PrivateDirMode); errors.Is(err, unix.EEXIST) {
		made = false
	} else if err != nil {
		return "", &os.PathError{Op: "mkdir", Path: p, Err: err}
	}
	fd, err := openPrivate(pfd, name, p)
	if err != nil {
		return "", err
	}
	defer unix.Close(fd)
	if made {
		// Mkdir's mode went through the umask.
		if err := unix.Fchmod(fd, PrivateDirMode); err != nil {
			return "", &os.PathError{Op: "chmod", Path: p, Err: err}
		}
	}
	return p, nil
}

// openPrivate opens name in the directory dirfd, and checks that it is a directory of this user's that no
// one else may read or write (PrivateDirMode, or 0700/0711). p names it in errors.
func openPrivate(dirfd int, name, p string) (int, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) {
		var st unix.Stat_t
		if unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
			target, _ := os.Readlink(p)
			return -1, &unsafeDir{p, fmt.Sprintf("is a symlink (to %q), not a directory", target)}
		}
		return -1, &unsafeDir{p, "is not a directory"}
	}
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: p, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, &os.PathError{Op: "fstat", Path: p, Err: err}
	}
	perm := st.Mode & 0o7777
	switch euid := os.Geteuid(); {
	case int(st.Uid) != euid:
		err = &unsafeDir{p, fmt.Sprintf("belongs to uid %d, not to this user (uid %d)", st.Uid, euid)}
	case perm&0o700 != 0o700 || perm&0o066 != 0 || perm&0o7000 != 0:
		err = &unsafeDir{p, fmt.Sprintf("has mode %04o, want %04o (no one else may read or write it)", perm, PrivateDirMode)}
	}
	if err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}
