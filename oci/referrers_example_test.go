package oci_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"strings"

	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/partial"

	"github.com/slimoci/slimoci/oci"
)

// Attach an SBOM to a pushed image and list what refers to it. The registry here has no referrers API, so
// the listing is the referrers tag schema's index (tag sha256-<subject hex>).
func ExamplePushReferrer() {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	ctx := context.Background()
	ref, _ := oci.ParseReference(strings.TrimPrefix(srv.URL, "http://") + "/app:slim")
	img := empty.Image
	if err := oci.Write(ctx, img, ref, nil); err != nil {
		log.Fatal(err)
	}
	// The subject is the pushed manifest: its media type, digest and size.
	subject, err := partial.Descriptor(img)
	if err != nil {
		log.Fatal(err)
	}
	sbom := []byte(`{"spdxVersion":"SPDX-2.3"}`)
	if _, err := oci.PushReferrer(ctx, ref, *subject, oci.SPDXMediaType, oci.SPDXMediaType, sbom, nil, nil); err != nil {
		log.Fatal(err)
	}
	list, err := oci.Referrers(ctx, ref, nil)
	if err != nil {
		log.Fatal(err)
	}
	for _, d := range list {
		fmt.Println(d.ArtifactType, d.MediaType)
	}
	// Output:
	// application/spdx+json application/vnd.oci.image.manifest.v1+json
}
