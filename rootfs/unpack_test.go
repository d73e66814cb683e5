package rootfs

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/google/go-containerregistry/pkg/compression"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/slimoci/slimoci/oci"
)

// ent is one tar entry of a test layer.
type ent struct {
	name, body, link string
	typ              byte
	mode             int64
	uid, gid         int
	xattrs           map[string]string
}

func file(name, body string) ent { return ent{name: name, body: body, typ: tar.TypeReg, mode: 0o644} }
func dir(name string) ent        { return ent{name: name, typ: tar.TypeDir, mode: 0o755} }
func symlink(name, to string) ent {
	return ent{name: name, link: to, typ: tar.TypeSymlink, mode: 0o777}
}
func hardlink(name, to string) ent  { return ent{name: name, link: to, typ: tar.TypeLink, mode: 0o644} }
func whiteout(dir, name string) ent { return file(filepath.Join(dir, ".wh."+name), "") }
func opaque(dir string) ent         { return file(filepath.Join(dir, ".wh..wh..opq"), "") }
func tarOf(t testing.TB, es ...ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, e := range es {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Uid: e.uid, Gid: e.gid, Linkname: e.link, ModTime: mtime, Format: tar.FormatPAX}
		if e.typ == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		for k, v := range e.xattrs {
			if h.PAXRecords == nil {
				h.PAXRecords = map[string]string{}
			}
			h.PAXRecords["SCHILY.xattr."+k] = v
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			tw.Write([]byte(e.body))
		}
	}
	tw.Close()
	return buf.Bytes()
}

// imageOf builds an image whose layers hold the given tars.
func imageOf(t testing.TB, layers ...[]byte) v1.Image {
	t.Helper()
	img := empty.Image
	for _, b := range layers {
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
		if err != nil {
			t.Fatal(err)
		}
		if img, err = mutate.AppendLayers(img, l); err != nil {
			t.Fatal(err)
		}
	}
	return img
}

// snapshot lists a directory tree: path, type, mode and content or link target.
func snapshot(t testing.TB, dir string) string {
	t.Helper()
	var lines []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			lines = append(lines, fmt.Sprintf("error %v", err))
			return nil
		}
		fi, _ := d.Info()
		rel, _ := filepath.Rel(dir, p)
		line := fmt.Sprintf("%s %v", rel, fi.Mode())
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			line += " -> " + l
		case fi.Mode().IsRegular():
			b, _ := os.ReadFile(p)
			line += fmt.Sprintf(" %x", sha256.Sum256(b))
		}
		lines = append(lines, line)
		return nil
	})
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// sandbox is a parent directory holding the unpack target and, beside it, an "outside" directory with a
// secret that no layer may read, change or add to.
type sandbox struct {
	root, outside, secret string
	before                string
}

func newSandbox(t testing.TB) *sandbox {
	t.Helper()
	parent := t.TempDir()
	// Runs before TempDir's cleanup: an unprivileged unpack leaves read-only directories as the image says.
	t.Cleanup(func() {
		filepath.WalkDir(parent, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				os.Chmod(p, 0o700)
			}
			return nil
		})
	})
	s := &sandbox{root: filepath.Join(parent, "root"), outside: filepath.Join(parent, "outside")}
	os.Mkdir(s.outside, 0o755)
	s.secret = filepath.Join(s.outside, "secret")
	os.WriteFile(s.secret, []byte("do not touch"), 0o644)
	s.before = snapshot(t, parent+"/outside")
	return s
}

func (s *sandbox) checkOutside(t testing.TB) {
	t.Helper()
	if got := snapshot(t, s.outside); got != s.before {
		t.Fatalf("the outside directory changed:\n%s\nwas:\n%s", got, s.before)
	}
	entries, _ := os.ReadDir(filepath.Dir(s.root))
	for _, e := range entries {
		if e.Name() != "root" && e.Name() != "outside" {
			t.Fatalf("something was written beside the root: %s", e.Name())
		}
	}
}

