package runner

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// qemuHandlers are Debian's qemu-user-static registrations (magic and mask as /proc/sys/fs/binfmt_misc shows
// them; x86_64 and i386, which Debian does not register on an amd64 host, from qemu's qemu-binfmt-conf.sh),
// among them the big-endian twins that must not match their little-endian platforms.
var qemuHandlers = map[string][2]string{
	"aarch64": {"7f454c460201010000000000000000000200b700", "ffffffffffffff00fffffffffffffffffeffffff"},
	"arm":     {"7f454c4601010100000000000000000002002800", "ffffffffffffff00fffffffffffffffffeffffff"},
	"armeb":   {"7f454c4601020100000000000000000000020028", "ffffffffffffff00fffffffffffffffffffeffff"},
	"ppc64":   {"7f454c4602020100000000000000000000020015", "fffffffffffffffcfffffffffffffffffffeffff"},
	"ppc64le": {"7f454c4602010100000000000000000002001500", "fffffffffffffffcfffffffffffffffffeffff00"},
	"s390x":   {"7f454c4602020100000000000000000000020016", "fffffffffffffffcfffffffffffffffffffeffff"},
	"riscv64": {"7f454c460201010000000000000000000200f300", "ffffffffffffff00fffffffffffffffffeffffff"},
	"x86_64":  {"7f454c4602010100000000000000000002003e00", "fffffffffffefe00fffffffffffffffffeffffff"},
	"i386":    {"7f454c4601010100000000000000000002000300", "fffffffffffefe00fffffffffffffffffeffffff"},
}

// fakeBinfmt is a binfmt_misc directory as the kernel shows one: register, status, and an entry per handler.
func fakeBinfmt(t *testing.T, entries map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{"register": "", "status": "enabled\n"}
	for k, v := range entries {
		files[k] = v
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// qemuEntry is the entry of Debian's handler for machine m, with the given state and flags.
func qemuEntry(m, state, flags string) string {
	h := qemuHandlers[m]
	return state + "\ninterpreter /usr/libexec/qemu-binfmt/" + m + "-binfmt-P\nflags: " + flags + "\noffset 0\nmagic " + h[0] + "\nmask " + h[1] + "\n"
}

func platform(s string) v1.Platform {
	p, err := v1.ParsePlatform(s)
	if err != nil {
		panic(err)
	}
	return *p
}

func never() bool { return false }

func TestCheckEmulationFindsEachMachinesHandler(t *testing.T) {
	all := map[string]string{
		"jar":    "enabled\ninterpreter /usr/bin/jexec\nflags: \noffset 0\nmagic 504b0304\n",
		"python": "enabled\ninterpreter /usr/bin/python3.11\nflags: \nextension .pyc\n",
	}
	for m := range qemuHandlers {
		all["qemu-"+m] = qemuEntry(m, "enabled", "PF")
	}
	dir := fakeBinfmt(t, all)
	for plat, want := range map[string]string{
		"linux/amd64": "qemu-x86_64", "linux/386": "qemu-i386", "linux/arm64": "qemu-aarch64", "linux/arm64/v8": "qemu-aarch64",
		"linux/arm/v7": "qemu-arm", "linux/arm/v6": "qemu-arm", "linux/arm/v5": "qemu-arm", "linux/ppc64le": "qemu-ppc64le",
		"linux/s390x": "qemu-s390x", "linux/riscv64": "qemu-riscv64",
	} {
		t.Run(plat, func(t *testing.T) {
			// A host of none of these architectures: every platform is foreign.
			emu, err := checkEmulation(dir, "mips64le", never, platform(plat))
			if err != nil {
				t.Fatal(err)
			}
			if emu == nil || emu.Handler != want || emu.Platform != plat || emu.Flags != "PF" {
				t.Fatalf("got %+v, want handler %s", emu, want)
			}
		})
	}
}

func TestCheckEmulationNative(t *testing.T) {
	dir := fakeBinfmt(t, map[string]string{"qemu-arm": qemuEntry("arm", "enabled", "PF")})
	for _, c := range []struct {
		host, plat string
		compat32   bool
		native     bool
	}{
		{"amd64", "linux/amd64", false, true},
		{"amd64", "linux/amd64/v3", false, true},
		{"amd64", "linux/386", false, true},
		{"arm64", "linux/arm64", false, true},
		{"arm64", "linux/arm/v7", true, true},
		// An arm64 CPU without AArch32: arm is emulated.
		{"arm64", "linux/arm/v7", false, false},
		{"amd64", "linux/arm/v7", true, false},
	} {
		emu, err := checkEmulation(dir, c.host, func() bool { return c.compat32 }, platform(c.plat))
		if err != nil {
			t.Fatalf("%s on %s: %v", c.plat, c.host, err)
		}
		if (emu == nil) != c.native {
			t.Errorf("%s on %s (32-bit: %v): emulator %+v, want native %v", c.plat, c.host, c.compat32, emu, c.native)
		}
	}
}

func TestCheckEmulationSaysWhatIsMissing(t *testing.T) {
	notMounted := t.TempDir()
	for _, c := range []struct {
		name    string
		dir     string
		plat    string
		want    []string
		noEmu   bool
		entries map[string]string
	}{
		{name: "not mounted", dir: notMounted, plat: "linux/arm64", noEmu: true,
			want: []string{"linux/arm64 needs an emulator: binfmt_misc is not mounted at " + notMounted, "mount -t binfmt_misc", "apt-get install qemu-user-static binfmt-support"}},
		{name: "no handler", plat: "linux/arm64", noEmu: true,
			entries: map[string]string{"qemu-arm": qemuEntry("arm", "enabled", "PF"), "qemu-ppc64": qemuEntry("ppc64", "enabled", "PF")},
			want:    []string{"linux/arm64 needs an emulator: no binfmt_misc handler runs aarch64 ELF files; on Debian: apt-get install qemu-user-static binfmt-support"}},
		{name: "big-endian twin only", plat: "linux/ppc64le", noEmu: true,
			entries: map[string]string{"qemu-ppc64": qemuEntry("ppc64", "enabled", "PF")},
			want:    []string{"no binfmt_misc handler runs ppc64le ELF files"}},
		{name: "disabled", plat: "linux/arm64", noEmu: true,
			entries: map[string]string{"qemu-aarch64": qemuEntry("aarch64", "disabled", "PF")},
			want:    []string{"the binfmt_misc handler qemu-aarch64 for aarch64 ELF files is disabled", "update-binfmts --enable qemu-aarch64", "echo 1 > "}},
		{name: "binfmt_misc disabled", plat: "linux/arm64", noEmu: true,
			entries: map[string]string{"status": "disabled\n", "qemu-aarch64": qemuEntry("aarch64", "enabled", "PF")},
			want:    []string{"binfmt_misc is disabled; echo 1 > "}},
		{name: "no fix-binary", plat: "linux/arm64", noEmu: true,
			entries: map[string]string{"qemu-aarch64": qemuEntry("aarch64", "enabled", "P")},
			want: []string{"qemu-aarch64 for aarch64 ELF files lacks the fix-binary (F) flag", "/usr/libexec/qemu-binfmt/aarch64-binfmt-P would have to be inside the image",
				"echo -1 > ", `echo ':qemu-aarch64:M:0:\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00:\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:/usr/libexec/qemu-binfmt/aarch64-binfmt-P:PF' > `}},
		// The kernel takes the handler registered last, which the directory does not say: one without F is
		// enough to fail.
		{name: "one of two without fix-binary", plat: "linux/arm64", noEmu: true,
			entries: map[string]string{"qemu-aarch64": qemuEntry("aarch64", "enabled", "PF"), "aarch64-other": qemuEntry("aarch64", "enabled", "")},
			want:    []string{"aarch64-other for aarch64 ELF files lacks the fix-binary (F) flag"}},
		{name: "dynamic interpreter", plat: "linux/arm64", noEmu: true,
			entries: map[string]string{"qemu-aarch64": strings.Replace(qemuEntry("aarch64", "enabled", "F"), "/usr/libexec/qemu-binfmt/aarch64-binfmt-P", dynamicHostProgram(t), 1)},
			want:    []string{"which is dynamically linked"}},
		{name: "not linux", plat: "windows/amd64", want: []string{"platform windows/amd64: slimoci runs linux images only"}},
		{name: "unknown architecture", plat: "linux/mips64le", want: []string{`platform linux/mips64le: unknown architecture "mips64le" (known: 386, amd64, arm, arm64, ppc64le, riscv64, s390x)`}},
		{name: "unknown variant", plat: "linux/arm/v9", want: []string{`platform linux/arm/v9: unknown variant "v9" of arm`}},
		{name: "malformed entry", plat: "linux/arm64", entries: map[string]string{"bad": "enabled\nmagic zz\n"},
			want: []string{`reading binfmt_misc handler bad: magic "zz"`}},
		{name: "mask longer than magic", plat: "linux/arm64", entries: map[string]string{"bad": "enabled\noffset 0\nmagic 7f\nmask ffff\n"},
			want: []string{"reading binfmt_misc handler bad: mask of 2 bytes for a magic of 1"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := c.dir
			if dir == "" {
				dir = fakeBinfmt(t, c.entries)
			}
			emu, err := checkEmulation(dir, "amd64", never, platform(c.plat))
			if err == nil {
				t.Fatalf("no error: %+v", emu)
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("the error has several lines: %q", msg)
			}
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not say %q", msg, w)
				}
			}
			if got := errors.Is(err, ErrNoEmulator); got != c.noEmu {
				t.Errorf("errors.Is(ErrNoEmulator) = %v, want %v", got, c.noEmu)
			}
		})
	}
}

