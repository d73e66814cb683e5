package rootfs

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// maxRead bounds what ReadFile reads from an untrusted tree.
const maxRead = 4 << 20

// ReadFile reads a small file of the tree, resolving p as the kernel would with the tree as its root: a
// symlinked /etc/passwd cannot make slimoci read a file of the host.
func (t *Tree) ReadFile(p string) ([]byte, error) {
	r, err := openRoot(t.Dir)
	if err != nil {
		return nil, err
	}
	defer r.close()
	fd, err := r.openat2(strings.TrimPrefix(p, "/"), unix.O_RDONLY|unix.O_NOCTTY)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: p, Err: err}
	}
	f := os.NewFile(uintptr(fd), p)
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", p)
	}
	return io.ReadAll(io.LimitReader(f, maxRead))
}

// Open opens a file of the tree for reading, resolving p inside the tree as ReadFile does.
func (t *Tree) Open(p string) (*os.File, error) {
	r, err := openRoot(t.Dir)
	if err != nil {
		return nil, err
	}
	defer r.close()
	fd, err := r.openat2(strings.TrimPrefix(p, "/"), unix.O_RDONLY|unix.O_NOCTTY|unix.O_NONBLOCK)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: p, Err: err}
	}
	return os.NewFile(uintptr(fd), p), nil
}

// RemoveTree removes a directory tree made by Unpack (or a copy of one), whose directories may be
// read-only as the image made them.
func RemoveTree(dir string) error {
	if err := os.RemoveAll(dir); err == nil {
		return nil
	}
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(p, 0o700)
		}
		return nil
	})
	return os.RemoveAll(dir)
}
