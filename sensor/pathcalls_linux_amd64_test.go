package sensor

import (
	"testing"

	"golang.org/x/sys/unix"
)

// TestPathCallsSpotChecks would catch a wrong rule: each case is what the kernel's prototype means.
func TestPathCallsSpotChecks(t *testing.T) {
	p := pathArgAt
	spotCheck(t, []spotCase{
		{"openat", pathCallsAMD64, unix.SYS_OPENAT, []pathArg{p(1, 0, -1, "open")}},
		{"open", pathCallsAMD64, unix.SYS_OPEN, []pathArg{p(0, -1, -1, "open")}},
		{"renameat2", pathCallsAMD64, unix.SYS_RENAMEAT2, []pathArg{p(1, 0, -1, "rename"), p(3, 2, -1, "rename-to")}},
		// The link's content is not looked up: only the new name.
		{"symlinkat", pathCallsAMD64, unix.SYS_SYMLINKAT, []pathArg{p(2, 1, -1, "symlink")}},
		{"symlink", pathCallsAMD64, unix.SYS_SYMLINK, []pathArg{p(1, -1, -1, "symlink")}},
		// The attribute's name is not a path.
		{"setxattr", pathCallsAMD64, unix.SYS_SETXATTR, []pathArg{p(0, -1, -1, "xattr")}},
		// Not the filesystem type (2) or the data (4).
		{"mount", pathCallsAMD64, unix.SYS_MOUNT, []pathArg{p(0, -1, -1, "mount"), p(1, -1, -1, "mountpoint")}},
		{"execveat", pathCallsAMD64, unix.SYS_EXECVEAT, []pathArg{p(1, 0, 4, "exec")}},
		// AT_EMPTY_PATH applies to the old name only.
		{"linkat", pathCallsAMD64, unix.SYS_LINKAT, []pathArg{p(1, 0, 4, "hardlink"), p(3, 2, -1, "hardlink-to")}},
		{"statx", pathCallsAMD64, unix.SYS_STATX, []pathArg{p(1, 0, 2, "stat")}},
		{"newfstatat", pathCallsAMD64, unix.SYS_NEWFSTATAT, []pathArg{p(1, 0, 3, "stat")}},
		// The inotify descriptor is not a directory.
		{"inotify_add_watch", pathCallsAMD64, unix.SYS_INOTIFY_ADD_WATCH, []pathArg{p(1, -1, -1, "watch")}},
		{"fchdir", pathCallsAMD64, unix.SYS_FCHDIR, []pathArg{{Arg: 0, Kind: argFD, Dirfd: -1, Flags: -1, Len: -1, Op: "chdir"}}},
		{"connect", pathCallsAMD64, unix.SYS_CONNECT, []pathArg{{Arg: 1, Kind: argSockaddr, Dirfd: -1, Flags: -1, Len: 2, Op: "connect"}}},
		{"bind", pathCallsAMD64, unix.SYS_BIND, []pathArg{{Arg: 1, Kind: argSockaddr, Dirfd: -1, Flags: -1, Len: 2, Op: "bind"}}},
		{"memfd_create", pathCallsAMD64, unix.SYS_MEMFD_CREATE, nil},
		{"sethostname", pathCallsAMD64, unix.SYS_SETHOSTNAME, nil},
		{"fsetxattr", pathCallsAMD64, unix.SYS_FSETXATTR, nil},
		{"mq_open", pathCallsAMD64, unix.SYS_MQ_OPEN, nil},
		{"setxattrat (supplement)", pathCallsAMD64, 463, []pathArg{p(1, 0, 2, "xattr")}},
		{"i386 open", pathCallsI386, 5, []pathArg{p(0, -1, -1, "open")}},
		{"i386 oldstat", pathCallsI386, 18, []pathArg{p(0, -1, -1, "stat")}},
		{"i386 fstatat64", pathCallsI386, 300, []pathArg{p(1, 0, 3, "stat")}},
		// The 64-bit mask takes two arguments on i386: the path is the sixth.
		{"i386 fanotify_mark", pathCallsI386, 339, []pathArg{p(5, 4, -1, "watch")}},
		{"i386 connect", pathCallsI386, 362, []pathArg{{Arg: 1, Kind: argSockaddr, Dirfd: -1, Flags: -1, Len: 2, Op: "connect"}}},
		{"i386 socketcall", pathCallsI386, 102, nil},
	})
}
