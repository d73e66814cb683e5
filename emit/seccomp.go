package emit

import (
	"encoding/json"
	"sort"
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

type seccompProfile struct {
	DefaultAction string        `json:"defaultAction"`
	Architectures []string      `json:"architectures"`
	Syscalls      []seccompRule `json:"syscalls"`
}

type seccompRule struct {
	Names    []string `json:"names"`
	Action   string   `json:"action"`
	ErrnoRet *uint    `json:"errnoRet,omitempty"`
}

// enosys are the syscalls the sandbox answers with ENOSYS, as a kernel without them would, so that programs
// fall back to others: clone3 (docker's default profile does it, and glibc then uses clone) and io_uring
// (the sensor cannot see its I/O). The app was observed falling back, so the slim image's profile answers
// them the same way: with the default EPERM, glibc would not fall back and threads could not start.
var enosys = []string{"clone3", "io_uring_setup", "io_uring_enter", "io_uring_register"}

// SeccompProfile is a profile in the JSON format docker and podman take (--security-opt seccomp=FILE) that
// allows the observed syscalls and the baseline, and fails every other with EPERM.
func SeccompProfile(observed []string) ([]byte, error) {
	set := map[string]bool{}
	for _, n := range append(append([]string(nil), seccompBaseline...), observed...) {
		set[n] = true
	}
	names := make([]string, 0, len(set))
	for n := range set {
		names = append(names, n)
	}
	sort.Strings(names)
	rules := []seccompRule{{Names: names, Action: "SCMP_ACT_ALLOW"}}
	var missing []string
	for _, n := range enosys {
		if !set[n] {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		e := uint(38) // ENOSYS
		rules = append(rules, seccompRule{Names: missing, Action: "SCMP_ACT_ERRNO", ErrnoRet: &e})
	}
	return json.MarshalIndent(seccompProfile{
		DefaultAction: "SCMP_ACT_ERRNO",
		Architectures: []string{"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"},
		Syscalls:      rules,
	}, "", "  ")
}
