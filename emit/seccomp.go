package emit

import (
	"encoding/json"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	seccomp "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/slimoci/slimoci/internal/syscalls"
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

// SeccompProfile is SeccompProfileFor the host's own platform: the image runs where it was observed.
//
// Deprecated: use SeccompProfileFor with the image's platform.
func SeccompProfile(observed []string) ([]byte, error) {
	return SeccompProfileFor(v1.Platform{OS: "linux", Architecture: runtime.GOARCH}, observed)
}

// SeccompProfileFor is a profile in the JSON format docker and podman take (--security-opt seccomp=FILE)
// for an image of platform p (linux/amd64, linux/arm64, linux/arm/v7, linux/ppc64le, linux/s390x,
// linux/riscv64, linux/386; an empty architecture is the host's) that allows the observed syscalls and
// the baseline, and fails every other with EPERM. observed are the names the sensor recorded, which are
// the host's (runtime.GOARCH: the sensor is built for slimoci's own architecture).
//
// That format is docker's profile (moby/profiles/seccomp's Seccomp: the runtime-spec's LinuxSeccomp with
// docker's archMap and conditional rules), not the runtime-spec's LinuxSeccomp itself: podman reads it
// with containers/common's copy of the same types. Both loaders keep the archMap entry of the machine they
// run on and the rules whose includes.arches name it, so the profile says per host what it allows:
//
//   - on a host that runs p natively (p's machine; for linux/386 an x86_64 one too, for linux/arm an
//     arm64 one): p's architecture, and the observed names as p has them. A name p has is kept; one it
//     lacks becomes what a program calls there instead (open becomes openat, stat newfstatat or statx,
//     pipe pipe2, ...: see equivalents) or is left out (arch_prctl: see droppedCalls); a 32-bit p gets
//     the 64-bit forms of each too (fcntl64, clock_gettime64, getuid32), p's own start-up calls are added
//     (archBaseline), and a legacy name p has that the host has not got is added when its equivalent was
//     seen (a recording on arm64 shows openat for an amd64 program's open and openat alike).
//   - when p is not the host's (a foreign platform, observed under qemu-user through binfmt_misc), on a
//     host of the recording's machine as well: there the container's filter applies to the emulator, a
//     host program, whose syscalls are the host's and were exactly what was recorded. That entry lets the
//     image run the way it was observed; without it an x86_64 host refuses qemu's own calls (arch_prctl,
//     its x86_64 open, stat) and the emulated app dies at once.
//
// What an emulated run cannot tell: the emulator adds syscalls of its own (its mmap reservations, signal
// set-up, its reads of /proc/self/maps and /proc/sys/vm/mmap_min_addr) that the guest may never make, so
// p's names are a superset; and a guest call the emulator answers itself (32-bit arm's set_tls and
// cacheflush, riscv_hwprobe, a vDSO clock read where qemu-user has no vDSO, ...) or maps to another host
// call never shows: archBaseline and the equivalents cover those known.
func SeccompProfileFor(p v1.Platform, observed []string) ([]byte, error) {
	return seccompProfile(p, runtime.GOARCH, observed)
}

// seccompProfile is SeccompProfileFor with observed recorded on the machine recorded (a GOARCH).
func seccompProfile(p v1.Platform, recorded string, observed []string) ([]byte, error) {
	target := p.Architecture
	if target == "" {
		target = recorded
	}
	if p.OS != "" && p.OS != "linux" {
		return nil, fmt.Errorf("writing a seccomp profile for %s: seccomp is Linux's", platformString(p))
	}
	if _, ok := seccompArch[target]; !ok || syscalls.Names(target) == nil {
		return nil, fmt.Errorf("writing a seccomp profile for linux/%s: no syscall table for that architecture (known: %s)", target, strings.Join(slices.Sorted(maps.Keys(seccompArch)), ", "))
	}
	if _, ok := seccompArch[recorded]; !ok {
		return nil, fmt.Errorf("writing a seccomp profile: no syscall table for the recording's architecture %s", recorded)
	}
	hosts := append([]string{target}, nativeHosts[target]...)
	// Observed natively, the names are the target's: the sensor names a process's calls by its machine's
	// table. On arm64 it refuses AArch32: a 32-bit arm image there was observed under qemu too.
	native := recorded == target || target == "386" && recorded == "amd64"
	prof := seccomp.Seccomp{LinuxSeccomp: specs.LinuxSeccomp{DefaultAction: specs.ActErrno}}
	// The baseline is written in x86_64's names: each machine gets its own.
	baseline := func(arch string) []string { return targetNames(arch, arch, seccompBaseline) }
	names := slices.Concat(baseline(target), observed)
	if !native {
		names = targetNames(target, recorded, slices.Concat(seccompBaseline, observed))
	}
	for _, h := range hosts {
		var sub []specs.Arch
		switch {
		case h != target:
			sub = []specs.Arch{seccompArch[target].scmp}
		case h == "amd64":
			sub = []specs.Arch{specs.ArchX86, specs.ArchX32}
		}
		prof.ArchMap = append(prof.ArchMap, seccomp.Architecture{Arch: seccompArch[h].scmp, SubArches: sub})
	}
	prof.Syscalls = allowRules(names, hostNames(hosts), fmt.Sprintf("the syscalls of %s, as observed", platformString(p)))
	if !native {
		prof.ArchMap = append(prof.ArchMap, seccomp.Architecture{Arch: seccompArch[recorded].scmp})
		prof.Syscalls = append(prof.Syscalls, allowRules(slices.Concat(baseline(recorded), observed), hostNames([]string{recorded}),
			fmt.Sprintf("emulated on linux/%s: the emulator's syscalls, as recorded", recorded))...)
	}
	return json.MarshalIndent(prof, "", "  ")
}

// allowRules allow names on the hosts (includes.arches) and answer what the sandbox answered with ENOSYS
// the same way, unless names has it.
func allowRules(names, hosts []string, comment string) []*seccomp.Syscall {
	set := map[string]bool{}
	for _, n := range names {
		set[n] = true
	}
	on := &seccomp.Filter{Arches: hosts}
	rules := []*seccomp.Syscall{{LinuxSyscall: specs.LinuxSyscall{Names: slices.Sorted(maps.Keys(set)), Action: specs.ActAllow}, Includes: on, Comment: comment}}
	var missing []string
	for _, n := range enosys {
		if !set[n] {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		e := uint(38) // Linux's ENOSYS (the profile is for a Linux kernel, wherever it is written)
		rules = append(rules, &seccomp.Syscall{LinuxSyscall: specs.LinuxSyscall{Names: missing, Action: specs.ActErrno, ErrnoRet: &e}, Includes: on})
	}
	return rules
}

// hostNames are the loaders' names of the GOARCHes.
func hostNames(goarches []string) []string {
	var out []string
	for _, a := range goarches {
		out = append(out, seccompArch[a].host)
	}
	return out
}

// targetNames are the names, recorded on the machine recorded, as the architecture target has them (see
// SeccompProfileFor), with target's own start-up calls.
func targetNames(target, recorded string, names []string) []string {
	has := syscalls.Set(target)
	for _, n := range privateCalls[target] {
		has[n] = true
	}
	hostHas := syscalls.Set(recorded)
	out := map[string]bool{}
	add := func(n string) {
		if !has[n] {
			return
		}
		out[n] = true
		if is32Bit(target) {
			for _, suffix := range sixtyFourBit {
				if has[n+suffix] {
					out[n+suffix] = true
				}
			}
		}
	}
	for _, n := range slices.Concat(names, archBaseline[target]) {
		if has[n] {
			add(n)
			continue
		}
		for _, e := range equivalents[n] {
			add(e)
		}
	}
	// Legacy names and multiplexers the recording's machine could not show, until none is added (rename
	// comes with renameat, which comes with renameat2).
	implied := map[string][]string{}
	for legacy, eqs := range equivalents {
		implied[legacy] = eqs
	}
	for mux, carried := range multiplexers {
		implied[mux] = carried
	}
	for more := true; more; {
		more = false
		for n, by := range implied {
			if has[n] && !hostHas[n] && !out[n] && slices.ContainsFunc(by, func(e string) bool { return out[e] }) {
				add(n)
				more = true
			}
		}
	}
	return slices.Sorted(maps.Keys(out))
}

// is32Bit tells whether the GOARCH is a 32-bit one.
func is32Bit(goarch string) bool { return goarch == "386" || goarch == "arm" }

func platformString(p v1.Platform) string {
	if p.OS == "" {
		p.OS = "linux"
	}
	return p.String()
}
