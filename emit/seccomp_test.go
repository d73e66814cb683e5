package emit

import (
	"encoding/json"
	"slices"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	seccomp "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/slimoci/slimoci/internal/syscalls"
)

// The slim image's profile answers what the sandbox answered with ENOSYS the same way (the app was seen
// falling back from it), unless the app was seen using it.
func TestSeccompProfileENOSYS(t *testing.T) {
	for _, c := range []struct {
		observed []string
		enosys   []string
	}{
		{[]string{"clone", "read"}, []string{"clone3", "io_uring_setup", "io_uring_enter", "io_uring_register"}},
		{[]string{"clone3", "io_uring_setup", "io_uring_enter", "io_uring_register"}, nil},
	} {
		b, err := SeccompProfile(c.observed)
		if err != nil {
			t.Fatal(err)
		}
		var p seccomp.Seccomp
		if err := json.Unmarshal(b, &p); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range p.Syscalls {
			if r.Action == "SCMP_ACT_ERRNO" {
				if r.ErrnoRet == nil || *r.ErrnoRet != 38 {
					t.Errorf("errno rule %+v: want errnoRet 38", r)
				}
				got = append(got, r.Names...)
			}
			if r.Action == "SCMP_ACT_ALLOW" {
				for _, n := range c.observed {
					if !slices.Contains(r.Names, n) {
						t.Errorf("observed %s not allowed", n)
					}
				}
			}
		}
		if !slices.Equal(got, c.enosys) {
			t.Errorf("observed %v: ENOSYS for %v, want %v", c.observed, got, c.enosys)
		}
	}
}

// parsedProfile is a profile read back: its archMap and, by the host a rule includes, its allowed names.
type parsedProfile struct {
	archMap map[specs.Arch][]specs.Arch
	allowed map[string][]string // includes.arches entry -> allowed names
	enosys  map[string][]string
}

func parseProfile(t *testing.T, b []byte) parsedProfile {
	t.Helper()
	var p seccomp.Seccomp
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	if p.DefaultAction != specs.ActErrno || len(p.Architectures) != 0 {
		t.Fatalf("default %s, architectures %v: want EPERM and an archMap", p.DefaultAction, p.Architectures)
	}
	out := parsedProfile{archMap: map[specs.Arch][]specs.Arch{}, allowed: map[string][]string{}, enosys: map[string][]string{}}
	for _, a := range p.ArchMap {
		out.archMap[a.Arch] = a.SubArches
	}
	for _, r := range p.Syscalls {
		if r.Includes == nil || len(r.Includes.Arches) == 0 {
			t.Fatalf("rule %+v includes no host", r)
		}
		for _, h := range r.Includes.Arches {
			switch r.Action {
			case specs.ActAllow:
				out.allowed[h] = append(out.allowed[h], r.Names...)
			case specs.ActErrno:
				out.enosys[h] = append(out.enosys[h], r.Names...)
			}
		}
	}
	return out
}

// x86_64Recording is what a recording on x86_64 may hold, legacy calls and x86's own included.
var x86_64Recording = []string{
	"open", "stat", "lstat", "access", "pipe", "dup2", "poll", "select", "epoll_wait", "fork", "vfork", "rename",
	"getdents", "arch_prctl", "socket", "bind", "listen", "accept", "fcntl", "getuid", "clock_gettime", "mmap",
	"readlink", "unlink", "mkdir", "time", "iopl",
}

