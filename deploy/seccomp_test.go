// Package deploy holds what runs slimoci elsewhere: its image (image/), its seccomp profile (seccomp.json),
// and the tests that keep them current.
package deploy

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"slices"
	"testing"

	"github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

var update = flag.Bool("update", false, "rewrite seccomp.json from the moby profile this module requires")

// sandboxCalls are what slimoci's rootless sandbox calls that docker's default profile allows only to a
// container holding CAP_SYS_ADMIN (or, pivot_root, to no container): libcontainer's nsexec makes the
// namespaces (unshare; clone with namespace flags is slimoci's preflight child, see runner.Preflight), its
// init mounts the root filesystem, /proc, /dev and the bind mounts (mount), pivots into it and detaches the
// old root (pivot_root, umount2), and sets the hostname (sethostname). Each works only inside the user
// namespace slimoci made, where its processes hold no capability over anything outside. Found by removing
// each call of a wider list in turn and running slimoci's image on the python sample with podman: setns,
// and the new mount API (open_tree, move_mount, mount_setattr, fsopen, fsconfig, fsmount, fspick), are not
// needed.
var sandboxCalls = []string{"clone", "mount", "pivot_root", "sethostname", "umount2", "unshare"}

// profile is docker's default seccomp profile (github.com/moby/profiles/seccomp, the same one podman's
// derives from) with sandboxCalls allowed to every container rather than to those with CAP_SYS_ADMIN.
func profile() *seccomp.Seccomp {
	p := seccomp.DefaultProfile()
	var rules []*seccomp.Syscall
	for _, r := range p.Syscalls {
		if r.Includes != nil && slices.Equal(r.Includes.Caps, []string{"CAP_SYS_ADMIN"}) && len(r.Args) == 0 {
			r.Names = slices.DeleteFunc(slices.Clone(r.Names), func(n string) bool { return slices.Contains(sandboxCalls, n) })
		}
		// clone with namespace flags refused unless CAP_SYS_ADMIN: replaced by the unconditional clone below.
		if slices.Equal(r.Names, []string{"clone"}) && r.Excludes != nil && slices.Contains(r.Excludes.Caps, "CAP_SYS_ADMIN") {
			continue
		}
		rules = append(rules, r)
	}
	// keyctl stays refused (keyrings are not namespaced), but with ENOSYS rather than EPERM: libcontainer
	// then leaves the sandbox in the session keyring the runtime made for slimoci's container, as runc does
	// in a container, instead of failing ("unable to join session keyring").
	nosys := uint(unix.ENOSYS)
	p.Syscalls = append(rules, &seccomp.Syscall{
		LinuxSyscall: specs.LinuxSyscall{Names: sandboxCalls, Action: specs.ActAllow},
		Comment:      "slimoci's rootless sandbox: namespaces, mounts, pivot_root and sethostname inside its own user namespace",
	}, &seccomp.Syscall{
		LinuxSyscall: specs.LinuxSyscall{Names: []string{"keyctl"}, Action: specs.ActErrno, ErrnoRet: &nosys},
		Comment:      "slimoci's rootless sandbox: no session keyring of its own (libcontainer takes ENOSYS as no keyrings)",
	})
	return p
}

func TestSeccompProfileCurrent(t *testing.T) {
	want, err := json.MarshalIndent(profile(), "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, '\n')
	if *update {
		if err := os.WriteFile("seccomp.json", want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile("seccomp.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("deploy/seccomp.json is not docker's default profile (this module's moby/profiles) with sandboxCalls: run go test ./deploy -run TestSeccompProfileCurrent -update")
	}
}

// The profile, as a runtime resolves it for a container with the default capabilities (no CAP_SYS_ADMIN):
// the sandbox's calls allowed, clone unconditionally, and what docker's profile refuses still refused.
func TestSeccompProfileResolved(t *testing.T) {
	b, err := os.ReadFile("seccomp.json")
	if err != nil {
		t.Fatal(err)
	}
	caps := []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP", "CAP_SETUID", "CAP_SYS_CHROOT"}
	rs := &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}}}
	sc, err := seccomp.LoadProfile(string(b), rs)
	if err != nil {
		t.Fatal(err)
	}
	if r := sc.Syscalls[len(sc.Syscalls)-1]; !slices.Equal(r.Names, []string{"keyctl"}) || r.Action != specs.ActErrno || r.ErrnoRet == nil || *r.ErrnoRet != uint(unix.ENOSYS) {
		t.Errorf("keyctl: %+v, want ENOSYS", r)
	}
	if sc.DefaultAction != specs.ActErrno {
		t.Errorf("default action %s, want %s", sc.DefaultAction, specs.ActErrno)
	}
	allowed := map[string]bool{}
	for _, r := range sc.Syscalls {
		for _, n := range r.Names {
			if r.Action == specs.ActAllow && len(r.Args) == 0 {
				allowed[n] = true
			}
		}
	}
	for _, n := range append(slices.Clone(sandboxCalls), "read", "ptrace", "seccomp", "process_vm_readv") {
		if !allowed[n] {
			t.Errorf("%s is not allowed unconditionally", n)
		}
	}
	for _, n := range []string{"bpf", "kexec_load", "init_module", "perf_event_open", "keyctl", "add_key", "setdomainname", "syslog"} {
		if allowed[n] {
			t.Errorf("%s is allowed: the profile widens docker's beyond the sandbox's calls", n)
		}
	}
}
