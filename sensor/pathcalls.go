package sensor

import "sort"

// The path-taking system calls, per architecture, come from the kernel's own syscall tables and prototypes
// (see internal/gensyscalls): zpathcalls_linux_amd64.go and zpathcalls_linux_arm64.go are generated, and so
// are the names of internal/syscalls.
//
//go:generate go run ../internal/gensyscalls -sensor . -syscalls ../internal/syscalls

// Arg kinds: how a syscall argument names a file.
const (
	// argPath is a pointer to a NUL-terminated path, relative to Dirfd's directory (or the cwd).
	argPath uint8 = iota
	// argFD is a descriptor whose file is named (fchdir): its path is read from /proc/PID/fd.
	argFD
	// argSockaddr is a struct sockaddr (bind, connect): an AF_UNIX path is a file; Len is its length
	// argument.
	argSockaddr
)

// pathArg is one argument of a syscall that names a file.
type pathArg struct {
	// Arg is the argument's index (0-5).
	Arg int8
	// Kind is argPath, argFD or argSockaddr.
	Kind uint8
	// Dirfd is the index of the descriptor Arg is relative to (-1: the cwd).
	Dirfd int8
	// Flags is the index of a flags argument that may hold AT_EMPTY_PATH (-1: none): with it, an empty path
	// names Dirfd's file.
	Flags int8
	// Len is the index of a length argument (argSockaddr; -1 otherwise).
	Len int8
	// Op is what the record says the call did to this path: "open", "stat", "chdir", "mkdir", ...
	Op string
}

// pathCall is one syscall with the arguments that name files.
type pathCall struct {
	Name string
	Args []pathArg
}

// PathSyscallArg describes, for tools and tests, one argument of a syscall of the sensor's own architecture
// (x86_64, arm64) that names a file.
type PathSyscallArg struct {
	Nr   uint32
	Name string
	// Arg is the argument's index; Kind is "path", "fd" or "sockaddr"; Dirfd, Flags and Len are the indices
	// of the directory descriptor, of the flags that may hold AT_EMPTY_PATH, and of the length, or -1.
	Arg, Dirfd, Flags, Len int
	Kind                   string
	// Op is what the record says the call did to the file.
	Op string
}

// PathSyscallArgs lists the syscall arguments of its own architecture the sensor records, by syscall number.
func PathSyscallArgs() []PathSyscallArg {
	var out []PathSyscallArg
	for nr, c := range arches[0].calls {
		for _, a := range c.Args {
			kind := map[uint8]string{argPath: "path", argFD: "fd", argSockaddr: "sockaddr"}[a.Kind]
			out = append(out, PathSyscallArg{Nr: nr, Name: c.Name, Arg: int(a.Arg), Dirfd: int(a.Dirfd), Flags: int(a.Flags), Len: int(a.Len), Kind: kind, Op: a.Op})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Nr != out[j].Nr {
			return out[i].Nr < out[j].Nr
		}
		return out[i].Arg < out[j].Arg
	})
	return out
}
