package testbed

import (
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Nobody is the unprivileged user tests run attackers and rootless runs as.
const Nobody = 65534

// RunAs runs a program as uid (group uid, no supplementary groups) and returns its combined output: an
// unprivileged process of its own, as a local attacker would be. The caller must be root.
func RunAs(uid int, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s as uid %d: %w: %s", name, strings.Join(args, " "), uid, err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// SelfAs returns a command running this test binary as uid (group uid) on the tests matching the -test.run
// pattern run, with env and a PATH: the binary is copied into a new directory that user may enter, which the
// caller removes (dir). The test tells it is the child by env.
func SelfAs(uid int, run string, env ...string) (cmd *exec.Cmd, dir string, err error) {
	dir, err = os.MkdirTemp("", "slimoci-as-user-")
	if err != nil {
		return nil, "", err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, "", err
	}
	self := filepath.Join(dir, filepath.Base(os.Args[0]))
	in, err := os.Open(os.Args[0])
	if err != nil {
		return nil, "", err
	}
	defer in.Close()
	out, err := os.OpenFile(self, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	if err != nil {
		return nil, "", err
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, "", err
	}
	cmd = exec.Command(self, "-test.run", run, "-test.count=1", "-test.v")
	cmd.Dir = dir
	cmd.Env = append([]string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + dir, "TMPDIR=" + dir}, env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}}
	return cmd, dir, nil
}

// Fingerprint describes everything under dir, dir included, that an attack could change: each path's type,
// mode, owner, size, link count, change time, a symlink's target and a file's content. Two fingerprints of
// an untouched tree are equal; any chmod, chown, link, write, rename or removal in it changes it.
func Fingerprint(dir string) (string, error) {
	var lines []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		line := fmt.Sprintf("%s %v %d:%d size=%d nlink=%d ctime=%d.%d", p, fi.Mode(), st.Uid, st.Gid, fi.Size(), st.Nlink, st.Ctim.Sec, st.Ctim.Nsec)
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			line += " -> " + target
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			line += fmt.Sprintf(" sha256=%x", sha256.Sum256(b))
		}
		lines = append(lines, line)
		return nil
	})
	sort.Strings(lines)
	return strings.Join(lines, "\n"), err
}

// InMountNamespace runs f on an OS thread of its own in a new mount namespace, private from the machine's,
// and returns f's error: what f mounts never reaches the machine, even when the test dies (the thread ends
// with f). f must not start goroutines that need its mounts, nor call t.Fatal. The caller must be root.
func InMountNamespace(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread, in its own namespace, exits with the goroutine
		if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
			errc <- fmt.Errorf("unshare: %w", err)
			return
		}
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
			errc <- fmt.Errorf("making the mounts private: %w", err)
			return
		}
		errc <- f()
	}()
	return <-errc
}

// Allocated returns the bytes fn allocates, whatever goroutine allocates them: what a test of a bounded
// reader asserts on.
func Allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}
