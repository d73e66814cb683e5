//go:build !seccomp

package runner

const seccompBuilt = false
