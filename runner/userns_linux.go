package runner

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// The app's root is not the host's root: as root, slimoci runs each sandbox in a user namespace mapping ids
// 0-65535 inside to a range of unprivileged host ids of its own (as podman run --userns=auto), picked at
// random among idSlots slots above idBase so that two sandboxes do not share ids. The image's tree keeps its
// real owners on disk; the overlay's lower layer is an idmapped mount of it (kernel 5.19 and later for
// overlayfs over idmapped layers), so that the app sees them as the image says.
const (
	idBase  = 1 << 30 // far above the ids of users and of podman's subordinate ranges (/etc/subuid)
	idSize  = 65536
	idSlots = 8192 // up to 1<<30 + 8192*65536 = 1.5 Gi: under the 32-bit id space's top (4 Gi)
)

// idRange is a sandbox's host id range.
type idRange struct{ base uint32 }

func newIDRange() idRange {
	var b [4]byte
	rand.Read(b[:])
	slot := binary.LittleEndian.Uint32(b[:]) % idSlots
	return idRange{base: idBase + slot*idSize}
}

// usernsFD opens a user namespace with r's mapping, for mount_setattr(MOUNT_ATTR_IDMAP): that of a child
// process stopped at its first instruction (as a traced child is), killed once its namespace is open.
func (r idRange) usernsFD() (*os.File, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe)
	cmd.Env = []string{}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  unix.CLONE_NEWUSER,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: int(r.base), Size: idSize}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: int(r.base), Size: idSize}},
		Ptrace:      true,
		Pdeathsig:   unix.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("making a user namespace: %w", err)
	}
	defer func() {
		// Killed, then reaped until it is gone (a traced child also reports its stops).
		pid := cmd.Process.Pid
		unix.Kill(pid, unix.SIGKILL)
		for {
			var ws unix.WaitStatus
			if _, err := unix.Wait4(pid, &ws, unix.WALL, nil); err != nil && err != unix.EINTR || ws.Exited() || ws.Signaled() {
				break
			}
		}
		cmd.Process.Release()
	}()
	f, err := os.Open(fmt.Sprintf("/proc/%d/ns/user", cmd.Process.Pid))
	if err != nil {
		return nil, fmt.Errorf("opening the user namespace: %w", err)
	}
	return f, nil
}

// idmappedMount mounts src at dst with its owners shifted by r, read-only.
func (r idRange) idmappedMount(src, dst string) error {
	ns, err := r.usernsFD()
	if err != nil {
		return err
	}
	defer ns.Close()
	fd, err := unix.OpenTree(unix.AT_FDCWD, src, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE)
	if err != nil {
		return &os.PathError{Op: "open_tree", Path: src, Err: err}
	}
	defer unix.Close(fd)
	attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP | unix.MOUNT_ATTR_RDONLY, Userns_fd: uint64(ns.Fd())}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, attr); err != nil {
		return fmt.Errorf("idmapping %s: %w (the kernel or the filesystem may not support idmapped mounts: --userns=host runs without a user namespace)", src, err)
	}
	if err := unix.MoveMount(fd, "", unix.AT_FDCWD, dst, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return &os.PathError{Op: "move_mount", Path: dst, Err: err}
	}
	return nil
}

// checkSearchable fails unless every directory from dir up to / may be searched by anyone: a sandbox in a
// user namespace reaches its root filesystem as an unprivileged host id.
func checkSearchable(dir string) error {
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return err
		}
		if fi.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("%w: %s has mode %04o; the sandbox's root (an unprivileged host id in its user namespace) must search every directory above its state directory (give them o+x, as slimoci's own work directories have, or --userns=host)", ErrUnsearchable, d, fi.Mode().Perm())
		}
		if d == "/" || d == "." {
			return nil
		}
	}
}
