package runner

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// copyTree copies the unpacked tree src to dst for a rootless sandbox, which cannot mount an overlay on the
// host: the app runs on the copy and the tree stays as it was. Modes, times, symlinks and hardlinks are kept
// (Python compares a .pyc's recorded mtime with its .py's); files are cloned when the filesystem can
// (FICLONE), else copied with copy_file_range. Owners are not: rootless, every file is the user's, and the
// index holds the image's owners.
func copyTree(src, dst string) error {
	type dir struct {
		path  string
		mode  fs.FileMode
		mtime time.Time
	}
	var dirs []dir
	links := map[[2]uint64]string{}
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st, _ := fi.Sys().(*unix.Stat_t)
		switch {
		case d.IsDir():
			if err := os.Mkdir(target, 0o700); err != nil && !(rel == "." && errors.Is(err, fs.ErrExist)) {
				return err
			}
			dirs = append(dirs, dir{target, fi.Mode(), fi.ModTime()})
			return nil
		case fi.Mode()&fs.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if err := os.Symlink(l, target); err != nil {
				return err
			}
			tv := []unix.Timespec{unix.NsecToTimespec(fi.ModTime().UnixNano()), unix.NsecToTimespec(fi.ModTime().UnixNano())}
			unix.UtimesNanoAt(unix.AT_FDCWD, target, tv, unix.AT_SYMLINK_NOFOLLOW)
			return nil
		case fi.Mode().IsRegular():
			if st != nil && st.Nlink > 1 {
				key := [2]uint64{st.Dev, st.Ino}
				if first, ok := links[key]; ok {
					return os.Link(first, target)
				}
				links[key] = target
			}
			if err := copyFile(p, target, fi.Mode().Perm()|fi.Mode()&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)); err != nil {
				return err
			}
		case fi.Mode()&fs.ModeNamedPipe != 0:
			if err := unix.Mkfifo(target, uint32(fi.Mode().Perm())); err != nil {
				return &os.PathError{Op: "mkfifo", Path: target, Err: err}
			}
		default:
			// Devices and sockets: a rootless unpack makes none (the index has them).
			return nil
		}
		return os.Chtimes(target, fi.ModTime(), fi.ModTime())
	})
	if err != nil {
		return fmt.Errorf("copying the tree for a rootless sandbox: %w", err)
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		d := dirs[i]
		if err := os.Chmod(d.path, d.mode.Perm()|d.mode&(fs.ModeSetgid|fs.ModeSticky)); err != nil {
			return err
		}
		os.Chtimes(d.path, d.mtime, d.mtime)
	}
	return nil
}

func copyFile(src, dst string, mode fs.FileMode) error {
	// The walk saw a regular file; opened without following a symlink or blocking, it must still be one.
	in, err := os.OpenFile(src, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
	if err != nil {
		return err
	}
	defer in.Close()
	if fi, err := in.Stat(); err != nil || !fi.Mode().IsRegular() {
		return fmt.Errorf("copying %s: not a regular file", src)
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if err := unix.IoctlFileClone(int(out.Fd()), int(in.Fd())); err != nil {
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
	}
	if err := out.Chmod(mode); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
