package oci

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/slimoci/slimoci/internal/testbed"
)

// The OCI 1.1 empty descriptor's digest: sha256 of "{}".
const emptyDigest = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"

// sboms are two artifacts as slimoci attaches them: an SPDX and a CycloneDX document.
var sboms = []struct {
	artifactType string
	content      []byte
	annotations  map[string]string
}{
	{SPDXMediaType, []byte(`{"spdxVersion":"SPDX-2.3","name":"slim"}`), map[string]string{"org.opencontainers.image.title": "sbom.spdx.json"}},
	{CycloneDXMediaType, []byte(`{"bomFormat":"CycloneDX","specVersion":"1.5"}`), map[string]string{"org.opencontainers.image.title": "sbom.cdx.json"}},
}

// subjectOf pushes img to host/repo:tag and returns the reference and the manifest's descriptor.
func subjectOf(t *testing.T, img v1.Image, ref Reference, o *Options) v1.Descriptor {
	t.Helper()
	if err := Write(context.Background(), img, ref, o); err != nil {
		t.Fatal(err)
	}
	return descriptorOfImage(t, img)
}

func descriptorOfImage(t *testing.T, img v1.Image) v1.Descriptor {
	t.Helper()
	d, err := partial.Descriptor(img)
	if err != nil {
		t.Fatal(err)
	}
	return *d
}

// attach pushes both SBOMs as referrers of desc and returns their descriptors, in sboms' order.
func attach(t *testing.T, ref Reference, desc v1.Descriptor, o *Options) []v1.Descriptor {
	t.Helper()
	var out []v1.Descriptor
	for _, s := range sboms {
		d, err := PushReferrer(context.Background(), ref, desc, s.artifactType, s.artifactType, s.content, s.annotations, o)
		if err != nil {
			t.Fatal(err)
		}
		if d.ArtifactType != s.artifactType || d.MediaType != types.OCIManifestSchema1 || d.Annotations["org.opencontainers.image.title"] == "" {
			t.Fatalf("PushReferrer returned %+v", d)
		}
		out = append(out, d)
	}
	return out
}

