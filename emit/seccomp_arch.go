package emit

// The facts a profile for another architecture than the recording's needs, as data: which seccomp
// architecture each GOARCH is, and what a program calls on an architecture that lacks a syscall. The
// syscall names themselves are the kernel's tables (internal/syscalls). TestSeccompEquivalentsCover checks
// that every name of a recording architecture that another architecture lacks is here, mapped or dropped.

import specs "github.com/opencontainers/runtime-spec/specs-go"

// seccompArch is what a profile says of one GOARCH: its libseccomp architecture and the name docker's and
// podman's loaders give it (their goToNative: what a rule's includes.arches holds, the runtime's host).
var seccompArch = map[string]struct {
	scmp specs.Arch
	host string
}{
	"amd64":   {specs.ArchX86_64, "amd64"},
	"386":     {specs.ArchX86, "x86"},
	"arm64":   {specs.ArchAARCH64, "arm64"},
	"arm":     {specs.ArchARM, "arm"},
	"ppc64le": {specs.ArchPPC64LE, "ppc64le"},
	"s390x":   {specs.ArchS390X, "s390x"},
	"riscv64": {specs.ArchRISCV64, "riscv64"},
}

// nativeHosts are, by GOARCH, the other machines whose kernels run its programs natively, as a
// sub-architecture: an x86_64 kernel runs i386 programs, an arm64 one may run 32-bit arm ones (AArch32,
// where the CPU has it).
var nativeHosts = map[string][]string{
	"386": {"amd64"},
	"arm": {"arm64"},
}

// privateCalls are the syscalls of an architecture its kernel's syscall table does not list, which
// libseccomp names: 32-bit arm's own (__ARM_NR_*, at 0x0f0000 and up).
var privateCalls = map[string][]string{
	"arm": {"breakpoint", "cacheflush", "set_tls", "usr26", "usr32"},
}

// archBaseline are, by GOARCH, what a program there calls at start beyond seccompBaseline (mapped), which
// an emulated run never shows: qemu-user answers them itself. glibc's armhf start sets its thread pointer
// with set_tls, and programs that write code clear caches with cacheflush; riscv64's glibc asks
// riscv_hwprobe for the CPU's extensions, and riscv_flush_icache is its cache flush.
var archBaseline = map[string][]string{
	"arm":     {"set_tls", "cacheflush"},
	"riscv64": {"riscv_hwprobe", "riscv_flush_icache"},
}

// equivalents are, for a syscall some architectures lack, what glibc calls there instead (its
// sysdeps/unix/sysv/linux fallbacks for the generic table of arm64 and riscv64, and 32-bit arm's and
// i386's own forms). A recorded name the target has is kept as it is; one it lacks becomes those of these
// it has. The other way, a target that has a legacy name the recording's architecture lacks gets it when
// the recording shows one of its equivalents: a program there may call either, an emulator maps both to
// the same host call, and the recording cannot tell which.
var equivalents = map[string][]string{
	"open":            {"openat"},
	"creat":           {"openat"},
	"stat":            {"newfstatat", "fstatat64", "statx"},
	"lstat":           {"newfstatat", "fstatat64", "statx"},
	"newfstatat":      {"fstatat64", "statx"},
	"access":          {"faccessat", "faccessat2"},
	"chmod":           {"fchmodat"},
	"chown":           {"fchownat"},
	"lchown":          {"fchownat"},
	"link":            {"linkat"},
	"unlink":          {"unlinkat"},
	"rmdir":           {"unlinkat"},
	"mkdir":           {"mkdirat"},
	"mknod":           {"mknodat"},
	"symlink":         {"symlinkat"},
	"readlink":        {"readlinkat"},
	"rename":          {"renameat", "renameat2"},
	"renameat":        {"renameat2"},
	"utime":           {"utimensat", "utimensat_time64"},
	"utimes":          {"utimensat", "utimensat_time64"},
	"futimesat":       {"utimensat", "utimensat_time64"},
	"getdents":        {"getdents64"},
	"pipe":            {"pipe2"},
	"dup2":            {"dup3", "fcntl", "fcntl64"},
	"poll":            {"ppoll", "ppoll_time64"},
	"select":          {"pselect6", "pselect6_time64", "_newselect"},
	"pause":           {"ppoll", "ppoll_time64", "rt_sigsuspend"},
	"epoll_create":    {"epoll_create1"},
	"epoll_wait":      {"epoll_pwait"},
	"eventfd":         {"eventfd2"},
	"signalfd":        {"signalfd4"},
	"inotify_init":    {"inotify_init1"},
	"fork":            {"clone"},
	"vfork":           {"clone"},
	"getpgrp":         {"getpgid"},
	"alarm":           {"setitimer"},
	"time":            {"clock_gettime", "clock_gettime64"},
	"mmap":            {"mmap2"},
	"getrlimit":       {"ugetrlimit", "prlimit64"},
	"fadvise64":       {"fadvise64_64", "arm_fadvise64_64"},
	"sync_file_range": {"sync_file_range2", "arm_sync_file_range"},
	"accept":          {"accept4"},
	"semop":           {"semtimedop", "semtimedop_time64"},
	"semtimedop":      {"semtimedop_time64"},
}

