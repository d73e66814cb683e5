package emit

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/slimoci/slimoci/rootfs"
)

type ent struct {
	name, body, link string
	typ              byte
	mode             int64
	uid, gid         int
}

// fatImage is a two-layer image with owners, a hardlink pair, a symlink, a setuid file and xattrs.
func fatImage(t *testing.T) v1.Image {
	t.Helper()
	mtime := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	layer := func(es ...ent) v1.Layer {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, e := range es {
			h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Uid: e.uid, Gid: e.gid, Linkname: e.link, ModTime: mtime, Size: int64(len(e.body)), Format: tar.FormatPAX}
			if e.name == "app/bin/tool" {
				h.PAXRecords = map[string]string{"SCHILY.xattr.user.test": "v"}
			}
			tw.WriteHeader(h)
			tw.Write([]byte(e.body))
		}
		tw.Close()
		b := buf.Bytes()
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	img, err := mutate.AppendLayers(empty.Image,
		layer(ent{name: "app/", typ: tar.TypeDir, mode: 0o750, uid: 1000, gid: 1000},
			ent{name: "app/bin/", typ: tar.TypeDir, mode: 0o755},
			ent{name: "app/bin/tool", typ: tar.TypeReg, mode: 0o4755, uid: 1000, gid: 50, body: "#!/bin/sh\necho hi\n"},
			ent{name: "app/bin/tool-hard", typ: tar.TypeLink, link: "app/bin/tool"},
			ent{name: "app/bin/t", typ: tar.TypeSymlink, link: "tool", mode: 0o777},
			ent{name: "app/data", typ: tar.TypeReg, mode: 0o600, body: "dropped"}),
		layer(ent{name: "app/conf", typ: tar.TypeReg, mode: 0o644, uid: 7, gid: 8, body: "kept"}))
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	cf.Config.Entrypoint = []string{"/app/bin/t"}
	cf.Config.User = "1000"
	cf.Config.ExposedPorts = map[string]struct{}{"8080/tcp": {}}
	cf.History = []v1.History{{CreatedBy: "ADD a"}, {CreatedBy: "ADD b"}}
	img, _ = mutate.ConfigFile(img, cf)
	return img
}

// fatTree is fatImage unpacked, and a closure of it that keeps all but /app/data.
func fatTree(t *testing.T) (*rootfs.Tree, map[string][]string) {
	t.Helper()
	tree, err := rootfs.Unpack(context.Background(), fatImage(t), filepath.Join(t.TempDir(), "fat"), nil)
	if err != nil {
		t.Fatal(err)
	}
	keep := map[string][]string{}
	for _, p := range []string{"/app", "/app/bin", "/app/bin/tool", "/app/bin/tool-hard", "/app/bin/t", "/app/conf"} {
		keep[p] = []string{"test"}
	}
	return tree, keep
}

