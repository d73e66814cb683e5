package main

// The rules, as data: which parameter of which syscall names a file, which descriptor it is relative to,
// which flags may make it empty, and what the record calls the operation. The generator fails on anything
// these do not decide (a new `char __user *` parameter, a path with no op, an entry here that matches no
// syscall), so that a newer kernel is looked at rather than guessed.

// pathParams are the names of `char __user *` parameters that name a file the kernel looks up.
var pathParams = set(
	"filename", "pathname", "path", "oldname", "newname", "specialfile", "library", "dev_name", "dir_name",
	"new_root", "put_old", "from_pathname", "to_pathname", "special",
)

// notPathParams are the names of `char __user *` parameters that never name a file.
var notPathParams = set(
	"buf",           // read, write, pread64, pwrite64, readlink(at)'s result, getcwd, syslog
	"ubuf",          // getrandom; i386 pread64, pwrite64
	"list",          // the *listxattr* calls' result
	"type",          // mount's filesystem type
	"uargs",         // init_module's, finit_module's parameters
	"optval",        // setsockopt, getsockopt
	"_type",         // add_key, request_key: a key's type
	"_description",  // and description,
	"_callout_info", // request_key's data for the upcall
	"uname",         // memfd_create's name: a label, not a file
	"_fs_name",      // fsopen's filesystem type
	"_key",          // fsconfig's parameter name (FSCONFIG_SET_PATH's path is its void * value: not decoded)
	"cmdline_ptr",   // kexec_file_load's kernel command line
	"u_name",        // mq_open, mq_unlink: a message queue's name, in the mqueue filesystem, not the app's tree
	"u_msg_ptr",     // mq_timedsend, mq_timedreceive (and _time64)
	"name_user",     // delete_module's module name
	"shmaddr",       // shmat, shmdt: an address
)

// exceptions decide the `char __user *` parameters whose name alone does not tell, by syscall (the table's
// name) and parameter: true where the argument names a file, false where it does not.
var exceptions = map[string]map[string]bool{
	// The first argument of symlink and symlinkat is the link's content, stored, not looked up: only the new
	// name is a file.
	"symlink":   {"oldname": false},
	"symlinkat": {"oldname": false},
	// umount's and umount2's name is the mount point; acct's is the accounting file.
	"umount":  {"name": true},
	"umount2": {"name": true},
	"acct":    {"name": true},
	// name_to_handle_at's name is the path the handle is for.
	"name_to_handle_at": {"name": true},
	// xattr names are attribute names ("user.foo"), not files.
	"setxattr": {"name": false}, "lsetxattr": {"name": false}, "fsetxattr": {"name": false},
	"getxattr": {"name": false}, "lgetxattr": {"name": false}, "fgetxattr": {"name": false},
	"removexattr": {"name": false}, "lremovexattr": {"name": false}, "fremovexattr": {"name": false},
	"setxattrat": {"name": false}, "getxattrat": {"name": false}, "removexattrat": {"name": false},
	// sethostname's and setdomainname's name is the host's name.
	"sethostname":   {"name": false},
	"setdomainname": {"name": false},
}

// dirfdParams are the names of the descriptor parameters a path right after them is relative to.
var dirfdParams = set("dfd", "olddfd", "newdfd", "from_dfd", "to_dfd")

// dirfdExceptions are, by "syscall.parameter", descriptors the name does not tell: execveat's is "fd" (and
// inotify_add_watch's "fd", right before its path too, is the inotify instance, not a directory).
var dirfdExceptions = map[string]string{
	"execveat.filename": "fd",
}

