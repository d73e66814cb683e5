package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// root confines every operation to one directory. Paths are resolved by the kernel with openat2
// RESOLVE_IN_ROOT: absolute symlinks, ".." chains and symlinked directories all stay inside, as they would
// inside a container whose root this is. Only a path's last component is then acted on, relative to its
// parent's descriptor and never followed. Where openat2 is missing (ENOSYS), pathrs-lite resolves them:
// root_fallback_linux.go says what that does and does not guarantee.
type root struct {
	fd      int
	dirName string
	// rootFile duplicates fd for pathrs-lite, opened the first time the fallback needs it.
	rootFile *os.File
	// The last parent opened is kept, since layers list files grouped by directory. Anything that removes or
	// replaces a path drops it: a kept descriptor must never outlive what its path means.
	cachePath string
	cacheFD   int
}

func openRoot(dir string) (*root, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	return &root{fd: fd, dirName: dir, cacheFD: -1}, nil
}

func (r *root) close() {
	r.invalidate()
	if r.rootFile != nil {
		r.rootFile.Close()
	}
	unix.Close(r.fd)
}

func (r *root) invalidate() {
	if r.cacheFD >= 0 {
		unix.Close(r.cacheFD)
	}
	r.cachePath, r.cacheFD = "", -1
}

const resolve = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS

// openat2 opens rel (relative, cleaned; "" is the root itself) inside the root: with openat2, or where the
// kernel (or qemu-user) lacks it, with the fallback, which keeps its semantics for the flags used here.
func (r *root) openat2(rel string, flags int) (int, error) {
	if rel == "" {
		rel = "."
	}
	if useFallback() {
		return r.openFallback(rel, flags)
	}
	for {
		fd, err := unix.Openat2(r.fd, rel, &unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Resolve: resolve})
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		if errors.Is(err, unix.ENOSYS) {
			return r.openFallback(rel, flags)
		}
		return fd, err
	}
}

// dir returns a descriptor of the directory rel, creating missing directories (0755, as runtimes do) and
// reporting each one it made through made. The descriptor belongs to the root's cache: do not close it.
func (r *root) dir(rel string, made func(rel string)) (int, error) {
	if r.cacheFD >= 0 && r.cachePath == rel {
		return r.cacheFD, nil
	}
	fd, err := r.openat2(rel, unix.O_PATH|unix.O_DIRECTORY)
	if errors.Is(err, unix.ENOENT) {
		fd, err = r.mkdirAll(rel, made)
	}
	if err != nil {
		return -1, err
	}
	r.invalidate()
	r.cachePath, r.cacheFD = rel, fd
	return fd, nil
}

// mkdirAll creates the missing directories of rel. A component that is a symlink to something missing is
// followed, inside the root, and the directories it names are created: a runtime's tar extraction does the
// same (the symlink's target is resolved in the root, then made).
func (r *root) mkdirAll(rel string, made func(rel string)) (int, error) {
	todo := strings.Split(rel, "/")
	cur := ""
	for hops := 0; len(todo) > 0; {
		p := todo[0]
		todo = todo[1:]
		if p == "" || p == "." {
			continue
		}
		next := path.Join(cur, p)
		fd, err := r.openat2(next, unix.O_PATH|unix.O_DIRECTORY)
		if err == nil {
			unix.Close(fd)
			cur = next
			continue
		}
		if !errors.Is(err, unix.ENOENT) {
			return -1, err
		}
		pfd, err := r.openat2(cur, unix.O_PATH|unix.O_DIRECTORY)
		if err != nil {
			return -1, err
		}
		err = unix.Mkdirat(pfd, p, 0o755)
		if errors.Is(err, unix.EEXIST) {
			// A dangling symlink: continue from its target, resolved in the root.
			target, rerr := readlinkat(pfd, p)
			unix.Close(pfd)
			if rerr != nil {
				return -1, rerr
			}
			if hops++; hops > 40 {
				return -1, unix.ELOOP
			}
			base := "/" + cur
			if path.IsAbs(target) {
				base = "/"
			}
			resolved := strings.TrimPrefix(path.Clean(path.Join(base, target)), "/")
			todo = append(strings.Split(resolved, "/"), todo...)
			cur = ""
			continue
		}
		unix.Close(pfd)
		if err != nil {
			return -1, err
		}
		if made != nil {
			made(next)
		}
		cur = next
	}
	return r.openat2(cur, unix.O_PATH|unix.O_DIRECTORY)
}

func readlinkat(dfd int, name string) (string, error) {
	buf := make([]byte, 4096)
	n, err := unix.Readlinkat(dfd, name, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// removeAt removes name in the directory dfd, recursively when it is a directory, never following symlinks.
// A missing name is not an error.
func removeAt(dfd int, name string) error {
	err := unix.Unlinkat(dfd, name, 0)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if !errors.Is(err, unix.EISDIR) && !errors.Is(err, unix.EPERM) {
		return err
	}
	fd, err := unix.Openat(dfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	// A directory an unprivileged unpack left without write permission still has to be emptied.
	unix.Fchmod(fd, 0o700)
	f := os.NewFile(uintptr(fd), name)
	names, err := f.Readdirnames(-1)
	if err == nil {
		for _, n := range names {
			if err = removeAt(fd, n); err != nil {
				break
			}
		}
	}
	f.Close()
	if err != nil {
		return err
	}
	return unix.Unlinkat(dfd, name, unix.AT_REMOVEDIR)
}

// procPath names an open descriptor for the *at calls that need a path (linkat).
func procPath(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// isDirAt reports whether name in dfd is a directory (not following a symlink).
func isDirAt(dfd int, name string) (exists, isDir bool, err error) {
	var st unix.Stat_t
	err = unix.Fstatat(dfd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return false, false, nil
	}
	if err != nil {
		return false, false, fmt.Errorf("stat %s: %w", name, err)
	}
	return true, st.Mode&unix.S_IFMT == unix.S_IFDIR, nil
}
