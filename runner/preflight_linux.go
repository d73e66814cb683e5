package runner

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// A rootless sandbox needs what a container runtime may take away from the container slimoci runs in: a user
// namespace with mount, UTS and PID namespaces, mount(2), sethostname(2), and a new procfs, which the kernel
// refuses where the outer /proc has masked paths. libcontainer then fails deep in its init with its own words
// ("error mounting "proc" to rootfs at "/proc": ... operation not permitted"); Preflight tries each in a
// child first and says in one line which relaxation the container lacks.

// ErrConfined: slimoci runs where a rootless sandbox cannot be made (inside a container without the
// relaxations it needs). The error matching it says, in one line, which relaxation and how to give it.
var ErrConfined = errors.New("slimoci cannot make its sandbox here")

// confinedError is an ErrConfined whose text is only what is missing and the fix.
type confinedError struct{ msg string }

func (e *confinedError) Error() string        { return e.msg }
func (e *confinedError) Is(target error) bool { return target == ErrConfined }

func confined(format string, a ...any) error { return &confinedError{fmt.Sprintf(format, a...)} }

// preflightEnv, set to a directory, makes Init the preflight's child instead of libcontainer's init.
const preflightEnv = "_SLIMOCI_PREFLIGHT_DIR"

// The relaxations, as podman and Kubernetes name them.
const (
	fixUnmask  = "run it with --security-opt unmask=ALL (docker: --security-opt systempaths=unconfined; Kubernetes: procMount: Unmasked, hostUsers: false)"
	fixSeccomp = "run it with --security-opt seccomp=deploy/seccomp.json (slimoci's profile) or seccomp=unconfined (Kubernetes: seccompProfile type Localhost with that file, or Unconfined)"
)

var preflight struct {
	once sync.Once
	err  error
}

// Preflight checks, once per process, that this process can make a rootless sandbox, and otherwise returns
// an ErrConfined error saying what is missing. Start calls it before a rootless sandbox; a caller may call it
// earlier, to fail before any other work.
func Preflight() error {
	preflight.once.Do(func() { preflight.err = runPreflight() })
	return preflight.err
}

func runPreflight() error {
	out, err := preflightCalls()
	if err != nil {
		return err
	}
	env := probeEnv()
	for line := range strings.Lines(out) {
		// "CALL ok" or "CALL ERRNO-NUMBER"
		call, res, _ := strings.Cut(strings.TrimSpace(line), " ")
		if call == "clone" || res != "ok" && res != "" {
			var n int
			fmt.Sscan(res, &n)
			if errno := syscall.Errno(n); call == "clone" || refusal(errno) {
				return env.explain(call, errno)
			}
			// Not a refusal (a kernel that wants something else of the probe's own mounts): libcontainer
			// may still succeed, and it says why if not.
			return nil
		}
	}
	return nil
}

// preflightCalls runs the preflight's child and returns its lines, or "clone ERRNO" when it could not be
// started in its namespaces.
func preflightCalls() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("preflight: %w", err)
	}
	dir, err := os.MkdirTemp("", "slimoci-preflight-")
	if err != nil {
		return "", fmt.Errorf("preflight: %w", err)
	}
	defer os.RemoveAll(dir)
	var out, stderr bytes.Buffer
	cmd := exec.Command(exe, InitArg)
	cmd.Env = []string{preflightEnv + "=" + dir}
	cmd.Stdout, cmd.Stderr = &out, &stderr
	uid, gid := os.Geteuid(), os.Getegid()
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  unix.CLONE_NEWUSER | unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWPID,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: uid, Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: gid, Size: 1}},
		Pdeathsig:   unix.SIGKILL,
	}
	if err := cmd.Run(); err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return "", fmt.Errorf("preflight: %w: %s", err, strings.TrimSpace(stderr.String()))
		}
		var errno syscall.Errno
		errors.As(err, &errno)
		return fmt.Sprintf("clone %d\n", int(errno)), nil
	}
	return out.String(), nil
}

// refusal reports an errno by which a seccomp filter, an LSM or the kernel's rules refuse a call.
func refusal(errno syscall.Errno) bool {
	return errno == unix.EPERM || errno == unix.EACCES || errno == unix.ENOSYS
}