// escapeCases are named attempts to reach outside the root, each as real tar layers, with what a runtime
// does: the path contained in the root, or an error.
func escapeCases(s *sandbox) []struct {
	name    string
	layers  [][]ent
	inside  map[string]string // path in root -> content ("" just exists), or "-> target" for a symlink
	wantErr string
} {
	abs := s.outside // an absolute path to the real outside
	return []struct {
		name    string
		layers  [][]ent
		inside  map[string]string
		wantErr string
	}{
		{name: "absolute name", layers: [][]ent{{file(abs+"/evil", "x")}}, inside: map[string]string{abs + "/evil": "x"}},
		{name: "dotdot chain", layers: [][]ent{{file("../../../../outside/evil", "x")}}, inside: map[string]string{"outside/evil": "x"}},
		{name: "dotdot inside a name", layers: [][]ent{{dir("a"), file("a/../../outside/secret", "pwned")}}, inside: map[string]string{"outside/secret": "pwned"}},
		{name: "absolute symlink as prefix", layers: [][]ent{{symlink("link", abs), file("link/evil", "x")}}, inside: map[string]string{abs + "/evil": "x", "link": "-> " + abs}},
		{name: "relative symlink as prefix", layers: [][]ent{{symlink("rel", "../../../../"+filepath.Base(abs)), file("rel/evil", "x")}}, inside: map[string]string{"outside/evil": "x"}},
		{name: "symlink prefix across layers", layers: [][]ent{{symlink("link", abs)}, {file("link/secret", "pwned")}}, inside: map[string]string{abs + "/secret": "pwned"}},
		{name: "symlink chain as prefix", layers: [][]ent{{symlink("a", "b"), symlink("b", abs)}, {file("a/evil", "x")}}, inside: map[string]string{abs + "/evil": "x"}},
		{name: "symlink to dotdot as prefix", layers: [][]ent{{symlink("up", ".."), file("up/up/outside/evil", "x")}}, inside: map[string]string{"outside/evil": "x"}},
		{name: "directory replaced by symlink", layers: [][]ent{{dir("d"), file("d/f", "1")}, {symlink("d", abs)}, {file("d/evil", "x")}}, inside: map[string]string{abs + "/evil": "x", "d": "-> " + abs}},
		{name: "hardlink out by dotdot", layers: [][]ent{{hardlink("hl", "../outside/secret")}}, wantErr: "which no layer wrote"},
		{name: "hardlink out by absolute path", layers: [][]ent{{hardlink("hl", s.secret)}}, wantErr: "which no layer wrote"},
		{name: "hardlink through a symlinked directory", layers: [][]ent{{symlink("l", abs), file(abs[1:]+"/secret", "inner")}, {hardlink("h", "l/secret")}}, inside: map[string]string{"h": "inner"}},
		{name: "hardlink to a symlink that leads out, then written", layers: [][]ent{{symlink("s", s.secret), hardlink("h", "s")}, {file("h", "pwned")}}, inside: map[string]string{"h": "pwned", "s": "-> " + s.secret}},
		{name: "write through a symlink to a file", layers: [][]ent{{symlink("s", s.secret)}, {file("s", "pwned")}}, inside: map[string]string{"s": "pwned"}},
		{name: "whiteout through a symlink", layers: [][]ent{{symlink("l", abs)}, {whiteout("l", "secret")}}, inside: map[string]string{"l": "-> " + abs}},
		{name: "whiteout with dotdot", layers: [][]ent{{file("keep", "k")}, {file("a/../../../outside/.wh.secret", "")}}, inside: map[string]string{"keep": "k"}},
		{name: "opaque through a symlink", layers: [][]ent{{symlink("l", abs)}, {opaque("l")}}, inside: map[string]string{"l": "-> " + abs}},
		{name: "symlink then directory entry over it", layers: [][]ent{{symlink("d", abs)}, {dir("d"), file("d/evil", "x")}}, inside: map[string]string{"d/evil": "x"}},
		{name: "whiteout of dotdot", layers: [][]ent{{file("a/.wh...", "")}}, wantErr: "whiteout"},
	}
}

