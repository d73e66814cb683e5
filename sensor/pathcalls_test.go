//go:build linux && amd64

package sensor

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// xsysNumbers reads the syscall numbers golang.org/x/sys knows for arch ("amd64", "386") from its
// zsysnum_linux_<arch>.go in the module directory: name (lower case, as the kernel's tables spell it) to
// number. Constants cannot be listed by reflection.
func xsysNumbers(t *testing.T, arch string) map[string]uint32 {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "golang.org/x/sys").Output()
	if err != nil {
		t.Fatalf("finding golang.org/x/sys's module directory: %v", err)
	}
	file := filepath.Join(strings.TrimSpace(string(out)), "unix", "zsysnum_linux_"+arch+".go")
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	nums := map[string]uint32{}
	for _, m := range regexp.MustCompile(`(?m)^\s*SYS_(\w+)\s*=\s*(\d+)\s*$`).FindAllSubmatch(src, -1) {
		n, err := strconv.ParseUint(string(m[2]), 10, 32)
		if err != nil {
			t.Fatal(err)
		}
		nums[strings.ToLower(string(m[1]))] = uint32(n)
	}
	if len(nums) < 300 {
		t.Fatalf("%s: only %d syscall numbers read", file, len(nums))
	}
	return nums
}

// TestSyscallTablesMatchXSys: the generated names agree with x/sys both ways (a syscall x/sys knows and the
// tables do not fails with its name: add it to the generator's supplement), and every path call is named
// as its number is.
func TestSyscallTablesMatchXSys(t *testing.T) {
	for _, tc := range []struct {
		arch  string
		names map[uint32]string
		calls map[uint32]pathCall
	}{
		{"amd64", syscallNames, pathCallsAMD64},
		{"386", syscallNamesI386, pathCallsI386},
	} {
		t.Run(tc.arch, func(t *testing.T) {
			xsys := xsysNumbers(t, tc.arch)
			ours := map[string]uint32{}
			for nr, name := range tc.names {
				ours[name] = nr
				if x, ok := xsys[name]; !ok {
					t.Errorf("%s is %d in the generated table, x/sys has no SYS_%s", name, nr, strings.ToUpper(name))
				} else if x != nr {
					t.Errorf("%s is %d in the generated table, %d in x/sys", name, nr, x)
				}
			}
			for name, nr := range xsys {
				if _, ok := ours[name]; !ok {
					t.Errorf("x/sys knows %s (%d), the generated tables do not: add it to the supplement in internal/gensyscalls/rules.go", name, nr)
				}
			}
			for nr, c := range tc.calls {
				if tc.names[nr] != c.Name {
					t.Errorf("path call %d is %q, the names table says %q", nr, c.Name, tc.names[nr])
				}
			}
		})
	}
}

