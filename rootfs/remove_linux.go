package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrMountPoint is a directory RemoveTree found another filesystem mounted on: it removes nothing there.
var ErrMountPoint = errors.New("a mount point: another filesystem is mounted there")

// RemoveTree removes dir and everything under it: a tree made by Unpack, a copy of one, or a work directory
// holding them. Their content is the image's and the app's choice, and their directories may be read-only
// as the image made them. It works through file descriptors, from dir's parent down: it never follows a
// symlink (it removes the link), changes the mode only of a directory it holds open and is removing (when
// it must, to empty it), and never crosses into another mount: a mount point under dir, or dir itself
// when something is mounted on it, is an error wrapping ErrMountPoint, and what is mounted there stays.
// What it could remove, it removes; the error names the first path it could not. A missing dir is not an
// error. The path up to dir's parent is the caller's, and is resolved as usual.
//
// Neither os.RemoveAll nor os.Root.RemoveAll is enough: both walk through descriptors without following
// symlinks, but they cross mount points and stop at a read-only directory. pathrs-lite (in go.mod through
// runc) opens and makes directories safely, but removes nothing.
func RemoveTree(dir string) error {
	dir = filepath.Clean(dir)
	parent, err := os.Open(filepath.Dir(dir))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer parent.Close()
	return RemoveTreeAt(parent, filepath.Base(dir))
}

// RemoveTreeAt is RemoveTree of name, one component, in the open directory parent: the tree must be on
// parent's mount.
func RemoveTreeAt(parent *os.File, name string) error {
	if name == "" || name == "." || name == ".." || strings.Contains(name, "/") {
		return &os.PathError{Op: "remove", Path: filepath.Join(parent.Name(), name), Err: unix.EINVAL}
	}
	fd := int(parent.Fd())
	var st unix.Statx_t
	if err := statx(fd, &st); err != nil {
		return &os.PathError{Op: "statx", Path: parent.Name(), Err: err}
	}
	// qemu-user 7.2 sets STATX_MNT_ID in the mask and leaves the id 0: an id of 0 tells nothing.
	r := &remover{dev: [2]uint32{st.Dev_major, st.Dev_minor}, mnt: st.Mnt_id, hasMnt: st.Mask&unix.STATX_MNT_ID != 0 && st.Mnt_id != 0}
	// The caller's directory is never made writable: it is not being removed.
	err := r.removeEntry(&openDir{fd: fd, path: parent.Name(), chmodded: true}, name)
	runtime.KeepAlive(parent)
	return err
}

// remover removes one tree, staying on the mount of the directory it started from.
type remover struct {
	dev    [2]uint32
	mnt    uint64
	hasMnt bool // statx gave a mount id (Linux 5.8 and later): a bind mount of the same filesystem shows too
}

// openDir is a directory the walk holds open, read-only, without having followed a symlink to it.
type openDir struct {
	fd       int
	path     string // for errors only: nothing is opened by it
	chmodded bool
}

// removeHook lets the tests act at the moments an attacker would race: after removeEntry found a directory
// and before it opens it, and after it opened it.
var removeHook struct{ beforeOpen, opened func(path string) }

// removeEntry removes name from dir: a link, a file, a symlink (never followed) or a directory with what it
// holds. The name is looked up again whenever it changes under the walk (a directory swapped for a
// symlink): whatever it is then is removed, and only the directory actually opened is emptied.
func (r *remover) removeEntry(dir *openDir, name string) error {
	p := filepath.Join(dir.path, name)
	for range 8 {
		err := r.unlinkat(dir, name, 0)
		if err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if !errors.Is(err, unix.EISDIR) {
			return &os.PathError{Op: "unlinkat", Path: p, Err: err}
		}
		if removeHook.beforeOpen != nil {
			removeHook.beforeOpen(p)
		}
		sub, err := r.open(dir, name, p)
		if errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOENT) {
			continue // no longer a directory: unlink whatever it is now
		}
		if err != nil {
			return err
		}
		if removeHook.opened != nil {
			removeHook.opened(p)
		}
		err = r.removeContents(sub)
		unix.Close(sub.fd)
		if err != nil {
			return err
		}
		err = r.unlinkat(dir, name, unix.AT_REMOVEDIR)
		if err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if !errors.Is(err, unix.ENOTDIR) {
			return &os.PathError{Op: "rmdir", Path: p, Err: err}
		}
		// Swapped for something else while it was emptied: go again.
	}
	return &os.PathError{Op: "remove", Path: p, Err: errors.New("it keeps changing while it is removed")}
}

