package runner

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// grantSearch gives the sandbox's id search, and only search, on slimoci's own directories up to the work
// root, widens nothing else, refuses to touch a directory above the work root, and its undo (or a clean-up
// with no other run alive) leaves the directories as they were.
func TestGrantSearch(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("ACLs on root's directories: the test runs as root (make test does)")
	}
	top := t.TempDir() // made 0700: above the work root, slimoci may not change it
	for p, m := range map[string]os.FileMode{filepath.Dir(top): 0o711, top: 0o700} {
		if err := os.Chmod(p, m); err != nil {
			t.Fatal(err)
		}
	}
	root := filepath.Join(top, "slimoci-0")
	run := filepath.Join(root, ".slimoci-work-1-x")
	for _, d := range []string{root, run} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	const id = idBase + 5*idSize
	if _, err := grantSearch(run, root, id); err == nil {
		t.Fatal("granted search above the work root")
	}
	if err := os.Chmod(top, 0o711); err != nil {
		t.Fatal(err)
	}
	modeOf := func(p string) uint32 {
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err != nil {
			t.Fatal(err)
		}
		return st.Mode & 0o7777
	}
	undo, err := grantSearch(run, root, id)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{root, run} {
		a := readACL(t, d)
		if !a.has(aclUser, id, 1) || !a.has(aclMask, aclUndef, 1) || !a.has(aclGroupObj, aclUndef, 0) || !a.has(aclOther, aclUndef, 0) {
			t.Errorf("%s: ACL %+v: want user:%d:--x, group and others nothing, mask --x", d, a.entries, id)
		}
		// Only the named id: the directory is still closed to the owning group and to others.
		if m := modeOf(d); m&0o007 != 0 || m&0o060 != 0 {
			t.Errorf("%s: mode %04o", d, m)
		}
	}
	undo()
	for _, d := range []string{root, run} {
		if m := modeOf(d); m != 0o700 {
			t.Errorf("%s after undo: mode %04o", d, m)
		}
		if _, err := unix.Getxattr(d, aclXattr, make([]byte, 64)); err == nil {
			t.Errorf("%s after undo: an ACL is left", d)
		}
	}
	// A killed run's entry: a clean-up while another run lives keeps it (pid 1 is alive), the next one with
	// no run alive removes it.
	if _, err := grantSearch(root, root, id); err != nil {
		t.Fatal(err)
	}
	if _, err := CleanStale(root); err != nil {
		t.Fatal(err)
	}
	if !readACL(t, root).has(aclUser, id, 1) {
		t.Errorf("a clean-up removed a live run's ACL entry")
	}
	if err := os.Remove(run); err != nil {
		t.Fatal(err)
	}
	if _, err := CleanStale(root); err != nil {
		t.Fatal(err)
	}
	if _, err := unix.Getxattr(root, aclXattr, make([]byte, 64)); err == nil {
		t.Errorf("a killed run's ACL entry outlived the clean-up")
	}
}

func readACL(t *testing.T, d string) *acl {
	t.Helper()
	buf := make([]byte, 4096)
	n, err := unix.Getxattr(d, aclXattr, buf)
	if err != nil {
		t.Fatalf("%s: %v", d, err)
	}
	a := &acl{}
	for b := buf[4:n]; len(b) >= 8; b = b[8:] {
		a.entries = append(a.entries, aclEntry{uint16(b[0]) | uint16(b[1])<<8, uint16(b[2]) | uint16(b[3])<<8, uint32(b[4]) | uint32(b[5])<<8 | uint32(b[6])<<16 | uint32(b[7])<<24})
	}
	return a
}

func (a *acl) has(tag uint16, id uint32, perm uint16) bool {
	for _, e := range a.entries {
		if e.tag == tag && e.id == id && e.perm == perm {
			return true
		}
	}
	return false
}
