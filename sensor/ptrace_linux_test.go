package sensor

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// SkipWithoutPtrace skips a test that traces when ptrace(2) is not implemented: under qemu-user, which
// answers ptrace (and seccomp filters) with ENOSYS, as when the arm64 tests run on an x86_64 machine
// through binfmt_misc. On a kernel, peeking at a process one does not trace fails with ESRCH.
func SkipWithoutPtrace(t testing.TB) {
	t.Helper()
	_, _, e := unix.Syscall6(unix.SYS_PTRACE, unix.PTRACE_PEEKDATA, uintptr(os.Getpid()), 0, 0, 0, 0)
	if e == unix.ENOSYS {
		t.Skip("ptrace(2) is not implemented here (ENOSYS): an emulator such as qemu-user runs the tests")
	}
}