// An arm64 image observed under qemu on x86_64: the arm64 hosts' rule has AArch64 and arm64's names only,
// each recorded legacy call as the calls arm64 has instead; the x86_64 hosts' rule (the emulated run) has
// what was recorded.
func TestSeccompProfileARM64FromX86_64(t *testing.T) {
	b, err := seccompProfile(v1.Platform{OS: "linux", Architecture: "arm64"}, "amd64", x86_64Recording)
	if err != nil {
		t.Fatal(err)
	}
	p := parseProfile(t, b)
	if subs, ok := p.archMap[specs.ArchAARCH64]; !ok || len(subs) != 0 {
		t.Errorf("archMap %v: want AArch64 alone", p.archMap)
	}
	if _, ok := p.archMap[specs.ArchX86_64]; !ok || len(p.archMap) != 2 {
		t.Errorf("archMap %v: want x86_64 too, for the emulated run", p.archMap)
	}
	arm64, has := p.allowed["arm64"], syscalls.Set("arm64")
	for _, n := range arm64 {
		if !has[n] {
			t.Errorf("arm64 has no %s", n)
		}
	}
	for _, n := range []string{
		"openat", "newfstatat", "statx", "faccessat", "faccessat2", "pipe2", "dup3", "ppoll", "pselect6", "epoll_pwait",
		"clone", "renameat", "renameat2", "getdents64", "socket", "accept", "readlinkat", "unlinkat", "mkdirat",
		"clock_gettime", "execve", "set_tid_address", "rseq",
	} {
		if !slices.Contains(arm64, n) {
			t.Errorf("arm64's rule lacks %s", n)
		}
	}
	emulated := p.allowed["amd64"]
	for _, n := range x86_64Recording {
		if !slices.Contains(emulated, n) {
			t.Errorf("the emulated run's rule lacks the recorded %s", n)
		}
	}
	if !slices.Contains(p.enosys["arm64"], "clone3") || !slices.Contains(p.enosys["amd64"], "clone3") {
		t.Errorf("clone3 not ENOSYS on both: %v", p.enosys)
	}
}

// A recording on arm64 cannot tell a program's open from its openat: an amd64 profile from it has both
// (and its stat, rename, ...; not renameat, which arm64 has too and would have shown); a 32-bit arm one has the 64-bit-time and large-file forms and arm's own
// thread-pointer call.
func TestSeccompProfileLegacyAnd32Bit(t *testing.T) {
	b, err := seccompProfile(v1.Platform{OS: "linux", Architecture: "amd64"}, "arm64", []string{"openat", "newfstatat", "renameat2", "pipe2"})
	if err != nil {
		t.Fatal(err)
	}
	amd64 := parseProfile(t, b).allowed["amd64"]
	for _, n := range []string{"open", "creat", "openat", "stat", "lstat", "newfstatat", "rename", "renameat2", "pipe", "pipe2", "arch_prctl"} {
		if !slices.Contains(amd64, n) {
			t.Errorf("amd64 from arm64: no %s in %v", n, amd64)
		}
	}
	b, err = seccompProfile(v1.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}, "amd64", x86_64Recording)
	if err != nil {
		t.Fatal(err)
	}
	p := parseProfile(t, b)
	if subs := p.archMap[specs.ArchAARCH64]; !slices.Equal(subs, []specs.Arch{specs.ArchARM}) {
		t.Errorf("archMap %v: want ARM natively and as AArch64's sub-architecture", p.archMap)
	}
	arm := p.allowed["arm"]
	if !slices.Equal(arm, p.allowed["arm64"]) {
		t.Errorf("arm hosts %v, arm64 hosts %v: want the same names", arm, p.allowed["arm64"])
	}
	for _, n := range []string{"fcntl64", "getuid32", "clock_gettime64", "mmap2", "stat64", "set_tls", "cacheflush", "_newselect"} {
		if !slices.Contains(arm, n) {
			t.Errorf("arm: no %s", n)
		}
	}
	if slices.Contains(arm, "arch_prctl") || slices.Contains(arm, "socketcall") {
		t.Errorf("arm: x86's arch_prctl or OABI's socketcall in %v", arm)
	}
	// s390x's glibc may carry the socket calls in socketcall, which x86_64 has not got.
	b, err = seccompProfile(v1.Platform{OS: "linux", Architecture: "s390x"}, "amd64", []string{"socket", "accept"})
	if err != nil {
		t.Fatal(err)
	}
	s390x := parseProfile(t, b).allowed["s390x"]
	for _, n := range []string{"socket", "accept4", "socketcall"} {
		if !slices.Contains(s390x, n) {
			t.Errorf("s390x: no %s in %v", n, s390x)
		}
	}
}

