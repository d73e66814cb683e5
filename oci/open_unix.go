//go:build unix

package oci

import "syscall"

// openFlags are added to the flags files of a layout are opened with: a FIFO does not block the open, and a
// terminal does not become slimoci's.
const openFlags = syscall.O_NONBLOCK | syscall.O_NOCTTY
