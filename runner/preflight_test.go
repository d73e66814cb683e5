package runner

import (
	"errors"
	"strings"
	"syscall"
	"testing"
)

// The preflight's child really runs here (this test binary's init dispatches it): in new user, mount, UTS and
// PID namespaces it unshares, sets the hostname, mounts a tmpfs and a procfs, pivots and unmounts, which this
// machine allows.
func TestPreflight(t *testing.T) {
	out, err := preflightCalls()
	want := "unshare ok\nsethostname ok\nmount ok\nmount ok\nmount ok\nmount ok\nproc ok\nproc ok\npivot_root ok\npivot_root ok\numount2 ok\n"
	if err != nil || out != want {
		t.Fatalf("the preflight's calls: %v\n%s", err, out)
	}
	if err := runPreflight(); err != nil {
		t.Fatalf("preflight on this machine: %v", err)
	}
}

func TestProcSubmount(t *testing.T) {
	for _, tc := range []struct{ name, mountinfo, want string }{
		{"host with binfmt_misc", `22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
23 22 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
24 23 0:40 / /proc/sys/fs/binfmt_misc rw,relatime shared:13 - binfmt_misc binfmt_misc rw
`, ""},
		// podman's default: masked files are /dev/null bind mounts, masked directories read-only tmpfs,
		// and /proc/sys and friends read-only bind mounts.
		{"podman default", `580 520 0:54 / / rw,relatime - overlay overlay rw
581 580 0:57 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
590 581 0:58 / /proc/acpi ro,relatime - tmpfs tmpfs ro,size=0k
591 581 0:5 /null /proc/kcore rw,nosuid - devtmpfs udev rw
`, "/proc/acpi"},
		{"unmask=ALL", `580 520 0:54 / / rw,relatime - overlay overlay rw
581 580 0:57 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
582 580 0:59 / /dev rw,nosuid - tmpfs tmpfs rw
`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := procSubmount(strings.NewReader(tc.mountinfo)); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestPreflightExplain(t *testing.T) {
	eperm := error(syscall.EPERM)
	for _, tc := range []struct {
		name string
		env  probed
		call string
		err  error
		want string
	}{
		{"masked proc", probed{masked: "/proc/acpi"}, "proc", eperm, "slimoci runs inside a container whose /proc is masked (/proc/acpi is a mount of its own): run it with --security-opt unmask=ALL"},
		{"masked proc under seccomp", probed{masked: "/proc/kcore", seccomp: true}, "proc", eperm, "whose /proc is masked"},
		{"seccomp sethostname", probed{seccomp: true}, "sethostname", eperm, "slimoci runs inside a container whose seccomp profile refuses sethostname, which its sandbox needs: run it with --security-opt seccomp=deploy/seccomp.json"},
		{"seccomp clone", probed{seccomp: true}, "clone", &wrapped{syscall.EPERM}, "seccomp profile refuses user namespaces"},
		{"seccomp unshare", probed{seccomp: true}, "unshare", eperm, "seccomp profile refuses unshare"},
		{"seccomp pivot_root", probed{seccomp: true}, "pivot_root", eperm, "seccomp profile refuses pivot_root"},
		{"apparmor mount", probed{apparmor: "docker-default"}, "mount", eperm, "the AppArmor profile docker-default refuses mount"},
		{"no user namespaces", probed{}, "clone", &wrapped{syscall.ENOSPC}, "refuses an unprivileged user namespace"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.env.explain(tc.call, tc.err)
			if !errors.Is(err, ErrConfined) || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("got %q, want one line of ErrConfined with %q", err, tc.want)
			}
		})
	}
}

// wrapped is an error around an errno, as fork/exec's.
type wrapped struct{ errno syscall.Errno }

func (w *wrapped) Error() string { return "fork/exec: " + w.errno.Error() }
func (w *wrapped) Unwrap() error { return w.errno }
