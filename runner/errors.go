package runner

import "errors"

var (
	// ErrLimit: the app hit one of the sandbox's limits (memory, processes, writable layer); the error names
	// it and the flag that sets it.
	ErrLimit = errors.New("the app hit a sandbox limit")
	// ErrRecordLimit: the app did more than the sensor's record holds (paths, programs, bytes).
	ErrRecordLimit = errors.New("the sensor's record is full")
	// ErrTimeout: the observation went past --timeout.
	ErrTimeout = errors.New("the observation timed out")
)
