package image

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/slimoci/slimoci/internal/testbed"
)

// index is an OCI layout's one index: its digest and its images' digests by platform (os/arch).
type index struct {
	digest    string
	platforms map[string]string
	images    map[string]v1.Image
}

// indexOf reads the layout `make image` exported: one index, tagged latest, of exactly linux/amd64 and linux/arm64.
func indexOf(t *testing.T, dir string) index {
	t.Helper()
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	top, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	m, err := top.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Manifests) != 1 || m.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != "latest" || !m.Manifests[0].MediaType.IsIndex() {
		t.Fatalf("%s/index.json: %+v, want one index tagged latest", dir, m.Manifests)
	}
	ii, err := top.ImageIndex(m.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	im, err := ii.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	ix := index{digest: m.Manifests[0].Digest.String(), platforms: map[string]string{}, images: map[string]v1.Image{}}
	for _, d := range im.Manifests {
		if d.Platform == nil {
			t.Fatalf("index %s: %s has no platform", ix.digest, d.Digest)
		}
		name := d.Platform.OS + "/" + d.Platform.Architecture
		if ix.images[name], err = ii.Image(d.Digest); err != nil {
			t.Fatal(err)
		}
		ix.platforms[name] = d.Digest.String()
	}
	if len(ix.platforms) != 2 || ix.platforms["linux/amd64"] == "" || ix.platforms["linux/arm64"] == "" {
		t.Fatalf("index %s: %v, want linux/amd64 and linux/arm64", ix.digest, ix.platforms)
	}
	return ix
}

// checkPlatforms checks both platforms of `make image`'s result: in the layout, each image's config names
// its platform and its two binaries are static ELF files for that machine; in podman's storage image is a
// manifest list of the two; podman runs image's amd64 instance by default and, with --platform linux/arm64
// (qemu through binfmt_misc), the arm64 one, and each slimoci says its platform.
func checkPlatforms(t *testing.T, image, dir string) {
	t.Helper()
	ix := indexOf(t, dir)
	machines := map[string]elf.Machine{"linux/amd64": elf.EM_X86_64, "linux/arm64": elf.EM_AARCH64}
	for platform, img := range ix.images {
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if got := cf.OS + "/" + cf.Architecture; got != platform {
			t.Errorf("%s: the config says %s", platform, got)
		}
		for _, bin := range []string{"usr/local/bin/slimoci", "usr/local/bin/slimoci-sensor"} {
			f, err := elf.NewFile(bytes.NewReader(fileIn(t, img, bin)))
			if err != nil {
				t.Fatalf("%s /%s: %v", platform, bin, err)
			}
			if f.Machine != machines[platform] {
				t.Errorf("%s /%s: an ELF file for %v, want %v", platform, bin, f.Machine, machines[platform])
			}
			for _, p := range f.Progs {
				if p.Type == elf.PT_INTERP {
					t.Errorf("%s /%s: dynamically linked (PT_INTERP), want static", platform, bin)
				}
			}
		}
	}
	ctx := context.Background()
	out, err := testbed.Run(ctx, "podman", "manifest", "inspect", image)
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		Manifests []struct {
			Digest   string
			Platform struct{ OS, Architecture string }
		}
	}
	if err := json.Unmarshal(out, &list); err != nil {
		t.Fatalf("podman manifest inspect %s: %v\n%s", image, err, out)
	}
	stored := map[string]string{}
	for _, m := range list.Manifests {
		stored[m.Platform.OS+"/"+m.Platform.Architecture] = m.Digest
	}
	if len(stored) != 2 || stored["linux/amd64"] != digestOf(t, image) || stored["linux/arm64"] == "" {
		t.Errorf("podman's list %s: %v, want linux/amd64 (%s) and linux/arm64", image, stored, digestOf(t, image))
	}
	for _, tc := range []struct{ platform, want string }{{"", "linux/amd64"}, {"linux/arm64", "linux/arm64"}} {
		args := []string{"run", "--rm"}
		if tc.platform != "" {
			args = append(args, "--platform", tc.platform)
		}
		out, err := testbed.Run(ctx, "podman", append(args, image, "version")...)
		if err != nil {
			t.Fatalf("podman %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		if !strings.Contains(string(out), " "+tc.want+"\n") {
			t.Errorf("podman run --platform %q %s version: %q, want %s", tc.platform, image, out, tc.want)
		}
	}
}

// fileIn returns the content of the regular file name (no leading slash) in img's layers.
func fileIn(t *testing.T, img v1.Image, name string) []byte {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.TrimPrefix(h.Name, "./") == name && h.Typeflag == tar.TypeReg {
				b, err := io.ReadAll(tr)
				if err != nil {
					t.Fatal(err)
				}
				return b
			}
		}
	}
	t.Fatalf("no /%s in the image", name)
	return nil
}
