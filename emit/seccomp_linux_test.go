package emit

import (
	"slices"
	"testing"

	seccomp "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
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
	if ls.DefaultAction != specs.ActErrno || !slices.Contains(ls.Architectures, specs.ArchX86_64) {
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
