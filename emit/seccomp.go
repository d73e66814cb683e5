package emit

import (
	"encoding/json"
	"maps"
	"slices"

	seccomp "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// seccompBaseline is what a process needs whatever it does, and what a runtime calls between loading the
// profile and the app's first instruction.
var seccompBaseline = []string{
	"execve", "exit", "exit_group", "rt_sigreturn", "rt_sigaction", "rt_sigprocmask", "futex", "brk", "mmap",
	"munmap", "mprotect", "arch_prctl", "set_tid_address", "set_robust_list", "rseq", "getpid", "gettid",
	"close", "fstat", "newfstatat", "prctl", "capget", "capset", "setgroups", "setuid", "setgid", "fcntl",
	"getppid", "read", "write", "openat", "sched_yield", "nanosleep", "clock_nanosleep", "restart_syscall",
	// runc's init, after it loads the profile and before it execs the app.
	"fstatfs", "statfs", "getdents64", "close_range", "readlinkat", "newfstatat", "fchdir", "chdir", "getcwd",
	"setresuid", "setresgid", "faccessat2", "access", "stat", "lstat", "statx", "epoll_create1", "epoll_ctl",
	"epoll_pwait", "sigaltstack", "getrandom", "madvise", "tgkill", "exit", "write", "pipe2", "dup3",
	"mlock", "munlock", "sched_getaffinity", "uname", "getuid", "getgid", "geteuid", "getegid", "prlimit64",
}

// enosys are the syscalls the sandbox answers with ENOSYS, as a kernel without them would, so that programs
// fall back to others: clone3 (docker's default profile does it, and glibc then uses clone) and io_uring
// (the sensor cannot see its I/O). The app was observed falling back, so the slim image's profile answers
// them the same way: with the default EPERM, glibc would not fall back and threads could not start.
var enosys = []string{"clone3", "io_uring_setup", "io_uring_enter", "io_uring_register"}

// SeccompProfile is a profile in the JSON format docker and podman take (--security-opt seccomp=FILE) that
// allows the observed syscalls and the baseline, and fails every other with EPERM. That format is docker's
// profile (moby/profiles/seccomp's Seccomp: the runtime-spec's LinuxSeccomp with docker's archMap and
// conditional rules), not the runtime-spec's LinuxSeccomp itself: podman reads it with containers/common's
// copy of the same types.
func SeccompProfile(observed []string) ([]byte, error) {
	set := map[string]bool{}
	for _, n := range slices.Concat(seccompBaseline, observed) {
		set[n] = true
	}
	rules := []*seccomp.Syscall{{LinuxSyscall: specs.LinuxSyscall{Names: slices.Sorted(maps.Keys(set)), Action: specs.ActAllow}}}
	var missing []string
	for _, n := range enosys {
		if !set[n] {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		e := uint(38) // Linux's ENOSYS (the profile is for a Linux kernel, wherever it is written)
		rules = append(rules, &seccomp.Syscall{LinuxSyscall: specs.LinuxSyscall{Names: missing, Action: specs.ActErrno, ErrnoRet: &e}})
	}
	return json.MarshalIndent(seccomp.Seccomp{
		LinuxSeccomp: specs.LinuxSeccomp{
			DefaultAction: specs.ActErrno,
			Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32},
		},
		Syscalls: rules,
	}, "", "  ")
}
