package emit

import (
	"encoding/json"
	"slices"
	"testing"

	seccomp "github.com/moby/profiles/seccomp"
)

// The slim image's profile answers what the sandbox answered with ENOSYS the same way (the app was seen
// falling back from it), unless the app was seen using it.
func TestSeccompProfileENOSYS(t *testing.T) {
	for _, c := range []struct {
		observed []string
		enosys   []string
	}{
		{[]string{"clone", "read"}, []string{"clone3", "io_uring_setup", "io_uring_enter", "io_uring_register"}},
		{[]string{"clone3", "io_uring_setup", "io_uring_enter", "io_uring_register"}, nil},
	} {
		b, err := SeccompProfile(c.observed)
		if err != nil {
			t.Fatal(err)
		}
		var p seccomp.Seccomp
		if err := json.Unmarshal(b, &p); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range p.Syscalls {
			if r.Action == "SCMP_ACT_ERRNO" {
				if r.ErrnoRet == nil || *r.ErrnoRet != 38 {
					t.Errorf("errno rule %+v: want errnoRet 38", r)
				}
				got = append(got, r.Names...)
			}
			if r.Action == "SCMP_ACT_ALLOW" {
				for _, n := range c.observed {
					if !slices.Contains(r.Names, n) {
						t.Errorf("observed %s not allowed", n)
					}
				}
			}
		}
		if !slices.Equal(got, c.enosys) {
			t.Errorf("observed %v: ENOSYS for %v, want %v", c.observed, got, c.enosys)
		}
	}
}