// unlinkat unlinks name in dir; when dir's mode forbids it, dir is made writable through its descriptor and
// it tries again.
func (r *remover) unlinkat(dir *openDir, name string, flags int) error {
	err := unix.Unlinkat(dir.fd, name, flags)
	if (errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM)) && !dir.chmodded {
		dir.chmodded = true
		if unix.Fchmod(dir.fd, 0o700) == nil {
			err = unix.Unlinkat(dir.fd, name, flags)
		}
	}
	return err
}

// open opens the directory name in dir without following a symlink, and checks that it is on the tree's
// mount. A directory its owner may not read or search (0311, 0000) is opened as a path first, checked, made
// 0700 through that descriptor (fchmodat2 AT_EMPTY_PATH from Linux 6.6, its /proc/self/fd name before),
// and opened again through it.
func (r *remover) open(dir *openDir, name, p string) (*openDir, error) {
	const flags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC | unix.O_NONBLOCK
	fd, err := unix.Openat(dir.fd, name, flags, 0)
	chmodded := false
	if errors.Is(err, unix.EACCES) {
		pfd, perr := unix.Openat(dir.fd, name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if perr != nil {
			return nil, &os.PathError{Op: "openat", Path: p, Err: perr}
		}
		defer unix.Close(pfd)
		if err := r.sameMount(pfd, p); err != nil {
			return nil, err
		}
		if unix.Fchmodat(pfd, "", 0o700, unix.AT_EMPTY_PATH) != nil &&
			// No fchmodat2 (before Linux 6.6, qemu-user): chmod the descriptor's /proc name, which
			// follows to the very directory checked, never to a path looked up again.
			unix.Chmod(procPath(pfd), 0o700) != nil {
			return nil, &os.PathError{Op: "openat", Path: p, Err: err}
		}
		chmodded = true
		fd, err = unix.Openat(pfd, ".", flags, 0)
	}
	if err != nil {
		return nil, &os.PathError{Op: "openat", Path: p, Err: err}
	}
	if err := r.sameMount(fd, p); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return &openDir{fd: fd, path: p, chmodded: chmodded}, nil
}

// sameMount checks that fd is on the mount the walk started on.
func (r *remover) sameMount(fd int, p string) error {
	var st unix.Statx_t
	if err := statx(fd, &st); err != nil {
		return &os.PathError{Op: "statx", Path: p, Err: err}
	}
	// A mount's root says so (STATX_ATTR_MOUNT_ROOT, Linux 5.8 and later): that tells a bind mount of the
	// same filesystem where the mount id does not (qemu-user's statx).
	mountRoot := st.Attributes_mask&unix.STATX_ATTR_MOUNT_ROOT != 0 && st.Attributes&unix.STATX_ATTR_MOUNT_ROOT != 0
	if [2]uint32{st.Dev_major, st.Dev_minor} != r.dev || r.hasMnt && st.Mnt_id != r.mnt || mountRoot {
		return fmt.Errorf("not removing %s: %w", p, ErrMountPoint)
	}
	return nil
}

// removeContents removes what dir holds. It goes on past an entry it cannot remove, and returns the first
// error.
func (r *remover) removeContents(dir *openDir) error {
	names, err := readNames(dir.fd)
	if err != nil {
		return &os.PathError{Op: "getdents", Path: dir.path, Err: err}
	}
	var first error
	for _, n := range names {
		if err := r.removeEntry(dir, n); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// readNames lists a directory's entries but "." and "..", from its descriptor.
func readNames(fd int) ([]string, error) {
	var names []string
	buf := make([]byte, 32<<10)
	for {
		n, err := unix.Getdents(fd, buf)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n <= 0 {
			return names, nil
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
}

func statx(fd int, st *unix.Statx_t) error {
	return unix.Statx(fd, "", unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW, unix.STATX_TYPE|unix.STATX_MNT_ID, st)
}
