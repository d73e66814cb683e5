package runner

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/slimoci/slimoci/internal/testbed"
	"github.com/slimoci/slimoci/oci"
	"github.com/slimoci/slimoci/rootfs"
)

// libcontainer re-executes this test binary as the container's init.
func init() {
	if len(os.Args) > 1 && os.Args[1] == InitArg {
		Init()
	}
}

// unpacked unpacks a test-bed sample into a scratch directory, once per test.
func unpacked(t *testing.T, sample string) string {
	t.Helper()
	return unpackedTree(t, sample).Dir
}

func unpackedTree(t *testing.T, sample string) *rootfs.Tree {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: end-to-end tests need the test bed")
	}
	bed, reason := testbed.Find()
	if bed == nil {
		t.Skip(reason)
	}
	if os.Geteuid() != 0 {
		t.Skip("these tests run the sandbox as root (they set up users, mounts and cgroups to check); the rootless sandbox is tested in cmd/slimoci")
	}
	ctx := context.Background()
	src, err := oci.Open(ctx, oci.Reference{Transport: oci.Layout, Path: bed.Layout(sample), Tag: "latest"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	base := "/dev/shm"
	if _, err := os.Stat(base); err != nil {
		base = ""
	}
	dir, err := os.MkdirTemp(base, "slimoci-runner-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	tree, err := rootfs.Unpack(ctx, src.Image, filepath.Join(dir, "rootfs"), nil)
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

// fingerprint hashes a whole tree: paths, modes, owners, sizes, times, link targets and contents.
func fingerprint(t *testing.T, dir string) string {
	t.Helper()
	h := sha256.New()
	var paths []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil {
			paths = append(paths, p)
		}
		return nil
	})
	sort.Strings(paths)
	for _, p := range paths {
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		fmt.Fprintf(h, "%s %v %d %d %d %d\n", p, fi.Mode(), st.Uid, st.Gid, fi.Size(), fi.ModTime().UnixNano())
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			fmt.Fprintln(h, l)
		case fi.Mode().IsRegular():
			f, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(h, f)
			f.Close()
		}
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// leftovers lists what a closed sandbox must not leave.
func leftovers(t *testing.T, state, id string) []string {
	t.Helper()
	return testbed.Leftovers(state, id)
}

// syncBuffer takes the app's stdout and stderr, which are copied by two goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *syncBuffer) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Reset()
}

func TestE2ESandboxRunsAndLeavesTheTree(t *testing.T) {
	tree := unpacked(t, "python")
	before := fingerprint(t, tree)
	var out syncBuffer
	ctx := context.Background()
	s, err := Start(ctx, tree, Spec{
		Args: []string{"python3", "-c", "import os, socket; open('/tmp/created', 'w').write('x'); open('/etc/passwd', 'a').write('x'); print('hello from', socket.gethostname(), os.getuid(), open('/etc/hostname').read().strip()); raise SystemExit(3)"},
		Env:  []string{"PATH=/usr/local/bin:/usr/bin:/bin"},
		UID:  65534, GID: 65534,
		Stdout: &out, Stderr: &out,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	state, id := s.state, s.id
	code, err := s.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// As nobody, writing /etc/passwd fails: the exit code is then python's 1, and the message says why.
	if code != 1 || !strings.Contains(out.String(), "Permission denied") {
		t.Fatalf("exit %d, output %q", code, out.String())
	}
	if l := leftovers(t, state, id); len(l) > 0 {
		t.Fatalf("left behind: %v", l)
	}
	if after := fingerprint(t, tree); after != before {
		t.Fatal("the unpacked tree changed")
	}

	// As root, with the writes allowed: they land in the overlay, not in the tree. A host directory is mounted.
	out.Reset()
	host := t.TempDir()
	os.WriteFile(filepath.Join(host, "data.txt"), []byte("from the host"), 0o644)
	mount, err := ParseMount(host + ":/mnt/data:ro")
	if err != nil {
		t.Fatal(err)
	}
	s, err = Start(ctx, tree, Spec{
		Mounts: []Mount{mount},
		Args:   []string{"python3", "-c", "import socket; open('/tmp/created', 'w').write('x'); open('/etc/passwd', 'a').write('x'); print('hello from', socket.gethostname(), open('/mnt/data/data.txt').read()); raise SystemExit(3)"},
		Env:    []string{"PATH=/usr/local/bin:/usr/bin:/bin"},
		Stdout: &out, Stderr: &out,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	state, id = s.state, s.id
	code, err = s.Wait(ctx)
	s.Close()
	if err != nil || code != 3 || strings.TrimSpace(out.String()) != "hello from slimoci from the host" {
		t.Fatalf("exit %d (%v), output %q", code, err, out.String())
	}
	if l := leftovers(t, state, id); len(l) > 0 {
		t.Fatalf("left behind: %v", l)
	}
	if after := fingerprint(t, tree); after != before {
		t.Fatal("the unpacked tree changed")
	}
}

func TestE2ESandboxServesHTTP(t *testing.T) {
	tree := unpacked(t, "python")
	ctx := context.Background()
	var out syncBuffer
	s, err := Start(ctx, tree, Spec{
		Args: []string{"python3", "/app/app.py"}, Cwd: "/app",
		Env:    []string{"PATH=/usr/local/bin:/usr/bin:/bin", "PORT=8080", "PYTHONUNBUFFERED=1"},
		Stdout: &out, Stderr: &out,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	client := &http.Client{Transport: &http.Transport{DialContext: s.Dial}, Timeout: 2 * time.Second}
	var body []byte
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := client.Get("http://127.0.0.1:8080/")
		if err == nil {
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no answer in 20 s: %v\n%s", err, out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(string(body), `"app":"python"`) {
		t.Fatalf("body %q", body)
	}
	// The app is not reachable from the host's network: the sandbox has its own.
	if resp, err := http.Get("http://127.0.0.1:8080/"); err == nil {
		resp.Body.Close()
		t.Fatal("the sandboxed app answered on the host's loopback")
	}
	// While it runs, the leftovers check sees its mount and cgroups (so that it means something after Close).
	state, id := s.state, s.id
	running := strings.Join(leftovers(t, state, id), "\n")
	if !strings.Contains(running, "mount ") || !strings.Contains(running, "cgroup ") {
		t.Fatalf("a running sandbox shows no mount or cgroup: %s", running)
	}
	s.Signal(syscall.SIGTERM)
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if code, err := s.Wait(wctx); err != nil || code != 0 {
		t.Fatalf("after SIGTERM: exit %d, %v", code, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if l := leftovers(t, state, id); len(l) > 0 {
		t.Fatalf("left behind: %v", l)
	}
}

// buildSensor builds the static sensor as `make build` does.
func buildSensor(t *testing.T) string {
	t.Helper()
	bin, err := testbed.BuildSensor(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// The sensor as PID 1: the app runs as an unprivileged user under its tracer, answers its probe, stops on
// SIGTERM, and the record holds the interpreter, its libraries, the app's source and its imports.
func TestE2ESensorRecordsTheApp(t *testing.T) {
	tree := unpacked(t, "python")
	sensorBin := buildSensor(t)
	ctx := context.Background()
	var out syncBuffer
	s, err := Start(ctx, tree, Spec{
		Args: []string{"python3", "/app/app.py"}, Cwd: "/app",
		Env: []string{"PATH=/usr/local/bin:/usr/bin:/bin", "PORT=8080", "PYTHONUNBUFFERED=1"},
		UID: 65534, GID: 65534,
		Stdout: &out, Stderr: &out,
		Sensor: sensorBin, AllSyscalls: true,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	client := &http.Client{Transport: &http.Transport{DialContext: s.Dial}, Timeout: 2 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := client.Get("http://127.0.0.1:8080/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no answer in 30 s: %v\n%s", err, out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.Signal(syscall.SIGTERM)
	wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if code, err := s.Wait(wctx); err != nil || code != 0 {
		t.Fatalf("after SIGTERM: exit %d, %v\n%s", code, err, out.String())
	}
	rec, err := s.Record()
	if err != nil {
		t.Fatal(err)
	}
	// Python stats an imported module's .py and opens its compiled .pyc.
	for p, op := range map[string]string{
		"/usr/bin/python3": "exec", "/app/app.py": "open", "/etc/ld.so.cache": "open",
		"/usr/lib/python3/dist-packages/flask/__init__.py":                          "stat",
		"/usr/lib/python3/dist-packages/flask/__pycache__/__init__.cpython-311.pyc": "open",
	} {
		if !slices.Contains(rec.Files[p], op) {
			t.Errorf("%s recorded as %v, want %s", p, rec.Files[p], op)
		}
	}
	var sawLib bool
	for p := range rec.Files {
		if strings.HasPrefix(p, "/usr/lib/x86_64-linux-gnu/libpython3") || strings.HasPrefix(p, "/lib/x86_64-linux-gnu/libc.so") {
			sawLib = true
		}
		if strings.HasPrefix(p, sensorDir) {
			t.Errorf("the sensor's own file %s is in the record", p)
		}
	}
	if !sawLib {
		t.Errorf("no shared library in the record")
	}
	if len(rec.Execs) == 0 || rec.Execs[0].Argv[0] != "python3" {
		t.Errorf("execs %+v", rec.Execs)
	}
	for _, sc := range []string{"socket", "bind", "listen", "accept4", "execve"} {
		if rec.Syscalls[sc] == 0 {
			t.Errorf("syscall %s not seen", sc)
		}
	}
}

func TestParseMount(t *testing.T) {
	dir := t.TempDir()
	if m, err := ParseMount(dir + ":/data:ro"); err != nil || m.Source != dir || m.Destination != "/data" || !m.ReadOnly {
		t.Fatalf("%+v %v", m, err)
	}
	for _, bad := range []string{"relative:/x", dir + ":relative", dir, dir + ":/x:zz", "/no/such/dir:/x", dir + ":/a:ro:x"} {
		if _, err := ParseMount(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

// The sandbox's limits: docker's open-files limit, and pids and memory cgroup limits (root) the app cannot
// pass.
func TestE2ESandboxLimits(t *testing.T) {
	tree := unpacked(t, "python")
	var out syncBuffer
	ctx := context.Background()
	s, err := Start(ctx, tree, Spec{
		Args: []string{"python3", "-c", "import resource, glob\n" +
			"print(resource.getrlimit(resource.RLIMIT_NOFILE)[0])\n" +
			"print([open(p).read().strip() for p in glob.glob('/sys/fs/cgroup/pids.max') + glob.glob('/sys/fs/cgroup/pids/pids.max')])\n" +
			"print([open(p).read().strip() for p in glob.glob('/sys/fs/cgroup/memory.max') + glob.glob('/sys/fs/cgroup/memory/memory.limit_in_bytes')])"},
		Env:    []string{"PATH=/usr/local/bin:/usr/bin:/bin"},
		Stdout: &out, Stderr: &out,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	code, err := s.Wait(ctx)
	s.Close()
	want := fmt.Sprintf("%d\n['%d']\n['%d']", nofile(), DefaultPids, DefaultMemory())
	if err != nil || code != 0 || strings.TrimSpace(out.String()) != want {
		t.Fatalf("exit %d (%v), output %q, want %q", code, err, out.String(), want)
	}
}