func TestEscapes(t *testing.T) {
	for _, tc := range escapeCases(newSandbox(t)) {
		t.Run(tc.name, func(t *testing.T) {
			s := newSandbox(t)
			// The cases name paths in a sandbox; rebuild them for this one.
			for _, c := range escapeCases(s) {
				if c.name == tc.name {
					tc = c
				}
			}
			var layers [][]byte
			for _, l := range tc.layers {
				layers = append(layers, tarOf(t, l...))
			}
			tree, err := Unpack(context.Background(), imageOf(t, layers...), s.root, nil)
			s.checkOutside(t)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one with %q", err, tc.wantErr)
				}
				if _, serr := os.Stat(s.root); !errors.Is(serr, fs.ErrNotExist) {
					t.Fatalf("the half-built tree was left: %v", serr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for p, want := range tc.inside {
				full := filepath.Join(s.root, p)
				if target, ok := strings.CutPrefix(want, "-> "); ok {
					if got, err := os.Readlink(full); err != nil || got != target {
						t.Errorf("%s: symlink to %q (%v), want %q", p, got, err, target)
					}
					if e, ok := tree.Index.Lookup(p); !ok || e.Type != TypeSymlink || e.Linkname != target {
						t.Errorf("%s: index says %+v", p, e)
					}
					continue
				}
				fi, err := os.Lstat(full)
				if err != nil || !fi.Mode().IsRegular() {
					t.Errorf("%s: %v, %v: want a regular file inside the root", p, fi, err)
					continue
				}
				if b, _ := os.ReadFile(full); want != "" && string(b) != want {
					t.Errorf("%s holds %q, want %q", p, b, want)
				}
				if e, ok := tree.Index.Lookup(p); !ok || e.Type != TypeFile {
					t.Errorf("%s: index says %+v", p, e)
				}
			}
		})
	}
}

// capNetRaw is a vfs_cap_data, revision 2, effective, with cap_net_raw (13) permitted.
var capNetRaw = []byte{0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}

func TestLayerSemantics(t *testing.T) {
	withOwner := func(e ent, uid, gid int) ent { e.uid, e.gid = uid, gid; return e }
	withMode := func(e ent, m int64) ent { e.mode = m; return e }
	xa := file("bin/ping", "ping")
	xa.mode = 0o4755
	// user.note, and file capabilities (cap_net_raw permitted, effective): only root may set the latter.
	xa.xattrs = map[string]string{"user.note": "kept", "security.capability": string(capNetRaw)}
	layers := [][]byte{
		tarOf(t,
			dir("etc"), file("etc/passwd", "root"), file("etc/group", "g"),
			dir("opq"), file("opq/lower", "l"), dir("opq/sub"), file("opq/sub/deep", "d"),
			dir("gone"), file("gone/x", "x"),
			file("lib/a.so", "A"), hardlink("lib/b.so", "lib/a.so"),
			dir("swap"), file("swap/f", "f"),
			withOwner(dir("home/user"), 1000, 1000), withOwner(file("home/user/.profile", "p"), 1000, 1000),
			withMode(dir("ro"), 0o555), file("ro/inner", "i"),
			xa, withMode(dir("tmp"), 0o1777),
			symlink("lib64", "lib"),
		),
		tarOf(t,
			whiteout("etc", "group"),
			dir("opq"), opaque("opq"), file("opq/upper", "u"),
			whiteout("/", "gone"),
			symlink("swap", "etc"),
			file("lib/a.so", "A2"),
			file("ro/added", "a"),
		),
	}
	s := newSandbox(t)
	tree, err := Unpack(context.Background(), imageOf(t, layers...), s.root, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.checkOutside(t)
	exists := func(p string) bool { _, err := os.Lstat(filepath.Join(s.root, p)); return err == nil }
	for _, p := range []string{"etc/group", "opq/lower", "opq/sub", "gone", "gone/x", "swap/f"} {
		if exists(p) {
			t.Errorf("%s should be gone", p)
		}
		if _, ok := tree.Index.Lookup(p); ok {
			t.Errorf("%s is still in the index", p)
		}
	}
	for _, p := range []string{"etc/passwd", "opq/upper", "lib/a.so", "lib/b.so", "ro/inner", "ro/added", "home/user/.profile"} {
		if !exists(p) {
			t.Errorf("%s is missing", p)
		}
	}
	if l, _ := os.Readlink(filepath.Join(s.root, "swap")); l != "etc" {
		t.Errorf("swap should be a symlink to etc, is %q", l)
	}
	// The hardlink was broken by the later layer replacing a.so: b.so keeps the old content.
	if b, _ := os.ReadFile(filepath.Join(s.root, "lib/b.so")); string(b) != "A" {
		t.Errorf("lib/b.so holds %q", b)
	}
	if e, _ := tree.Index.Lookup("/lib/b.so"); e.HardlinkGroup != "/lib/a.so" {
		t.Errorf("lib/b.so hardlink group %q", e.HardlinkGroup)
	}
	fi, _ := os.Stat(filepath.Join(s.root, "bin/ping"))
	if fi.Mode()&fs.ModeSetuid == 0 || fi.Mode().Perm() != 0o755 {
		t.Errorf("bin/ping mode %v", fi.Mode())
	}
	if fi, _ := os.Stat(filepath.Join(s.root, "tmp")); fi.Mode()&fs.ModeSticky == 0 {
		t.Errorf("tmp mode %v", fi.Mode())
	}
	if fi, _ := os.Stat(filepath.Join(s.root, "ro")); fi.Mode().Perm() != 0o555 {
		t.Errorf("ro mode %v (files were still added to it)", fi.Mode())
	}
	if fi, _ := os.Stat(filepath.Join(s.root, "etc")); !fi.ModTime().Equal(time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)) {
		t.Errorf("etc mtime %v: directory times must be set after their children", fi.ModTime())
	}
	e, _ := tree.Index.Lookup("/home/user/.profile")
	if e.UID != 1000 || e.GID != 1000 || e.Layer != 0 {
		t.Errorf("index entry %+v", e)
	}
	if e, _ := tree.Index.Lookup("/bin/ping"); e.Xattrs["user.note"] != "kept" || e.Xattrs["security.capability"] != string(capNetRaw) || e.Mode != 0o4755 {
		t.Errorf("bin/ping index %+v", e)
	}
	if os.Geteuid() == 0 {
		buf := make([]byte, 64)
		n, err := unix.Lgetxattr(filepath.Join(s.root, "bin/ping"), "security.capability", buf)
		if err != nil || string(buf[:n]) != string(capNetRaw) {
			t.Errorf("bin/ping capabilities on disk: %x, %v", buf[:max(n, 0)], err)
		}
	}
	if e, ok := tree.Index.Lookup("/bin"); !ok || e.Layer != -1 || e.Type != TypeDir {
		t.Errorf("implicit /bin: %+v", e)
	}
	if e, _ := tree.Index.Lookup("/lib/a.so"); e.Layer != 1 {
		t.Errorf("lib/a.so layer %d", e.Layer)
	}
	var hows = map[string]string{}
	for _, r := range tree.Index.Removed() {
		hows[r.Entry.Path] = r.How
	}
	for p, how := range map[string]string{"/etc/group": "whiteout", "/opq/lower": "opaque", "/opq/sub/deep": "opaque", "/gone/x": "whiteout", "/swap/f": "replaced", "/lib/a.so": "replaced"} {
		if hows[p] != how {
			t.Errorf("removal of %s recorded as %q, want %q", p, hows[p], how)
		}
	}
	// Walk is sorted, parents first.
	var prev string
	tree.Index.Walk(func(e *Entry) error {
		if e.Path < prev {
			t.Errorf("walk out of order: %s after %s", e.Path, prev)
		}
		prev = e.Path
		return nil
	})
	if os.Geteuid() == 0 {
		var st fs.FileInfo
		st, _ = os.Lstat(filepath.Join(s.root, "home/user/.profile"))
		if uid := st.Sys().(*syscall.Stat_t).Uid; uid != 1000 {
			t.Errorf("owner on disk %d", uid)
		}
	}
}

func TestVerifyWhileStreaming(t *testing.T) {
	good := tarOf(t, file("a", "aaaa"), file("b", strings.Repeat("b", 100000)))
	img := imageOf(t, good)
	ctx := context.Background()

	// A config whose DiffID does not match the layer.
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.RootFS.DiffIDs[0] = v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("0", 64)}
	bad, err := mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	s := newSandbox(t)
	_, err = Unpack(ctx, bad, s.root, nil)
	if !errors.Is(err, oci.ErrDigest) || !strings.Contains(err.Error(), "layer 0") {
		t.Fatalf("wrong DiffID: %v", err)
	}
	if _, serr := os.Stat(s.root); !errors.Is(serr, fs.ErrNotExist) {
		t.Fatal("the half-built tree was left behind")
	}

	// Through the oci package: a layout whose layer blob is truncated, or corrupt.
	for _, breakIt := range []struct {
		name string
		fn   func([]byte) []byte
		want error
	}{
		{"truncated", func(b []byte) []byte { return b[:len(b)/2] }, oci.ErrDigest},
		{"corrupt", func(b []byte) []byte { b[len(b)/2] ^= 0xff; return b }, oci.ErrDigest},
	} {
		t.Run(breakIt.name, func(t *testing.T) {
			layout := filepath.Join(t.TempDir(), "layout")
			gz, _ := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(good)), nil })
			img, _ := mutate.AppendLayers(empty.Image, gz)
			if err := oci.Write(ctx, img, oci.Reference{Transport: oci.Layout, Path: layout}, nil); err != nil {
				t.Fatal(err)
			}
			m, _ := img.Manifest()
			blob := filepath.Join(layout, "blobs", "sha256", m.Layers[0].Digest.Hex)
			b, _ := os.ReadFile(blob)
			os.WriteFile(blob, breakIt.fn(b), 0o644)
			src, err := oci.Open(ctx, oci.Reference{Transport: oci.Layout, Path: layout}, nil)
			if err != nil {
				t.Fatal(err)
			}
			// An existing empty target is kept, emptied.
			target := filepath.Join(t.TempDir(), "target")
			os.Mkdir(target, 0o755)
			_, err = Unpack(ctx, src.Image, target, nil)
			if !errors.Is(err, breakIt.want) || !strings.Contains(err.Error(), "layer 0 ("+m.Layers[0].Digest.String()) && !strings.Contains(err.Error(), "layer 0 (") {
				t.Fatalf("%v", err)
			}
			if entries, err := os.ReadDir(target); err != nil || len(entries) != 0 {
				t.Fatalf("target after a failed unpack: %v %v", entries, err)
			}
		})
	}
}

