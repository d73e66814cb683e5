package testbed_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/slimoci/slimoci/internal/testbed"
)

// latest is the descriptor tagged latest in the OCI layout dir.
func latest(t *testing.T, dir string) (layout.Path, v1.Descriptor) {
	t.Helper()
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range m.Manifests {
		if d.Annotations["org.opencontainers.image.ref.name"] == "latest" {
			return p, d
		}
	}
	t.Fatalf("%s has no tag latest", dir)
	return "", v1.Descriptor{}
}

// TestE2EMultiPlatform checks the test bed's index as the multi-platform tests meet it: an OCI image index of
// the python sample's amd64 image and the arm64 one, each manifest the one in its own layout with its
// platform, that pushes to a registry with its digest, from which podman pulls each platform by --platform and
// runs it (arm64 under qemu-user), each answering GET / as the python sample does.
func TestE2EMultiPlatform(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: end-to-end tests need the test bed")
	}
	bed, reason := testbed.Find()
	if bed == nil {
		t.Skip(reason)
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: podman runs as root here")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	p, d := latest(t, bed.Layout(testbed.MultiPlatform))
	if d.MediaType != "application/vnd.oci.image.index.v1+json" {
		t.Fatalf("%s:latest is a %s, not an OCI image index", testbed.MultiPlatform, d.MediaType)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	multi, err := idx.ImageIndex(d.Digest)
	if err != nil {
		t.Fatal(err)
	}
	im, err := multi.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != len(testbed.MultiPlatformImages) {
		t.Fatalf("the index lists %d manifests, want %d: %+v", len(im.Manifests), len(testbed.MultiPlatformImages), im.Manifests)
	}
	configs := map[string]v1.Hash{} // by platform
	for _, m := range im.Manifests {
		if m.Platform == nil {
			t.Fatalf("manifest %s has no platform", m.Digest)
		}
		plat := m.Platform.String()
		name, ok := testbed.MultiPlatformImages[plat]
		if !ok {
			t.Fatalf("manifest %s is for %s, which the index should not list", m.Digest, plat)
		}
		if _, want := latest(t, bed.Layout(name)); m.Digest != want.Digest {
			t.Errorf("the index's %s manifest is %s, the %s layout's is %s", plat, m.Digest, name, want.Digest)
		}
		img, err := multi.Image(m.Digest)
		if err != nil {
			t.Fatal(err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if got := cf.Platform().String(); got != plat {
			t.Errorf("the %s manifest's config is for %s", plat, got)
		}
		if configs[plat], err = img.ConfigName(); err != nil {
			t.Fatal(err)
		}
	}

	reg, err := testbed.StartRegistry()
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Stop()
	const repoTag = "samples/python-multi:latest"
	if err := reg.PushIndex(ctx, "oci:"+bed.Layout(testbed.MultiPlatform)+":latest", repoTag); err != nil {
		t.Fatal(err)
	}
	raw, err := testbed.Skopeo(ctx, "inspect", "--raw", "--tls-verify=false", "docker://"+reg.Addr+"/"+repoTag)
	if err != nil {
		t.Fatal(err)
	}
	if got, _, err := v1.SHA256(bytes.NewReader(raw)); err != nil || got != d.Digest {
		t.Fatalf("the pushed index is %s (%v), the layout's %s", got, err, d.Digest)
	}

	ref := reg.Addr + "/" + repoTag
	bodies := map[string]string{}
	for _, plat := range []string{"linux/amd64", "linux/arm64/v8"} {
		// One platform at a time: each pull moves the tag, which is untagged after the run (and the image
		// removed with it unless the test bed's own tag holds it).
		out, err := testbed.Run(ctx, "podman", "pull", "--quiet", "--tls-verify=false", "--platform", plat, ref)
		if err != nil {
			t.Fatal(err)
		}
		id := strings.TrimSpace(string(out))
		if id != configs[plat].Hex {
			t.Errorf("podman pull --platform %s gave image %s, the index's %s image is %s", plat, id, plat, configs[plat].Hex)
		}
		machine, err := testbed.Run(ctx, "podman", "run", "--rm", "--network", "none", "--entrypoint", "uname", id, "-m")
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"linux/amd64": "x86_64", "linux/arm64/v8": "aarch64"}[plat]
		if got := strings.TrimSpace(string(machine)); got != want {
			t.Errorf("uname -m in the %s image says %s, want %s", plat, got, want)
		}
		bodies[plat] = get(t, ctx, id)
		if _, err := testbed.Run(ctx, "podman", "rmi", ref); err != nil {
			t.Fatal(err)
		}
	}
	if !strings.Contains(bodies["linux/amd64"], `"python"`) || bodies["linux/arm64/v8"] != bodies["linux/amd64"] {
		t.Errorf("GET / answered %q on amd64 and %q on arm64, want the python sample's body on both", bodies["linux/amd64"], bodies["linux/arm64/v8"])
	}
}

// get runs image on the host's network on a free port and returns its answer to GET / (an emulated python
// takes a few seconds to start).
func get(t *testing.T, ctx context.Context, image string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	out, err := testbed.Run(ctx, "podman", "run", "-d", "--rm", "--network", "host", "-e", fmt.Sprintf("PORT=%d", port), image)
	if err != nil {
		t.Fatal(err)
	}
	id := strings.TrimSpace(string(out))
	defer testbed.Run(context.Background(), "podman", "rm", "-f", "-t", "0", id)
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
		if err == nil {
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("GET / of %s: %d %q %v", image, resp.StatusCode, b, err)
			}
			var v map[string]any
			if err := json.Unmarshal(b, &v); err != nil {
				t.Fatalf("GET / of %s answered %q: %v", image, b, err)
			}
			return strings.TrimSpace(string(b))
		}
		if time.Now().After(deadline) {
			logs, _ := testbed.Run(context.Background(), "podman", "logs", id)
			t.Fatalf("%s did not answer GET / in 60 s: %v\n%s", image, err, logs)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
