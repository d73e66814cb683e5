package sensor

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// guestSource is an arm64 program for the emulated trace: it reads the file its first argument names, then
// execs the host's (native) true, as an emulated app may start a program of the host's machine.
const guestSource = `package main

import (
	"os"
	"syscall"
)

func main() {
	if _, err := os.ReadFile(os.Args[1]); err != nil {
		os.Exit(3)
	}
	syscall.Exec(os.Args[2], []string{"true", "from-guest"}, nil)
	os.Exit(4)
}
`

// qemuAarch64 is this host's binfmt_misc handler for arm64, as the runner describes it to the sensor.
func qemuAarch64(t *testing.T) *Emulation {
	t.Helper()
	if runtime.GOARCH != "amd64" {
		t.Skip("the emulated trace runs an arm64 guest on an amd64 host")
	}
	b, err := os.ReadFile("/proc/sys/fs/binfmt_misc/qemu-aarch64")
	if err != nil {
		t.Skipf("no qemu-aarch64 binfmt_misc handler (make deps installs qemu-user-static and binfmt-support): %v", err)
	}
	e := &Emulation{Machine: "aarch64"}
	for _, line := range strings.Split(string(b), "\n") {
		if interp, ok := strings.CutPrefix(line, "interpreter "); ok {
			var st unix.Stat_t
			if err := unix.Stat(interp, &st); err != nil {
				t.Fatal(err)
			}
			e.Dev, e.Ino = st.Dev, st.Ino
		}
		if flags, ok := strings.CutPrefix(line, "flags: "); ok {
			e.PreserveArgv0 = strings.Contains(flags, "P")
		}
	}
	if !strings.HasPrefix(string(b), "enabled") || e.Ino == 0 {
		t.Skipf("qemu-aarch64 is not usable here:\n%s", b)
	}
	return e
}

// TestTraceEmulated traces an arm64 program under qemu-user, outside any sandbox: the emulated exec is
// recorded as the guest's (its file and argv, not qemu's), the native exec it makes as itself, and drop
// takes out qemu's lookups under its sysroot, which the raw record has.
func TestTraceEmulated(t *testing.T) {
	emu := qemuAarch64(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "guest.go")
	os.WriteFile(src, []byte(guestSource), 0o644)
	guest := filepath.Join(dir, "guest")
	build := exec.Command("go", "build", "-o", guest, src)
	build.Env = append(os.Environ(), "GOOS=linux", "GOARCH=arm64", "CGO_ENABLED=0", "GOFLAGS=")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the arm64 guest: %v\n%s", err, out)
	}
	data := filepath.Join(dir, "data.txt")
	os.WriteFile(data, []byte("x"), 0o644)
	truePath, err := exec.LookPath("true")
	if err != nil {
		t.Fatal(err)
	}
	trueFile, _, _ := Resolve("/", truePath, nil)
	for _, backend := range []func([]string, TraceOptions) (*Record, error){Trace, TraceNotify} {
		rec, err := backend([]string{guest, data, truePath}, TraceOptions{Helper: self, Env: []string{"PATH=/usr/bin:/bin"}, Emulation: emu})
		if err != nil {
			t.Fatal(err)
		}
		if rec.ExitCode != 0 {
			t.Fatalf("exit code %d", rec.ExitCode)
		}
		if len(rec.Execs) != 2 || rec.Execs[0].Path != guest || !slices.Equal(rec.Execs[0].Argv, []string{guest, data, truePath}) ||
			rec.Execs[1].Path != trueFile || !slices.Equal(rec.Execs[1].Argv, []string{"true", "from-guest"}) {
			t.Errorf("execs %+v, want the guest's (%s) then the native true's (%s)", rec.Execs, guest, trueFile)
		}
		if !slices.Contains(rec.Files[guest], "exec") || !slices.Contains(rec.Files[data], "open") {
			t.Errorf("the guest %v, its data %v", rec.Files[guest], rec.Files[data])
		}
		sysroot := "/etc/qemu-binfmt/aarch64" + data
		if !slices.Contains(rec.Files[sysroot], "missing") {
			t.Errorf("qemu's lookup of the data file under its sysroot (%s) is not in the raw record: %v", sysroot, rec.Files[sysroot])
		}
		emu.drop(rec)
		for p, ops := range rec.Files {
			if strings.Contains(p, "qemu") || strings.HasPrefix(p, "/usr/gnemul") {
				t.Errorf("the emulator's %s %v is in the record", p, ops)
			}
		}
		if !slices.Contains(rec.Files[data], "open") {
			t.Errorf("drop took the guest's data file")
		}
	}
}

func TestEmulationDrop(t *testing.T) {
	rec := &Record{Files: map[string][]string{
		"/etc/qemu-binfmt/aarch64":                    {"access", "missing"},
		"/etc/qemu-binfmt/aarch64/etc/ld.so.cache":    {"access", "missing"},
		"/usr/gnemul/qemu-aarch64/lib/libc.so.6":      {"access", "missing"},
		"/etc/qemu-binfmt/aarch64/lib/libfound.so":    {"access", "open"}, // qemu gave the guest this file
		"/etc/qemu-binfmt/arm/etc/ld.so.cache":        {"access", "missing"},
		"/etc/qemu-binfmt/aarch64-other/etc/hostname": {"access", "missing"},
		"/etc/ld.so.cache":                            {"open"},
		"/etc/missing.conf":                           {"missing", "open"},
	}}
	(&Emulation{Machine: "aarch64"}).drop(rec)
	var left []string
	for p := range rec.Files {
		left = append(left, p)
	}
	slices.Sort(left)
	want := []string{"/etc/ld.so.cache", "/etc/missing.conf", "/etc/qemu-binfmt/aarch64-other/etc/hostname",
		"/etc/qemu-binfmt/aarch64/lib/libfound.so", "/etc/qemu-binfmt/arm/etc/ld.so.cache"}
	if !slices.Equal(left, want) {
		t.Errorf("left %v, want %v", left, want)
	}
	var none *Emulation
	none.drop(rec) // a native run: nothing to drop
	if len(rec.Files) != len(want) {
		t.Errorf("a nil Emulation dropped paths")
	}
}
