// Package emit writes the slim image and the profiles (seccomp, AppArmor) that go with it. (In progress.)
package emit
