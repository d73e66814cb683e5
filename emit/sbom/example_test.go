package sbom_test

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/slimoci/slimoci/emit/sbom"
	"github.com/slimoci/slimoci/rootfs/pkgdb"
)

// A slim image's SPDX document: the packages it still ships, and where it came from.
func ExampleSPDX() {
	slim := sbom.Image{Name: "localhost:5000/app.slim:v1", Digest: "sha256:" + fmt.Sprintf("%064d", 1)}
	fat := sbom.Image{Name: "localhost:5000/app:v1", Digest: "sha256:" + fmt.Sprintf("%064d", 2)}
	pkgs := []*pkgdb.Package{
		{Type: pkgdb.Deb, Namespace: "debian", Name: "libc6", Version: "2.36-9+deb12u7", Arch: "amd64",
			PURL: "pkg:deb/debian/libc6@2.36-9%2Bdeb12u7?arch=amd64", License: "LGPL-2.1-or-later"},
	}
	b, err := sbom.SPDX(slim, &fat, pkgs, time.Unix(1700000000, 0))
	if err != nil {
		panic(err)
	}
	var doc struct {
		Created  struct{ Created string } `json:"creationInfo"`
		Packages []struct {
			SPDXID, Name, VersionInfo, LicenseDeclared string
			ExternalRefs                               []struct{ ReferenceLocator string }
		}
		Relationships []struct{ SpdxElementID, RelationshipType, RelatedSpdxElement string }
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		panic(err)
	}
	fmt.Println(doc.Created.Created)
	for _, p := range doc.Packages {
		fmt.Println(p.SPDXID, p.Name, p.LicenseDeclared, p.ExternalRefs[0].ReferenceLocator)
	}
	for _, r := range doc.Relationships {
		fmt.Println(r.SpdxElementID, r.RelationshipType, r.RelatedSpdxElement)
	}
	// Output:
	// 2023-11-14T22:13:20Z
	// SPDXRef-Image localhost:5000/app.slim:v1 NOASSERTION pkg:oci/app.slim@sha256:0000000000000000000000000000000000000000000000000000000000000001?repository_url=localhost:5000%2Fapp.slim&tag=v1
	// SPDXRef-SourceImage localhost:5000/app:v1 NOASSERTION pkg:oci/app@sha256:0000000000000000000000000000000000000000000000000000000000000002?repository_url=localhost:5000%2Fapp&tag=v1
	// SPDXRef-Package-deb-libc6-97015af8a597ba84 libc6 LGPL-2.1-or-later pkg:deb/debian/libc6@2.36-9%2Bdeb12u7?arch=amd64
	// SPDXRef-DOCUMENT DESCRIBES SPDXRef-Image
	// SPDXRef-Image DESCENDANT_OF SPDXRef-SourceImage
	// SPDXRef-Package-deb-libc6-97015af8a597ba84 CONTAINED_BY SPDXRef-Image
}
