package main

import (
	"context"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/slimoci/slimoci/oci"
)

// attachSBOMs pushes an SPDX and a CycloneDX document as referrers of img's manifest in ref's repository,
// and returns their descriptors.
func attachSBOMs(t *testing.T, ref oci.Reference, img v1.Image) []v1.Descriptor {
	t.Helper()
	subject, err := partial.Descriptor(img)
	if err != nil {
		t.Fatal(err)
	}
	var out []v1.Descriptor
	for _, s := range []struct{ mt, title, doc string }{
		{oci.SPDXMediaType, "sbom.spdx.json", `{"spdxVersion":"SPDX-2.3"}`},
		{oci.CycloneDXMediaType, "sbom.cdx.json", `{"bomFormat":"CycloneDX"}`},
	} {
		desc, err := oci.PushReferrer(context.Background(), ref, *subject, s.mt, s.mt, []byte(s.doc),
			map[string]string{"org.opencontainers.image.title": s.title}, nil)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, desc)
	}
	return out
}

// checkInfoReferrers runs info on image, --json and as text, and checks both list exactly the pushed
// artifacts, SPDX first.
func checkInfoReferrers(t *testing.T, image string, pushed []v1.Descriptor) {
	t.Helper()
	info := infoJSON(t, "--no-measure", image)
	if info.ReferrersError != "" || len(info.Referrers) != len(pushed) {
		t.Fatalf("info %s: referrers %+v (%s), want %d", image, info.Referrers, info.ReferrersError, len(pushed))
	}
	for i, p := range pushed {
		r := info.Referrers[i]
		if r.Digest != p.Digest.String() || r.ArtifactType != p.ArtifactType || r.Size != p.Size ||
			r.MediaType != "application/vnd.oci.image.manifest.v1+json" || r.Annotations["org.opencontainers.image.title"] == "" {
			t.Errorf("info %s: referrer %d is %+v, pushed %+v", image, i, r, p)
		}
	}
	out, errs, code := runCLI(t, "info", "--no-measure", image)
	if code != 0 {
		t.Fatalf("info %s: exit %d: %s", image, code, errs)
	}
	_, section, ok := strings.Cut(out, "\nReferrers:\n")
	if !ok {
		t.Fatalf("info %s: no Referrers section:\n%s", image, out)
	}
	section, _, _ = strings.Cut(section, "\n\n")
	lines := strings.Split(section, "\n")
	if len(lines) != 1+len(pushed) || !strings.Contains(lines[0], "ARTIFACT TYPE") {
		t.Fatalf("info %s: Referrers section:\n%s", image, section)
	}
	for i, p := range pushed {
		for _, want := range []string{p.Digest.String()[:len("sha256:")+12], p.ArtifactType, "org.opencontainers.image.title=sbom."} {
			if !strings.Contains(lines[1+i], want) {
				t.Errorf("info %s: referrer line %q lacks %q", image, lines[1+i], want)
			}
		}
	}
}

// quietRegistry is go-containerregistry's in-process registry, logging nothing.
func quietRegistry() http.Handler {
	return ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))
}

// rawInfo runs info --json and returns the document as a map, to tell an absent key from an empty list.
func rawInfo(t *testing.T, args ...string) map[string]json.RawMessage {
	t.Helper()
	out, errs, code := runCLI(t, append([]string{"info", "--json", "--no-measure"}, args...)...)
	if code != 0 {
		t.Fatalf("info %v: exit %d: %s", args, code, errs)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// info lists a registry image's referrers (here through the referrers tag schema of go-containerregistry's
// in-process registry); an image without any has an empty list and "Referrers: none"; a layout, and
// --no-referrers, have no referrers key at all.
func TestInfoReferrers(t *testing.T) {
	srv := httptest.NewServer(quietRegistry())
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := oci.ParseReference(host + "/slim/app:v1")
	if err := oci.Write(context.Background(), img, ref, nil); err != nil {
		t.Fatal(err)
	}
	pushed := attachSBOMs(t, ref, img)
	checkInfoReferrers(t, host+"/slim/app:v1", pushed)

	bare, _ := oci.ParseReference(host + "/slim/bare:v1")
	if err := oci.Write(context.Background(), img, bare, nil); err != nil {
		t.Fatal(err)
	}
	// The same manifest in another repository: referrers belong to a repository, so none here.
	if got := string(rawInfo(t, bare.Name)["referrers"]); got != "[]" {
		t.Errorf("an image without referrers: referrers %s, want []", got)
	}
	if out, _, _ := runCLI(t, "info", "--no-measure", bare.Name); !strings.Contains(out, "\nReferrers: none\n") {
		t.Errorf("an image without referrers:\n%s", out)
	}
	if _, ok := rawInfo(t, "--no-referrers", ref.Name)["referrers"]; ok {
		t.Error("--no-referrers still lists referrers")
	}
	layout := writeLayout(t, img, "v1")
	if _, ok := rawInfo(t, "oci:"+layout+":v1")["referrers"]; ok {
		t.Error("a layout has a referrers key")
	}
	if out, _, _ := runCLI(t, "info", "--no-measure", "oci:"+layout+":v1"); strings.Contains(out, "\nReferrers") {
		t.Errorf("a layout has a Referrers section:\n%s", out)
	}
}

// A registry that refuses the referrers listing still gets its image described: the error is in the
// document and the text, and info exits 0.
func TestInfoReferrersRefused(t *testing.T) {
	reg := quietRegistry()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/referrers/") || strings.Contains(r.URL.Path, "/manifests/sha256-") {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, `{"errors":[{"code":"DENIED","message":"no listing for you"}]}`)
			return
		}
		reg.ServeHTTP(w, r)
	}))
	defer srv.Close()
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := oci.ParseReference(strings.TrimPrefix(srv.URL, "http://") + "/slim/app:v1")
	if err := oci.Write(context.Background(), img, ref, nil); err != nil {
		t.Fatal(err)
	}
	info := infoJSON(t, "--no-measure", ref.Name)
	if info.Referrers != nil || !strings.Contains(info.ReferrersError, "no listing for you") {
		t.Errorf("referrers %+v, error %q", info.Referrers, info.ReferrersError)
	}
	if d, _ := img.Digest(); info.Digest != d.String() {
		t.Errorf("digest %s, want %s", info.Digest, d)
	}
	out, _, code := runCLI(t, "info", "--no-measure", ref.Name)
	if code != 0 || !strings.Contains(out, "\nReferrers: unknown (") || !strings.Contains(out, "no listing for you") {
		t.Errorf("exit %d:\n%s", code, out)
	}
}

// On the test bed's docker-registry (no referrers API: the tag schema), info lists the SBOMs attached to a
// real sample, by tag and by digest.
func TestE2EInfoReferrers(t *testing.T) {
	needBed(t)
	ctx := context.Background()
	if err := registry.Push(ctx, "oci:"+bed.Layout("python")+":latest", "referrers/python:oci", false); err != nil {
		t.Fatal(err)
	}
	ref, _ := oci.ParseReference(registry.Addr + "/referrers/python:oci")
	src, err := oci.Open(ctx, ref, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	pushed := attachSBOMs(t, ref, src.Image)
	checkInfoReferrers(t, ref.Name, pushed)
	checkInfoReferrers(t, registry.Addr+"/referrers/python@"+src.Digest.String(), pushed)
}