// dynamicHostProgram is a host program with an ELF interpreter.
func dynamicHostProgram(t *testing.T) string {
	for _, p := range []string{"/bin/sh", "/usr/bin/env"} {
		if dynamic(p) {
			return p
		}
	}
	t.Skip("no dynamically linked program on this host")
	return ""
}

// TestCheckEmulationOnThisHost reads the real binfmt_misc: make deps registers Debian's qemu-user-static
// handlers (with F), so arm64 runs here under qemu-aarch64.
func TestCheckEmulationOnThisHost(t *testing.T) {
	if _, err := os.Stat(filepath.Join(BinfmtMisc, "qemu-aarch64")); err != nil {
		t.Skipf("no qemu-aarch64 handler in %s (make deps installs qemu-user-static and binfmt-support): %v", BinfmtMisc, err)
	}
	native, err := CheckEmulation(platform("linux/" + runtime.GOARCH))
	if err != nil || native != nil {
		t.Errorf("this host's own platform: %+v, %v", native, err)
	}
	if runtime.GOARCH == "arm64" {
		t.Skip("an arm64 host runs arm64 natively")
	}
	emu, err := CheckEmulation(platform("linux/arm64"))
	if err != nil {
		t.Fatal(err)
	}
	if emu.Handler != "qemu-aarch64" || !strings.Contains(emu.Flags, "F") || emu.Machine != "aarch64" {
		t.Errorf("got %+v", emu)
	}
	if dynamic(emu.Interpreter) {
		t.Errorf("the interpreter %s is dynamically linked", emu.Interpreter)
	}
}
