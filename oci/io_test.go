package oci

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Fast tests on go-containerregistry's random images and in-process registry. The real registry, real
// images and podman are in cmd/slimoci's end-to-end tests.

var fast = &Options{Retry: &remote.Backoff{Duration: time.Millisecond, Factor: 1, Steps: 1}}

func randomImage(t *testing.T) v1.Image {
	t.Helper()
	img, err := random.Image(2048, 3)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func mustParse(t *testing.T, s string) Reference {
	t.Helper()
	r, err := ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// checkSame opens ref and checks it is img: config and (unless a docker-archive) manifest digests, and every
// layer's content against its DiffID.
func checkSame(t *testing.T, img v1.Image, ref Reference) {
	t.Helper()
	src, err := Open(context.Background(), ref, fast)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	wantCfg, _ := img.ConfigName()
	gotCfg, err := src.Image.ConfigName()
	if err != nil || gotCfg != wantCfg {
		t.Fatalf("%s: config %s (%v), want %s", ref, gotCfg, err, wantCfg)
	}
	if ref.Transport != DockerArchive {
		want, _ := img.Digest()
		if src.Digest != want {
			t.Fatalf("%s: manifest digest %s, want %s", ref, src.Digest, want)
		}
	}
	layers, err := src.Image.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, rc); err != nil {
			t.Fatalf("%s: reading layer: %v", ref, err)
		}
		rc.Close()
	}
}

func TestWriteThenRead(t *testing.T) {
	img := randomImage(t)
	dir := t.TempDir()
	srv := httptest.NewServer(registry.New())
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	for _, dst := range []string{
		"oci:" + filepath.Join(dir, "layout") + ":v1",
		"oci-archive:" + filepath.Join(dir, "img.oci.tar") + ":v1",
		"docker-archive:" + filepath.Join(dir, "img.docker.tar") + ":localhost/test:v1",
		"docker-archive:" + filepath.Join(dir, "untagged.docker.tar"),
		host + "/test/img:v1",
	} {
		t.Run(dst, func(t *testing.T) {
			ref := mustParse(t, strings.Replace(dst, "oci:", "oci:", 1))
			if ref.Transport == Layout || ref.Transport == OCIArchive || ref.Transport == DockerArchive {
				var err error
				if ref, err = ParseDestination(dst); err != nil {
					t.Fatal(err)
				}
			}
			if err := Write(context.Background(), img, ref, fast); err != nil {
				t.Fatal(err)
			}
			checkSame(t, img, ref)
			// And once more from what was just written, to a fresh layout: nothing is lost on the way.
			src, err := Open(context.Background(), ref, fast)
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			again := Reference{Transport: Layout, Path: filepath.Join(t.TempDir(), "again")}
			if err := Write(context.Background(), src.Image, again, fast); err != nil {
				t.Fatal(err)
			}
			checkSame(t, img, again)
		})
	}
	// No temporary files are left beside the outputs.
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("left %s behind", e.Name())
		}
	}
}

func TestLayoutKeepsOtherImages(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "layout")
	a, b, c := randomImage(t), randomImage(t), randomImage(t)
	ctx := context.Background()
	for _, step := range []struct {
		img v1.Image
		tag string
	}{{a, "a"}, {b, "b"}, {c, "a"}} {
		if err := Write(ctx, step.img, Reference{Transport: Layout, Path: dir, Tag: step.tag}, fast); err != nil {
			t.Fatal(err)
		}
	}
	im, err := readIndexJSON(dirStore{root: dir})
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 2 {
		t.Fatalf("index has %d images, want 2 (a replaced, b kept)", len(im.Manifests))
	}
	checkSame(t, c, Reference{Transport: Layout, Path: dir, Tag: "a"})
	checkSame(t, b, Reference{Transport: Layout, Path: dir, Tag: "b"})
	cd, _ := c.Digest()
	checkSame(t, c, Reference{Transport: Layout, Path: dir, Digest: cd.String()})
	_, err = Open(ctx, Reference{Transport: Layout, Path: dir}, fast)
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "tags: b, a") {
		t.Fatalf("an untagged reference to a layout of two images: %v", err)
	}
	_, err = Open(ctx, Reference{Transport: Layout, Path: dir, Tag: "zz"}, fast)
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), `no tag "zz"`) {
		t.Fatalf("a missing tag: %v", err)
	}
}

