// Command pathcalls makes every syscall the sensor records on its architecture (sensor.PathSyscallArgs), with raw syscall
// numbers, each file argument in four ways, so that a test can check the sensor's record of it:
//
//	/L/NAME-ARG            through a symlink (the test's tree has /L -> T)
//	/nonexistent/NAME-ARG  a failed lookup
//	rel-NAME-ARG           relative to a descriptor of /L (the record has /T/rel-NAME-ARG), when the call takes one
//	""                     with AT_EMPTY_PATH on a descriptor of /T/empty-NAME-ARG, when the call takes the flag
//
// and last, on x86_64, an i386 open of /L/i386-open through int 0x80 (main_amd64.go).
//
// A descriptor argument (fchdir) is a descriptor of /L (the record has /T); a sockaddr one is an AF_UNIX
// address with the path. Other arguments are zero: the calls fail or do nothing harmful in the sandbox, and
// the sensor sees them on entry all the same. It runs only in a test sandbox: it is the app.
package main

import (
	"fmt"
	"os"
	"unsafe"

	"github.com/slimoci/slimoci/sensor"
	"golang.org/x/sys/unix"
)

func main() {
	dirfd, err := unix.Open("/L", unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pathcalls: opening /L:", err)
		os.Exit(1)
	}
	n := 0
	for _, a := range sensor.PathSyscallArgs() {
		name := fmt.Sprintf("%s-%d", a.Name, a.Arg)
		switch a.Kind {
		case "fd":
			call(a, uintptr(dirfd), -1)
			unix.Chdir("/")
		case "sockaddr":
			call(a, sockaddr("/L/"+name), -1)
			call(a, sockaddr("/nonexistent/"+name), -1)
		default:
			call(a, str("/L/"+name), -1)
			call(a, str("/nonexistent/"+name), -1)
			if a.Dirfd >= 0 {
				call(a, str("rel-"+name), dirfd)
			}
			if a.Flags >= 0 && a.Dirfd >= 0 {
				fd, err := unix.Open("/T/empty-"+name, unix.O_CREAT|unix.O_RDWR|unix.O_CLOEXEC, 0o644)
				if err != nil {
					fmt.Fprintln(os.Stderr, "pathcalls:", err)
					os.Exit(1)
				}
				args := [6]uintptr{}
				args[a.Arg], args[a.Dirfd], args[a.Flags] = str(""), uintptr(fd), unix.AT_EMPTY_PATH
				unix.Syscall6(uintptr(a.Nr), args[0], args[1], args[2], args[3], args[4], args[5])
				unix.Close(fd)
			}
		}
		n++
	}
	otherABIs()
	fmt.Println("done", n)
}

// keep holds what the calls' pointers point to until the program exits.
var keep [][]byte

// call makes a's syscall with p as the file argument, relative to dirfd (AT_FDCWD when negative).
func call(a sensor.PathSyscallArg, p uintptr, dirfd int) {
	var args [6]uintptr
	args[a.Arg] = p
	if a.Dirfd >= 0 {
		args[a.Dirfd] = uintptr(dirfd)
		if dirfd < 0 {
			args[a.Dirfd] = uintptr(unix.AT_FDCWD & 0xffffffff)
		}
	}
	if a.Len >= 0 {
		args[a.Len] = unsafe.Sizeof(unix.RawSockaddrUnix{})
	}
	if a.Kind == "sockaddr" && a.Arg != 0 {
		args[0] = ^uintptr(0) // no socket: EBADF
	}
	unix.Syscall6(uintptr(a.Nr), args[0], args[1], args[2], args[3], args[4], args[5])
}

func str(s string) uintptr {
	b := append([]byte(s), 0)
	keep = append(keep, b)
	return uintptr(unsafe.Pointer(&b[0]))
}

func sockaddr(p string) uintptr {
	b := make([]byte, unsafe.Sizeof(unix.RawSockaddrUnix{}))
	*(*uint16)(unsafe.Pointer(&b[0])) = unix.AF_UNIX
	copy(b[2:], p)
	keep = append(keep, b)
	return uintptr(unsafe.Pointer(&b[0]))
}
