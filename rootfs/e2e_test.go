package rootfs_test

// End-to-end tests on the real test bed: slimoci's unpack against umoci's and podman's, as root and as an
// unprivileged user. They skip, saying why, only when the test bed is not built; `make test` builds it.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/slimoci/slimoci/internal/testbed"
	"github.com/slimoci/slimoci/oci"
	"github.com/slimoci/slimoci/rootfs"
)

func needBed(t *testing.T) *testbed.Bed {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: end-to-end tests need the test bed")
	}
	bed, reason := testbed.Find()
	if bed == nil {
		t.Skip(reason)
	}
	return bed
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: umoci and podman are run as root here; the rootless unpack has its own test")
	}
}

// node is what a runtime sees of one path.
type node struct {
	Type, Link string
	Mode       fs.FileMode
	UID, GID   int
	Size       int64
	Sum        string
	MTime      int64
	Ino        uint64 `json:"-"`
}

func (n node) String() string {
	return fmt.Sprintf("%s %v uid=%d gid=%d size=%d link=%q sum=%.12s mtime=%d", n.Type, n.Mode, n.UID, n.GID, n.Size, n.Link, n.Sum, n.MTime)
}

// listDisk reads a tree from disk.
func listDisk(t *testing.T, dir string) map[string]node {
	t.Helper()
	out := map[string]node{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		rel, _ := filepath.Rel(dir, p)
		n := node{Mode: fi.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky), UID: int(st.Uid), GID: int(st.Gid), MTime: fi.ModTime().Unix(), Ino: st.Ino}
		switch {
		case fi.Mode().IsDir():
			n.Type = "dir"
		case fi.Mode()&fs.ModeSymlink != 0:
			n.Type, n.Mode = "symlink", 0
			n.Link, _ = os.Readlink(p)
		case fi.Mode().IsRegular():
			n.Type, n.Size = "file", fi.Size()
			f, err := os.Open(p)
			if err == nil {
				h := sha256.New()
				io.Copy(h, f)
				f.Close()
				n.Sum = fmt.Sprintf("%x", h.Sum(nil))
			}
		case fi.Mode()&fs.ModeNamedPipe != 0:
			n.Type = "fifo"
		case fi.Mode()&fs.ModeCharDevice != 0:
			n.Type = "char"
		case fi.Mode()&fs.ModeDevice != 0:
			n.Type = "block"
		default:
			n.Type = "other"
		}
		out["/"+filepath.ToSlash(rel)] = n
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n, ok := out["/."]; ok {
		delete(out, "/.")
		out["/"] = n
	}
	return out
}

// compare reports paths that differ between two listings; ignore drops fields not comparable.
func compare(t *testing.T, what string, got, want map[string]node, ignore func(p string, g, w *node)) {
	t.Helper()
	var diffs []string
	for p, w := range want {
		g, ok := got[p]
		if !ok {
			diffs = append(diffs, "missing "+p)
			continue
		}
		if ignore != nil {
			ignore(p, &g, &w)
		}
		g.Ino, w.Ino = 0, 0
		if g != w {
			diffs = append(diffs, fmt.Sprintf("%s:\n  got  %v\n  want %v", p, g, w))
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			diffs = append(diffs, "extra "+p)
		}
	}
	sort.Strings(diffs)
	if len(diffs) > 0 {
		if len(diffs) > 20 {
			diffs = append(diffs[:20], fmt.Sprintf("... and %d more", len(diffs)-20))
		}
		t.Fatalf("%s: %d differences:\n%s", what, len(diffs), strings.Join(diffs, "\n"))
	}
}

// hardlinkGroups lists the sets of paths sharing an inode.
func hardlinkGroups(l map[string]node) []string {
	byIno := map[uint64][]string{}
	for p, n := range l {
		if n.Type != "dir" {
			byIno[n.Ino] = append(byIno[n.Ino], p)
		}
	}
	var groups []string
	for _, ps := range byIno {
		if len(ps) > 1 {
			sort.Strings(ps)
			groups = append(groups, strings.Join(ps, " "))
		}
	}
	sort.Strings(groups)
	return groups
}

// scratch is a directory on tmpfs when there is one: these tests write and delete trees of hundreds of MB, and
// ext4 is slow to create a tree right after deleting one.
func scratch(t *testing.T) string {
	t.Helper()
	base := ""
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() && os.Geteuid() == 0 {
		base = "/dev/shm"
	}
	dir, err := os.MkdirTemp(base, "slimoci-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeTree(dir) })
	return dir
}

// removeTree removes a tree an unprivileged unpack made, read-only directories included.
func removeTree(dir string) {
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(p, 0o700)
		}
		return nil
	})
	os.RemoveAll(dir)
}

func unpack(t *testing.T, layout, dir string) *rootfs.Tree {
	t.Helper()
	return unpackWith(t, layout, dir, nil)
}