// droppedCalls are the names of a recording architecture another lacks with nothing to call instead, and
// why: a recorded one is left out of that architecture's profile.
var droppedCalls = map[string]string{
	"arch_prctl":      "x86's thread pointer and CPUID control: other machines set the thread pointer in a register",
	"modify_ldt":      "x86's segment descriptors",
	"get_thread_area": "x86's (and mips') TLS segments",
	"set_thread_area": "x86's (and mips') TLS segments",
	"ioperm":          "x86's I/O ports",
	"iopl":            "x86's I/O ports",
	"uprobe":          "x86's uprobe trampoline, the kernel's own",
	"uretprobe":       "x86's uretprobe trampoline, the kernel's own",
	"_sysctl":         "removed in Linux 5.5: ENOSYS everywhere",
	"uselib":          "a.out libraries",
	"ustat":           "obsolete (glibc 2.28 dropped its wrapper)",
	"sysfs":           "obsolete",
	"memfd_secret":    "not built on that architecture: no equivalent",
	"kexec_file_load": "not on i386: no equivalent",
	"epoll_ctl_old":   "never implemented",
	"epoll_wait_old":  "never implemented",
	"afs_syscall":     "never implemented",
	"create_module":   "never implemented since Linux 2.6",
	"get_kernel_syms": "never implemented since Linux 2.6",
	"query_module":    "never implemented since Linux 2.6",
	"getpmsg":         "never implemented",
	"putpmsg":         "never implemented",
	"security":        "never implemented",
	"tuxcall":         "never implemented",
	"vserver":         "never implemented",
}

// sixtyFourBit are the suffixes of a 32-bit architecture's forms of a call with 64-bit offsets, times or
// ids (fcntl64, fstatat64, clock_gettime64, futex_time64, getuid32): on arm and i386 a program calls
// these (glibc's 64-bit time since 2.34, its large-file forms), which an emulator maps to the 64-bit
// host's plain name. A profile for a 32-bit architecture allows each recorded name's forms too.
var sixtyFourBit = []string{"64", "_time64", "32"}

// multiplexers are 32-bit calls that carry others, which glibc calls on i386 and s390x where the kernel it
// is built for lacks the direct ones (Linux 4.3 added those): socketcall for the socket calls, ipc for
// SysV IPC. A profile for a target that has them allows them when the recording shows one they carry.
var multiplexers = map[string][]string{
	"socketcall": {
		"socket", "bind", "connect", "listen", "accept", "accept4", "getsockname", "getpeername", "socketpair",
		"sendto", "recvfrom", "shutdown", "setsockopt", "getsockopt", "sendmsg", "recvmsg", "sendmmsg", "recvmmsg",
	},
	"ipc": {"semop", "semget", "semctl", "semtimedop", "msgsnd", "msgrcv", "msgget", "msgctl", "shmat", "shmdt", "shmget", "shmctl"},
}
