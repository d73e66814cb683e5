package rootfs

import "errors"

var (
	// ErrLayer is a layer whose content cannot be unpacked faithfully (a broken tar, a hardlink to nothing).
	ErrLayer = errors.New("invalid layer")
	// ErrTarget is an unpack target that is not a new or empty directory.
	ErrTarget = errors.New("invalid unpack target")
	// ErrLoop is a path with more than 40 symlinks on its way.
	ErrLoop = errors.New("too many levels of symbolic links")
)