// emptyPathFlags are, by "syscall.parameter", the flags parameter that may hold AT_EMPTY_PATH for that path
// (an empty path then names the descriptor's own file), read off fs/ in 6.12 (the callers of LOOKUP_EMPTY
// under AT_EMPTY_PATH) and the supplement's kernels. linkat's applies to the old name only. What the
// fields cannot say, for the decoder: with the flag, newfstatat and statx also take a NULL path (6.11);
// without one, readlinkat takes an empty path and utimensat, futimesat and fanotify_mark a NULL one, for
// the descriptor's file; move_mount and fspick have their own empty-path bits (MOVE_MOUNT_F_EMPTY_PATH,
// MOVE_MOUNT_T_EMPTY_PATH, FSPICK_EMPTY_PATH), not AT_EMPTY_PATH, so they are not here.
var emptyPathFlags = map[string]string{
	"execveat.filename":         "flags",
	"fchownat.filename":         "flag",
	"newfstatat.filename":       "flag",
	"fstatat64.filename":        "flag",
	"statx.filename":            "flags",
	"linkat.oldname":            "flags",
	"name_to_handle_at.name":    "flag",
	"open_tree.filename":        "flags",
	"open_tree_attr.filename":   "flags",
	"mount_setattr.path":        "flags",
	"fchmodat2.filename":        "flags",
	"faccessat2.filename":       "flags",
	"utimensat.filename":        "flags",
	"utimensat_time64.filename": "flags",
	"setxattrat.pathname":       "at_flags",
	"getxattrat.pathname":       "at_flags",
	"listxattrat.pathname":      "at_flags",
	"removexattrat.pathname":    "at_flags",
	"file_getattr.filename":     "at_flags",
	"file_setattr.filename":     "at_flags",
}

// ops is what the record says a call did to a path, by op: the syscalls (all their paths) or
// "syscall.parameter" (one path). Every path of every syscall needs exactly one.
var ops = []struct {
	op    string
	calls []string
}{
	{"open", []string{"open", "openat", "openat2"}},
	{"creat", []string{"creat"}},
	{"stat", []string{"stat", "lstat", "newfstatat", "statx", "stat64", "lstat64", "fstatat64", "oldstat", "oldlstat"}},
	{"access", []string{"access", "faccessat", "faccessat2"}},
	{"exec", []string{"execve", "execveat"}},
	{"readlink", []string{"readlink", "readlinkat"}},
	{"chdir", []string{"chdir", "fchdir"}},
	{"chroot", []string{"chroot"}},
	{"mkdir", []string{"mkdir", "mkdirat"}},
	{"mknod", []string{"mknod", "mknodat"}},
	{"rename", []string{"rename.oldname", "renameat.oldname", "renameat2.oldname"}},
	{"rename-to", []string{"rename.newname", "renameat.newname", "renameat2.newname"}},
	// Not "link": that already means a symlink met on the way.
	{"hardlink", []string{"link.oldname", "linkat.oldname"}},
	{"hardlink-to", []string{"link.newname", "linkat.newname"}},
	{"symlink", []string{"symlink.newname", "symlinkat.newname"}},
	{"unlink", []string{"unlink", "unlinkat"}},
	{"rmdir", []string{"rmdir"}},
	{"truncate", []string{"truncate", "truncate64"}},
	{"chmod", []string{"chmod", "fchmodat", "fchmodat2"}},
	{"chown", []string{"chown", "lchown", "fchownat", "chown32", "lchown32"}},
	{"utime", []string{"utime", "utimes", "utimensat", "futimesat", "utimensat_time64"}},
	{"statfs", []string{"statfs", "statfs64"}},
	{"xattr", []string{
		"getxattr", "lgetxattr", "listxattr", "llistxattr", "setxattr", "lsetxattr", "removexattr", "lremovexattr",
		"setxattrat", "getxattrat", "listxattrat", "removexattrat",
	}},
	{"watch", []string{"inotify_add_watch", "fanotify_mark"}},
	{"handle", []string{"name_to_handle_at"}},
	{"bind", []string{"bind"}},
	{"connect", []string{"connect"}},
	{"uselib", []string{"uselib"}},
	// What is mounted, moved, opened as a mount or changed; "mountpoint" is where it goes.
	{"mount", []string{"mount.dev_name", "pivot_root.new_root", "open_tree", "open_tree_attr", "move_mount.from_pathname", "fspick", "mount_setattr"}},
	{"mountpoint", []string{"mount.dir_name", "pivot_root.put_old", "move_mount.to_pathname"}},
	{"umount", []string{"umount", "umount2"}},
	{"swapon", []string{"swapon"}},
	{"swapoff", []string{"swapoff"}},
	{"acct", []string{"acct"}},
	{"quotactl", []string{"quotactl"}},
	{"file_getattr", []string{"file_getattr"}},
	{"file_setattr", []string{"file_setattr"}},
}

