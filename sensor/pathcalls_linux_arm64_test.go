package sensor

import (
	"testing"

	"golang.org/x/sys/unix"
)

// TestPathCallsSpotChecksARM64 would catch a wrong rule or table on arm64, whose calls are the generic
// table's: no open, stat or access, only their *at forms.
func TestPathCallsSpotChecksARM64(t *testing.T) {
	p := pathArgAt
	var cases []spotCase
	for _, tc := range []struct {
		name string
		nr   uint32
		want []pathArg // nil: not a path call
	}{
		{"openat", unix.SYS_OPENAT, []pathArg{p(1, 0, -1, "open")}},
		{"openat2", unix.SYS_OPENAT2, []pathArg{p(1, 0, -1, "open")}},
		{"newfstatat", unix.SYS_FSTATAT, []pathArg{p(1, 0, 3, "stat")}},
		{"faccessat", unix.SYS_FACCESSAT, []pathArg{p(1, 0, -1, "access")}},
		{"renameat (the renameat ABI)", unix.SYS_RENAMEAT, []pathArg{p(1, 0, -1, "rename"), p(3, 2, -1, "rename-to")}},
		{"linkat", unix.SYS_LINKAT, []pathArg{p(1, 0, 4, "hardlink"), p(3, 2, -1, "hardlink-to")}},
		{"symlinkat", unix.SYS_SYMLINKAT, []pathArg{p(2, 1, -1, "symlink")}},
		{"execve", unix.SYS_EXECVE, []pathArg{p(0, -1, -1, "exec")}},
		{"execveat", unix.SYS_EXECVEAT, []pathArg{p(1, 0, 4, "exec")}},
		{"mount", unix.SYS_MOUNT, []pathArg{p(0, -1, -1, "mount"), p(1, -1, -1, "mountpoint")}},
		{"fchdir", unix.SYS_FCHDIR, []pathArg{{Arg: 0, Kind: argFD, Dirfd: -1, Flags: -1, Len: -1, Op: "chdir"}}},
		{"connect", unix.SYS_CONNECT, []pathArg{{Arg: 1, Kind: argSockaddr, Dirfd: -1, Flags: -1, Len: 2, Op: "connect"}}},
		{"setxattrat (supplement)", 463, []pathArg{p(1, 0, 2, "xattr")}},
		{"memfd_create", unix.SYS_MEMFD_CREATE, nil},
		{"read", unix.SYS_READ, nil},
	} {
		cases = append(cases, spotCase{tc.name, pathCallsARM64, tc.nr, tc.want})
	}
	spotCheck(t, cases)
	if len(arches) != 1 || arches[0].audit != unix.AUDIT_ARCH_AARCH64 {
		t.Errorf("arches %+v: want AArch64 alone", arches)
	}
}