// checkReferrers lists the referrers of ref (a tag and its digest) and checks they are exactly pushed: the
// listing's digests, sizes and annotations, and, read back from the registry, each artifact manifest (its
// artifactType, the empty config, subject desc) and its one blob, byte for byte the SBOM. listingTypes says
// the listing carries the manifests' artifactType: go-containerregistry's in-process registry, in its
// referrers API, gives the config's media type instead (against the distribution spec), so there it is
// checked on the manifest alone.
func checkReferrers(t *testing.T, ref Reference, desc v1.Descriptor, pushed []v1.Descriptor, listingTypes bool, o *Options) {
	t.Helper()
	ctx := context.Background()
	byDigest, err := ref.AtDigest(desc.Digest)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []Reference{ref, byDigest} {
		list, err := Referrers(ctx, r, o)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != len(sboms) {
			t.Fatalf("%s: %d referrers, want %d: %+v", r, len(list), len(sboms), list)
		}
		// Sorted by artifact type, SPDX's "application/spdx+json" first; by digest when a listing has no
		// types (the in-process registry's API), so matched by digest here.
		for i, want := range pushed {
			j := slices.IndexFunc(list, func(d v1.Descriptor) bool { return d.Digest == want.Digest })
			if j < 0 {
				t.Errorf("%s: %s (%s) is not listed: %+v", r, want.Digest, sboms[i].artifactType, list)
				continue
			}
			got := list[j]
			if listingTypes && j != i {
				t.Errorf("%s: %s listed at %d, want %d (sorted by artifact type)", r, sboms[i].artifactType, j, i)
			}
			if got.Size != want.Size || got.MediaType != types.OCIManifestSchema1 {
				t.Errorf("%s: referrer %s is %d bytes, %s; pushed %d bytes", r, got.Digest, got.Size, got.MediaType, want.Size)
			}
			if listingTypes && got.ArtifactType != sboms[i].artifactType {
				t.Errorf("%s: referrer %s has artifactType %q, want %q", r, got.Digest, got.ArtifactType, sboms[i].artifactType)
			}
			if got.Annotations["org.opencontainers.image.title"] != sboms[i].annotations["org.opencontainers.image.title"] {
				t.Errorf("%s: referrer %s has annotations %v", r, got.Digest, got.Annotations)
			}
		}
	}
	repo, _ := repository(ref, o.fill())
	for i, want := range pushed {
		got, err := remote.Get(repo.Digest(want.Digest.String()), remote.WithContext(ctx))
		if err != nil {
			t.Fatal(err)
		}
		var m v1.Manifest
		if err := json.Unmarshal(got.Manifest, &m); err != nil {
			t.Fatal(err)
		}
		if m.ArtifactType != sboms[i].artifactType || m.Config.MediaType != types.OCIEmptyJSON || m.Config.Digest.String() != emptyDigest || m.Config.Size != 2 {
			t.Errorf("artifact %d: artifactType %q, config %+v", i, m.ArtifactType, m.Config)
		}
		if m.Subject == nil || m.Subject.Digest != desc.Digest || m.Subject.MediaType != desc.MediaType || m.Subject.Size != desc.Size {
			t.Errorf("artifact %d: subject %+v, want %+v", i, m.Subject, desc)
		}
		if len(m.Layers) != 1 || string(m.Layers[0].MediaType) != sboms[i].artifactType {
			t.Fatalf("artifact %d: layers %+v", i, m.Layers)
		}
		sum, _, _ := v1.SHA256(bytes.NewReader(sboms[i].content))
		if m.Layers[0].Digest != sum || m.Layers[0].Size != int64(len(sboms[i].content)) {
			t.Errorf("artifact %d: layer %s (%d bytes), the SBOM is %s (%d bytes)", i, m.Layers[0].Digest, m.Layers[0].Size, sum, len(sboms[i].content))
		}
		l, err := remote.Layer(repo.Digest(m.Layers[0].Digest.String()), remote.WithContext(ctx))
		if err != nil {
			t.Fatal(err)
		}
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(b, sboms[i].content) {
			t.Errorf("artifact %d: blob %q (%v), want the SBOM", i, b, err)
		}
	}
}

// fallbackIndex reads the referrers tag schema's index for desc (tag sha256-<hex>); nil when there is none.
func fallbackIndex(t *testing.T, ref Reference, desc v1.Descriptor) *v1.IndexManifest {
	t.Helper()
	repo, _ := repository(ref, fast.fill())
	got, err := remote.Get(repo.Tag("sha256-"+desc.Digest.Hex), remote.WithContext(context.Background()))
	var terr *transport.Error
	if err != nil {
		if errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound {
			return nil
		}
		t.Fatal(err)
	}
	if got.MediaType != types.OCIImageIndex {
		t.Fatalf("the fallback tag holds a %s", got.MediaType)
	}
	im, err := v1.ParseIndexManifest(bytes.NewReader(got.Manifest))
	if err != nil {
		t.Fatal(err)
	}
	return im
}

func quietRegistry(opts ...registry.Option) http.Handler {
	return registry.New(append(opts, registry.Logger(log.New(io.Discard, "", 0)))...)
}

