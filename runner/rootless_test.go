package runner

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slimoci/slimoci/internal/testbed"
	"github.com/slimoci/slimoci/oci"
	"github.com/slimoci/slimoci/rootfs"
)

// The rootless sandbox, observed from inside the runner: this test re-runs itself as user 65534, which
// unpacks the python sample (rootless), observes it, and checks the record (the interpreter, its ELF
// interpreter, libc, the app's source, the symlinks on the way, the probe's 200) and that the unpacked tree
// is byte for byte what it was.
func TestE2EObserveRootless(t *testing.T) {
	if os.Getenv("SLIMOCI_ROOTLESS_CHILD") == "1" {
		rootlessChild(t)
		return
	}
	if testing.Short() {
		t.Skip("-short: end-to-end tests need the test bed")
	}
	bed, reason := testbed.Find()
	if bed == nil {
		t.Skip(reason)
	}
	if os.Geteuid() != 0 {
		t.Skip("the test runs itself as user 65534 and needs root to switch to it")
	}
	dir, err := os.MkdirTemp("", "slimoci-rootless-runner-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	sensorBin, err := testbed.BuildSensor(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	pathCalls := buildPathCalls(t, dir)
	self := filepath.Join(dir, "runner.test")
	in, _ := os.Open(os.Args[0])
	out, _ := os.OpenFile(self, os.O_CREATE|os.O_WRONLY, 0o755)
	io.Copy(out, in)
	in.Close()
	out.Close()
	work := filepath.Join(dir, "work")
	os.Mkdir(work, 0o755)
	os.Chown(work, 65534, 65534)
	cmd := exec.Command(self, "-test.run", "^TestE2EObserveRootless$", "-test.v", "-test.count=1")
	cmd.Env = []string{"SLIMOCI_ROOTLESS_CHILD=1", "SLIMOCI_TESTBED=" + bed.Dir, "SLIMOCI_SENSOR=" + sensorBin, "SLIMOCI_WORK=" + work,
		"SLIMOCI_PATHCALLS=" + pathCalls,
		"HOME=" + work, "TMPDIR=" + work, "PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	// Supplementary groups too, as a login user has and a container run with --user 1000:1000 gets: the
	// rootless user namespace denies setgroups, so the sensor must not try to change them.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{65534, 100}}}
	b, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(b), "--- PASS: TestE2EObserveRootless") {
		t.Fatalf("as user 65534: %v\n%s", err, b)
	}
	if l := leftovers(t, "", ""); len(l) > 0 {
		t.Errorf("left behind: %v", l)
	}
}

func rootlessChild(t *testing.T) {
	bed, reason := testbed.Find()
	if bed == nil {
		t.Fatal(reason)
	}
	ctx := context.Background()
	src, err := oci.Open(ctx, oci.Reference{Transport: oci.Layout, Path: bed.Layout("python"), Tag: "latest"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	work := os.Getenv("SLIMOCI_WORK")
	tree, err := rootfs.Unpack(ctx, src.Image, filepath.Join(work, "rootfs"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rootfs.RemoveTree(tree.Dir)
	if !tree.Rootless {
		t.Fatal("the unpack did not run rootless")
	}
	before := fingerprint(t, tree.Dir)
	cfg := tree.Config.Config
	state := filepath.Join(work, "sandbox")
	var out syncBuffer
	obs, err := Observe(ctx, tree.Dir, Spec{
		Args: append(append([]string(nil), cfg.Entrypoint...), cfg.Cmd...), Env: cfg.Env, Cwd: cfg.WorkingDir,
		Stdout: &out, Stderr: &out, Sensor: os.Getenv("SLIMOCI_SENSOR"), AllSyscalls: true,
	}, Plan{HTTP: []HTTPCommand{{Method: "GET", Resource: "/"}}, Ports: []int{8080}, ProbeTimeout: 60 * time.Second,
		// It writes into the sandbox, as root inside: the tree must not see it.
		Exec: [][]string{{"python3", "-c", "open('/etc/passwd', 'a').write('x'); open('/tmp/new', 'w')"}}}, &Options{StateDir: state})
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if !obs.Rootless || len(obs.Probes) != 1 || obs.Probes[0].Status != 200 || len(obs.Execs) != 1 || obs.Execs[0].ExitCode != 0 {
		t.Fatalf("rootless %v, probes %+v, execs %+v\n%s", obs.Rootless, obs.Probes, obs.Execs, out.String())
	}
	files := obs.Record.Files
	for p, op := range map[string]string{
		"/usr/bin/python3": "link", "/usr/bin/python3.11": "resolved", "/lib64/ld-linux-x86-64.so.2": "interp",
		"/lib64": "link", "/app/app.py": "open", "/lib/x86_64-linux-gnu/libc.so.6": "open",
	} {
		if !slices.Contains(files[p], op) {
			t.Errorf("%s recorded as %v, want %s", p, files[p], op)
		}
	}
	if !slices.Contains(obs.Written, "/etc/passwd") || !slices.Contains(obs.Written, "/tmp/new") {
		t.Errorf("written %v", obs.Written)
	}
	if fingerprint(t, tree.Dir) != before {
		t.Errorf("the unpacked tree changed")
	}
	if l := leftovers(t, state, ""); len(l) > 0 {
		t.Errorf("left behind: %v", l)
	}
	// The sensor sees every path syscall rootless too.
	pc := filepath.Join(work, "pathcalls")
	checkPathCalls(t, pathCallsTree(t, pc, os.Getenv("SLIMOCI_PATHCALLS")), os.Getenv("SLIMOCI_SENSOR"), &Options{StateDir: filepath.Join(pc, "sandbox")}, false)
	os.RemoveAll(pc)
}
