package oci

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Sentinel errors, wrapped with the input they concern; match them with errors.Is.
var (
	// ErrTransport is an unknown or unsupported transport prefix in a reference.
	ErrTransport = errors.New("unknown transport")
	// ErrReference is a reference that does not parse.
	ErrReference = errors.New("invalid reference")
	// ErrNotExist is a layout directory or archive file that does not exist.
	ErrNotExist = errors.New("no such file or directory")
	// ErrFormat is a file or directory that is not what its transport needs (not a tar, no index.json...).
	ErrFormat = errors.New("invalid image format")
	// ErrMediaType is a manifest, index or layer with a media type slimoci does not know.
	ErrMediaType = errors.New("unknown media type")
	// ErrDigest is a blob whose content does not match its digest.
	ErrDigest = errors.New("digest mismatch")
	// ErrPlatform is an index with no image for the requested platform.
	ErrPlatform = errors.New("platform not found")
	// ErrNotFound is a tag or digest that the source does not hold.
	ErrNotFound = errors.New("image not found")
	// ErrTooLarge is a manifest, index or config larger than slimoci reads into memory; the error is a
	// *LimitError.
	ErrTooLarge = errors.New("over the size limit")
)

// LimitError is what ErrTooLarge carries: how large the blob is, and the limit it is over.
type LimitError struct {
	// Size is what the blob is or claims to be; -1 when only "more than Limit" is known (a response with no
	// length that did not end).
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
