package sensor

import (
	"fmt"
	"os"
	"path"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// Emulation tells the sensor that the app's programs are of a foreign machine, run by an emulator the
// kernel starts through binfmt_misc (qemu-user with the fix-binary flag). The sensor then sees the
// emulator's syscalls: the guest's own, with the guest's paths, plus what qemu does for itself. Measured
// with Debian's qemu-user-static 7.2 (qemu-aarch64 running arm64 dash, cat, ls and python3 importing flask,
// in the sandbox under both backends and chrooted under strace -f), the emulator alone:
//
//   - looks every absolute path the guest names up first under its sysroot, the interp prefix it was built
//     with (Debian: /etc/qemu-binfmt/MACHINE; qemu's default: /usr/gnemul/qemu-MACHINE), with an access(2)
//     each, once per path and process; where that finds a file, the guest gets it instead of its own (522 of
//     the 1,048 paths python's start names);
//   - is the program each exec runs: /proc/PID/exe is the interpreter (a host file, such as
//     /usr/bin/qemu-aarch64-static, outside the sandbox) and /proc/PID/cmdline is [interpreter, the file
//     the guest exec'd, the guest's argv (from its argv[1] without the P flag)];
//   - opens the guest's file by that name, and its ELF interpreter (/lib/ld-linux-aarch64.so.1): these are
//     the guest's files and stay recorded, as the kernel's opens of them are in a native run;
//   - reads /proc/sys/vm/mmap_min_addr and /proc/self/maps and readlinks /proc/self/exe (the guest's own
//     readlink of it is answered by qemu, without a syscall). These stay in the record: kernel files never
//     enter an image, and a guest that reads them itself cannot be told apart.
//
// So the sensor records each emulated exec as the guest's (its file, its argv), not the interpreter's, and
// drops the sysroot lookups that found nothing (see drop). The rest of the record is strace's list of the
// guest's paths: nothing else qemu touches is a path of the image. (A guest environment that sets
// QEMU_LD_PREFIX moves the sysroot; its lookups then stay in the record, as missing paths.)
type Emulation struct {
	// Machine is the guest's machine as qemu names it ("aarch64", "arm", "ppc64le", "s390x", "riscv64").
	Machine string `json:"machine"`
	// Dev and Ino identify the interpreter binfmt_misc opened (stat of its host path): a process whose
	// /proc/PID/exe is that file is an emulated guest. Zero when the host path could not be read; a process
	// is then taken for a guest when its exe is no file of the sandbox (which the interpreter never is).
	Dev uint64 `json:"dev,omitempty"`
	Ino uint64 `json:"ino,omitempty"`
	// PreserveArgv0 is the handler's P flag: the guest's argv[0] is passed after the file's name, not
	// replaced by it.
	PreserveArgv0 bool `json:"preserveArgv0,omitempty"`
}

// sysroots are the interp prefixes qemu-user is built with, for the guest's machine.
func (e *Emulation) sysroots() []string {
	return []string{"/etc/qemu-binfmt/" + e.Machine, "/usr/gnemul/qemu-" + e.Machine}
}

// drop removes from a completed record the emulator's lookups under its sysroot that found nothing. One
// that found a file stays: qemu gave that file to the guest, so the run needed it.
func (e *Emulation) drop(rec *Record) {
	if e == nil || e.Machine == "" {
		return
	}
	for p, ops := range rec.Files {
		if !slices.Contains(ops, "missing") {
			continue
		}
		for _, root := range e.sysroots() {
			if p == root || strings.HasPrefix(p, root+"/") {
				delete(rec.Files, p)
				rec.pathBytes -= len(p)
				break
			}
		}
	}
}

// guest says whether the process pid, which just exec'd a program, runs under the emulator, and if so
// which file and argv the guest exec'd (the file absolute and resolved, as /proc/PID/exe is for a native
// program).
func (e *Emulation) guest(pid int, argv []string) (file string, guestArgv []string, ok bool) {
	if e == nil || !e.isInterpreter(pid) || len(argv) < 2 {
		return "", nil, false
	}
	file = argv[1]
	if !path.IsAbs(file) {
		cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
		if err != nil {
			return "", nil, false
		}
		file = path.Join(cwd, file)
	}
	if final, exists, _ := Resolve("/", file, nil); exists {
		file = final
	}
	guestArgv = append([]string{argv[1]}, argv[2:]...)
	if e.PreserveArgv0 {
		guestArgv = argv[2:]
	}
	return path.Clean(file), guestArgv, true
}

// isInterpreter says whether pid's program is the emulator's interpreter.
func (e *Emulation) isInterpreter(pid int) bool {
	exe := fmt.Sprintf("/proc/%d/exe", pid)
	var st unix.Stat_t
	if err := unix.Stat(exe, &st); err != nil {
		return false
	}
	if e.Ino != 0 {
		return st.Dev == e.Dev && st.Ino == e.Ino
	}
	name, err := os.Readlink(exe)
	if err != nil || strings.HasSuffix(name, " (deleted)") || !path.IsAbs(name) {
		return false // a program removed after its exec, or a memfd, is no interpreter from outside
	}
	var there unix.Stat_t
	return unix.Stat(name, &there) != nil || there.Dev != st.Dev || there.Ino != st.Ino
}