func multiPlatform(t *testing.T) (v1.ImageIndex, map[string]v1.Image) {
	t.Helper()
	imgs := map[string]v1.Image{}
	var adds []mutate.IndexAddendum
	for _, p := range []string{"linux/amd64", "linux/arm64/v8", "linux/arm/v7"} {
		pl, _ := ParsePlatform(p)
		img := randomImage(t)
		cf, _ := img.ConfigFile()
		cf = cf.DeepCopy()
		cf.OS, cf.Architecture, cf.Variant = pl.OS, pl.Architecture, pl.Variant
		img, err := mutate.ConfigFile(img, cf)
		if err != nil {
			t.Fatal(err)
		}
		imgs[p] = img
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &pl}})
	}
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), adds...)
	return idx, imgs
}

func TestMultiPlatform(t *testing.T) {
	idx, imgs := multiPlatform(t)
	ctx := context.Background()
	// In a layout: the index is stored as a blob, tagged in index.json.
	dir := filepath.Join(t.TempDir(), "layout")
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755); err != nil {
		t.Fatal(err)
	}
	sink := dirSink{root: dir}
	for _, img := range imgs {
		if _, err := putImage(ctx, sink, img, 2, nil); err != nil {
			t.Fatal(err)
		}
	}
	raw, _ := idx.RawManifest()
	idxDigest, _ := idx.Digest()
	if err := putBytes(sink, idxDigest, raw, nil); err != nil {
		t.Fatal(err)
	}
	im := &v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}
	addToIndex(im, v1.Descriptor{MediaType: types.OCIImageIndex, Digest: idxDigest, Size: int64(len(raw))}, "multi")
	b, _ := json.Marshal(im)
	os.WriteFile(filepath.Join(dir, "index.json"), b, 0o644)

	// In a registry.
	srv := httptest.NewServer(registry.New())
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	r, _ := name.ParseReference(host + "/multi:latest")
	if err := remote.WriteIndex(r, idx); err != nil {
		t.Fatal(err)
	}

	for _, ref := range []string{"oci:" + dir + ":multi", host + "/multi:latest"} {
		for p, img := range imgs {
			pl, _ := ParsePlatform(p)
			opts := *fast
			opts.Platform = &pl
			src, err := Open(ctx, mustParse(t, ref), &opts)
			if err != nil {
				t.Fatalf("%s for %s: %v", ref, p, err)
			}
			want, _ := img.Digest()
			if src.Digest != want || src.IndexDigest == nil || *src.IndexDigest != idxDigest {
				t.Fatalf("%s for %s: got %s from index %v", ref, p, src.Digest, src.IndexDigest)
			}
		}
		pl, _ := ParsePlatform("linux/s390x")
		opts := *fast
		opts.Platform = &pl
		_, err := Open(ctx, mustParse(t, ref), &opts)
		if !errors.Is(err, ErrPlatform) || !strings.Contains(err.Error(), "linux/amd64, linux/arm/v7, linux/arm64/v8") || !strings.Contains(err.Error(), ref) {
			t.Fatalf("%s for a missing platform: %v", ref, err)
		}
	}
	// An explicit platform must match a single-platform image too.
	single := filepath.Join(t.TempDir(), "single")
	if err := Write(ctx, imgs["linux/arm/v7"], Reference{Transport: Layout, Path: single}, fast); err != nil {
		t.Fatal(err)
	}
	pl, _ := ParsePlatform("linux/amd64")
	opts := *fast
	opts.Platform = &pl
	if _, err := Open(ctx, Reference{Transport: Layout, Path: single}, &opts); !errors.Is(err, ErrPlatform) || !strings.Contains(err.Error(), "linux/arm/v7") {
		t.Fatalf("explicit platform on a single image: %v", err)
	}
}

// layoutWith writes img to a fresh layout and returns its directory and the image's manifest.
func layoutWith(t *testing.T, img v1.Image) (string, *v1.Manifest) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "layout")
	if err := Write(context.Background(), img, Reference{Transport: Layout, Path: dir}, fast); err != nil {
		t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	return dir, m
}

func blobPath(dir string, h v1.Hash) string { return filepath.Join(dir, "blobs", h.Algorithm, h.Hex) }

