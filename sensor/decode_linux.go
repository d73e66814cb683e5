package sensor

import (
	"encoding/binary"
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// syscallStop is what the sensor learns of one syscall the app is stopped in: who made it, in which
// architecture's numbering, and its six arguments (32-bit ones zero-extended).
type syscallStop struct {
	pid  int
	arch uint32
	nr   uint32
	args [6]uint64
}

// onSyscall records one syscall: counted by name when every syscall is traced, and each file it names (see
// arches: pathCallsAMD64 and pathCallsI386, or pathCallsARM64) with its op. The trace filter lets no other
// architecture through (see traceFilter); one would be counted under its number.
func (t *tracer) onSyscall(s syscallStop) {
	a, ok := tablesFor(s.arch)
	calls, names := a.calls, a.names
	if !ok {
		if t.all {
			t.rec.Syscalls["arch_"+strconv.FormatUint(uint64(s.arch), 16)]++
		}
		return
	}
	if t.all {
		name, ok := names[s.nr]
		if !ok {
			// One key for them all: the app cannot grow the record's map a number at a time.
			name = "syscall_unknown"
		}
		t.rec.Syscalls[name]++
	}
	call, ok := calls[s.nr]
	if !ok {
		return
	}
	for _, a := range call.Args {
		if p, ok := argFile(s, call.Name, a); ok {
			t.file(p, a.Op)
		}
	}
}

// argFile is the absolute, cleaned (not resolved) path the argument a of the stopped syscall s names.
func argFile(s syscallStop, call string, a pathArg) (string, bool) {
	switch a.Kind {
	case argFD:
		return fdPath(s.pid, int32(s.args[a.Arg]))
	case argSockaddr:
		p, ok := unixSockPath(s.pid, uintptr(s.args[a.Arg]), s.args[a.Len])
		if !ok {
			return "", false
		}
		return absolute(s, -1, p)
	}
	addr := uintptr(s.args[a.Arg])
	var p string
	if addr != 0 {
		var err error
		if p, err = readString(s.pid, addr); err != nil {
			return "", false
		}
	}
	if p == "" {
		if a.Dirfd < 0 || a.Op == "stat" {
			// glibc's fstat is newfstatat(fd, "", AT_EMPTY_PATH): the file's open is recorded already, and
			// reading its name on every fstat would cost a readlink each.
			return "", false
		}
		// An empty path names the descriptor's own file: with AT_EMPTY_PATH (execveat, linkat, fchownat...),
		// and always for readlinkat; a NULL one does for utimensat (futimens), futimesat and fanotify_mark.
		flagged := a.Flags >= 0 && s.args[a.Flags]&unix.AT_EMPTY_PATH != 0
		if flagged || emptyIsDirfd[call] && (addr != 0 || call != "readlinkat") {
			return fdPath(s.pid, int32(s.args[a.Dirfd]))
		}
		return "", false
	}
	return absolute(s, a.Dirfd, p)
}

// emptyIsDirfd are the calls for which an empty or NULL path names the descriptor's file without a flag
// (readlinkat: empty only).
var emptyIsDirfd = map[string]bool{"readlinkat": true, "utimensat": true, "futimesat": true, "fanotify_mark": true}

// absolute makes p absolute against the directory of the descriptor at argument dirfd (-1, or AT_FDCWD
// there: the process's cwd), as the kernel would look it up.
func absolute(s syscallStop, dirfd int8, p string) (string, bool) {
	if path.IsAbs(p) {
		return path.Clean(p), true
	}
	base := fmt.Sprintf("/proc/%d/cwd", s.pid)
	if dirfd >= 0 && int32(s.args[dirfd]) != unix.AT_FDCWD {
		base = fmt.Sprintf("/proc/%d/fd/%d", s.pid, int32(s.args[dirfd]))
	}
	dir, err := os.Readlink(base)
	if err != nil || !path.IsAbs(dir) {
		return "", false
	}
	return path.Join(dir, p), true
}

// fdPath is the path of the file open at fd in pid; a descriptor that is not a file of the filesystem (a
// pipe, a socket, an anonymous inode) names none.
func fdPath(pid int, fd int32) (string, bool) {
	if fd < 0 {
		return "", false
	}
	p, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%d", pid, fd))
	if err != nil || !path.IsAbs(p) {
		return "", false
	}
	return strings.TrimSuffix(p, " (deleted)"), true
}

// unixSockPath reads a struct sockaddr of n bytes at addr and returns its path when it is an AF_UNIX
// address with one (not abstract, not unnamed).
func unixSockPath(pid int, addr uintptr, n uint64) (string, bool) {
	var sa unix.RawSockaddrUnix
	if n <= 2 || addr == 0 {
		return "", false
	}
	n = min(n, uint64(unsafe.Sizeof(sa)))
	buf := make([]byte, n)
	if !readMem(pid, addr, buf) {
		return "", false
	}
	if binary.NativeEndian.Uint16(buf) != unix.AF_UNIX || buf[2] == 0 {
		return "", false
	}
	p := buf[2:]
	for i, b := range p {
		if b == 0 {
			p = p[:i]
			break
		}
	}
	return string(p), true
}

// readMem fills buf from the tracee's memory at addr.
func readMem(pid int, addr uintptr, buf []byte) bool {
	local := []unix.Iovec{{Base: &buf[0], Len: uint64(len(buf))}}
	remote := []unix.RemoteIovec{{Base: addr, Len: len(buf)}}
	if got, err := unix.ProcessVMReadv(pid, local, remote, 0); err == nil && got == len(buf) {
		return true
	}
	got, err := unix.PtracePeekData(pid, addr, buf)
	return err == nil && got == len(buf)
}

// ptraceSyscallInfo is struct ptrace_syscall_info (linux/ptrace.h) for a PTRACE_SYSCALL_INFO_SECCOMP stop.
type ptraceSyscallInfo struct {
	Op      uint8
	_       [3]uint8
	Arch    uint32
	IP      uint64
	SP      uint64
	Nr      uint64
	Args    [6]uint64
	RetData uint32
	_       uint32
}

const ptraceSyscallInfoSeccomp = 3

// seccompStop reads the syscall a tracee is stopped in at a PTRACE_EVENT_SECCOMP stop, with its
// architecture: PTRACE_GET_SYSCALL_INFO decodes i386 calls (int 0x80) as the kernel does, which reading
// the registers as x86_64 ones does not.
func seccompStop(pid int) (syscallStop, error) {
	var info ptraceSyscallInfo
	_, _, errno := unix.Syscall6(unix.SYS_PTRACE, unix.PTRACE_GET_SYSCALL_INFO, uintptr(pid), unsafe.Sizeof(info), uintptr(unsafe.Pointer(&info)), 0, 0)
	if errno != 0 {
		return syscallStop{}, errno
	}
	if info.Op != ptraceSyscallInfoSeccomp {
		return syscallStop{}, fmt.Errorf("not a seccomp stop (op %d)", info.Op)
	}
	return syscallStop{pid: pid, arch: info.Arch, nr: uint32(info.Nr), args: info.Args}, nil
}
