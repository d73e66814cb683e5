package oci

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/slimoci/slimoci/internal/testbed"
)

// A source serving manifests, indexes or configs of any size gets a one-line error naming the blob and the
// limit, quickly, and slimoci's memory does not grow with what was served.

// zeros reads as n zero bytes, made as they are read.
type zeros struct{ n int64 }

func (z *zeros) Read(p []byte) (int, error) {
	if z.n <= 0 {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), z.n))
	clear(p[:n])
	z.n -= int64(n)
	return n, nil
}

// openWithin opens ref, failing the test if it takes more than 20 s or allocates more than 64 MiB.
func openWithin(t *testing.T, ref Reference) error {
	t.Helper()
	done := make(chan error, 1)
	n := testbed.Allocated(func() {
		go func() {
			src, err := Open(context.Background(), ref, fast)
			if err == nil {
				src.Close()
			}
			done <- err
		}()
		select {
		case err := <-done:
			done <- err
		case <-time.After(20 * time.Second):
			t.Fatalf("opening %s: still running after 20 s", ref)
		}
	})
	if n > 64<<20 {
		t.Errorf("opening %s allocated %d MiB", ref, n>>20)
	}
	return <-done
}

const hugeBlob = 2 << 30

// hostile serves /v2/img/manifests/tag with manifest, or, when manifest is nil, with 2 GiB of zeros (with a
// Content-Length when length is set); blobs are 2 GiB of zeros. It counts the bytes it sent.
func hostile(t *testing.T, manifest []byte, length bool) (*httptest.Server, *atomic.Int64, *atomic.Int64) {
	var sent, blobs atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/v2/":
			w.WriteHeader(http.StatusOK)
		case r.URL.Path == "/v2/img/manifests/tag" && manifest != nil:
			w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
			w.Write(manifest)
		case r.URL.Path == "/v2/img/manifests/tag" || strings.HasPrefix(r.URL.Path, "/v2/img/blobs/"):
			if strings.Contains(r.URL.Path, "/blobs/") {
				blobs.Add(1)
			}
			w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
			if length {
				w.Header().Set("Content-Length", fmt.Sprint(hugeBlob))
			}
			n, _ := io.Copy(w, &zeros{hugeBlob})
			sent.Add(n)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	return srv, &sent, &blobs
}

func TestRegistryHugeManifest(t *testing.T) {
	for _, length := range []bool{false, true} {
		t.Run(fmt.Sprint("Content-Length ", length), func(t *testing.T) {
			srv, sent, _ := hostile(t, nil, length)
			ref := mustParse(t, strings.TrimPrefix(srv.URL, "http://")+"/img:tag")
			err := openWithin(t, ref)
			checkErr(t, err, ErrTooLarge, "manifest tag: ", "4 MiB limit")
			if !strings.Contains(err.Error(), ref.String()) {
				t.Errorf("%q does not name %s", err, ref)
			}
			if n := sent.Load(); n > 64<<20 {
				t.Errorf("%d MiB of the manifest were read", n>>20)
			}
		})
	}
}

func TestRegistryHugeConfig(t *testing.T) {
	for _, tc := range []struct {
		size int64
		want error
		text string
	}{
		{hugeBlob, ErrTooLarge, "config sha256:" + strings.Repeat("a", 64) + ": 2 GiB is over the 8 MiB limit"},
		{-1, ErrFormat, "config sha256:" + strings.Repeat("a", 64) + " has size -1"},
	} {
		t.Run(fmt.Sprint(tc.size), func(t *testing.T) {
			m, _ := json.Marshal(map[string]any{
				"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "layers": []any{},
				"config": map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + strings.Repeat("a", 64), "size": tc.size},
			})
			srv, _, blobs := hostile(t, m, true)
			err := openWithin(t, mustParse(t, strings.TrimPrefix(srv.URL, "http://")+"/img:tag"))
			checkErr(t, err, tc.want, tc.text, "/img:tag")
			if n := blobs.Load(); n != 0 {
				t.Errorf("the config was fetched %d times", n)
			}
		})
	}
}

