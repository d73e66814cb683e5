package emit

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/slimoci/slimoci/oci"
	"github.com/slimoci/slimoci/rootfs"
)

// The layer's progress counts every kept entry and the bytes of the kept files (the hardlinked one once),
// of totals known beforehand; and the slim image's layer says what its unpack reads, so that verify's
// unpack reports progress against the layer's size.
func TestSlimImageProgress(t *testing.T) {
	ctx := context.Background()
	tree, err := rootfs.Unpack(ctx, fatImage(t), filepath.Join(t.TempDir(), "fat"), nil)
	if err != nil {
		t.Fatal(err)
	}
	keep := map[string][]string{}
	for _, p := range []string{"/app", "/app/bin", "/app/bin/tool", "/app/bin/tool-hard", "/app/bin/t", "/app/conf"} {
		keep[p] = []string{"test"}
	}
	var calls []LayerProgress
	img, stats, err := SlimImage(tree, keep, ImageOptions{Dir: t.TempDir(), Progress: func(p LayerProgress) { calls = append(calls, p) }})
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) == 0 {
		t.Fatal("the hook was not called")
	}
	tool := int64(len("#!/bin/sh\necho hi\n"))
	want := LayerProgress{Files: 6, TotalFiles: 6, Bytes: tool + 4, TotalBytes: tool + 4}
	if last := calls[len(calls)-1]; last != want {
		t.Errorf("last progress %+v, want %+v", last, want)
	}
	if stats.Bytes != want.Bytes || stats.Entries != int(want.Files) {
		t.Errorf("stats %+v disagree with the progress", stats)
	}

	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := layers[0].(oci.CountedLayer); !ok {
		t.Fatalf("the slim layer (%T) is no oci.CountedLayer", layers[0])
	}
	var last rootfs.Progress
	if _, err := rootfs.Unpack(ctx, img, filepath.Join(t.TempDir(), "slim"), &rootfs.Options{Progress: func(p rootfs.Progress) { last = p }}); err != nil {
		t.Fatal(err)
	}
	size, _ := layers[0].Size()
	if last.Read != size || last.Total != size || last.Files != want.Files {
		t.Errorf("unpacking the slim image: %+v, the layer is %d bytes of %d entries", last, size, want.Files)
	}
}
