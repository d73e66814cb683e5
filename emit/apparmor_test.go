package emit

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slimoci/slimoci/sensor"
)

// The AppArmor profile parses with apparmor_parser (installed by make deps; the kernel here has no AppArmor,
// so it is parsed, not loaded), also for paths with quotes, spaces and glob characters.
func TestAppArmorProfileParses(t *testing.T) {
	parser, err := exec.LookPath("apparmor_parser")
	if err != nil {
		t.Skip("apparmor_parser is not installed (make deps installs it)")
	}
	rec := &sensor.Record{Files: map[string][]string{
		"/usr/bin/python3": {"exec", "link"}, "/usr/lib/x86_64-linux-gnu/libc.so.6": {"open"},
		`/app/we"ird [name]*?{x}^.txt`: {"open"}, "/app/with space": {"stat"}, "/proc/self/maps": {"open"},
		"/nowhere": {"missing", "stat"}, `/app/back\slash`: {"open"},
		// Made and removed: nothing is left, but the app needs to write it.
		"/run/app.sock": {"bind", "missing", "unlink"}, "/app/copy": {"hardlink-to"},
	}}
	profile := AppArmorProfile("slimoci-test/x:1", rec, []string{"/tmp/out.log", "/app"})
	for _, want := range []string{`"/usr/bin/python3{,/}" rmix,`, `"/tmp/out.log{,/}" rw,`, "profile slimoci-test-x-1 ",
		`"/run/app.sock{,/}" rw,`, `"/app/copy{,/}" rwl,`} {
		if !strings.Contains(profile, want) {
			t.Errorf("profile lacks %q:\n%s", want, profile)
		}
	}
	if strings.Contains(profile, "/nowhere") {
		t.Errorf("a missing path has a rule")
	}
	f := filepath.Join(t.TempDir(), "profile")
	os.WriteFile(f, []byte(profile), 0o644)
	if out, err := exec.Command(parser, "-Q", "-K", "-T", f).CombinedOutput(); err != nil {
		t.Fatalf("apparmor_parser: %v\n%s\n%s", err, out, profile)
	}
	// And it does reject a broken one, so the check means something.
	os.WriteFile(f, []byte(profile[:len(profile)-3]), 0o644)
	if err := exec.Command(parser, "-Q", "-K", "-T", f).Run(); err == nil {
		t.Fatalf("apparmor_parser accepted a truncated profile")
	}
}
