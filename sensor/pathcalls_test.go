//go:build linux

package sensor

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// TestPathCallsNamed: every path call is named as the architecture's names table (internal/syscalls, checked
// against x/sys there) names its number.
func TestPathCallsNamed(t *testing.T) {
	for _, a := range arches {
		if len(a.calls) < 50 || len(a.names) < 300 {
			t.Errorf("arch %#x: %d path calls, %d names", a.audit, len(a.calls), len(a.names))
		}
		for nr, c := range a.calls {
			if a.names[nr] != c.Name {
				t.Errorf("arch %#x: path call %d is %q, the names table says %q", a.audit, nr, c.Name, a.names[nr])
			}
		}
	}
}

// spotCase is one syscall of a spot check (pathcalls_linux_*_test.go): what the kernel's prototype means.
type spotCase struct {
	name  string
	calls map[uint32]pathCall
	nr    uint32
	want  []pathArg // nil: not a path call
}

func pathArgAt(arg, dirfd, flags int8, op string) pathArg {
	return pathArg{Arg: arg, Kind: argPath, Dirfd: dirfd, Flags: flags, Len: -1, Op: op}
}

func spotCheck(t *testing.T, cases []spotCase) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, ok := tc.calls[tc.nr]
			if tc.want == nil {
				if ok {
					t.Fatalf("%d is a path call: %+v", tc.nr, c)
				}
				return
			}
			if !ok {
				t.Fatalf("%d is not a path call", tc.nr)
			}
			if !reflect.DeepEqual(c.Args, tc.want) {
				t.Errorf("%s: args %+v, want %+v", c.Name, c.Args, tc.want)
			}
		})
	}
}

// TestPathCallsWellFormed: every argument index is a syscall argument, the descriptor and flags are other
// arguments, and each kind has what it needs.
func TestPathCallsWellFormed(t *testing.T) {
	for _, ar := range arches {
		arch := ar.audit
		for nr, c := range ar.calls {
			if len(c.Args) == 0 {
				t.Errorf("arch %#x %d %s: no arguments", arch, nr, c.Name)
			}
			for _, a := range c.Args {
				ok := a.Arg >= 0 && a.Arg < 6 && a.Op != "" && a.Dirfd >= -1 && a.Dirfd < 6 && a.Dirfd != a.Arg &&
					a.Flags >= -1 && a.Flags < 6 && a.Flags != a.Arg && a.Len >= -1 && a.Len < 6
				switch a.Kind {
				case argPath:
					ok = ok && a.Len == -1
				case argFD:
					ok = ok && a.Len == -1 && a.Dirfd == -1 && a.Flags == -1
				case argSockaddr:
					ok = ok && a.Len >= 0 && a.Dirfd == -1 && a.Flags == -1
				default:
					ok = false
				}
				if a.Flags >= 0 && a.Dirfd < 0 {
					ok = false // AT_EMPTY_PATH names the descriptor's file: there must be one
				}
				if !ok {
					t.Errorf("arch %#x %d %s: malformed %+v", arch, nr, c.Name, a)
				}
			}
		}
	}
}

// TestPathCallsGenerated: the committed files are what the generator makes from the kernel source.
func TestPathCallsGenerated(t *testing.T) {
	if testing.Short() {
		t.Skip("reads the whole kernel source tarball (about 10 s)")
	}
	if m, _ := filepath.Glob("/usr/src/linux-source-*.tar.xz"); len(m) == 0 {
		t.Skip("no /usr/src/linux-source-*.tar.xz: install linux-source-6.12 (testdata/testbed.sh deps does)")
	}
	dir := t.TempDir()
	cmd := exec.Command("go", "run", "../internal/gensyscalls", "-sensor", dir, "-syscalls", dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("running the generator: %v\n%s", err, out)
	}
	for _, f := range []string{"zpathcalls_linux_amd64.go", "zpathcalls_linux_arm64.go", "../internal/syscalls/zsyscalls.go"} {
		want, err := os.ReadFile(filepath.Join(dir, filepath.Base(f)))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is not what internal/gensyscalls makes: run go generate ./sensor", f)
		}
	}
}

// runFilter runs prog, as the kernel would, on the seccomp_data of a syscall nr of architecture arch, with
// x/net/bpf's interpreter. That one loads words big-endian (network order) where seccomp loads them in the
// machine's order: the data is written big-endian, so that the program sees the values meant.
func runFilter(t *testing.T, prog []unix.SockFilter, arch, nr uint32) uint32 {
	t.Helper()
	raw := make([]bpf.Instruction, len(prog))
	for i, in := range prog {
		raw[i] = bpf.RawInstruction{Op: in.Code, Jt: in.Jt, Jf: in.Jf, K: in.K}.Disassemble()
	}
	vm, err := bpf.NewVM(raw)
	if err != nil {
		t.Fatalf("the filter is not a valid program: %v", err)
	}
	data := make([]byte, 64) // struct seccomp_data
	binary.BigEndian.PutUint32(data[offNr:], nr)
	binary.BigEndian.PutUint32(data[offArch:], arch)
	// The VM returns the low 32 bits of a RET as an int: the action and its data.
	out, err := vm.Run(data)
	if err != nil {
		t.Fatal(err)
	}
	return uint32(out)
}

// TestTraceFilter runs the trace filter of each mode on every architecture the sensor decodes: the path
// calls are traced and only they (every call in all mode), io_uring_setup and other architectures fail
// with ENOSYS, and so do x32's numbers on x86_64.
func TestTraceFilter(t *testing.T) {
	enosys := unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)
	for _, all := range []bool{false, true} {
		prog := traceFilter(all)
		for _, a := range arches {
			for nr, name := range a.names {
				want := uint32(unix.SECCOMP_RET_ALLOW)
				if _, ok := a.calls[nr]; ok || all {
					want = unix.SECCOMP_RET_TRACE
				}
				if name == "io_uring_setup" {
					want = enosys
				}
				if got := runFilter(t, prog, a.audit, nr); got != want {
					t.Errorf("all=%v arch %#x %s (%d): %#x, want %#x", all, a.audit, name, nr, got, want)
				}
				if a.x32 {
					if got := runFilter(t, prog, a.audit, nr|x32SyscallBit); got != enosys {
						t.Errorf("all=%v x32 %s: %#x, want ENOSYS", all, name, got)
					}
				}
			}
		}
		// AUDIT_ARCH_ARM (32-bit arm, which an arm64 kernel may run) and mips are not decoded.
		for _, other := range []uint32{0x40000028, 0x8} {
			if _, ok := tablesFor(other); ok {
				continue
			}
			if got := runFilter(t, prog, other, 5); got != enosys {
				t.Errorf("all=%v arch %#x: %#x, want ENOSYS", all, other, got)
			}
		}
	}
}
