package oci

import (
	"context"
	"io"
	"log"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
)

// Every destination reports its bytes: a push to an in-process registry through go-containerregistry's
// progress, file outputs by counting; the last update is complete and nothing comes after Write returns.
func TestWriteProgress(t *testing.T) {
	img, err := random.Image(1<<20, 3)
	if err != nil {
		t.Fatal(err)
	}
	blobs := blobsSize(img)
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	dir := t.TempDir()
	for _, dst := range []string{
		strings.TrimPrefix(srv.URL, "http://") + "/test/img:v1",
		"oci:" + filepath.Join(dir, "layout") + ":v1",
		"oci-archive:" + filepath.Join(dir, "img.oci.tar") + ":v1",
		"docker-archive:" + filepath.Join(dir, "img.docker.tar") + ":localhost/test:v1",
	} {
		t.Run(dst, func(t *testing.T) {
			ref, err := ParseDestination(dst)
			if err != nil {
				t.Fatal(err)
			}
			var updates []v1.Update
			var returned atomic.Bool
			o := *fast
			o.Progress = func(u v1.Update) {
				if returned.Load() {
					t.Errorf("an update after Write returned: %+v", u)
				}
				updates = append(updates, u)
			}
			if err := Write(context.Background(), img, ref, &o); err != nil {
				t.Fatal(err)
			}
			returned.Store(true)
			if len(updates) == 0 {
				t.Fatal("no progress reported")
			}
			last := updates[len(updates)-1]
			if last.Complete != last.Total || last.Total < 3<<20 {
				t.Errorf("last update %d of %d, want all of at least the three 1 MiB layers", last.Complete, last.Total)
			}
			if ref.Transport != Registry && last.Total < blobs {
				t.Errorf("total %d, less than the image's blobs (%d)", last.Total, blobs)
			}
			for i := 1; i < len(updates); i++ {
				if updates[i].Complete < updates[i-1].Complete || updates[i].Error != nil {
					t.Errorf("update %d: %+v after %+v", i, updates[i], updates[i-1])
				}
			}
		})
	}
	// Writing the same image into the layout again sends nothing: every blob is there, and counts as done.
	t.Run("layout again", func(t *testing.T) {
		ref, _ := ParseDestination("oci:" + filepath.Join(dir, "layout") + ":v2")
		var last v1.Update
		o := *fast
		o.Progress = func(u v1.Update) { last = u }
		if err := Write(context.Background(), img, ref, &o); err != nil {
			t.Fatal(err)
		}
		if last.Complete != blobs || last.Total != blobs {
			t.Errorf("last update %d of %d, want %d of %d", last.Complete, last.Total, blobs, blobs)
		}
	})
}

// A pull counts the blob's bytes as stored (compressed), which the manifest's size gives beforehand.
func TestCountedLayer(t *testing.T) {
	img, err := random.Image(1<<20, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref := Reference{Transport: Layout, Path: filepath.Join(t.TempDir(), "layout")}
	if err := Write(context.Background(), img, ref, fast); err != nil {
		t.Fatal(err)
	}
	src, err := Open(context.Background(), ref, fast)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	layers, _ := src.Image.Layers()
	for _, l := range layers {
		cl, ok := l.(CountedLayer)
		if !ok {
			t.Fatalf("%T is no CountedLayer", l)
		}
		var read atomic.Int64
		rc, err := cl.UncompressedCounted(&read)
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		size, _ := l.Size()
		if read.Load() != size || cl.StoredSize() != size {
			t.Errorf("read %d, StoredSize %d, the blob is %d", read.Load(), cl.StoredSize(), size)
		}
		if n <= size {
			t.Errorf("the tar is %d bytes, no more than the compressed %d: not the uncompressed stream", n, size)
		}
	}
}