func TestTargetChecks(t *testing.T) {
	img := imageOf(t, tarOf(t, file("a", "a")))
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "x"), nil, 0o644)
	if _, err := Unpack(context.Background(), img, dir, nil); !errors.Is(err, ErrTarget) {
		t.Fatalf("non-empty target: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "x")); err != nil {
		t.Fatal("a refused target was changed")
	}
	if _, err := Unpack(context.Background(), img, filepath.Join(dir, "x"), nil); !errors.Is(err, ErrTarget) {
		t.Fatalf("file target: %v", err)
	}
}

// sparseLayer has GNU tar write a real sparse archive of one file of the given size ending in "tail".
func sparseLayer(t *testing.T, size int64) []byte {
	t.Helper()
	tarBin, err := exec.LookPath("tar")
	if err != nil {
		t.Skip("GNU tar is not installed")
	}
	work := t.TempDir()
	f, err := os.Create(filepath.Join(work, "sparse"))
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("tail"), size-4)
	f.Close()
	layer := filepath.Join(work, "layer.tar")
	if out, err := exec.Command(tarBin, "--sparse", "--format=pax", "-C", work, "-cf", layer, "sparse").CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	b, _ := os.ReadFile(layer)
	if len(b) > 1<<20 {
		t.Fatalf("GNU tar wrote %d bytes: not sparse", len(b))
	}
	return b
}

