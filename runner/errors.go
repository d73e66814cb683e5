package runner

import "errors"

var (
	// ErrLimit: the app hit one of the sandbox's limits (memory, processes, writable layer); the error names
	// it and the flag that sets it.
	ErrLimit = errors.New("the app hit a sandbox limit")
	// ErrRecordLimit: the app did more than the sensor's record holds (paths, programs, bytes).
	ErrRecordLimit = errors.New("the sensor's record is full")
	// ErrUnsearchable: the sandbox's state directory lies under a directory its user namespace's root cannot
	// search.
	ErrUnsearchable = errors.New("the sandbox's root cannot reach its root filesystem")
	// ErrNoSeccomp: this binary was built without the seccomp tag, so it cannot confine the app.
	ErrNoSeccomp = errors.New("this slimoci was built without seccomp support, so it cannot confine the app (build with -tags seccomp and libseccomp-dev, as make build does, or pass --security-opt seccomp=unconfined)")
	// ErrNoEmulator: the image's platform is foreign to this host and no binfmt_misc handler (qemu-user with
	// the fix-binary flag) runs it; the error (an *EmulatorError) names the platform and the fix.
	ErrNoEmulator = errors.New("no emulator for the platform")
)
