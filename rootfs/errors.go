package rootfs

import (
	"errors"

	"github.com/slimoci/slimoci/internal/sizelimit"
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
	ErrTooLarge = sizelimit.ErrTooLarge
	// ErrELF is an ELF file slimoci cannot read within its bounds: malformed, or larger than ld.so's needs.
	ErrELF = errors.New("invalid ELF file")
	// ErrLDCache is an /etc/ld.so.cache slimoci cannot read within its bounds.
	ErrLDCache = errors.New("invalid ld.so.cache")
)

// LimitError is what ErrTooLarge carries: how large the thing is, and the limit it is over.
type LimitError = sizelimit.Error
