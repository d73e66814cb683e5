package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strings"
	"sync"
	"sync/atomic"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"
)

// Kernels before 5.6 (RHEL 8's 4.18) and qemu-user 7.2, which runs the arm64 tests on an amd64 host, answer
// openat2 with ENOSYS. There the root resolves paths with filepath-securejoin's pathrs-lite instead, the
// library runc confines its own container paths with: pathrs.OpenatInRoot gives RESOLVE_IN_ROOT semantics
// (absolute symlinks and ".." stop at the root) by walking one component at a time with
// openat(O_PATH|O_NOFOLLOW) from the root's descriptor, reading each symlink and resolving its target
// itself, and pathrs.Reopen upgrades the O_PATH handle it returns through a checked procfs.
//
// What that guarantees, and what it does not, beside openat2:
//   - Every component is opened relative to the descriptor of the directory before it, and never followed
//     by the kernel: a symlink, absolute or relative, leading to / or out by "..", is resolved as it would
//     be with the tree as the root. After every "..", pathrs-lite checks the directory it reached is the
//     one it expected under the root (its /proc/self/fd name), so a directory moved out of the root while
//     being walked fails the lookup instead of leading outside.
//   - Not atomic: openat2 resolves the whole path in one call; the walk is many calls, and a tree changed
//     between them (a directory swapped for a symlink) is seen half before, half after. Nothing changes
//     the tree while slimoci works on it: it is slimoci's own private directory, and the attacker is what
//     the layers hold, which is written one entry at a time by slimoci itself, each entry resolved anew.
//   - Magic links (/proc/self/root) cannot lead anywhere: the walk reads a link's text and never lets the
//     kernel follow it, as RESOLVE_NO_MAGICLINKS does; no procfs is mounted in the tree anyway.
//   - It allows 255 symlinks in one lookup where the kernel allows 40 (both then fail with ELOOP): a
//     longer chain resolves here, still inside the root.
//   - It needs /proc (pathrs-lite checks ".." and reopens handles through it); without openat2 and without
//     /proc every lookup fails.
//
// The answer to the probe is kept; a call answered ENOSYS after it said yes (a seccomp filter installed
// since) takes the fallback too. Errors are the bare errno the kernel gave, as openat2's are, so callers
// match them with errors.Is and print them alike.

// forceFallback makes every lookup take the fallback, as on a kernel without openat2; tests set it.
var forceFallback atomic.Bool

var haveOpenat2 = sync.OnceValue(func() bool {
	fd, err := unix.Openat2(unix.AT_FDCWD, ".", &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: resolve})
	if err == nil {
		unix.Close(fd)
	}
	return !errors.Is(err, unix.ENOSYS)
})

func useFallback() bool { return forceFallback.Load() || !haveOpenat2() }

// openFallback opens rel inside the root as openat2(RESOLVE_IN_ROOT) would, for the flags the package uses:
// O_PATH or O_RDONLY, with or without O_DIRECTORY, O_NOFOLLOW, O_NONBLOCK, O_NOCTTY. Creating is refused.
func (r *root) openFallback(rel string, flags int) (int, error) {
	if flags&(unix.O_CREAT|unix.O_TRUNC|unix.O_WRONLY|unix.O_RDWR) != 0 || flags&unix.O_TMPFILE == unix.O_TMPFILE {
		return -1, fmt.Errorf("opening %s in the root without openat2: flags %#x: %w", rel, flags, unix.EINVAL)
	}
	rootFile, err := r.file()
	if err != nil {
		return -1, err
	}
	flags |= unix.O_CLOEXEC
	for {
		fd, err := openInRoot(rootFile, rel, flags)
		if errors.Is(err, unix.EINTR) || errors.Is(err, unix.EAGAIN) {
			continue
		}
		return fd, err
	}
}

func openInRoot(rootFile *os.File, rel string, flags int) (int, error) {
	if base := path.Base(rel); flags&unix.O_NOFOLLOW != 0 && base != "." && base != ".." && base != "/" && !strings.HasSuffix(rel, "/") {
		// The last component is opened, not followed: its parent is resolved in the root, then the name is
		// opened in it by the kernel with O_NOFOLLOW, as openat2 does (a symlink comes back as itself with
		// O_PATH, ELOOP or ENOTDIR without). A parent that is not a directory gives ENOTDIR there too.
		parent, err := lookup(rootFile, path.Dir(rel))
		if err != nil {
			return -1, err
		}
		defer parent.Close()
		return unix.Openat(int(parent.Fd()), base, flags, 0)
	}
	// No name to leave unfollowed ("", ".", ".." last: none is a symlink): resolve it all.
	h, err := lookup(rootFile, rel)
	if err != nil {
		return -1, err
	}
	defer h.Close()
	if flags&unix.O_DIRECTORY != 0 {
		var st unix.Stat_t
		if err := unix.Fstat(int(h.Fd()), &st); err != nil {
			return -1, err
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return -1, unix.ENOTDIR
		}
		if flags&unix.O_PATH == 0 {
			// A directory opens relative to its own handle: no procfs needed.
			return unix.Openat(int(h.Fd()), ".", flags&^unix.O_NOFOLLOW, 0)
		}
	}
	if flags&unix.O_PATH != 0 {
		return unix.FcntlInt(h.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	}
	f, err := pathrs.Reopen(h, flags&^unix.O_NOFOLLOW)
	if err != nil {
		return -1, bareErrno(err)
	}
	defer f.Close()
	return unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
}

// lookup resolves rel in the root to an O_PATH handle, following every symlink inside the root.
func lookup(rootFile *os.File, rel string) (*os.File, error) {
	if rel == "" {
		rel = "."
	}
	h, err := pathrs.OpenatInRoot(rootFile, rel)
	if err != nil {
		return nil, bareErrno(err)
	}
	return h, nil
}

// bareErrno gives the errno under pathrs-lite's wrapping, as openat2 would have returned it; an error
// without one (the walk found the tree moved under it) keeps its words.
func bareErrno(err error) error {
	var errno unix.Errno
	if errors.As(err, &errno) {
		return errno
	}
	return fmt.Errorf("resolving in the root: %w", err)
}

// file is the root's descriptor as the *os.File pathrs-lite takes: a duplicate, closed with the root.
func (r *root) file() (*os.File, error) {
	if r.rootFile != nil {
		return r.rootFile, nil
	}
	fd, err := unix.FcntlInt(uintptr(r.fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("duplicating the root's descriptor: %w", err)
	}
	r.rootFile = os.NewFile(uintptr(fd), r.dirName)
	return r.rootFile, nil
}
