package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/slimoci/slimoci/internal/testbed"
)

// nobody is the unprivileged user the rootless tests run slimoci as.
const nobody = 65534

// rootlessCLI prepares this test binary (which doubles as slimoci) and the sensor where an unprivileged
// user can run them, and returns a command running slimoci args as that user.
func rootlessCLI(t *testing.T, sensorBin string, args ...string) (*exec.Cmd, string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "slimoci-rootless-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	for src, name := range map[string]string{os.Args[0]: "slimoci", sensorBin: "slimoci-sensor"} {
		in, err := os.Open(src)
		if err != nil {
			t.Fatal(err)
		}
		out, err := os.OpenFile(filepath.Join(dir, name), os.O_CREATE|os.O_WRONLY, 0o755)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(out, in)
		in.Close()
		out.Close()
	}
	os.Chmod(dir, 0o755)
	home := filepath.Join(dir, "home")
	os.Mkdir(home, 0o755)
	os.Chown(home, nobody, nobody)
	cmd := exec.Command(filepath.Join(dir, "slimoci"), args...)
	cmd.Dir = home
	cmd.Env = []string{"SLIMOCI_TEST_AS_CLI=1", "HOME=" + home, "PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	return cmd, home
}

// slimoci profile run by an unprivileged user: a user namespace, no cgroup, the app on a copy of the tree,
// probes through the sensor's relay. The record is as complete as root's; nothing is left behind, after
// success or Ctrl-C.
func TestE2EProfileRootless(t *testing.T) {
	needBed(t)
	if os.Geteuid() != 0 {
		t.Skip("the test runs slimoci as user 65534 and needs root to switch to it")
	}
	sensorBin := buildSensor(t)
	image := "oci:" + bed.Layout("python") + ":latest"
	cmd, home := rootlessCLI(t, sensorBin, "profile", "--state-path", "state",
		`--exec=["python3", "-c", "open('/tmp/made-by-the-app', 'w').write('x')"]`, image)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v: %s %s", err, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "probe GET :8080/: http 200") {
		t.Errorf("stdout %q", out.String())
	}
	var report struct {
		Rootless bool
		Written  []string
		Record   struct{ Files map[string][]string }
	}
	b, err := os.ReadFile(filepath.Join(home, "state", "report.json"))
	if err == nil {
		err = json.Unmarshal(b, &report)
	}
	if err != nil {
		t.Fatal(err)
	}
	if !report.Rootless {
		t.Errorf("the report does not say rootless")
	}
	files := report.Record.Files
	for p, op := range map[string]string{
		"/usr/bin/python3": "link", "/usr/bin/python3.11": "resolved", "/lib64/ld-linux-x86-64.so.2": "interp",
		"/app/app.py": "open", "/usr/lib/python3/dist-packages/flask/__pycache__/__init__.cpython-311.pyc": "open",
	} {
		if !slices.Contains(files[p], op) {
			t.Errorf("%s recorded as %v, want %s", p, files[p], op)
		}
	}
	if !slices.Contains(report.Written, "/tmp/made-by-the-app") {
		t.Errorf("the file the exec probe made is not listed as written: %v", report.Written)
	}
	rootlessLeftovers(t, home)

	t.Run("ctrl-c", func(t *testing.T) {
		cmd, home := rootlessCLI(t, sensorBin, "profile", "--state-path", "state", "--continue-after=600", image)
		var errb bytes.Buffer
		cmd.Stderr = &errb
		interruptWhenRunning(t, cmd, &errb)
		rootlessLeftovers(t, home)
	})
}

// rootlessLeftovers checks that a rootless run left only its artifacts in home and no process.
func rootlessLeftovers(t *testing.T, home string) {
	t.Helper()
	rootlessLeftoversExcept(t, home, "")
}

// rootlessLeftoversExcept is rootlessLeftovers allowing one more directory of output.
func rootlessLeftoversExcept(t *testing.T, home, output string) {
	t.Helper()
	if l := testbed.Leftovers("", ""); len(l) > 0 {
		t.Errorf("left behind: %v", l)
	}
	filepath.WalkDir(home, func(p string, d os.DirEntry, err error) error {
		rel, _ := filepath.Rel(home, p)
		switch {
		case rel == "." || rel == "state" || strings.HasPrefix(rel, "state/") && !strings.Contains(rel, ".slimoci-work"):
		case output != "" && (rel == output || strings.HasPrefix(rel, output+"/")):
		default:
			t.Errorf("left behind: %s", p)
			if d != nil && d.IsDir() {
				return filepath.SkipDir
			}
		}
		return nil
	})
}
