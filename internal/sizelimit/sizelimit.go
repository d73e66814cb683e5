// Package sizelimit is the error slimoci gives when something it reads from an image (a file of the tree, a
// manifest, a config) is larger than it reads into memory, shared by oci and rootfs.
package sizelimit

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrTooLarge is matched by every *Error (oci.ErrTooLarge and rootfs.ErrTooLarge are it).
var ErrTooLarge = errors.New("over the size limit")

// Error is what ErrTooLarge carries: how large the thing is, and the limit it is over.
type Error struct {
	// Size is what the thing is or claims to be; -1 when only "more than Limit" is known (it grew as it was
	// read, or a response with no length did not end).
	Size, Limit int64
}

func (e *Error) Error() string {
	if e.Size < 0 {
		return fmt.Sprintf("more than the %s limit", Bytes(e.Limit))
	}
	return fmt.Sprintf("%s is over the %s limit", Bytes(e.Size), Bytes(e.Limit))
}

// Is makes an *Error match ErrTooLarge.
func (e *Error) Is(target error) bool { return target == ErrTooLarge }

// Bytes writes n for people: "4 MiB", "9.5 MiB", "300 bytes".
func Bytes(n int64) string {
	units := []string{"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	f, u := float64(n), 0
	for f >= 1024 && u < len(units)-1 {
		f, u = f/1024, u+1
	}
	if u == 0 {
		return fmt.Sprintf("%d bytes", n)
	}
	s := strconv.FormatFloat(f, 'f', 1, 64)
	return strings.TrimSuffix(s, ".0") + " " + units[u]
}