func TestSlimImage(t *testing.T) {
	tree, keep := fatTree(t)
	build := func(compression string, epoch *time.Time) v1.Image {
		img, stats, err := SlimImage(tree, keep, ImageOptions{Compression: compression, Epoch: epoch, Source: "fat:latest", SourceDigest: "sha256:" + string(bytes.Repeat([]byte("a"), 64)), Dir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		if stats.Entries != 6 || stats.Hardlinks != 1 {
			t.Errorf("stats %+v", stats)
		}
		return img
	}
	a, b := build("gzip", nil), build("gzip", nil)
	da, _ := a.Digest()
	db, _ := b.Digest()
	if da != db {
		t.Errorf("two builds of the same input differ: %s %s", da, db)
	}
	layers, _ := a.Layers()
	if len(layers) != 1 {
		t.Fatalf("%d layers", len(layers))
	}
	mt, _ := a.MediaType()
	cf, _ := a.ConfigFile()
	if mt != types.OCIManifestSchema1 || cf.Config.User != "1000" || !slices.Equal(cf.Config.Entrypoint, []string{"/app/bin/t"}) || len(cf.Config.ExposedPorts) != 1 {
		t.Errorf("media type %s, config %+v", mt, cf.Config)
	}
	if len(cf.History) != 3 || !cf.History[0].EmptyLayer || cf.History[2].EmptyLayer || cf.History[2].CreatedBy != "slimoci build fat:latest@sha256:"+string(bytes.Repeat([]byte("a"), 64)) {
		t.Errorf("history %+v", cf.History)
	}
	m, _ := a.Manifest()
	if m.Annotations["org.opencontainers.image.base.name"] != "fat:latest" {
		t.Errorf("annotations %v", m.Annotations)
	}

	// Unpacked again, the slim tree holds exactly what was kept, with the image's owners, modes, xattrs,
	// times and the hardlink.
	slim, err := rootfs.Unpack(context.Background(), a, filepath.Join(t.TempDir(), "slim"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if slim.Index.Len() != len(keep)+1 {
		t.Errorf("slim tree has %d entries, want %d", slim.Index.Len(), len(keep)+1)
	}
	for p := range keep {
		want, _ := tree.Index.Lookup(p)
		got, ok := slim.Index.Lookup(p)
		if !ok || got.Type != want.Type || got.Mode != want.Mode || got.UID != want.UID || got.GID != want.GID || got.Size != want.Size ||
			!got.ModTime.Equal(want.ModTime) || got.Linkname != want.Linkname || len(got.Xattrs) != len(want.Xattrs) {
			t.Errorf("%s: got %+v, want %+v", p, got, want)
		}
	}
	if e, _ := slim.Index.Lookup("/app/bin/tool-hard"); e == nil || e.HardlinkGroup == "" {
		t.Errorf("the hardlink is not a hardlink: %+v", e)
	}
	if _, ok := slim.Index.Lookup("/app/data"); ok {
		t.Errorf("a dropped file is in the slim image")
	}

	// SOURCE_DATE_EPOCH clamps mtimes and changes the digest; zstd makes a zstd layer.
	epoch := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	c := build("gzip", &epoch)
	dc, _ := c.Digest()
	slimC, err := rootfs.Unpack(context.Background(), c, filepath.Join(t.TempDir(), "slimc"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if e, _ := slimC.Index.Lookup("/app/conf"); dc == da || e == nil || !e.ModTime.Equal(epoch) {
		t.Errorf("epoch: digest %s, conf %+v", dc, e)
	}
	z := build("zstd", nil)
	zl, _ := z.Layers()
	if zmt, _ := zl[0].MediaType(); zmt != types.OCILayerZStd {
		t.Errorf("zstd layer media type %s", zmt)
	}
	if _, err := rootfs.Unpack(context.Background(), z, filepath.Join(t.TempDir(), "slimz"), nil); err != nil {
		t.Errorf("the zstd image does not unpack: %v", err)
	}
	if _, _, err := SlimImage(tree, keep, ImageOptions{Compression: "lz4", Dir: t.TempDir()}); err == nil {
		t.Errorf("lz4 accepted")
	}
}

// A Docker source with a HEALTHCHECK gives a Docker schema 2 slim image (podman reads HEALTHCHECK only from
// Docker configs), with no manifest annotations; the config keeps the healthcheck either way.
func TestSlimImageDockerFormat(t *testing.T) {
	fat := fatImage(t)
	cf, _ := fat.ConfigFile()
	cf.Config.Healthcheck = &v1.HealthConfig{Test: []string{"CMD", "/app/bin/t"}, Interval: 30 * time.Second, Retries: 3}
	fat, _ = mutate.ConfigFile(fat, cf)
	tree, err := rootfs.Unpack(context.Background(), fat, filepath.Join(t.TempDir(), "fat"), nil)
	if err != nil {
		t.Fatal(err)
	}
	keep := map[string][]string{"/app": {"test"}, "/app/bin": {"test"}, "/app/bin/tool": {"test"}, "/app/bin/t": {"test"}}
	img, _, err := SlimImage(tree, keep, ImageOptions{Source: "fat:latest", Dir: t.TempDir(), Docker: true})
	if err != nil {
		t.Fatal(err)
	}
	m, _ := img.Manifest()
	mt, _ := img.MediaType()
	if mt != types.DockerManifestSchema2 || m.MediaType != types.DockerManifestSchema2 || m.Config.MediaType != types.DockerConfigJSON ||
		len(m.Layers) != 1 || m.Layers[0].MediaType != types.DockerLayer || len(m.Annotations) != 0 {
		t.Errorf("media type %s, manifest %+v", mt, m)
	}
	got, _ := img.ConfigFile()
	if h := got.Config.Healthcheck; h == nil || !slices.Equal(h.Test, []string{"CMD", "/app/bin/t"}) || h.Retries != 3 {
		t.Errorf("healthcheck %+v", h)
	}
	if _, err := rootfs.Unpack(context.Background(), img, filepath.Join(t.TempDir(), "slim"), nil); err != nil {
		t.Errorf("the Docker image does not unpack: %v", err)
	}
	if _, _, err := SlimImage(tree, keep, ImageOptions{Compression: "zstd", Dir: t.TempDir(), Docker: true}); err == nil {
		t.Error("zstd accepted for a Docker image")
	}

	hc := &v1.ConfigFile{Config: v1.Config{Healthcheck: &v1.HealthConfig{Test: []string{"NONE"}}}}
	for _, c := range []struct {
		src         types.MediaType
		cfg         *v1.ConfigFile
		compression string
		want        bool
	}{
		{types.DockerManifestSchema2, hc, "gzip", true},
		{types.DockerManifestSchema2, hc, "", true},
		{types.DockerManifestSchema2, hc, "zstd", false},
		{types.DockerManifestSchema2, &v1.ConfigFile{}, "gzip", false},
		{types.DockerManifestSchema2, nil, "gzip", false},
		{types.OCIManifestSchema1, hc, "gzip", false},
	} {
		if got := DockerFormat(c.src, c.cfg, c.compression); got != c.want {
			t.Errorf("DockerFormat(%s, healthcheck %v, %q) = %v", c.src, c.cfg != nil && c.cfg.Config.Healthcheck != nil, c.compression, got)
		}
	}
}

// The slim config is a deep copy of the source's: building with edits leaves the tree's config as it was
// (its history entries are marked empty in the copy only).
func TestSlimImageLeavesSourceConfig(t *testing.T) {
	tree, err := rootfs.Unpack(context.Background(), fatImage(t), filepath.Join(t.TempDir(), "fat"), nil)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := json.Marshal(tree.Config)
	edits := []ConfigEdits{{Env: []string{"X=1"}, Labels: map[string]string{"a": "b"}, ExposedPorts: []string{"9090/tcp"}, SetCmd: true, Cmd: []string{"x"}}}
	img, _, err := SlimImage(tree, map[string][]string{"/app": {"test"}}, ImageOptions{Edits: edits, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if after, _ := json.Marshal(tree.Config); !bytes.Equal(before, after) {
		t.Errorf("the source config changed:\n%s\n%s", before, after)
	}
	cf, _ := img.ConfigFile()
	if !cf.History[0].EmptyLayer || cf.Config.Labels["a"] != "b" || !slices.Contains(cf.Config.Env, "X=1") {
		t.Errorf("slim config %+v", cf)
	}
}

// ImageOptions.Replace: a kept regular file gets the given content with the index's header (mode, owners,
// xattrs, mtime) and the new size; a replaced file of a hardlink pair leaves the pair (its partner keeps the
// tree's content, as a file of its own); the same inputs give the same digest, other content another one;
// a path that is not a kept regular file is an error.
func TestSlimImageReplace(t *testing.T) {
	tree, keep := fatTree(t)
	replace := map[string][]byte{"/app/conf": []byte("replaced, and longer than before\n"), "/app/bin/tool": []byte("#!/bin/sh\n")}
	epoch := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	build := func(replace map[string][]byte) (v1.Image, v1.Hash, *LayerStats) {
		var last LayerProgress
		img, stats, err := SlimImage(tree, keep, ImageOptions{Replace: replace, Epoch: &epoch, Dir: t.TempDir(), Progress: func(p LayerProgress) { last = p }})
		if err != nil {
			t.Fatal(err)
		}
		if last.Bytes != last.TotalBytes || last.Bytes != stats.Bytes {
			t.Errorf("progress %+v, stats %+v", last, stats)
		}
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		return img, d, stats
	}
	img, d1, stats := build(replace)
	if _, d2, _ := build(replace); d1 != d2 {
		t.Errorf("two builds with the same Replace differ: %s %s", d1, d2)
	}
	if _, d3, _ := build(map[string][]byte{"/app/conf": []byte("other\n"), "/app/bin/tool": []byte("#!/bin/sh\n")}); d3 == d1 {
		t.Errorf("other content, same digest %s", d1)
	}
	_, plain, plainStats := build(nil)
	if plain == d1 {
		t.Errorf("Replace changed nothing: %s", d1)
	}
	// tool's 18 bytes, written once for the pair, and conf's 4; then conf's 33, tool's 10 and tool-hard's 18.
	if plainStats.Bytes != 22 || stats.Bytes != 61 || stats.Hardlinks != 0 || plainStats.Hardlinks != 1 {
		t.Errorf("stats %+v, without Replace %+v", stats, plainStats)
	}

	slim, err := rootfs.Unpack(context.Background(), img, filepath.Join(t.TempDir(), "slim"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]string{"/app/conf": "replaced, and longer than before\n", "/app/bin/tool": "#!/bin/sh\n", "/app/bin/tool-hard": "#!/bin/sh\necho hi\n"} {
		got, err := slim.ReadFile(p)
		if err != nil || string(got) != want {
			t.Errorf("%s: %q, %v; want %q", p, got, err, want)
		}
		fat, _ := tree.Index.Lookup(p)
		e, _ := slim.Index.Lookup(p)
		if e == nil || e.Type != rootfs.TypeFile || e.Mode != fat.Mode || e.UID != fat.UID || e.GID != fat.GID || e.Size != int64(len(want)) ||
			!e.ModTime.Equal(epoch) || len(e.Xattrs) != len(fat.Xattrs) || e.HardlinkGroup != "" {
			t.Errorf("%s: %+v, fat %+v", p, e, fat)
		}
	}

	for _, c := range []struct{ path, want string }{
		{"/app/data", "replacing /app/data: not kept"},
		{"/app/bin/t", "replacing /app/bin/t: a symlink, not a regular file"},
		{"/app", "replacing /app: a dir, not a regular file"},
		{"/app/nope", "replacing /app/nope: not in the image"},
		{"app/conf", "replacing app/conf: not in the image"},
	} {
		keep := maps.Clone(keep)
		keep["/app/data"] = nil
		_, _, err := SlimImage(tree, keep, ImageOptions{Replace: map[string][]byte{c.path: []byte("x")}, Dir: t.TempDir()})
		if err == nil || err.Error() != c.want {
			t.Errorf("Replace %s: %v, want %q", c.path, err, c.want)
		}
	}
}