// A layout is untrusted too: an oversize index.json, a config blob larger than its descriptor says, a
// descriptor claiming 1 GiB, a blob that is a FIFO or /dev/zero.
func TestLayoutHugeOrHostileBlobs(t *testing.T) {
	img := randomImage(t)
	for _, tc := range []struct {
		name     string
		break_   func(t *testing.T, dir string, m *v1.Manifest)
		want     error
		wantText string
	}{
		{"5 MiB index.json", func(t *testing.T, dir string, m *v1.Manifest) {
			p := filepath.Join(dir, "index.json")
			b, _ := os.ReadFile(p)
			os.WriteFile(p, append(b, make([]byte, 5<<20)...), 0o644)
		}, ErrTooLarge, "reading index.json: 5 MiB is over the 4 MiB limit"},
		{"9 MiB config blob", func(t *testing.T, dir string, m *v1.Manifest) {
			os.Truncate(blobPath(dir, m.Config.Digest), 9<<20)
		}, ErrTooLarge, "config " + m0(img).Config.Digest.String() + ": 9 MiB is over the 8 MiB limit"},
		{"1 GiB config descriptor", func(t *testing.T, dir string, m *v1.Manifest) {
			rewriteManifest(t, dir, m, func(m *v1.Manifest) { m.Config.Size = 1 << 30 })
		}, ErrTooLarge, "config " + m0(img).Config.Digest.String() + ": 1 GiB is over the 8 MiB limit"},
		{"FIFO config blob", func(t *testing.T, dir string, m *v1.Manifest) {
			p := blobPath(dir, m.Config.Digest)
			os.Remove(p)
			if err := syscall.Mkfifo(p, 0o644); err != nil {
				t.Fatal(err)
			}
		}, ErrFormat, "is not a regular file"},
		{"config blob linked to /dev/zero", func(t *testing.T, dir string, m *v1.Manifest) {
			p := blobPath(dir, m.Config.Digest)
			os.Remove(p)
			os.Symlink("/dev/zero", p)
		}, ErrFormat, "is not a regular file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, m := layoutWith(t, img)
			tc.break_(t, dir, m)
			err := openWithin(t, Reference{Transport: Layout, Path: dir})
			checkErr(t, err, tc.want, tc.wantText, dir)
		})
	}
}

// dockerArchive writes a docker-archive of the given entries (name -> content, or "->target" for a symlink).
func dockerArchive(t *testing.T, entries [][2]string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "img.tar")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(f)
	for _, e := range entries {
		h := &tar.Header{Name: e[0], Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(e[1]))}
		target, link := strings.CutPrefix(e[1], "->")
		if link {
			h.Typeflag, h.Linkname, h.Size = tar.TypeSymlink, target, 0
		}
		tw.WriteHeader(h)
		if !link {
			io.WriteString(tw, e[1])
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return p
}

// go-containerregistry's tarball package reads a docker-archive's manifest.json and config whole: their
// sizes are checked first, through links as it follows them.
func TestDockerArchiveHugeConfig(t *testing.T) {
	big := strings.Repeat(" ", 9<<20)
	manifest := `[{"Config":"cfg.json","RepoTags":null,"Layers":[]}]`
	for _, tc := range []struct {
		name    string
		entries [][2]string
		text    string
	}{
		{"9 MiB config", [][2]string{{"manifest.json", manifest}, {"cfg.json", "{}" + big}},
			"reading config cfg.json: 9 MiB is over the 8 MiB limit"},
		{"through symlinks", [][2]string{{"manifest.json", "->m.json"}, {"m.json", `[{"Config":"c/cfg.json"}]` + " trailing"},
			{"c/cfg.json", "->../big.json"}, {"big.json", "{}" + big}},
			"reading config c/cfg.json: 9 MiB is over the 8 MiB limit"},
		{"5 MiB manifest.json", [][2]string{{"manifest.json", manifest + big[:5<<20]}, {"cfg.json", "{}"}},
			"reading manifest.json: 5 MiB is over the 4 MiB limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := dockerArchive(t, tc.entries)
			err := openWithin(t, Reference{Transport: DockerArchive, Path: p})
			checkErr(t, err, ErrTooLarge, tc.text, p)
		})
	}
	t.Run("control", func(t *testing.T) {
		p := dockerArchive(t, [][2]string{{"manifest.json", manifest}, {"cfg.json", `{"rootfs":{"type":"layers","diff_ids":[]}}`}})
		if err := openWithin(t, Reference{Transport: DockerArchive, Path: p}); errors.Is(err, ErrTooLarge) {
			t.Fatal(err)
		}
	})
}
