package rootfs

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

var (
	// ErrLayer is a layer whose content cannot be unpacked faithfully (a broken tar, a hardlink to nothing).
	ErrLayer = errors.New("invalid layer")
	// ErrTarget is an unpack target that is not a new or empty directory.
	ErrTarget = errors.New("invalid unpack target")
	// ErrLoop is a path with more than 40 symlinks on its way.
	ErrLoop = errors.New("too many levels of symbolic links")
	// ErrNotRegular is a path of the tree slimoci reads that is not a regular file: a FIFO would block the
	// read, a device node would read the host's device.
	ErrNotRegular = errors.New("not a regular file")
	// ErrTooLarge is a file of the tree, or a part of one, over the size slimoci reads of it; the error is a
	// *LimitError.
	ErrTooLarge = errors.New("over the size limit")
	// ErrELF is an ELF file slimoci cannot read within its bounds: malformed, or larger than ld.so's needs.
	ErrELF = errors.New("invalid ELF file")
	// ErrLDCache is an /etc/ld.so.cache slimoci cannot read within its bounds.
	ErrLDCache = errors.New("invalid ld.so.cache")
)

// LimitError is what ErrTooLarge carries: how large the thing is, and the limit it is over.
type LimitError struct {
	// Size is what the thing is or claims to be; -1 when only "more than Limit" is known (it grew as it was
	// read).
	Size, Limit int64
}

func (e *LimitError) Error() string {
	if e.Size < 0 {
		return fmt.Sprintf("more than the %s limit", byteSize(e.Limit))
	}
	return fmt.Sprintf("%s is over the %s limit", byteSize(e.Size), byteSize(e.Limit))
}

// Is makes a *LimitError match ErrTooLarge.
func (e *LimitError) Is(target error) bool { return target == ErrTooLarge }

// byteSize writes n for people: "4 MiB", "9.5 MiB", "300 bytes".
func byteSize(n int64) string {
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
