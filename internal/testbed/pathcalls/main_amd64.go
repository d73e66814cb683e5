package main

import (
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// otherABIs makes a 32-bit program's open (i386 number 5) of /L/i386-open, from memory below 4 GiB as its
// pointers are.
func otherABIs() {
	low, err := unix.Mmap(-1, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_32BIT)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pathcalls: mapping low memory:", err)
		os.Exit(1)
	}
	copy(low, "/L/i386-open\x00")
	int80(5, uintptr(unsafe.Pointer(&low[0])), 0, 0)
}

// int80 makes a syscall through the i386 gate (int80_amd64.s).
func int80(nr, a0, a1, a2 uintptr) uintptr
