// Package emit writes the slim image and the profiles (seccomp, AppArmor) that go with it, and runs the
// build: observe, closure, image, verify.
package emit
