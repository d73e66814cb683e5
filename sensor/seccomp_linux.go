package sensor

import (
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// pathSyscalls are the syscalls whose path arguments the sensor records: opened, executed, stat'ed, read as
// links and looked up. Arg is the index of the path argument, Dirfd the index of its directory (-1: cwd).
var pathSyscalls = map[uint32]struct{ Arg, Dirfd int }{
	unix.SYS_OPEN:       {0, -1},
	unix.SYS_OPENAT:     {1, 0},
	unix.SYS_OPENAT2:    {1, 0},
	unix.SYS_STAT:       {0, -1},
	unix.SYS_LSTAT:      {0, -1},
	unix.SYS_NEWFSTATAT: {1, 0},
	unix.SYS_STATX:      {1, 0},
	unix.SYS_ACCESS:     {0, -1},
	unix.SYS_FACCESSAT:  {1, 0},
	unix.SYS_FACCESSAT2: {1, 0},
	unix.SYS_EXECVE:     {0, -1},
	unix.SYS_EXECVEAT:   {1, 0},
	unix.SYS_READLINK:   {0, -1},
	unix.SYS_READLINKAT: {1, 0},
}

// seccompData offsets (struct seccomp_data).
const (
	offNr   = 0
	offArch = 4
)

const auditArchX86_64 = 0xc000003e

// traceFilter is a seccomp program: RET_TRACE for the path syscalls (and, when all is set, for every syscall,
// so the tracer learns the whole set for a seccomp profile), RET_ALLOW otherwise. A foreign architecture is
// traced too: the tracer refuses what it cannot decode rather than miss it.
func traceFilter(all bool) []unix.SockFilter {
	stmt := func(code uint16, k uint32) unix.SockFilter { return unix.SockFilter{Code: code, K: k} }
	jeq := func(k uint32, jt, jf uint8) unix.SockFilter {
		return unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: k, Jt: jt, Jf: jf}
	}
	ret := func(k uint32) unix.SockFilter { return stmt(unix.BPF_RET|unix.BPF_K, k) }
	prog := []unix.SockFilter{
		stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, offArch),
		jeq(auditArchX86_64, 1, 0),
		ret(unix.SECCOMP_RET_TRACE),
	}
	// io_uring does file I/O the tracer cannot see: refused as a kernel without it would, so that programs
	// (libuv, liburing users) fall back to the syscalls it sees.
	prog = append(prog,
		stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, offNr),
		jeq(unix.SYS_IO_URING_SETUP, 0, 1),
		ret(unix.SECCOMP_RET_ERRNO|uint32(unix.ENOSYS)),
	)
	if all {
		return append(prog, ret(unix.SECCOMP_RET_TRACE))
	}
	var nrs []uint32
	for nr := range pathSyscalls {
		nrs = append(nrs, nr)
	}
	for i, nr := range nrs {
		// Jump to the RET_TRACE at the end when equal.
		prog = append(prog, jeq(nr, uint8(len(nrs)-i), 0))
	}
	return append(prog, ret(unix.SECCOMP_RET_ALLOW), ret(unix.SECCOMP_RET_TRACE))
}

// installFilter installs the program on the calling thread's process. Without CAP_SYS_ADMIN it sets
// no_new_privs first, as the kernel requires.
func installFilter(prog []unix.SockFilter, noNewPrivs bool) error {
	runtime.LockOSThread()
	if noNewPrivs {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("setting no_new_privs: %w", err)
		}
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	_, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&fprog)))
	if errno != 0 {
		return fmt.Errorf("installing the seccomp filter: %w", errno)
	}
	return nil
}
