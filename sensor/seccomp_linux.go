package sensor

import (
	"fmt"
	"runtime"
	"slices"
	"unsafe"

	"golang.org/x/sys/unix"
)

// seccompData offsets (struct seccomp_data).
const (
	offNr   = 0
	offArch = 4
)

// traceFilter is a seccomp program: RET_TRACE for the syscalls that name files (each of arches' calls:
// pathCallsAMD64, and pathCallsI386 for a 64-bit process's int 0x80, on x86_64; pathCallsARM64 on arm64)
// and, when all is set, for every syscall, so the tracer learns the whole set for a seccomp profile;
// RET_ALLOW otherwise. What the tracer could not decode is refused, not let through unseen: the x32 ABI's
// numbers and any other architecture (32-bit arm on arm64) fail with ENOSYS, as on a kernel without them.
// io_uring does file I/O no syscall shows: refused the same way, so that programs (libuv, liburing users)
// fall back to the syscalls the tracer sees.
func traceFilter(all bool) []unix.SockFilter {
	enosys := unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)
	blocks := make([][]unix.SockFilter, len(arches))
	for i, a := range arches {
		blocks[i] = archBlock(a, all)
	}
	// One test per architecture, jumping to its block past the ENOSYS that follows them all.
	prog := []unix.SockFilter{stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, offArch)}
	skip := len(arches)
	for i, a := range arches {
		prog = append(prog, jeq(a.audit, jump(skip-i), 0))
		skip += len(blocks[i])
	}
	prog = append(prog, ret(enosys))
	for _, b := range blocks {
		prog = append(prog, b...)
	}
	return prog
}

// jump is a conditional jump's offset, which BPF holds in 8 bits: the generated tables keep every block
// shorter (the longest, x86_64's path calls, is about 100), so a longer one is a bug in the tables.
func jump(n int) uint8 {
	if n > 255 {
		panic(fmt.Sprintf("sensor: a seccomp jump of %d instructions", n))
	}
	return uint8(n)
}

// archBlock is the filter's part for one architecture, entered with nothing loaded: it ends in a return on
// every path.
func archBlock(a archTables, all bool) []unix.SockFilter {
	enosys := unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)
	b := []unix.SockFilter{stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, offNr)}
	if a.x32 {
		b = append(b, unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K, K: x32SyscallBit, Jt: 0, Jf: 1}, ret(enosys))
	}
	b = append(b, jeq(a.ioUringSetup(), 0, 1), ret(enosys))
	if all {
		return append(b, ret(unix.SECCOMP_RET_TRACE))
	}
	nrs := make([]uint32, 0, len(a.calls))
	for nr := range a.calls {
		nrs = append(nrs, nr)
	}
	slices.Sort(nrs)
	for i, nr := range nrs {
		// Jump to the RET_TRACE at the end when equal.
		b = append(b, jeq(nr, jump(len(nrs)-i), 0))
	}
	return append(b, ret(unix.SECCOMP_RET_ALLOW), ret(unix.SECCOMP_RET_TRACE))
}

func stmt(code uint16, k uint32) unix.SockFilter { return unix.SockFilter{Code: code, K: k} }

func jeq(k uint32, jt, jf uint8) unix.SockFilter {
	return unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: k, Jt: jt, Jf: jf}
}

func ret(k uint32) unix.SockFilter { return stmt(unix.BPF_RET|unix.BPF_K, k) }

// installFilter installs the program on the calling thread, which must be locked to its goroutine and be
// the one that execs the app: the Go runtime's other threads stay unseen (with TSYNC their own syscalls, a
// nanosleep, a futex, were in the record) and die at the exec. Without CAP_SYS_ADMIN it sets no_new_privs
// first, as the kernel requires.
func installFilter(prog []unix.SockFilter, noNewPrivs bool) error {
	runtime.LockOSThread()
	if noNewPrivs {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("setting no_new_privs: %w", err)
		}
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	_, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, 0, uintptr(unsafe.Pointer(&fprog)))
	if errno != 0 {
		return fmt.Errorf("installing the seccomp filter: %w", errno)
	}
	return nil
}
