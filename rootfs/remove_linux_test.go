package rootfs

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/slimoci/slimoci/internal/testbed"
)

// victimDir makes a directory outside the tree that the tree's symlinks point at, and returns it with its
// fingerprint.
func victimDir(t *testing.T, parent string) (string, string) {
	t.Helper()
	v := filepath.Join(parent, "victim")
	mustDo(t, os.MkdirAll(filepath.Join(v, "private"), 0o755))
	mustDo(t, os.WriteFile(filepath.Join(v, "passwd"), []byte("root:x:0:0::/root:/bin/sh\n"), 0o644))
	mustDo(t, os.WriteFile(filepath.Join(v, "private", "key"), []byte("secret"), 0o600))
	mustDo(t, os.Chmod(filepath.Join(v, "private"), 0o700))
	fp, err := testbed.Fingerprint(v)
	mustDo(t, err)
	return v, fp
}

func mustDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// hostileTree makes what an image or an app could leave in a tree: directories its owner may not write,
// read or search, a sticky one, symlinks out to victim (absolute, relative, to a file, to a directory,
// inside a read-only directory), and a hardlink.
func hostileTree(t *testing.T, tree, victim string) {
	t.Helper()
	for _, d := range []string{"ro/sub", "noread/x", "none/y", "sticky", "deep/a/b/c"} {
		mustDo(t, os.MkdirAll(filepath.Join(tree, d), 0o755))
	}
	for _, f := range []string{"ro/file", "ro/sub/file", "noread/x/file", "none/y/file", "sticky/file", "deep/a/b/c/file"} {
		mustDo(t, os.WriteFile(filepath.Join(tree, f), []byte("x"), 0o400))
	}
	mustDo(t, os.Link(filepath.Join(tree, "ro/file"), filepath.Join(tree, "hardlink")))
	rel, err := filepath.Rel(filepath.Join(tree, "ro"), victim)
	mustDo(t, err)
	for link, target := range map[string]string{
		"etc": victim, "ro/rel": rel, "ro/passwd": filepath.Join(victim, "passwd"),
		"ro/sub/private": filepath.Join(victim, "private"), "none/y/up": "../../..",
	} {
		mustDo(t, os.Symlink(target, filepath.Join(tree, link)))
	}
	// Children first: an unprivileged owner could not reach them after their parent.
	for _, c := range []struct {
		dir  string
		mode os.FileMode
	}{
		{"ro/sub", 0o500}, {"ro", 0o555}, {"noread/x", 0o300}, {"noread", 0o311}, {"none/y", 0}, {"none", 0},
		{"sticky", os.ModeSticky | 0o555}, {"deep/a/b", 0o500}, {"deep", 0o500},
	} {
		mustDo(t, os.Chmod(filepath.Join(tree, c.dir), c.mode))
	}
}

