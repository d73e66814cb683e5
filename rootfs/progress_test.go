package rootfs

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/slimoci/slimoci/oci"
)

// The unpack's progress hook counts every entry and file byte written and the layers' bytes read: as
// stored, of the manifest's total, through the oci package (a lazy pull); the tars' own bytes for other
// layers. The last call has the final counts, and the hook is never called concurrently.
func TestUnpackProgress(t *testing.T) {
	ctx := context.Background()
	var ents []ent
	var fileBytes int64
	for i := range 300 {
		body := strings.Repeat(fmt.Sprint(i%10), 1000+i)
		ents = append(ents, file(fmt.Sprintf("d%d/f%d", i%7, i), body))
		fileBytes += int64(len(body))
	}
	for i := range 7 {
		ents = append(ents, dir(fmt.Sprintf("d%d", i)))
	}
	tarred := tarOf(t, ents...)
	base, err := random.Image(1<<20, 2)
	if err != nil {
		t.Fatal(err)
	}
	img := imageOf(t, tarred)
	layout := filepath.Join(t.TempDir(), "layout")
	if err := oci.Write(ctx, img, oci.Reference{Transport: oci.Layout, Path: layout}, nil); err != nil {
		t.Fatal(err)
	}
	src, err := oci.Open(ctx, oci.Reference{Transport: oci.Layout, Path: layout}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	m, _ := img.Manifest()

	for _, tc := range []struct {
		name                 string
		unpack               func(dir string, o *Options) (*Tree, error)
		wantRead, wantTotal  int64
		wantFiles, wantBytes int64
	}{
		{
			name:     "oci layout",
			unpack:   func(dir string, o *Options) (*Tree, error) { return Unpack(ctx, src.Image, dir, o) },
			wantRead: m.Layers[0].Size, wantTotal: m.Layers[0].Size, wantFiles: 307, wantBytes: fileBytes,
		},
		{
			name:     "other layers",
			unpack:   func(dir string, o *Options) (*Tree, error) { return Unpack(ctx, img, dir, o) },
			wantRead: int64(len(tarred)), wantFiles: 307, wantBytes: fileBytes,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls []Progress
			busy := false
			tree, err := tc.unpack(newSandbox(t).root, &Options{Progress: func(p Progress) {
				if busy {
					t.Error("the hook was called concurrently")
				}
				busy = true
				calls = append(calls, p)
				busy = false
			}})
			if err != nil {
				t.Fatal(err)
			}
			if len(calls) == 0 {
				t.Fatal("the hook was not called")
			}
			last := calls[len(calls)-1]
			want := Progress{Read: tc.wantRead, Total: tc.wantTotal, Files: tc.wantFiles, Bytes: tc.wantBytes}
			if last != want {
				t.Errorf("last progress %+v, want %+v", last, want)
			}
			if tree.Stats.Bytes != last.Bytes {
				t.Errorf("progress says %d bytes, the stats %d", last.Bytes, tree.Stats.Bytes)
			}
		})
	}

	// A bigger image, unpacked from a layout: counts that only grow, up to the known total.
	t.Run("while it runs", func(t *testing.T) {
		layout := filepath.Join(t.TempDir(), "layout")
		if err := oci.Write(ctx, base, oci.Reference{Transport: oci.Layout, Path: layout}, nil); err != nil {
			t.Fatal(err)
		}
		src, err := oci.Open(ctx, oci.Reference{Transport: oci.Layout, Path: layout}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		var calls []Progress
		if _, err := Unpack(ctx, src.Image, newSandbox(t).root, &Options{Progress: func(p Progress) { calls = append(calls, p) }}); err != nil {
			t.Fatal(err)
		}
		for i := 1; i < len(calls); i++ {
			a, b := calls[i-1], calls[i]
			if b.Read < a.Read || b.Files < a.Files || b.Bytes < a.Bytes || b.Total != a.Total {
				t.Errorf("progress went back: %+v after %+v", b, a)
			}
		}
		if last := calls[len(calls)-1]; last.Read != last.Total || last.Total == 0 {
			t.Errorf("last %+v: not all of a known total", last)
		}
	})
}
