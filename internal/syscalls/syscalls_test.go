package syscalls

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// xsysNumbers reads the syscall numbers golang.org/x/sys knows for goarch from its zsysnum_linux_<arch>.go
// in the module directory: name (lower case, as the kernel's tables spell it) to number. Constants cannot be
// listed by reflection.
func xsysNumbers(t *testing.T, goarch string) map[string]uint32 {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "golang.org/x/sys").Output()
	if err != nil {
		t.Fatalf("finding golang.org/x/sys's module directory: %v", err)
	}
	file := filepath.Join(strings.TrimSpace(string(out)), "unix", "zsysnum_linux_"+goarch+".go")
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
	for _, n := range notSyscalls {
		delete(nums, n)
	}
	if len(nums) < 300 {
		t.Fatalf("%s: only %d syscall numbers read", file, len(nums))
	}
	return nums
}

// notSyscalls are x/sys's SYS_ constants that name no syscall: arm's SYS_SYSCALL_MASK (0, a mask of the
// OABI header) and the generic table's SYS_ARCH_SPECIFIC_SYSCALL (244, where riscv's own numbers start).
var notSyscalls = []string{"syscall_mask", "arch_specific_syscall"}

// TestTablesMatchXSys: every architecture's generated names agree with x/sys both ways (a syscall x/sys
// knows and the tables do not fails with its name: add it to the generator's supplement).
func TestTablesMatchXSys(t *testing.T) {
	if got, want := Arches(), []string{"386", "amd64", "arm", "arm64", "ppc64le", "riscv64", "s390x"}; !slices.Equal(got, want) {
		t.Fatalf("architectures %v, want %v", got, want)
	}
	for _, arch := range Arches() {
		t.Run(arch, func(t *testing.T) {
			xsys := xsysNumbers(t, arch)
			ours := map[string]uint32{}
			for nr, name := range Names(arch) {
				ours[name] = nr
				if x, ok := xsys[name]; !ok {
					t.Errorf("%s is %d in the generated table, x/sys has no SYS_%s", name, nr, strings.ToUpper(name))
				} else if x != nr {
					t.Errorf("%s is %d in the generated table, %d in x/sys", name, nr, x)
				}
			}
			for name, nr := range xsys {
				if _, ok := ours[name]; !ok {
					t.Errorf("x/sys knows %s (%d), the generated table does not: add it to the supplement in internal/gensyscalls/rules.go", name, nr)
				}
			}
		})
	}
}

// TestSet: a name set holds the table's names and no other; an unknown architecture has none.
func TestSet(t *testing.T) {
	arm64 := Set("arm64")
	if !arm64["openat"] || arm64["open"] || !Set("amd64")["open"] || !Set("arm")["set_robust_list"] {
		t.Errorf("arm64 openat %v, open %v; amd64 open %v", arm64["openat"], arm64["open"], Set("amd64")["open"])
	}
	if len(arm64) != len(Names("arm64")) {
		t.Errorf("%d names in the set, %d in the table", len(arm64), len(Names("arm64")))
	}
	if Set("mips") != nil || Names("mips") != nil {
		t.Error("mips: a table")
	}
}
