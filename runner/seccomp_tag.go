//go:build seccomp

package runner

// seccompBuilt: libcontainer applies seccomp profiles (through libseccomp) only in a build with the seccomp
// tag, as runc's.
const seccompBuilt = true