// On go-containerregistry's in-process registry, with and without the referrers API: both SBOMs are listed
// back, pushing one again lists it once, and the tag schema is used exactly when the API is missing.
func TestReferrers(t *testing.T) {
	for _, tc := range []struct {
		name string
		api  bool
	}{{"referrers API", true}, {"tag schema", false}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			srv := httptest.NewServer(quietRegistry(registry.WithReferrersSupport(tc.api)))
			defer srv.Close()
			host := strings.TrimPrefix(srv.URL, "http://")
			ref := mustParse(t, host+"/slim/app:v1")
			desc := subjectOf(t, randomImage(t), ref, fast)

			none, err := Referrers(ctx, ref, fast)
			if err != nil || len(none) != 0 {
				t.Fatalf("before any push: %v, %v", none, err)
			}
			pushed := attach(t, ref, desc, fast)
			if _, err := PushReferrer(ctx, ref, desc, SPDXMediaType, SPDXMediaType, sboms[0].content, sboms[0].annotations, fast); err != nil {
				t.Fatal(err)
			}
			checkReferrers(t, ref, desc, pushed, !tc.api, fast)

			idx := fallbackIndex(t, ref, desc)
			switch {
			case tc.api && idx != nil:
				t.Errorf("the registry has the referrers API, yet a fallback tag was written: %+v", idx)
			case !tc.api && (idx == nil || len(idx.Manifests) != 2):
				t.Errorf("fallback index %+v, want the two SBOMs once each", idx)
			}

			// Another image in the repository has referrers of its own: none.
			other := mustParse(t, host+"/slim/app:other")
			subjectOf(t, randomImage(t), other, fast)
			if list, err := Referrers(ctx, other, fast); err != nil || len(list) != 0 {
				t.Errorf("another image: %v, %v", list, err)
			}
		})
	}
}

// A push that stored the artifact manifest but failed to update the fallback tag is repaired by pushing
// again: the manifest is PUT every time, whether the registry has it or not, and the tag updated then.
func TestPushReferrerRepairsTag(t *testing.T) {
	ctx := context.Background()
	var failed atomic.Bool
	reg := quietRegistry()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/sha256-") && failed.CompareAndSwap(false, true) {
			http.Error(w, `{"errors":[{"code":"DENIED","message":"not now"}]}`, http.StatusForbidden)
			return
		}
		reg.ServeHTTP(w, r)
	}))
	defer srv.Close()
	ref := mustParse(t, strings.TrimPrefix(srv.URL, "http://")+"/slim/app:v1")
	desc := subjectOf(t, randomImage(t), ref, fast)
	s := sboms[0]
	if _, err := PushReferrer(ctx, ref, desc, s.artifactType, s.artifactType, s.content, nil, fast); err == nil || !strings.Contains(err.Error(), "not now") {
		t.Fatalf("the fallback tag's PUT failed, yet: %v", err)
	}
	if list, _ := Referrers(ctx, ref, fast); len(list) != 0 {
		t.Fatalf("listed before the tag was written: %+v", list)
	}
	d, err := PushReferrer(ctx, ref, desc, s.artifactType, s.artifactType, s.content, nil, fast)
	if err != nil {
		t.Fatal(err)
	}
	list, err := Referrers(ctx, ref, fast)
	if err != nil || len(list) != 1 || list[0].Digest != d.Digest {
		t.Fatalf("after pushing again: %+v, %v", list, err)
	}
}

func TestReferrersErrors(t *testing.T) {
	ctx := context.Background()
	srv := httptest.NewServer(quietRegistry())
	defer srv.Close()
	ref := mustParse(t, strings.TrimPrefix(srv.URL, "http://")+"/slim/app:v1")
	desc := subjectOf(t, randomImage(t), ref, fast)
	layout := Reference{Transport: Layout, Path: t.TempDir()}
	for _, tc := range []struct {
		name         string
		ref          Reference
		desc         v1.Descriptor
		artifactType string
		want         error
		text         string
	}{
		{"layout", layout, desc, SPDXMediaType, ErrReference, "referrers are pushed to and listed from registries"},
		{"no artifact type", ref, desc, "", ErrMediaType, "needs an artifact type"},
		{"no subject digest", ref, v1.Descriptor{MediaType: desc.MediaType, Size: desc.Size}, SPDXMediaType, ErrReference, "subject descriptor needs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := PushReferrer(ctx, tc.ref, tc.desc, tc.artifactType, SPDXMediaType, []byte("{}"), nil, fast)
			checkErr(t, err, tc.want, tc.text, "attaching")
		})
	}
	_, err := Referrers(ctx, layout, fast)
	checkErr(t, err, ErrReference, "referrers are pushed to and listed from registries", "listing referrers of oci:")
	_, err = layout.AtDigest(desc.Digest)
	checkErr(t, err, ErrReference, "not a registry reference", layout.Path)
	missing := mustParse(t, ref.Name+"-missing")
	if _, err := Referrers(ctx, missing, fast); err == nil || !strings.Contains(err.Error(), "listing referrers of "+missing.String()) {
		t.Errorf("a tag that does not exist: %v", err)
	}
}