// rewriteManifest replaces the layout's manifest with edit(manifest), stored under its new digest.
func rewriteManifest(t *testing.T, dir string, m *v1.Manifest, edit func(*v1.Manifest)) {
	t.Helper()
	m = m.DeepCopy()
	edit(m)
	raw, _ := json.Marshal(m)
	h, _, _ := v1.SHA256(bytes.NewReader(raw))
	os.WriteFile(blobPath(dir, h), raw, 0o644)
	im := &v1.IndexManifest{SchemaVersion: 2, Manifests: []v1.Descriptor{{MediaType: m.MediaType, Digest: h, Size: int64(len(raw))}}}
	b, _ := json.Marshal(im)
	os.WriteFile(filepath.Join(dir, "index.json"), b, 0o644)
}

func TestBadLayouts(t *testing.T) {
	ctx := context.Background()
	img := randomImage(t)
	for _, tc := range []struct {
		name     string
		break_   func(t *testing.T, dir string, m *v1.Manifest)
		atOpen   bool // fails at Open; otherwise when the layers are read
		wantErr  error
		wantText string
	}{
		{"corrupt index.json", func(t *testing.T, dir string, m *v1.Manifest) {
			os.WriteFile(filepath.Join(dir, "index.json"), []byte(`{"schemaVersion":2,"manifests":[{`), 0o644)
		}, true, ErrFormat, "index.json is not a valid image index"},
		{"missing index.json", func(t *testing.T, dir string, m *v1.Manifest) {
			os.Remove(filepath.Join(dir, "index.json"))
		}, true, ErrFormat, "no index.json"},
		{"unknown media type in index.json", func(t *testing.T, dir string, m *v1.Manifest) {
			b, _ := os.ReadFile(filepath.Join(dir, "index.json"))
			b = bytes.Replace(b, []byte(string(m.MediaType)), []byte("application/vnd.example.thing+json"), 1)
			os.WriteFile(filepath.Join(dir, "index.json"), b, 0o644)
		}, true, ErrMediaType, "application/vnd.example.thing+json"},
		{"unknown layer media type", func(t *testing.T, dir string, m *v1.Manifest) {
			rewriteManifest(t, dir, m, func(m *v1.Manifest) { m.Layers[1].MediaType = "application/vnd.example.layer" })
		}, true, ErrMediaType, `"application/vnd.example.layer" for layer 1`},
		{"manifest digest mismatch", func(t *testing.T, dir string, m *v1.Manifest) {
			b, _ := os.ReadFile(filepath.Join(dir, "index.json"))
			var im v1.IndexManifest
			json.Unmarshal(b, &im)
			p := blobPath(dir, im.Manifests[0].Digest)
			raw, _ := os.ReadFile(p)
			os.WriteFile(p, bytes.Replace(raw, []byte(`"schemaVersion":2`), []byte(`"schemaVersion":2 `), 1), 0o644)
		}, true, ErrDigest, "manifest sha256:"},
		{"missing manifest blob", func(t *testing.T, dir string, m *v1.Manifest) {
			b, _ := os.ReadFile(filepath.Join(dir, "index.json"))
			var im v1.IndexManifest
			json.Unmarshal(b, &im)
			os.Remove(blobPath(dir, im.Manifests[0].Digest))
		}, true, ErrNotExist, "blob missing"},
		{"config digest mismatch", func(t *testing.T, dir string, m *v1.Manifest) {
			p := blobPath(dir, m.Config.Digest)
			raw, _ := os.ReadFile(p)
			raw[len(raw)-2] ^= 1
			os.WriteFile(p, raw, 0o644)
		}, true, ErrDigest, "config " + "sha256:"},
		{"layer digest mismatch", func(t *testing.T, dir string, m *v1.Manifest) {
			p := blobPath(dir, m.Layers[2].Digest)
			raw, _ := os.ReadFile(p)
			raw[len(raw)/2] ^= 0xff
			os.WriteFile(p, raw, 0o644)
		}, false, ErrDigest, m0(img).Layers[2].Digest.String()},
		{"truncated layer", func(t *testing.T, dir string, m *v1.Manifest) {
			p := blobPath(dir, m.Layers[0].Digest)
			raw, _ := os.ReadFile(p)
			os.WriteFile(p, raw[:len(raw)/2], 0o644)
		}, false, ErrDigest, m0(img).Layers[0].Digest.String()},
		{"missing layer blob", func(t *testing.T, dir string, m *v1.Manifest) {
			os.Remove(blobPath(dir, m.Layers[1].Digest))
		}, false, ErrNotExist, m0(img).Layers[1].Digest.String()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, m := layoutWith(t, img)
			tc.break_(t, dir, m)
			ref := Reference{Transport: Layout, Path: dir}
			src, err := Open(ctx, ref, fast)
			if tc.atOpen {
				checkErr(t, err, tc.wantErr, tc.wantText, dir)
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			// Copying it anywhere fails, and leaves nothing behind.
			outDir := t.TempDir()
			for _, dst := range []Reference{
				{Transport: DockerArchive, Path: filepath.Join(outDir, "out.tar")},
				{Transport: OCIArchive, Path: filepath.Join(outDir, "out.oci.tar")},
				{Transport: Layout, Path: filepath.Join(outDir, "layout")},
			} {
				err := Write(ctx, src.Image, dst, fast)
				checkErr(t, err, tc.wantErr, tc.wantText, dst.Path)
			}
			if entries, _ := os.ReadDir(outDir); len(entries) != 0 {
				t.Fatalf("a failed write left %v behind", entries)
			}
		})
	}
}

