package runner

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
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

// grantSearch lets the sandbox's root (host uid uid) search dir and the directories above it up to root
// ("" : dir only) that others may not: a POSIX ACL entry user:UID:--x on each (never read or write, and no
// one else gets anything), added under an exclusive flock of the directory since other slimoci processes
// share the per-user directory. Above root, every directory must let others search it already: slimoci
// changes no directory but its own. The returned undo removes the entries again.
func grantSearch(dir, root string, uid uint32) (undo func(), err error) {
	var granted []string
	undo = func() {
		for _, d := range granted {
			editACL(d, func(a *acl) { a.drop(uid) })
		}
	}
	defer func() {
		if err != nil {
			undo()
		}
	}()
	for d := dir; ; d = filepath.Dir(d) {
		var st unix.Stat_t
		if err := unix.Stat(d, &st); err != nil {
			return undo, &os.PathError{Op: "stat", Path: d, Err: err}
		}
		ours := root == "" && d == dir || root != "" && (d == root || strings.HasPrefix(d, root+"/"))
		if st.Mode&0o001 == 0 {
			if !ours || int(st.Uid) != os.Geteuid() {
				return undo, fmt.Errorf("%w: %s (mode %04o, uid %d) may not be searched by the sandbox's root, an unprivileged host id in its user namespace (give it o+x, pick a --work-dir others may search, such as /var/tmp, or --userns=host)", ErrUnsearchable, d, st.Mode&0o7777, st.Uid)
			}
			if err := editACL(d, func(a *acl) { a.add(uid) }); err != nil {
				return undo, fmt.Errorf("%w: granting the sandbox's root search on %s: %v (--userns=host runs without a user namespace)", ErrUnsearchable, d, err)
			}
			granted = append(granted, d)
		}
		if d == "/" || d == "." {
			return undo, nil
		}
	}
}

// acl is a POSIX access ACL (the system.posix_acl_access xattr, version 2).
type acl struct{ entries []aclEntry }

type aclEntry struct {
	tag, perm uint16
	id        uint32
}

const (
	aclUserObj  = 0x01
	aclUser     = 0x02
	aclGroupObj = 0x04
	aclGroup    = 0x08
	aclMask     = 0x10
	aclOther    = 0x20
	aclUndef    = 0xffffffff
	aclXattr    = "system.posix_acl_access"
)

func (a *acl) add(uid uint32) {
	for _, e := range a.entries {
		if e.tag == aclUser && e.id == uid {
			return
		}
	}
	a.entries = append(a.entries, aclEntry{aclUser, 1, uid})
}

func (a *acl) drop(uid uint32) {
	out := a.entries[:0]
	for _, e := range a.entries {
		if !(e.tag == aclUser && e.id == uid) {
			out = append(out, e)
		}
	}
	a.entries = out
}

// dropBand removes the entries of every sandbox id range.
func (a *acl) dropBand() {
	out := a.entries[:0]
	for _, e := range a.entries {
		if !(e.tag == aclUser && e.id >= idBase && e.id < idBase+idSlots*idSize) {
			out = append(out, e)
		}
	}
	a.entries = out
}

// editACL reads d's ACL (or the one its mode means), changes it and writes it back with the mask the kernel
// expects; with no named entry left, the ACL is removed and the group bits are the owning group's again.
func editACL(d string, change func(*acl)) error {
	fd, err := unix.Open(d, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.Flock(fd, unix.LOCK_EX); err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	a := &acl{}
	buf := make([]byte, 64<<10)
	n, err := unix.Fgetxattr(fd, aclXattr, buf)
	switch {
	case err == nil && n >= 4 && (n-4)%8 == 0 && binary.LittleEndian.Uint32(buf) == 2:
		for b := buf[4:n]; len(b) >= 8; b = b[8:] {
			a.entries = append(a.entries, aclEntry{binary.LittleEndian.Uint16(b), binary.LittleEndian.Uint16(b[2:]), binary.LittleEndian.Uint32(b[4:])})
		}
	case err == nil || errors.Is(err, unix.ENODATA):
		m := uint16(st.Mode)
		a.entries = []aclEntry{{aclUserObj, m >> 6 & 7, aclUndef}, {aclGroupObj, m >> 3 & 7, aclUndef}, {aclOther, m & 7, aclUndef}}
	default:
		return err
	}
	change(a)
	// The mask: the existing one (or, without one, the owning group's bits) with search added, never
	// widened further: named entries and the group keep what they had.
	named, mask, hadMask := false, uint16(0), false
	for _, e := range a.entries {
		if e.tag == aclMask {
			mask, hadMask = e.perm, true
		}
	}
	var kept []aclEntry
	for _, e := range a.entries {
		switch e.tag {
		case aclMask:
			continue
		case aclUser, aclGroup:
			named = true
		case aclGroupObj:
			if !hadMask {
				mask = e.perm
			}
		}
		kept = append(kept, e)
	}
	groupClass := mask | 1
	if !named {
		var group uint16
		for _, e := range kept {
			if e.tag == aclGroupObj {
				group = e.perm
			}
		}
		if err := unix.Fremovexattr(fd, aclXattr); err != nil && !errors.Is(err, unix.ENODATA) {
			return err
		}
		return unix.Fchmod(fd, st.Mode&^0o070|uint32(group)<<3)
	}
	kept = append(kept, aclEntry{aclMask, groupClass, aclUndef})
	sort.Slice(kept, func(i, j int) bool {
		if kept[i].tag != kept[j].tag {
			return kept[i].tag < kept[j].tag
		}
		return kept[i].id < kept[j].id
	})
	out := binary.LittleEndian.AppendUint32(nil, 2)
	for _, e := range kept {
		out = binary.LittleEndian.AppendUint16(out, e.tag)
		out = binary.LittleEndian.AppendUint16(out, e.perm)
		out = binary.LittleEndian.AppendUint32(out, e.id)
	}
	return unix.Fsetxattr(fd, aclXattr, out, 0)
}
