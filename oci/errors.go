package oci

import (
	"errors"

	"github.com/slimoci/slimoci/internal/sizelimit"
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
	ErrTooLarge = sizelimit.ErrTooLarge
)

// LimitError is what ErrTooLarge carries: how large the thing is, and the limit it is over.
type LimitError = sizelimit.Error
