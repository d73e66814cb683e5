package rootfs

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// MaxReadFile bounds what ReadFile reads: /etc/passwd, /etc/group, /etc/nsswitch.conf, /etc/ld.so.cache and
// Python metadata are kilobytes in real images (an ld.so.cache takes some 64 bytes a library: 4 MiB is room
// for 60000).
const MaxReadFile = 4 << 20

// ReadFile reads a regular file of the tree, resolving p as the kernel would with the tree as its root: a
// symlinked /etc/passwd cannot make slimoci read a file of the host. A file that is not regular fails with
// ErrNotRegular before anything is read; one over MaxReadFile fails with ErrTooLarge.
func (t *Tree) ReadFile(p string) ([]byte, error) {
	return t.readFile(p, MaxReadFile)
}

func (t *Tree) readFile(p string, limit int64) ([]byte, error) {
	f, size, err := t.openRegular(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if size > limit {
		return nil, fmt.Errorf("reading %s: %w", p, &LimitError{Size: size, Limit: limit})
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", p, err)
	}
	if int64(len(b)) > limit {
		// It grew since fstat.
		return nil, fmt.Errorf("reading %s: %w", p, &LimitError{Size: -1, Limit: limit})
	}
	return b, nil
}

// Open opens a regular file of the tree for reading, resolving p inside the tree as ReadFile does; a file
// that is not regular fails with ErrNotRegular. What is read of it is the caller's to bound.
func (t *Tree) Open(p string) (*os.File, error) {
	f, _, err := t.openRegular(p)
	return f, err
}

// openRegular opens the regular file p of the tree for reading and returns its size. The tree is the image's:
// any path may be a FIFO (opening it for reading waits for a writer, reading it waits for data) or, when
// unpacked as root, a device node of the host (/dev/zero never ends; opening a watchdog starts it). So p is
// first opened O_PATH, which opens nothing of what it names, and only a regular file is then opened for
// reading: reopened through /proc/self/fd, so that it is the very inode that was checked. O_NONBLOCK and
// O_NOCTTY are set all the same.
func (t *Tree) openRegular(p string) (*os.File, int64, error) {
	r, err := openRoot(t.Dir)
	if err != nil {
		return nil, 0, err
	}
	defer r.close()
	rel := strings.TrimPrefix(p, "/")
	pfd, err := r.openat2(rel, unix.O_PATH)
	if err != nil {
		return nil, 0, &os.PathError{Op: "open", Path: p, Err: err}
	}
	defer unix.Close(pfd)
	var st unix.Stat_t
	if err := unix.Fstat(pfd, &st); err != nil {
		return nil, 0, &os.PathError{Op: "stat", Path: p, Err: err}
	}
	if err := regular(p, &st); err != nil {
		return nil, 0, err
	}
	const flags = unix.O_RDONLY | unix.O_NOCTTY | unix.O_NONBLOCK | unix.O_CLOEXEC
	fd, err := unix.Open(procPath(pfd), flags, 0)
	if errors.Is(err, unix.ENOENT) {
		// No /proc: open the path again, and check it is still the inode checked.
		fd, err = r.openat2(rel, flags)
		if err == nil {
			var again unix.Stat_t
			if err = unix.Fstat(fd, &again); err == nil && (again.Dev != st.Dev || again.Ino != st.Ino) {
				err = unix.ESTALE
			}
			if err != nil {
				unix.Close(fd)
			}
		}
	}
	if err != nil {
		return nil, 0, &os.PathError{Op: "open", Path: p, Err: err}
	}
	return os.NewFile(uintptr(fd), p), st.Size, nil
}

// regular fails with ErrNotRegular unless st is a regular file's.
func regular(p string, st *unix.Stat_t) error {
	kind := "unknown file type"
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		return nil
	case unix.S_IFDIR:
		kind = "a directory"
	case unix.S_IFIFO:
		kind = "a FIFO"
	case unix.S_IFCHR:
		kind = fmt.Sprintf("a character device %d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
	case unix.S_IFBLK:
		kind = fmt.Sprintf("a block device %d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
	case unix.S_IFSOCK:
		kind = "a socket"
	}
	return fmt.Errorf("opening %s: %w: it is %s", p, ErrNotRegular, kind)
}