// special are the syscalls that name a file without a `char __user *`: fchdir's descriptor (its path is
// read from /proc/PID/fd), and bind's and connect's struct sockaddr (an AF_UNIX one is a file), with the
// parameter each is and the one its length is. Not decoded: the 32-bit socketcall(2), which multiplexes
// bind and connect behind a pointer to their arguments (i386 programs since Linux 4.3 and glibc 2.23 call
// bind and connect directly); sendto's and sendmsg's AF_UNIX datagram addresses; the paths inside
// bpf(2)'s attributes (BPF_OBJ_PIN, BPF_OBJ_GET) and fsconfig's FSCONFIG_SET_PATH value.
var special = []struct {
	name      string
	kind      string // "fd" or "sockaddr"
	arg, len  string // parameter names, checked against the prototype
	argTypeIn string // a word the parameter's type must hold
}{
	{"fchdir", "fd", "fd", "", "int"},
	{"bind", "sockaddr", "umyaddr", "addrlen", "sockaddr"},
	{"connect", "sockaddr", "uservaddr", "addrlen", "sockaddr"},
}

// supplement are the syscalls x/sys knows that are newer than the kernel source (linux-source-6.12 is
// Debian's newest; the machines run 6.18), each with the version it came in, its number (the same on every
// architecture here since Linux 5.1 unified them), the architectures it is on (nil: all) and its prototype
// as include/linux/syscalls.h has it. One the source knows too is read from the source, and must agree.
var supplement = []struct {
	since  string
	name   string
	nr     int
	arches []string
	proto  string
}{
	{"6.13", "setxattrat", 463, nil, `asmlinkage long sys_setxattrat(int dfd, const char __user *pathname, unsigned int at_flags, const char __user *name, const struct xattr_args __user *args, size_t size);`},
	{"6.13", "getxattrat", 464, nil, `asmlinkage long sys_getxattrat(int dfd, const char __user *pathname, unsigned int at_flags, const char __user *name, struct xattr_args __user *args, size_t size);`},
	{"6.13", "listxattrat", 465, nil, `asmlinkage long sys_listxattrat(int dfd, const char __user *pathname, unsigned int at_flags, char __user *list, size_t size);`},
	{"6.13", "removexattrat", 466, nil, `asmlinkage long sys_removexattrat(int dfd, const char __user *pathname, unsigned int at_flags, const char __user *name);`},
	{"6.15", "open_tree_attr", 467, nil, `asmlinkage long sys_open_tree_attr(int dfd, const char __user *filename, unsigned int flags, struct mount_attr __user *uattr, size_t usize);`},
	{"6.17", "file_getattr", 468, nil, `asmlinkage long sys_file_getattr(int dfd, const char __user *filename, struct file_attr __user *attr, size_t usize, unsigned int at_flags);`},
	{"6.17", "file_setattr", 469, nil, `asmlinkage long sys_file_setattr(int dfd, const char __user *filename, struct file_attr __user *attr, size_t usize, unsigned int at_flags);`},
	{"6.17", "uprobe", 336, []string{"amd64"}, `asmlinkage long sys_uprobe(void);`},
	{"6.19", "listns", 470, nil, `asmlinkage long sys_listns(const struct ns_id_req __user *req, u64 __user *ns_ids, size_t nr_ns_ids, unsigned int flags);`},
	{"7.0", "rseq_slice_yield", 471, nil, `asmlinkage long sys_rseq_slice_yield(void);`},
}

func set(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}
