package runner

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// confineProbe prints, from inside the sandbox, the user namespace's mapping and what the kernel answers to
// syscalls the default seccomp profile refuses (EPERM), io_uring_setup (ENOSYS: the sensor's filter, so that
// programs fall back to syscalls it sees), and one it allows (getpid); then it sleeps, for the host to look.
const confineProbe = `import ctypes, errno, sys, time
libc = ctypes.CDLL(None, use_errno=True)
def call(nr, *args):
    ctypes.set_errno(0)
    r = libc.syscall(nr, *args)
    return errno.errorcode.get(ctypes.get_errno(), "?") if r == -1 else "ok"
print("uid_map", " ".join(open("/proc/self/uid_map").read().split()))
for l in open("/proc/self/status"):
    if l.startswith(("CapEff:", "CapBnd:")):
        print(l.split(":")[0], l.split()[1])
print("keyctl", call(250, 0, ctypes.c_long(-1), 0))
print("unshare", call(272, 0x10000000))
print("bpf", call(321, 5, ctypes.c_void_p(0), 0))
print("io_uring_setup", call(425, 1, ctypes.c_void_p(0)))
print("getpid", call(39))
import os
st = os.stat("/usr/bin/python3.11")
print("owner", "%d:%d" % (st.st_uid, st.st_gid))
try:
    open("/tmp/written-by-root", "w").write("x")
    print("write", "ok")
except OSError as e:
    print("write", errno.errorcode.get(e.errno, "?"))
# The host's disk, as a device node made inside: refused (mknod in the user namespace, or the devices cgroup).
import stat
major, minor = (int(x) for x in sys.argv[1].split(":"))
try:
    os.mknod("/tmp/disk", 0o600 | stat.S_IFBLK, os.makedev(major, minor))
    print("mknod", "ok")
except OSError as e:
    print("mknod", errno.errorcode.get(e.errno, "?"))
try:
    open("/tmp/disk", "rb").read(1)
    print("disk", "READ")
except OSError as e:
    print("disk", errno.errorcode.get(e.errno, "?"))
print("done", flush=True)
time.sleep(60)
`

// The app as root in the image is neither the host's root nor free to call what docker's default seccomp
// profile refuses; --userns=host and seccomp=unconfined undo each.
func TestE2ESandboxConfinesTheApp(t *testing.T) {
	tree := unpacked(t, "python")
	sensorBin := buildSensor(t)
	run := func(t *testing.T, spec Spec) (map[string]string, []int) {
		var out syncBuffer
		spec.Args = []string{"python3", "-c", confineProbe, hostDisk(t)}
		spec.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin"}
		spec.Stdout, spec.Stderr, spec.Sensor = &out, &out, sensorBin
		tmp := t.TempDir()
		s, err := Start(context.Background(), tree, spec, &Options{StateDir: filepath.Join(tmp, "sandbox"), WorkRoot: filepath.Dir(tmp)})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		deadline := time.Now().Add(30 * time.Second)
		for !strings.Contains(out.String(), "done") {
			if time.Now().After(deadline) || s.Exited() {
				t.Fatalf("no answer from the app: %q", out.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
		got := map[string]string{}
		for _, l := range strings.Split(out.String(), "\n") {
			if k, v, ok := strings.Cut(l, " "); ok {
				got[k] = v
			}
		}
		// From the host: the host uids of every process of the sandbox (the sensor and the app).
		st, err := s.container.State()
		if err != nil {
			t.Fatal(err)
		}
		return got, hostUIDs(t, st.InitProcessPid)
	}
	// The sensor's CAP_SYS_PTRACE (bit 19) is not the app's, whichever backend: it is dropped on the thread
	// that execs the app (capabilities are a thread's).
	noPtrace := func(t *testing.T, got map[string]string) {
		for _, k := range []string{"CapEff", "CapBnd"} {
			v, err := strconv.ParseUint(got[k], 16, 64)
			if err != nil || v&(1<<unix.CAP_SYS_PTRACE) != 0 {
				t.Errorf("the app's %s is %q: want no CAP_SYS_PTRACE", k, got[k])
			}
		}
	}
	t.Run("ptrace backend", func(t *testing.T) {
		got, _ := run(t, Spec{SensorBackend: "ptrace"})
		noPtrace(t, got)
	})
	t.Run("default", func(t *testing.T) {
		got, uids := run(t, Spec{})
		noPtrace(t, got)
		for call, want := range map[string]string{"keyctl": "EPERM", "unshare": "EPERM", "bpf": "EPERM", "io_uring_setup": "ENOSYS", "getpid": "ok"} {
			if got[call] != want {
				t.Errorf("%s: %s, want %s", call, got[call], want)
			}
		}
		// The image's owners as the image says (root's files are root's inside, not nobody's), and the app's
		// root may write its root filesystem.
		if got["owner"] != "0:0" || got["write"] != "ok" {
			t.Errorf("inside the user namespace: /usr/bin/python3.11 owned by %s, writing /tmp: %s", got["owner"], got["write"])
		}
		if got["mknod"] != "EPERM" || got["disk"] == "READ" {
			t.Errorf("the host's disk as a device node: mknod %s, read %s", got["mknod"], got["disk"])
		}
		m := strings.Fields(got["uid_map"])
		if len(m) != 3 || m[0] != "0" || m[1] == "0" {
			t.Errorf("uid_map %q: want 0 mapped to an unprivileged host id", got["uid_map"])
		}
		if len(uids) < 2 {
			t.Fatalf("host uids %v: want the sensor's and the app's", uids)
		}
		for _, u := range uids {
			if u < idBase {
				t.Errorf("a sandbox process runs as host uid %d (want >= %d): %v", u, idBase, uids)
			}
		}
	})
	t.Run("opt-outs", func(t *testing.T) {
		got, uids := run(t, Spec{HostUserns: true, SeccompUnconfined: true})
		// (bpf is refused by the kernel itself without CAP_BPF.)
		if got["keyctl"] == "EPERM" || got["io_uring_setup"] != "ENOSYS" {
			t.Errorf("unconfined: keyctl %s (want the kernel's own answer), io_uring_setup %s (the sensor's filter stays)", got["keyctl"], got["io_uring_setup"])
		}
		if got["disk"] == "READ" {
			t.Errorf("--userns=host: the app read the host's disk through a device node (mknod %s)", got["mknod"])
		}
		if got["uid_map"] != "0 0 4294967295" {
			t.Errorf("--userns=host: uid_map %q", got["uid_map"])
		}
		for _, u := range uids {
			if u != 0 {
				t.Errorf("--userns=host: host uid %d", u)
			}
		}
	})
}

// hostDisk is "MAJOR:MINOR" of the block device the host's root filesystem is on (what an app that could
// read it would read the host with).
func hostDisk(t *testing.T) string {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat("/", &st); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%d:%d", unix.Major(st.Dev), unix.Minor(st.Dev))
}

// hostUIDs lists the real uid, as the host sees it, of pid and all its descendants.
func hostUIDs(t *testing.T, pid int) []int {
	t.Helper()
	var out []int
	todo := []int{pid}
	for len(todo) > 0 {
		p := todo[0]
		todo = todo[1:]
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p))
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) > 1 && f[0] == "Uid:" {
				u, _ := strconv.Atoi(f[1])
				out = append(out, u)
			}
		}
		tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", p))
		for _, task := range tasks {
			kids, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", p, task.Name()))
			for _, k := range strings.Fields(string(kids)) {
				n, _ := strconv.Atoi(k)
				todo = append(todo, n)
			}
		}
	}
	return out
}