// A registry's referrers listing is an index read into memory: it is capped as a manifest is.
func TestReferrersHugeListing(t *testing.T) {
	digest := "sha256:" + strings.Repeat("b", 64)
	var sent atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v2/":
		case "/v2/img/referrers/" + digest:
			w.Header().Set("Content-Type", string(types.OCIImageIndex))
			n, _ := io.Copy(w, &zeros{hugeBlob})
			sent.Add(n)
		default:
			http.NotFound(w, r)
		}
	}))
	defer func() { srv.CloseClientConnections(); srv.Close() }()
	ref := mustParse(t, strings.TrimPrefix(srv.URL, "http://")+"/img@"+digest)
	_, err := Referrers(context.Background(), ref, fast)
	checkErr(t, err, ErrTooLarge, "referrers of "+digest, "4 MiB limit")
	if n := sent.Load(); n > 64<<20 {
		t.Errorf("%d MiB of the listing were read", n>>20)
	}
}

// On the test bed's real registry (Debian's docker-registry, distribution 2.8, which has no referrers API):
// the SBOMs attached to a real sample pushed there are listed back through the tag schema, the tag's index
// read by skopeo too, and pushing again adds nothing.
func TestE2EReferrersDockerRegistry(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: end-to-end tests need the test bed")
	}
	bed, reason := testbed.Find()
	if bed == nil {
		t.Skip(reason)
	}
	reg, err := testbed.StartRegistry()
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Stop()
	ctx := context.Background()
	if err := reg.Push(ctx, "oci:"+bed.Layout("python")+":latest", "samples/python:oci", false); err != nil {
		t.Fatal(err)
	}
	ref := mustParse(t, reg.Addr+"/samples/python:oci")
	src, err := Open(ctx, ref, fast)
	if err != nil {
		t.Fatal(err)
	}
	desc := descriptorOfImage(t, src.Image)
	src.Close()

	// distribution 2.8 answers the referrers API with 404: what makes go-containerregistry use the tag schema.
	resp, err := http.Get(fmt.Sprintf("http://%s/v2/samples/python/referrers/%s", reg.Addr, desc.Digest))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("docker-registry answers the referrers API with %s: the test expects a registry without it", resp.Status)
	}

	pushed := attach(t, ref, desc, fast)
	again := attach(t, ref, desc, fast)
	for i := range pushed {
		if again[i].Digest != pushed[i].Digest {
			t.Errorf("the same SBOM pushed again is %s, was %s", again[i].Digest, pushed[i].Digest)
		}
	}
	checkReferrers(t, ref, desc, pushed, true, fast)

	idx := fallbackIndex(t, ref, desc)
	if idx == nil || len(idx.Manifests) != 2 {
		t.Fatalf("fallback index %+v, want the two SBOMs once each", idx)
	}
	// skopeo, an independent reader, sees the tag schema's index and both artifacts in it.
	if _, err := exec.LookPath("skopeo"); err != nil {
		t.Fatal("skopeo is not installed: run `make deps`")
	}
	raw, err := testbed.Skopeo(ctx, "inspect", "--tls-verify=false", "--raw", "docker://"+reg.Addr+"/samples/python:sha256-"+desc.Digest.Hex)
	if err != nil {
		t.Fatal(err)
	}
	im, err := v1.ParseIndexManifest(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	found := map[v1.Hash]string{}
	for _, m := range im.Manifests {
		found[m.Digest] = m.ArtifactType
	}
	for i, p := range pushed {
		if found[p.Digest] != sboms[i].artifactType {
			t.Errorf("skopeo: the fallback index lists %v, lacking %s (%s)", found, p.Digest, sboms[i].artifactType)
		}
	}
}