// A sparse entry declaring 1 TiB holds a few bytes of data: it is refused at once, not expanded; a 256 MiB
// one is written with its holes left as holes.
func TestSparse(t *testing.T) {
	s := newSandbox(t)
	start := time.Now()
	_, err := Unpack(context.Background(), imageOf(t, sparseLayer(t, 1<<40)), s.root, nil)
	if !errors.Is(err, ErrLayer) || !strings.Contains(err.Error(), "sparse file of 1099511627776 bytes") || time.Since(start) > 10*time.Second {
		t.Fatalf("1 TiB sparse entry: %v after %v", err, time.Since(start))
	}
	const size = 256 << 20
	s = newSandbox(t)
	if _, err := Unpack(context.Background(), imageOf(t, sparseLayer(t, size)), s.root, nil); err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(s.root, "sparse"), &st); err != nil || st.Size != size || st.Blocks*512 > 1<<20 {
		t.Fatalf("sparse: size %d, %d blocks, %v", st.Size, st.Blocks, err)
	}
	tail := make([]byte, 4)
	f, _ := os.Open(filepath.Join(s.root, "sparse"))
	f.ReadAt(tail, size-4)
	f.Close()
	if string(tail) != "tail" {
		t.Fatalf("sparse ends with %q", tail)
	}
}

// Layers compressed with zstd and gzip, in one image, through an OCI layout: each is decoded by its magic.
func TestZstdAndGzipLayers(t *testing.T) {
	ctx := context.Background()
	var layers []v1.Layer
	for i, c := range []compression.Compression{compression.ZStd, compression.GZip} {
		b := tarOf(t, file(fmt.Sprintf("layer%d", i), strings.Repeat("z", 10000)))
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }, tarball.WithCompression(c))
		if err != nil {
			t.Fatal(err)
		}
		layers = append(layers, l)
	}
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	layout := filepath.Join(t.TempDir(), "layout")
	if err := oci.Write(ctx, img, oci.Reference{Transport: oci.Layout, Path: layout}, nil); err != nil {
		t.Fatal(err)
	}
	m, _ := img.Manifest()
	blob, _ := os.ReadFile(filepath.Join(layout, "blobs", "sha256", m.Layers[0].Digest.Hex))
	if !bytes.HasPrefix(blob, []byte{0x28, 0xb5, 0x2f, 0xfd}) {
		t.Fatalf("the first layer is not zstd: % x", blob[:4])
	}
	src, err := oci.Open(ctx, oci.Reference{Transport: oci.Layout, Path: layout}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := newSandbox(t)
	if _, err := Unpack(ctx, src.Image, s.root, nil); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"layer0", "layer1"} {
		if b, err := os.ReadFile(filepath.Join(s.root, p)); err != nil || len(b) != 10000 {
			t.Fatalf("%s: %d bytes, %v", p, len(b), err)
		}
	}
}
