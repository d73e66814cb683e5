package emit

import (
	"encoding/json"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	seccomp "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/slimoci/slimoci/sensor"
)

// TestSeccompProfileLoads: docker's own loader (moby/profiles/seccomp.LoadProfile, what dockerd runs on
// --security-opt seccomp=FILE) takes the profile and yields the runtime-spec rules meant: EPERM by default,
// the observed syscalls and the baseline allowed, clone3 ENOSYS.
func TestSeccompProfileLoads(t *testing.T) {
	b, err := SeccompProfile([]string{"socket", "bind", "listen"})
	if err != nil {
		t.Fatal(err)
	}
	ls, err := seccomp.LoadProfile(string(b), &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{}}})
	if err != nil {
		t.Fatalf("docker's loader refuses the profile: %v\n%s", err, b)
	}
	if ls.DefaultAction != specs.ActErrno || !slices.Contains(ls.Architectures, seccompArch[runtime.GOARCH].scmp) {
		t.Fatalf("default %s, architectures %v", ls.DefaultAction, ls.Architectures)
	}
	action := map[string]specs.LinuxSyscall{}
	for _, r := range ls.Syscalls {
		for _, n := range r.Names {
			action[n] = r
		}
	}
	for _, n := range []string{"socket", "bind", "listen", "execve", "openat"} {
		if action[n].Action != specs.ActAllow {
			t.Errorf("%s: %+v, want allowed", n, action[n])
		}
	}
	if r := action["clone3"]; r.Action != specs.ActErrno || r.ErrnoRet == nil || *r.ErrnoRet != 38 {
		t.Errorf("clone3: %+v, want ENOSYS", r)
	}
	if _, ok := action["ptrace"]; ok {
		t.Errorf("ptrace has a rule: %+v", action["ptrace"])
	}
}

// The test binary is the sensor's exec helper, as the sensor binary is in the sandbox.
func init() {
	if len(os.Args) > 1 && os.Args[1] == sensor.ExecHelperArg {
		if err := sensor.ExecHelper(os.Args[1:]); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(127)
		}
	}
}

// probeSource is an arm64 program for TestE2ESeccompProfileEmulatedPodman: it reads a file and says so.
const probeSource = `package main

import (
	"fmt"
	"os"
)

func main() {
	b, err := os.ReadFile("/etc/os-release")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("probe read %d bytes\n", len(b))
}
`

// TestE2ESeccompProfileEmulatedPodman: an arm64 program observed by the sensor under qemu-user on this x86_64
// machine, and its profile for linux/arm64, run by podman with --platform linux/arm64 (the same emulator,
// through binfmt_misc) under that profile: it works. The same profile without its emulated-run rule (the
// arm64 hosts' alone: what a profile of AArch64 names only is on x86_64) kills the emulator at its first
// x86_64-only call, which is why the profile carries both.
func TestE2ESeccompProfileEmulatedPodman(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs podman on the test bed's arm64 base")
	}
	if runtime.GOARCH != "amd64" {
		t.Skip("emulates arm64 on an x86_64 host")
	}
	if _, err := exec.LookPath("podman"); err != nil {
		t.Skip("podman is not installed (make deps installs it)")
	}
	if _, err := os.Stat("/proc/sys/fs/binfmt_misc/qemu-aarch64"); err != nil {
		t.Skip("no binfmt_misc handler for aarch64: install qemu-user-static and binfmt-support (make deps does)")
	}
	const base = "localhost/slimoci/base-arm64:latest"
	if err := exec.Command("podman", "image", "exists", base).Run(); err != nil {
		t.Skipf("no %s: testdata/testbed.sh builds it", base)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(probeSource), 0o644); err != nil {
		t.Fatal(err)
	}
	build := exec.Command("go", "build", "-o", "probe", "main.go")
	build.Dir = dir
	build.Env = append(os.Environ(), "GOARCH=arm64", "CGO_ENABLED=0", "GOFLAGS=")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the arm64 probe: %v\n%s", err, out)
	}
	probe := filepath.Join(dir, "probe")
	rec, err := sensor.Trace([]string{probe}, sensor.TraceOptions{Helper: self, AllSyscalls: true})
	if err != nil {
		t.Fatal(err)
	}
	if rec.ExitCode != 0 || rec.Syscalls["openat"] == 0 {
		t.Fatalf("the probe under qemu: exit %d, syscalls %v", rec.ExitCode, rec.Syscalls)
	}
	profile, err := seccompProfile(v1.Platform{OS: "linux", Architecture: "arm64"}, "amd64", slices.Sorted(maps.Keys(rec.Syscalls)))
	if err != nil {
		t.Fatal(err)
	}
	var p seccomp.Seccomp
	if err := json.Unmarshal(profile, &p); err != nil {
		t.Fatal(err)
	}
	armOnly := p
	armOnly.Syscalls = nil
	for _, r := range p.Syscalls {
		if !slices.Contains(r.Includes.Arches, "amd64") {
			armOnly.Syscalls = append(armOnly.Syscalls, r)
		}
	}
	armOnlyJSON, err := json.Marshal(armOnly)
	if err != nil {
		t.Fatal(err)
	}
	run := func(profile []byte) (string, error) {
		opt := "seccomp=unconfined"
		if profile != nil {
			file := filepath.Join(t.TempDir(), "seccomp.json")
			if err := os.WriteFile(file, profile, 0o644); err != nil {
				t.Fatal(err)
			}
			opt = "seccomp=" + file
		}
		out, err := exec.Command("podman", "run", "--rm", "--platform", "linux/arm64", "--pull", "never",
			"--security-opt", opt, "-v", probe+":/probe:ro", base, "/probe").CombinedOutput()
		return string(out), err
	}
	// Without a profile first, so that a failure below is the profile's (podman here needs the test bed's
	// containers.conf: CONTAINERS_CONF, as make test sets it).
	if out, err := run(nil); err != nil || !strings.Contains(out, "probe read ") {
		t.Fatalf("podman cannot run the arm64 probe even unconfined: %v\n%s", err, out)
	}
	if out, err := run(profile); err != nil || !strings.Contains(out, "probe read ") {
		t.Errorf("the probe under its profile: %v\n%s\nprofile:\n%s", err, out, profile)
	}
	if out, err := run(armOnlyJSON); err == nil || strings.Contains(out, "probe read ") {
		t.Errorf("the probe under the arm64 hosts' rules alone ran: %v\n%s", err, out)
	}
}
