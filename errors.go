package slimoci

import "errors"

// The kinds of failure a job's error can be matched against with errors.Is (the CLI's exit codes are
// these). Errors from opening, pulling, unpacking or writing an image match oci's and rootfs' sentinels.
var (
	// ErrApp is an app that did not run, or ran and answered none of its probes: a slim image made from
	// such a run would be useless.
	ErrApp = errors.New("the app did not run or answered no probe")
	// ErrVerify is a slim image that does not behave as the fat one, even after repairs.
	ErrVerify = errors.New("the slim image does not work as the fat one")
)

// appError is err, matching ErrApp too; its message is err's.
type appError struct{ err error }

func (e appError) Error() string   { return e.err.Error() }
func (e appError) Unwrap() []error { return []error{e.err, ErrApp} }