// probed is what the parent reads of its own confinement, to tell why a call failed.
type probed struct {
	seccomp  bool   // a seccomp filter applies (/proc/self/status Seccomp: 2)
	masked   string // a mount over a path under /proc ("" when none): a masked or read-only /proc
	apparmor string // the AppArmor profile confining this process, "" when unconfined or none
}

func probeEnv() probed {
	var p probed
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(line, "Seccomp:"); ok {
				p.seccomp = strings.TrimSpace(v) == "2"
			}
		}
	}
	if f, err := os.Open("/proc/self/mountinfo"); err == nil {
		p.masked = procSubmount(f)
		f.Close()
	}
	for _, f := range []string{"/proc/self/attr/apparmor/current", "/proc/self/attr/current"} {
		if b, err := os.ReadFile(f); err == nil {
			if v := strings.TrimSpace(strings.TrimRight(string(b), "\x00")); v != "" && v != "unconfined" && !strings.Contains(v, ":") {
				p.apparmor = strings.TrimSuffix(v, " (enforce)")
			}
			break
		}
	}
	return p
}

// procSubmount returns the first mount point under /proc/ in a mountinfo (the kernel refuses a new procfs
// in a user namespace where a locked mount hides part of the visible one), "" when there is none.
// binfmt_misc's mount point is a permanently empty directory, which the kernel does not count.
func procSubmount(r io.Reader) string {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 5 {
			continue
		}
		mp := f[4]
		if strings.HasPrefix(mp, "/proc/") && mp != "/proc/sys/fs/binfmt_misc" {
			return mp
		}
	}
	return ""
}

// explain turns a failed call of the preflight into the one line that says what the container lacks.
func (p probed) explain(call string, err error) error {
	var errno syscall.Errno
	errors.As(err, &errno)
	refused := refusal(errno)
	what := map[string]string{
		"clone":       "user namespaces",
		"unshare":     "unshare",
		"sethostname": "sethostname",
		"mount":       "mount",
		"proc":        "mounting a procfs",
		"pivot_root":  "pivot_root",
		"umount2":     "umount2",
	}[call]
	switch {
	case call == "proc" && p.masked != "":
		return confined("slimoci runs inside a container whose /proc is masked (%s is a mount of its own): %s", p.masked, fixUnmask)
	case refused && p.seccomp:
		return confined("slimoci runs inside a container whose seccomp profile refuses %s, which its sandbox needs: %s", what, fixSeccomp)
	case refused && p.apparmor != "":
		return confined("the AppArmor profile %s refuses %s, which slimoci's sandbox needs: run it with --security-opt apparmor=unconfined (Kubernetes: appArmorProfile type Unconfined)", p.apparmor, what)
	case call == "clone":
		return confined("this machine refuses an unprivileged user namespace (%v): check sysctl user.max_user_namespaces and kernel.unprivileged_userns_clone, or run slimoci as root", err)
	}
	return confined("slimoci cannot make its sandbox here: %s in a user namespace failed: %v", what, err)
}

// preflightChild is Init's other job: in new user, mount, UTS and PID namespaces, try what libcontainer's
// nsexec and init will do (unshare, sethostname, mounts, a procfs, pivot_root, umount2), print each call's
// result ("CALL ok" or "CALL ERRNO"), and exit at the first that fails.
func preflightChild() {
	dir := os.Getenv(preflightEnv)
	if dir == "" {
		return
	}
	try := func(call string, err error) bool {
		if err != nil {
			var errno syscall.Errno
			errors.As(err, &errno)
			fmt.Printf("%s %d\n", call, int(errno))
			return false
		}
		fmt.Printf("%s ok\n", call)
		return true
	}
	root := dir + "/root"
	_ = try("unshare", unix.Unshare(unix.CLONE_NEWUTS)) &&
		try("sethostname", unix.Sethostname([]byte("slimoci-preflight"))) &&
		try("mount", unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, "")) &&
		try("mount", unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "size=16k")) &&
		try("mount", os.Mkdir(root, 0o755)) && try("mount", unix.Mount(dir, root, "", unix.MS_BIND, "")) &&
		try("proc", os.Mkdir(root+"/proc", 0o755)) &&
		try("proc", unix.Mount("proc", root+"/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "")) &&
		try("pivot_root", unix.Chdir(root)) && try("pivot_root", unix.PivotRoot(".", ".")) &&
		try("umount2", unix.Unmount(".", unix.MNT_DETACH))
	os.Exit(0)
}
