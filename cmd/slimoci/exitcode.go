package main

import (
	"context"
	"errors"
	"net/url"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/slimoci/slimoci"
	"github.com/slimoci/slimoci/oci"
	"github.com/slimoci/slimoci/rootfs"
)

// The exit codes, documented in the README's "Exit codes": a script tells the kinds of failure apart
// without reading the message.
const (
	exitOK          = 0
	exitFailure     = 1   // any failure not below: a file that cannot be written, the sandbox, the machine
	exitUsage       = 2   // the command line: kong's parse errors, Validate, a flag value a command refused
	exitImage       = 3   // the image or the registry: a reference, a layout or archive, a blob, a registry's answer
	exitApp         = 4   // the app did not run, or answered none of its probes (slimoci.ErrApp)
	exitVerify      = 5   // the slim image does not work as the fat one (slimoci.ErrVerify)
	exitInterrupted = 130 // SIGINT or SIGTERM, as a shell reports a command Ctrl-C stopped
)

// usageError is a command line a command refused before doing any work (a flag value that does not parse,
// flags that do not go together): exit 2, as kong's own parse errors. Commands mark such errors with usage.
// It may wrap a sentinel of another kind (a --platform that does not parse is oci.ErrReference): the mark
// wins, since the command knows the value came from a flag.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// usage marks err as a usage error; nil stays nil.
func usage(err error) error {
	if err == nil {
		return nil
	}
	return &usageError{err: err}
}

// imageErrors are the sentinels of an image that cannot be read, written or unpacked as it is.
var imageErrors = []error{
	oci.ErrTransport, oci.ErrReference, oci.ErrNotExist, oci.ErrFormat, oci.ErrMediaType, oci.ErrDigest,
	oci.ErrPlatform, oci.ErrNotFound, oci.ErrTooLarge,
	rootfs.ErrLayer, rootfs.ErrTarget, rootfs.ErrLoop, rootfs.ErrNotRegular, rootfs.ErrELF, rootfs.ErrLDCache,
}

// exitCode classifies a command's error. When several kinds match, the first of this order wins:
// interrupted (the user stopped it: nothing else it says is the cause), usage (marked by a command before
// any work, so nothing else can have happened), verify (the slim image's app failing is a verify failure,
// whatever else its error wraps), app, image. interrupted is also set by Main when the signal came and the
// job then failed of it in a way that does not wrap context.Canceled (an app killed as it stopped).
func exitCode(err error, interrupted bool) int {
	var ue *usageError
	switch {
	case err == nil:
		return exitOK
	case interrupted || errors.Is(err, context.Canceled):
		return exitInterrupted
	case errors.As(err, &ue):
		return exitUsage
	case errors.Is(err, slimoci.ErrVerify):
		return exitVerify
	case errors.Is(err, slimoci.ErrApp):
		return exitApp
	case isImageError(err):
		return exitImage
	}
	return exitFailure
}

// isImageError reports an error of the image or its registry: oci's and rootfs' sentinels, a registry's
// error answer (401, 404, 5xx), a name ggcr refuses, or a registry that cannot be reached (a failed HTTP
// request: slimoci's only other HTTP client, the probes, reports through ErrApp, which comes first).
func isImageError(err error) bool {
	for _, s := range imageErrors {
		if errors.Is(err, s) {
			return true
		}
	}
	var te *transport.Error
	var be *name.ErrBadName
	var ue *url.Error
	return errors.As(err, &te) || errors.As(err, &be) || errors.As(err, &ue)
}