func m0(img v1.Image) *v1.Manifest {
	m, _ := img.Manifest()
	return m
}

func checkErr(t *testing.T, err, want error, text, where string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one naming %q and %q", text, where)
	}
	if !errors.Is(err, want) {
		t.Fatalf("error %v, want %v", err, want)
	}
	for _, s := range []string{text, where} {
		if !strings.Contains(err.Error(), s) {
			t.Fatalf("error %q does not name %q", err, s)
		}
	}
	if strings.Contains(err.Error(), "\n") {
		t.Fatalf("error has several lines: %q", err)
	}
}

func TestBadArchives(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	notTar := filepath.Join(dir, "not.tar")
	os.WriteFile(notTar, bytes.Repeat([]byte("garbage!"), 200), 0o644)
	for _, tr := range []Transport{OCIArchive, DockerArchive} {
		ref := Reference{Transport: tr, Path: notTar}
		_, err := Open(ctx, ref, fast)
		checkErr(t, err, ErrFormat, "not a tar archive", notTar)
		ref.Path = filepath.Join(dir, "missing.tar")
		_, err = Open(ctx, ref, fast)
		checkErr(t, err, ErrNotExist, "no such file", ref.Path)
	}
	_, err := Open(ctx, Reference{Transport: Layout, Path: filepath.Join(dir, "nolayout")}, fast)
	checkErr(t, err, ErrNotExist, "no such file", "nolayout")
}

// registryWith serves /v2/ and answers every other request with status and a registry error body.
func registryWith(status int, code string) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2/" {
			w.WriteHeader(http.StatusOK)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"errors":[{"code":%q,"message":"test says %d"}]}`, code, status)
	}))
}

func TestRegistryErrors(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		status int
		code   string
	}{
		{http.StatusUnauthorized, "UNAUTHORIZED"},
		{http.StatusNotFound, "MANIFEST_UNKNOWN"},
		{http.StatusInternalServerError, "UNKNOWN"},
	} {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			srv := registryWith(tc.status, tc.code)
			defer srv.Close()
			ref := mustParse(t, strings.TrimPrefix(srv.URL, "http://")+"/some/image:tag")
			_, err := Open(ctx, ref, fast)
			checkErr(t, err, err, tc.code, "/some/image:tag")
			// Pushing there fails the same way and says where.
			err = Write(ctx, randomImage(t), ref, fast)
			if err == nil || !strings.Contains(err.Error(), "writing docker://") {
				t.Fatalf("push to a registry answering %d: %v", tc.status, err)
			}
		})
	}
	t.Run("unreachable", func(t *testing.T) {
		l, _ := net.Listen("tcp", "127.0.0.1:0")
		addr := l.Addr().String()
		l.Close()
		_, err := Open(ctx, mustParse(t, addr+"/x:y"), fast)
		checkErr(t, err, err, "connection refused", addr+"/x:y")
	})
}