// For every platform, from the widest recording (every name of the recording machine's table), each name
// a platform's hosts are allowed is one of its syscalls.
func TestSeccompProfileNamesExist(t *testing.T) {
	for _, recorded := range []string{"amd64", "arm64"} {
		var all []string
		for _, n := range syscalls.Names(recorded) {
			all = append(all, n)
		}
		for _, plat := range []string{"linux/amd64", "linux/386", "linux/arm64", "linux/arm/v7", "linux/ppc64le", "linux/s390x", "linux/riscv64"} {
			t.Run(recorded+"-"+plat, func(t *testing.T) {
				pl, err := v1.ParsePlatform(plat)
				if err != nil {
					t.Fatal(err)
				}
				b, err := seccompProfile(*pl, recorded, all)
				if err != nil {
					t.Fatal(err)
				}
				p := parseProfile(t, b)
				has := syscalls.Set(pl.Architecture)
				for _, n := range privateCalls[pl.Architecture] {
					has[n] = true
				}
				if pl.Architecture == "386" && recorded == "amd64" {
					// Observed natively: the sensor names an i386 process's calls by i386's table, and an
					// x86_64 one's by its own: both machines' names are the x86_64 hosts'.
					for n := range syscalls.Set("amd64") {
						has[n] = true
					}
				}
				host := seccompArch[pl.Architecture].host
				if len(p.allowed[host]) < 100 {
					t.Fatalf("%s: %d names allowed", host, len(p.allowed[host]))
				}
				for _, n := range p.allowed[host] {
					if !has[n] {
						t.Errorf("%s has no syscall %s", plat, n)
					}
				}
				if _, ok := p.archMap[seccompArch[pl.Architecture].scmp]; !ok {
					t.Errorf("archMap %v lacks %s", p.archMap, seccompArch[pl.Architecture].scmp)
				}
			})
		}
	}
}

// TestSeccompEquivalentsCover: every name of a recording machine that another machine lacks has
// equivalents there or a reason to be dropped, and the tables name only syscalls.
func TestSeccompEquivalentsCover(t *testing.T) {
	anywhere := map[string]bool{}
	for _, a := range syscalls.Arches() {
		for n := range syscalls.Set(a) {
			anywhere[n] = true
		}
		for _, n := range privateCalls[a] {
			anywhere[n] = true
		}
	}
	for _, recorded := range []string{"amd64", "arm64"} {
		for _, target := range syscalls.Arches() {
			has := syscalls.Set(target)
			for n := range syscalls.Set(recorded) {
				if has[n] {
					continue
				}
				if _, ok := droppedCalls[n]; ok {
					continue
				}
				if !slices.ContainsFunc(equivalents[n], func(e string) bool { return has[e] }) {
					t.Errorf("%s's %s is not on %s: add its equivalents there or a reason to drop it", recorded, n, target)
				}
			}
		}
	}
	for n, eqs := range equivalents {
		for _, e := range append([]string{n}, eqs...) {
			if !anywhere[e] {
				t.Errorf("equivalents: %s is no syscall", e)
			}
		}
	}
	for n := range droppedCalls {
		if !anywhere[n] {
			t.Errorf("droppedCalls: %s is no syscall", n)
		}
	}
	for _, names := range []map[string][]string{multiplexers, archBaseline} {
		for k, v := range names {
			for _, n := range v {
				if !anywhere[n] {
					t.Errorf("%s: %s is no syscall", k, n)
				}
			}
		}
	}
}

// A platform with no table, or not Linux, is a clear error.
func TestSeccompProfileUnknownPlatform(t *testing.T) {
	for _, p := range []v1.Platform{{OS: "linux", Architecture: "mips64le"}, {OS: "windows", Architecture: "amd64"}} {
		if _, err := SeccompProfileFor(p, []string{"read"}); err == nil {
			t.Errorf("%s: no error", p.String())
		}
	}
}