// The fd-based removal: read-only and unreadable directories go, symlinks are removed and never followed,
// a directory swapped for a symlink mid-walk leads nowhere, and mount points are not crossed.
func TestRemoveTree(t *testing.T) {
	if dir := os.Getenv("SLIMOCI_REMOVE_CHILD"); dir != "" {
		// As an unprivileged user, whom a directory's mode stops: the walk must make them writable, and only
		// through its own descriptors.
		removeHostile(t, dir)
		return
	}
	t.Run("hostile tree", func(t *testing.T) {
		removeHostile(t, t.TempDir())
	})
	t.Run("hostile tree as an unprivileged user", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("the parent test already runs unprivileged")
		}
		cmd, dir, err := testbed.SelfAs(testbed.Nobody, "^TestRemoveTree$")
		mustDo(t, err)
		defer os.RemoveAll(dir)
		work := filepath.Join(dir, "work")
		mustDo(t, os.Mkdir(work, 0o755))
		mustDo(t, os.Chown(work, testbed.Nobody, testbed.Nobody))
		cmd.Env = append(cmd.Env, "SLIMOCI_REMOVE_CHILD="+work)
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestRemoveTree") {
			t.Fatalf("as uid %d: %v\n%s", testbed.Nobody, err, out)
		}
	})
	t.Run("missing", func(t *testing.T) {
		if err := RemoveTree(filepath.Join(t.TempDir(), "nothing")); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("the tree is a symlink", func(t *testing.T) {
		dir := t.TempDir()
		victim, before := victimDir(t, dir)
		link := filepath.Join(dir, "tree")
		mustDo(t, os.Symlink(victim, link))
		if err := RemoveTree(link); err != nil {
			t.Fatal(err)
		}
		checkGone(t, link)
		checkVictim(t, victim, before)
	})
	for _, stage := range []string{"before it is opened", "after it is opened"} {
		// A directory becomes a symlink to the victim between the walk's look and its open, or once open:
		// the walk must empty only the directory it holds (moved away, still its own) and unlink the symlink.
		t.Run("directory swapped for a symlink "+stage, func(t *testing.T) {
			dir := t.TempDir()
			victim, before := victimDir(t, dir)
			tree := filepath.Join(dir, "tree")
			mustDo(t, os.MkdirAll(filepath.Join(tree, "d", "e"), 0o755))
			mustDo(t, os.WriteFile(filepath.Join(tree, "d", "e", "f"), nil, 0o644))
			swapped := 0
			swap := func(p string) {
				if p == filepath.Join(tree, "d") && swapped == 0 {
					swapped++
					mustDo(t, os.Rename(p, filepath.Join(dir, "moved")))
					mustDo(t, os.Symlink(victim, p))
				}
			}
			if stage == "before it is opened" {
				removeHook.beforeOpen = swap
			} else {
				removeHook.opened = swap
			}
			defer func() { removeHook.beforeOpen, removeHook.opened = nil, nil }()
			if err := RemoveTree(tree); err != nil {
				t.Fatal(err)
			}
			if swapped != 1 {
				t.Fatal("the hook did not run")
			}
			checkGone(t, tree)
			checkVictim(t, victim, before)
		})
	}
	t.Run("mount points are not crossed", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("mounting needs root")
		}
		dir := t.TempDir()
		victim, before := victimDir(t, dir)
		tree := filepath.Join(dir, "tree")
		for _, d := range []string{"tmpfs", "bind", "plain"} {
			mustDo(t, os.MkdirAll(filepath.Join(tree, "a", d), 0o755))
		}
		mustDo(t, os.WriteFile(filepath.Join(tree, "a", "plain", "f"), nil, 0o644))
		err := testbed.InMountNamespace(func() error {
			if err := unix.Mount("tmpfs", filepath.Join(tree, "a", "tmpfs"), "tmpfs", 0, "size=1m"); err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(tree, "a", "tmpfs", "kept"), nil, 0o644); err != nil {
				return err
			}
			// A bind mount of the same filesystem: only the mount id tells it.
			if err := unix.Mount(victim, filepath.Join(tree, "a", "bind"), "", unix.MS_BIND, ""); err != nil {
				return err
			}
			err := RemoveTree(tree)
			if !errors.Is(err, ErrMountPoint) || strings.Contains(err.Error(), "\n") {
				t.Errorf("RemoveTree: %v, want one line wrapping ErrMountPoint", err)
			}
			if _, err := os.Stat(filepath.Join(tree, "a", "tmpfs", "kept")); err != nil {
				t.Errorf("the tmpfs's file: %v", err)
			}
			checkVictim(t, victim, before)
			checkGone(t, filepath.Join(tree, "a", "plain"))
			// The tree's top being a mount point is refused too.
			if err := RemoveTree(filepath.Join(tree, "a", "tmpfs")); !errors.Is(err, ErrMountPoint) {
				t.Errorf("RemoveTree of a mount point: %v", err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		checkVictim(t, victim, before)
	})
}

// removeHostile removes a hostile tree in dir and checks that it is gone and its victim untouched.
func removeHostile(t *testing.T, dir string) {
	victim, before := victimDir(t, dir)
	tree := filepath.Join(dir, "tree")
	hostileTree(t, tree, victim)
	if err := RemoveTree(tree); err != nil {
		t.Fatal(err)
	}
	checkGone(t, tree)
	checkVictim(t, victim, before)
}

func checkGone(t *testing.T, p string) {
	t.Helper()
	if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s is still there (%v)", p, err)
	}
}

func checkVictim(t *testing.T, victim, before string) {
	t.Helper()
	after, err := testbed.Fingerprint(victim)
	if err != nil || after != before {
		t.Errorf("the victim changed (%v):\nbefore:\n%s\nafter:\n%s", err, before, after)
	}
}
