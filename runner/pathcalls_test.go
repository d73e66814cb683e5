package runner

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slimoci/slimoci/internal/testbed"
	"github.com/slimoci/slimoci/sensor"
)

// buildPathCalls builds internal/testbed/pathcalls into dir.
func buildPathCalls(t *testing.T, dir string) string {
	t.Helper()
	bin, err := testbed.BuildStatic(context.Background(), dir, "github.com/slimoci/slimoci/internal/testbed/pathcalls")
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// pathCallsTree makes a tree for the pathcalls program bin: the program, a directory T and a symlink L to
// it, in dir (which the caller removes).
func pathCallsTree(t *testing.T, dir, bin string) string {
	t.Helper()
	tree := filepath.Join(dir, "tree")
	for _, d := range []string{"T", "tmp", "proc", "dev", "sys"} {
		if err := os.MkdirAll(filepath.Join(tree, d), 0o777); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(filepath.Join(tree, "T"), 0o777)
	if err := os.Symlink("T", filepath.Join(tree, "L")); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tree, "pathcalls"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	return tree
}

// checkPathCalls runs pathcalls in a sandbox on tree and checks that the record holds, for every argument
// of every syscall the sensor records, the path named through a symlink with its op and the link met, the
// missing one with its op and "missing", the one relative to a descriptor, and the descriptor's own file
// under AT_EMPTY_PATH.
func checkPathCalls(t *testing.T, tree, sensorBin string, opts *Options, all bool) {
	t.Helper()
	var out syncBuffer
	s, err := Start(context.Background(), tree, Spec{
		Args: []string{"/pathcalls"}, Cwd: "/", Env: []string{"PATH=/"},
		Stdout: &out, Stderr: &out, Sensor: sensorBin, AllSyscalls: all,
		// The sandbox's own profile refuses some of these calls (mount, swapon...) before the sensor's
		// filter sees them; here every one must reach it.
		SeccompUnconfined: true,
	}, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if code, err := s.Wait(ctx); err != nil || code != 0 {
		t.Fatalf("pathcalls: exit %d, %v\n%s", code, err, out.String())
	}
	if !strings.Contains(out.String(), "done") {
		t.Fatalf("pathcalls did not finish: %s", out.String())
	}
	rec, err := s.Record()
	if err != nil {
		t.Fatal(err)
	}
	has := func(p string, ops ...string) error {
		for _, op := range ops {
			if !slices.Contains(rec.Files[p], op) {
				return fmt.Errorf("%s recorded as %v, want %s", p, rec.Files[p], op)
			}
		}
		return nil
	}
	checks := []error{has("/L", "link")}
	if runtime.GOARCH == "amd64" {
		// /L/i386-open is opened with int 0x80: i386's numbers, not x86_64's (5 is fstat there).
		checks = append(checks, has("/L/i386-open", "open"))
	}
	for _, err := range checks {
		if err != nil {
			t.Error(err)
		}
	}
	args := sensor.PathSyscallArgs()
	if len(args) < 60 {
		t.Fatalf("only %d syscall arguments in the table", len(args))
	}
	for _, a := range args {
		name := fmt.Sprintf("%s-%d", a.Name, a.Arg)
		var errs []error
		switch a.Kind {
		case "fd":
			errs = append(errs, has("/T", a.Op))
		default:
			errs = append(errs, has("/L/"+name, a.Op), has("/nonexistent/"+name, a.Op, "missing"))
			if a.Kind == "path" && a.Dirfd >= 0 {
				errs = append(errs, has("/T/rel-"+name, a.Op))
			}
			if a.Kind == "path" && a.Flags >= 0 && a.Dirfd >= 0 && a.Op != "stat" { // fstat by descriptor is not recorded (argFile)
				errs = append(errs, has("/T/empty-"+name, a.Op))
			}
		}
		for _, err := range errs {
			if err != nil {
				t.Errorf("%s (%d) argument %d: %v", a.Name, a.Nr, a.Arg, err)
			}
		}
	}
}

// Every syscall argument the sensor's table names a file by is recorded in the sandbox, in both of the
// sensor's modes, through a symlink, missing, relative to a descriptor and as the descriptor itself.
func TestE2ESensorSeesEveryPathSyscall(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: end-to-end tests run the sandbox")
	}
	if os.Geteuid() != 0 {
		t.Skip("the root sandbox needs root; TestE2EObserveRootless runs the rootless one")
	}
	sensorBin := buildSensor(t)
	bin := buildPathCalls(t, t.TempDir())
	for _, all := range []bool{false, true} {
		t.Run(fmt.Sprintf("all=%v", all), func(t *testing.T) {
			dir := t.TempDir()
			tree := pathCallsTree(t, dir, bin)
			checkPathCalls(t, tree, sensorBin, &Options{StateDir: filepath.Join(dir, "sandbox"), WorkRoot: filepath.Dir(dir)}, all)
		})
	}
}