func unpackWith(t *testing.T, layout, dir string, o *rootfs.Options) *rootfs.Tree {
	t.Helper()
	ctx := context.Background()
	src, err := oci.Open(ctx, oci.Reference{Transport: oci.Layout, Path: layout, Tag: "latest"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	tree, err := rootfs.Unpack(ctx, src.Image, dir, o)
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

// indexMatchesDisk checks the index describes the tree: the same paths, types, modes, links and sizes, and
// (when owners could be applied) owners.
func indexMatchesDisk(t *testing.T, tree *rootfs.Tree, disk map[string]node) {
	t.Helper()
	fromIndex := map[string]node{}
	tree.Index.Walk(func(e *rootfs.Entry) error {
		if e.NotOnDisk != "" {
			return nil
		}
		n := node{Type: string(e.Type), Link: e.Linkname, UID: e.UID, GID: e.GID, Size: e.Size}
		if e.Type != rootfs.TypeSymlink {
			n.Mode = fs.FileMode(e.Mode & 0o777)
			if e.Mode&0o4000 != 0 {
				n.Mode |= fs.ModeSetuid
			}
			if e.Mode&0o2000 != 0 {
				n.Mode |= fs.ModeSetgid
			}
			if e.Mode&0o1000 != 0 {
				n.Mode |= fs.ModeSticky
			}
		}
		fromIndex[e.Path] = n
		return nil
	})
	compare(t, "index against disk", fromIndex, disk, func(p string, g, w *node) {
		w.Sum, w.MTime = "", 0
		if tree.Rootless {
			g.UID, g.GID, w.UID, w.GID = 0, 0, 0, 0
		}
		if w.Type != "file" {
			g.Size, w.Size = 0, 0
		}
	})
}

func TestE2EUnpackMatchesUmoci(t *testing.T) {
	bed := needBed(t)
	needRoot(t)
	for _, s := range append(testbed.Samples, testbed.Fixtures...) {
		t.Run(s, func(t *testing.T) {
			dir := scratch(t)
			tree := unpack(t, bed.Layout(s), filepath.Join(dir, "slimoci"))
			bundle := filepath.Join(dir, "umoci")
			if _, err := testbed.Run(context.Background(), "umoci", "unpack", "--image", bed.Layout(s)+":latest", bundle); err != nil {
				t.Fatal(err)
			}
			ours := listDisk(t, tree.Dir)
			theirs := listDisk(t, filepath.Join(bundle, "rootfs"))
			compare(t, "slimoci against umoci", ours, theirs, func(p string, g, w *node) {
				if p == "/" {
					g.Mode, g.MTime, w.Mode, w.MTime = 0, 0, 0, 0 // umoci makes the rootfs directory itself
				}
			})
			if g, w := hardlinkGroups(ours), hardlinkGroups(theirs); strings.Join(g, "\n") != strings.Join(w, "\n") {
				t.Fatalf("hardlinks differ:\n%v\n%v", g, w)
			}
			indexMatchesDisk(t, tree, ours)
		})
	}
}

// TestE2EUnpackMatchesPodman checks whiteouts, an opaque directory, hardlinks and a directory replaced by a
// symlink against podman's own view of the same image (its overlay mount).
func TestE2EUnpackMatchesPodman(t *testing.T) {
	bed := needBed(t)
	needRoot(t)
	ctx := context.Background()
	// podman gets the very image the layout holds, under a name of its own.
	name := "localhost/slimoci-e2e/layers:latest"
	if _, err := testbed.Skopeo(ctx, "copy", "--quiet", "oci:"+bed.Layout("layers")+":latest", "containers-storage:"+name); err != nil {
		t.Fatal(err)
	}
	defer testbed.Run(ctx, "podman", "rmi", "-f", name)
	out, err := testbed.Run(ctx, "podman", "image", "mount", name)
	if err != nil {
		t.Fatal(err)
	}
	defer testbed.Run(ctx, "podman", "image", "unmount", name)
	merged := strings.TrimSpace(string(out))
	tree := unpack(t, bed.Layout("layers"), filepath.Join(scratch(t), "rootfs"))
	ours, theirs := listDisk(t, tree.Dir), listDisk(t, merged)
	compare(t, "slimoci against podman", ours, theirs, func(p string, g, w *node) {
		if g.Type == "dir" {
			g.MTime, w.MTime = 0, 0 // overlayfs shows its own directories' times
		}
		if p == "/" {
			g.Mode, w.Mode = 0, 0
		}
	})
	if g, w := hardlinkGroups(ours), hardlinkGroups(theirs); strings.Join(g, "\n") != strings.Join(w, "\n") {
		t.Fatalf("hardlinks differ:\n%v\n%v", g, w)
	}
	// The cases the fixture was made for are really there.
	for p, want := range map[string]string{"/t/swap": "symlink", "/t/opq/new": "file", "/t/fifo": "fifo", "/t/h3": "file", "/t/ro": "dir"} {
		if ours[p].Type != want {
			t.Errorf("%s is %q, want %s", p, ours[p].Type, want)
		}
	}
	for _, p := range []string{"/t/gone", "/t/opq/c", "/t/opq/sub", "/t/keep/a", "/t/h2", "/t/swap/e"} {
		if _, ok := ours[p]; ok {
			t.Errorf("%s should have been removed", p)
		}
	}
	if ours["/t/keep"].UID != 1000 || ours["/t/keep/a2"].UID != 0 {
		t.Errorf("owners: /t/keep %d, /t/keep/a2 %d", ours["/t/keep"].UID, ours["/t/keep/a2"].UID)
	}
}

// rootlessExpect names the file where the privileged parent leaves the index an unprivileged unpack must
// reproduce.
const rootlessExpect = "SLIMOCI_ROOTLESS_EXPECT"

// TestE2EUnpackRootless runs the unpack tests again as an unprivileged user (nobody), in a copy of this test
// binary, and checks the unprivileged index is the privileged one: owners, modes and device nodes included.
func TestE2EUnpackRootless(t *testing.T) {
	bed := needBed(t)
	if os.Geteuid() != 0 {
		if os.Getenv(rootlessExpect) == "" {
			t.Skip("run by the privileged test as nobody")
		}
		rootlessChild(t, bed)
		return
	}
	work, err := os.MkdirTemp("", "slimoci-rootless-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(work)
	os.Chmod(work, 0o755)
	// The privileged unpacks the child must match.
	expect := map[string][]rootfs.Entry{}
	for _, s := range []string{"python", "layers"} {
		tree := unpack(t, bed.Layout(s), filepath.Join(scratch(t), s))
		tree.Index.Walk(func(e *rootfs.Entry) error {
			expect[s] = append(expect[s], *e)
			return nil
		})
	}
	b, _ := json.Marshal(expect)
	expectFile := filepath.Join(work, "expect.json")
	os.WriteFile(expectFile, b, 0o644)
	bin := filepath.Join(work, "rootfs.test")
	exe, _ := os.Executable()
	data, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(bin, data, 0o755)
	tmp := filepath.Join(work, "tmp")
	os.Mkdir(tmp, 0o700)
	os.Chown(tmp, 65534, 65534)
	cmd := exec.Command(bin, "-test.run", "^(TestEscapes|TestLayerSemantics|TestVerifyWhileStreaming|TestTargetChecks|TestE2EUnpackRootless)$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp, "HOME="+tmp, rootlessExpect+"="+expectFile)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the unprivileged run failed: %v\n%s", err, out)
	}
	for _, want := range []string{"--- PASS: TestEscapes", "--- PASS: TestLayerSemantics", "--- PASS: TestVerifyWhileStreaming", "--- PASS: TestE2EUnpackRootless"} {
		if !strings.Contains(string(out), want) {
			t.Fatalf("the unprivileged run did not report %q:\n%s", want, out)
		}
	}
}

func rootlessChild(t *testing.T, bed *testbed.Bed) {
	b, err := os.ReadFile(os.Getenv(rootlessExpect))
	if err != nil {
		t.Fatal(err)
	}
	var expect map[string][]rootfs.Entry
	if err := json.Unmarshal(b, &expect); err != nil {
		t.Fatal(err)
	}
	notOnDisk := 0
	defer func() {
		if notOnDisk == 0 {
			t.Error("no entry of the samples is in the index only: the check for warnings saw no device node")
		}
	}()
	for s, want := range expect {
		// What an unprivileged unpack cannot write (device nodes, security xattrs) is routine: kept in the
		// index, logged at debug level, never a warning.
		var logs bytes.Buffer
		tree := unpackWith(t, bed.Layout(s), filepath.Join(scratch(t), s), &rootfs.Options{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))})
		if logs.Len() > 0 {
			t.Errorf("%s: an unprivileged unpack warned:\n%s", s, logs.String())
		}
		if !tree.Rootless {
			t.Fatal("an unprivileged unpack says it was privileged")
		}
		var got []rootfs.Entry
		tree.Index.Walk(func(e *rootfs.Entry) error {
			got = append(got, *e)
			if e.NotOnDisk != "" {
				notOnDisk++
			}
			return nil
		})
		if len(got) != len(want) {
			t.Fatalf("%s: %d entries unprivileged, %d privileged", s, len(got), len(want))
		}
		for i := range got {
			g, w := got[i], want[i]
			g.NotOnDisk, w.NotOnDisk = "", ""
			gj, _ := json.Marshal(g)
			wj, _ := json.Marshal(w)
			if string(gj) != string(wj) {
				t.Fatalf("%s: unprivileged index entry\n%s\nprivileged\n%s", s, gj, wj)
			}
		}
		indexMatchesDisk(t, tree, listDisk(t, tree.Dir))
	}
}
