package oci

import (
	"context"
	"errors"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/slimoci/slimoci/internal/ocitest"
)

func testIndex(t *testing.T) (v1.ImageIndex, []v1.Platform) {
	t.Helper()
	ps := []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64", Variant: "v8"}}
	var pis []PlatformImage
	for _, p := range ps {
		pis = append(pis, PlatformImage{Platform: p, Image: ocitest.PlatformImage(t, p)})
	}
	idx, err := NewIndex(pis, map[string]string{"org.opencontainers.image.base.digest": "sha256:" + strings.Repeat("a", 64)})
	if err != nil {
		t.Fatal(err)
	}
	return idx, ps
}

// TestWriteIndexAndListPlatforms: an index written to a layout, an OCI archive and a registry lists its two
// platforms back, each platform opens as its own image, and a docker-archive refuses it.
func TestWriteIndexAndListPlatforms(t *testing.T) {
	ctx := context.Background()
	idx, ps := testIndex(t)
	want, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(registry.New())
	defer srv.Close()
	dir := t.TempDir()
	for _, s := range []string{
		"oci:" + filepath.Join(dir, "layout") + ":multi",
		"oci-archive:" + filepath.Join(dir, "multi.tar") + ":multi",
		strings.TrimPrefix(srv.URL, "http://") + "/multi:1",
	} {
		t.Run(strings.SplitN(s, ":", 2)[0], func(t *testing.T) {
			ref, err := ParseReference(s)
			if err != nil {
				t.Fatal(err)
			}
			if err := WriteIndex(ctx, idx, ref, nil, nil); err != nil {
				t.Fatal(err)
			}
			ip, err := ListPlatforms(ctx, ref, nil)
			if err != nil {
				t.Fatal(err)
			}
			if ip.Index == nil || *ip.Index != want {
				t.Errorf("index digest %v, want %s", ip.Index, want)
			}
			if len(ip.Platforms) != 2 || !ip.Platforms[0].Equals(ps[0]) || !ip.Platforms[1].Equals(ps[1]) {
				t.Errorf("platforms %v, want %v", ip.Platforms, ps)
			}
			for _, p := range ps {
				src, err := Open(ctx, ref, &Options{Platform: &p})
				if err != nil {
					t.Fatal(err)
				}
				cf, err := src.Image.ConfigFile()
				src.Close()
				if err != nil {
					t.Fatal(err)
				}
				if cf.Architecture != p.Architecture || src.IndexDigest == nil || *src.IndexDigest != want {
					t.Errorf("platform %s opened %s from index %v", p, cf.Architecture, src.IndexDigest)
				}
			}
		})
	}
	ref, _ := ParseReference("docker-archive:" + filepath.Join(dir, "multi.docker.tar"))
	if err := WriteIndex(ctx, idx, ref, nil, nil); !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "OCI layout") {
		t.Errorf("docker-archive of an index: %v, want an ErrFormat naming the OCI layout", err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*multi.docker.tar*")); len(left) > 0 {
		t.Errorf("the refused docker-archive left %v", left)
	}

	// A single image lists its own platform and no index.
	single, _ := ParseReference("oci:" + filepath.Join(dir, "single") + ":one")
	if err := Write(ctx, ocitest.PlatformImage(t, ps[1]), single, nil); err != nil {
		t.Fatal(err)
	}
	ip, err := ListPlatforms(ctx, single, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ip.Index != nil || len(ip.Platforms) != 1 || !ip.Platforms[0].Equals(ps[1]) {
		t.Errorf("single image: %+v", ip)
	}
}

// TestNewIndexRefusesDuplicates: two images for one platform make no index.
func TestNewIndexRefusesDuplicates(t *testing.T) {
	p := v1.Platform{OS: "linux", Architecture: "amd64"}
	if _, err := NewIndex([]PlatformImage{{p, ocitest.PlatformImage(t, p)}, {p, ocitest.PlatformImage(t, p)}}, nil); err == nil {
		t.Error("an index with two linux/amd64 images")
	}
	if _, err := NewIndex(nil, nil); err == nil {
		t.Error("an index of nothing")
	}
}