// TestPathCallsSpotChecks would catch a wrong rule: each case is what the kernel's prototype means.
func TestPathCallsSpotChecks(t *testing.T) {
	p := func(arg, dirfd, flags int8, op string) pathArg {
		return pathArg{Arg: arg, Kind: argPath, Dirfd: dirfd, Flags: flags, Len: -1, Op: op}
	}
	for _, tc := range []struct {
		name  string
		calls map[uint32]pathCall
		nr    uint32
		want  []pathArg // nil: not a path call
	}{
		{"openat", pathCallsAMD64, unix.SYS_OPENAT, []pathArg{p(1, 0, -1, "open")}},
		{"open", pathCallsAMD64, unix.SYS_OPEN, []pathArg{p(0, -1, -1, "open")}},
		{"renameat2", pathCallsAMD64, unix.SYS_RENAMEAT2, []pathArg{p(1, 0, -1, "rename"), p(3, 2, -1, "rename-to")}},
		// The link's content is not looked up: only the new name.
		{"symlinkat", pathCallsAMD64, unix.SYS_SYMLINKAT, []pathArg{p(2, 1, -1, "symlink")}},
		{"symlink", pathCallsAMD64, unix.SYS_SYMLINK, []pathArg{p(1, -1, -1, "symlink")}},
		// The attribute's name is not a path.
		{"setxattr", pathCallsAMD64, unix.SYS_SETXATTR, []pathArg{p(0, -1, -1, "xattr")}},
		// Not the filesystem type (2) or the data (4).
		{"mount", pathCallsAMD64, unix.SYS_MOUNT, []pathArg{p(0, -1, -1, "mount"), p(1, -1, -1, "mountpoint")}},
		{"execveat", pathCallsAMD64, unix.SYS_EXECVEAT, []pathArg{p(1, 0, 4, "exec")}},
		// AT_EMPTY_PATH applies to the old name only.
		{"linkat", pathCallsAMD64, unix.SYS_LINKAT, []pathArg{p(1, 0, 4, "hardlink"), p(3, 2, -1, "hardlink-to")}},
		{"statx", pathCallsAMD64, unix.SYS_STATX, []pathArg{p(1, 0, 2, "stat")}},
		{"newfstatat", pathCallsAMD64, unix.SYS_NEWFSTATAT, []pathArg{p(1, 0, 3, "stat")}},
		// The inotify descriptor is not a directory.
		{"inotify_add_watch", pathCallsAMD64, unix.SYS_INOTIFY_ADD_WATCH, []pathArg{p(1, -1, -1, "watch")}},
		{"fchdir", pathCallsAMD64, unix.SYS_FCHDIR, []pathArg{{Arg: 0, Kind: argFD, Dirfd: -1, Flags: -1, Len: -1, Op: "chdir"}}},
		{"connect", pathCallsAMD64, unix.SYS_CONNECT, []pathArg{{Arg: 1, Kind: argSockaddr, Dirfd: -1, Flags: -1, Len: 2, Op: "connect"}}},
		{"bind", pathCallsAMD64, unix.SYS_BIND, []pathArg{{Arg: 1, Kind: argSockaddr, Dirfd: -1, Flags: -1, Len: 2, Op: "bind"}}},
		{"memfd_create", pathCallsAMD64, unix.SYS_MEMFD_CREATE, nil},
		{"sethostname", pathCallsAMD64, unix.SYS_SETHOSTNAME, nil},
		{"fsetxattr", pathCallsAMD64, unix.SYS_FSETXATTR, nil},
		{"mq_open", pathCallsAMD64, unix.SYS_MQ_OPEN, nil},
		{"setxattrat (supplement)", pathCallsAMD64, 463, []pathArg{p(1, 0, 2, "xattr")}},
		{"i386 open", pathCallsI386, 5, []pathArg{p(0, -1, -1, "open")}},
		{"i386 oldstat", pathCallsI386, 18, []pathArg{p(0, -1, -1, "stat")}},
		{"i386 fstatat64", pathCallsI386, 300, []pathArg{p(1, 0, 3, "stat")}},
		// The 64-bit mask takes two arguments on i386: the path is the sixth.
		{"i386 fanotify_mark", pathCallsI386, 339, []pathArg{p(5, 4, -1, "watch")}},
		{"i386 connect", pathCallsI386, 362, []pathArg{{Arg: 1, Kind: argSockaddr, Dirfd: -1, Flags: -1, Len: 2, Op: "connect"}}},
		{"i386 socketcall", pathCallsI386, 102, nil},
	} {
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
	for arch, calls := range map[string]map[uint32]pathCall{"amd64": pathCallsAMD64, "i386": pathCallsI386} {
		for nr, c := range calls {
			if len(c.Args) == 0 {
				t.Errorf("%s %d %s: no arguments", arch, nr, c.Name)
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
					t.Errorf("%s %d %s: malformed %+v", arch, nr, c.Name, a)
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
	cmd := exec.Command("go", "run", "../internal/gensyscalls", "-o", filepath.Join(dir, "zpathcalls_linux.go"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("running the generator: %v\n%s", err, out)
	}
	for _, f := range []string{"zpathcalls_linux.go", "sysnames_linux_amd64.go"} {
		want, err := os.ReadFile(filepath.Join(dir, f))
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
