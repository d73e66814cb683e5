package sbom

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/package-url/packageurl-go"
	"github.com/santhosh-tekuri/jsonschema/v6"
	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx"
	"github.com/spdx/tools-golang/spdx/v2/common"
	"github.com/spdx/tools-golang/spdxlib"

	"github.com/slimoci/slimoci/internal/testbed"
	"github.com/slimoci/slimoci/rootfs/pkgdb"
)

const (
	slimDigest   = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	sourceDigest = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
)

var (
	created = time.Date(2024, 5, 6, 7, 8, 9, 0, time.FixedZone("CEST", 2*3600))
	slim    = Image{Name: "localhost:5000/slimoci/python.slim:latest", Digest: slimDigest}
	fat     = Image{Name: "localhost:5000/slimoci/python:latest", Digest: sourceDigest}
)

// hostile is a name and version a database could hold: quotes, backslashes, newlines, a NUL, markup,
// right-to-left override and non-Latin letters.
const hostile = "x\"y\\z\n\t\x00</script><!-- \u202eevil ünïcødé 名前 🐍"

func samplePackages() []*pkgdb.Package {
	return []*pkgdb.Package{
		{Type: pkgdb.PyPI, Name: "flask", Version: "2.2.2", License: "BSD-3-Clause", PURL: "pkg:pypi/flask@2.2.2",
			DB: "/usr/lib/python3/dist-packages/Flask-2.2.2.egg-info"},
		{Type: pkgdb.Deb, Namespace: "debian", Name: "libc6", Version: "2.36-9+deb12u7", Arch: "amd64", Source: "glibc",
			License: "LGPL-2.1-or-later AND GPL-2.0-or-later", PURL: "pkg:deb/debian/libc6@2.36-9%2Bdeb12u7?arch=amd64&distro=debian-12",
			DB: "/var/lib/dpkg/status"},
		{Type: pkgdb.Deb, Namespace: "debian", Name: "bash", Version: "5.2.15-2+b2", Arch: "amd64", Source: "bash",
			SourceVersion: "5.2.15-2", License: "GPL-3+", PURL: "pkg:deb/debian/bash@5.2.15-2%2Bb2?arch=amd64", DB: "/var/lib/dpkg/status"},
		{Type: pkgdb.Deb, Namespace: "debian", Name: "tzdata", Version: "2024a-0+deb12u1", Arch: "all",
			PURL: "pkg:deb/debian/tzdata@2024a-0%2Bdeb12u1?arch=all", DB: "/var/lib/dpkg/status"},
		{Type: pkgdb.Npm, Namespace: "@babel", Name: "core", Version: "7.24.0", License: "mit",
			PURL: "pkg:npm/%40babel/core@7.24.0", DB: "/app/node_modules/@babel/core/package.json"},
		{Type: pkgdb.Maven, Namespace: "org.slf4j", Name: "slf4j-api", Version: "2.0.9", License: "MIT",
			PURL: "pkg:maven/org.slf4j/slf4j-api@2.0.9", DB: "/app/lib/slf4j-api-2.0.9.jar"},
		// The same wheel in two site-packages: one PURL, two entries.
		{Type: pkgdb.PyPI, Name: "six", Version: "1.16.0", License: "MIT", PURL: "pkg:pypi/six@1.16.0",
			DB: "/usr/lib/python3/dist-packages/six-1.16.0.dist-info"},
		{Type: pkgdb.PyPI, Name: "six", Version: "1.16.0", License: "MIT", PURL: "pkg:pypi/six@1.16.0",
			DB: "/usr/local/lib/python3.11/site-packages/six-1.16.0.dist-info"},
		{Type: pkgdb.PyPI, Name: hostile, Version: hostile, License: hostile,
			PURL: packageurl.NewPackageURL("pypi", "", hostile, hostile, nil, "").ToString(), DB: "/x/" + hostile},
	}
}

func TestSPDX(t *testing.T) {
	pkgs := samplePackages()
	out, err := SPDX(slim, &fat, pkgs, created)
	if err != nil {
		t.Fatal(err)
	}
	validateSchema(t, spdxSchema(t), "", out, nil)

	doc, err := spdxjson.Read(bytes.NewReader(out))
	if err != nil {
		t.Fatalf("tools-golang cannot read the document back: %v", err)
	}
	if err := spdxlib.ValidateDocument(doc); err != nil {
		t.Fatalf("tools-golang's validation: %v", err)
	}
	if doc.SPDXVersion != "SPDX-2.3" || doc.DataLicense != "CC0-1.0" || doc.DocumentName != slim.Name {
		t.Errorf("version %q, data licence %q, name %q", doc.SPDXVersion, doc.DataLicense, doc.DocumentName)
	}
	if doc.CreationInfo.Created != "2024-05-06T05:08:09Z" {
		t.Errorf("created %q, want the argument in UTC", doc.CreationInfo.Created)
	}
	if !strings.HasPrefix(doc.DocumentNamespace, namespaceBase+"python.slim-") || strings.Contains(doc.DocumentNamespace, "#") {
		t.Errorf("namespace %q", doc.DocumentNamespace)
	}
	described, err := spdxlib.GetDescribedPackageIDs(doc)
	if err != nil || !slices.Equal(described, []common.ElementID{subjectID}) {
		t.Fatalf("the document describes %v (%v), want the image alone", described, err)
	}

	byID := map[common.ElementID]*spdx.Package{}
	for _, p := range doc.Packages {
		if byID[p.PackageSPDXIdentifier] != nil {
			t.Errorf("SPDX ID %s twice", p.PackageSPDXIdentifier)
		}
		byID[p.PackageSPDXIdentifier] = p
	}
	for id, img := range map[common.ElementID]Image{subjectID: slim, sourceID: fat} {
		p := byID[id]
		if p == nil {
			t.Fatalf("no package %s", id)
		}
		if p.PrimaryPackagePurpose != "CONTAINER" || p.PackageVersion != img.Digest || len(p.PackageChecksums) != 1 ||
			p.PackageChecksums[0].Algorithm != common.SHA256 || "sha256:"+p.PackageChecksums[0].Value != img.Digest {
			t.Errorf("image package %s: purpose %q, version %q, checksums %+v", id, p.PrimaryPackagePurpose, p.PackageVersion, p.PackageChecksums)
		}
		if got := purlOf(p); !strings.HasPrefix(got, "pkg:oci/") || !strings.Contains(got, strings.TrimPrefix(img.Digest, "sha256:")) {
			t.Errorf("image package %s: purl %q", id, got)
		}
	}
	rels := map[string]bool{}
	for _, r := range doc.Relationships {
		rels[string(r.RefA.ElementRefID)+" "+r.Relationship+" "+string(r.RefB.ElementRefID)] = true
	}
	if !rels[subjectID+" DESCENDANT_OF "+sourceID] {
		t.Errorf("no Image DESCENDANT_OF SourceImage in %v", rels)
	}

	others := map[string]*spdx.OtherLicense{}
	for _, l := range doc.OtherLicenses {
		others[l.LicenseIdentifier] = l
	}
	seen := 0
	for _, p := range doc.Packages {
		if p.PackageSPDXIdentifier == subjectID || p.PackageSPDXIdentifier == sourceID {
			continue
		}
		seen++
		if !rels[string(p.PackageSPDXIdentifier)+" CONTAINED_BY "+subjectID] {
			t.Errorf("%s is not CONTAINED_BY the image", p.PackageSPDXIdentifier)
		}
		if p.FilesAnalyzed || p.PackageDownloadLocation != "NOASSERTION" {
			t.Errorf("%s: filesAnalyzed %v, downloadLocation %q", p.PackageName, p.FilesAnalyzed, p.PackageDownloadLocation)
		}
	}
	if seen != len(pkgs) {
		t.Errorf("%d packages besides the images, want %d", seen, len(pkgs))
	}
	for _, want := range pkgs {
		p := findSPDX(doc, want)
		if p == nil {
			t.Errorf("no package %q %q (%s) in the document", want.Name, want.Version, want.DB)
			continue
		}
		if p.PackageVersion != want.Version {
			t.Errorf("%s: version %q, want %q", want.PURL, p.PackageVersion, want.Version)
		}
		lic := p.PackageLicenseDeclared
		switch {
		case want.License == "":
			if lic != "NOASSERTION" {
				t.Errorf("%s: licence %q, want NOASSERTION", want.PURL, lic)
			}
		case strings.HasPrefix(lic, "LicenseRef-"):
			if others[lic] == nil || others[lic].ExtractedText != want.License {
				t.Errorf("%s: %s's extracted text is not %q", want.PURL, lic, want.License)
			}
		case !strings.EqualFold(lic, want.License):
			t.Errorf("%s: licence %q, want %q", want.PURL, lic, want.License)
		}
	}
	// The expected mapping of licences as databases state them.
	for name, want := range map[string]string{"libc6": "LGPL-2.1-or-later AND GPL-2.0-or-later", "core": "MIT", "flask": "BSD-3-Clause"} {
		for _, p := range pkgs {
			if p.Name == name {
				if got := findSPDX(doc, p).PackageLicenseDeclared; got != want {
					t.Errorf("%s: licence %q, want %q", name, got, want)
				}
			}
		}
	}
	if bash := findSPDX(doc, pkgs[2]); !strings.HasPrefix(bash.PackageLicenseDeclared, "LicenseRef-GPL-3-") {
		t.Errorf("bash's Debian licence GPL-3+ (not an SPDX ID) became %q, want a LicenseRef", bash.PackageLicenseDeclared)
	} else if bash.PackageSourceInfo != "built package from: bash 5.2.15-2" {
		t.Errorf("bash: source info %q", bash.PackageSourceInfo)
	}
	if core := findSPDX(doc, pkgs[4]); core.PackageName != "@babel/core" {
		t.Errorf("the npm package's name is %q, want its scope too", core.PackageName)
	}
}

func TestCycloneDX(t *testing.T) {
	pkgs := samplePackages()
	out, err := CycloneDX(slim, &fat, pkgs, created)
	if err != nil {
		t.Fatal(err)
	}
	dir := moduleDir(t, "github.com/CycloneDX/cyclonedx-go")
	// bom-1.6 refers to spdx.schema.json and jsf-0.82.schema.json beside it; the module names the latter
	// jsf-0.82.schemax.json.
	validateSchema(t, filepath.Join(dir, "schema", "bom-1.6.schema.json"), "http://cyclonedx.org/schema/", out, map[string]string{
		"spdx.schema.json": filepath.Join(dir, "schema", "spdx.schema.json"), "jsf-0.82.schema.json": filepath.Join(dir, "schema", "jsf-0.82.schemax.json")})

	var bom cdx.BOM
	if err := cdx.NewBOMDecoder(bytes.NewReader(out), cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
		t.Fatalf("cyclonedx-go cannot decode the BOM: %v", err)
	}
	if bom.SpecVersion != cdx.SpecVersion1_6 || bom.BOMFormat != "CycloneDX" || !strings.HasPrefix(bom.SerialNumber, "urn:uuid:") {
		t.Errorf("spec %v, format %q, serial %q", bom.SpecVersion, bom.BOMFormat, bom.SerialNumber)
	}
	if bom.Metadata == nil || bom.Metadata.Component == nil {
		t.Fatal("no metadata.component")
	}
	if bom.Metadata.Timestamp != "2024-05-06T05:08:09Z" {
		t.Errorf("timestamp %q", bom.Metadata.Timestamp)
	}
	img := bom.Metadata.Component
	checkImage := func(c *cdx.Component, want Image) {
		t.Helper()
		if c.Type != cdx.ComponentTypeContainer || c.Name != want.Name || c.Version != want.Digest ||
			c.Hashes == nil || len(*c.Hashes) != 1 || "sha256:"+(*c.Hashes)[0].Value != want.Digest {
			t.Errorf("image component %+v, want %s", c, want.Digest)
		}
		p, err := packageurl.FromString(c.PackageURL)
		if err != nil || p.Type != "oci" || p.Version != want.Digest {
			t.Errorf("image purl %q (%v)", c.PackageURL, err)
		}
	}
	checkImage(img, slim)
	if img.Pedigree == nil || img.Pedigree.Ancestors == nil || len(*img.Pedigree.Ancestors) != 1 {
		t.Fatalf("pedigree %+v, want the source image as the one ancestor", img.Pedigree)
	}
	checkImage(&(*img.Pedigree.Ancestors)[0], fat)

	if bom.Components == nil || len(*bom.Components) != len(pkgs) {
		t.Fatalf("components: %v, want %d", bom.Components, len(pkgs))
	}
	refs := map[string]bool{}
	for _, c := range *bom.Components {
		if refs[c.BOMRef] {
			t.Errorf("bom-ref %q twice", c.BOMRef)
		}
		refs[c.BOMRef] = true
	}
	for _, want := range pkgs {
		var c *cdx.Component
		for i := range *bom.Components {
			if got := &(*bom.Components)[i]; got.PackageURL == want.PURL && got.Name == want.Name {
				c = got
			}
		}
		if c == nil {
			t.Errorf("no component %s", want.PURL)
			continue
		}
		if c.Version != want.Version {
			t.Errorf("%s: version %q", want.PURL, c.Version)
		}
		switch {
		case want.License == "" && c.Licenses != nil:
			t.Errorf("%s: licences %+v, want none", want.PURL, *c.Licenses)
		case want.License != "" && (c.Licenses == nil || len(*c.Licenses) != 1):
			t.Errorf("%s: licences %v, want one", want.PURL, c.Licenses)
		case want.License != "":
			l := (*c.Licenses)[0]
			got := l.Expression
			if l.License != nil {
				got = l.License.ID + l.License.Name
			}
			if !strings.EqualFold(got, want.License) {
				t.Errorf("%s: licence %+v, want %q", want.PURL, l, want.License)
			}
		}
		if (want.Type == pkgdb.Npm || want.Type == pkgdb.Maven) && c.Group != want.Namespace {
			t.Errorf("%s: group %q, want %q", want.PURL, c.Group, want.Namespace)
		}
	}
}

// TestDeterministic: the same arguments in another order give the same bytes; another package, or another
// digest, gives another namespace and serial number.
func TestDeterministic(t *testing.T) {
	pkgs := samplePackages()
	shuffled := slices.Clone(pkgs)
	slices.Reverse(shuffled)
	fewer := pkgs[1:]
	other := Image{Name: slim.Name, Digest: "sha256:" + strings.Repeat("3", 64)}
	for _, f := range []struct {
		name string
		gen  func(Image, *Image, []*pkgdb.Package, time.Time) ([]byte, error)
		key  string
	}{{"spdx", SPDX, "documentNamespace"}, {"cyclonedx", CycloneDX, "serialNumber"}} {
		t.Run(f.name, func(t *testing.T) {
			gen := func(subject Image, pkgs []*pkgdb.Package) ([]byte, string) {
				out, err := f.gen(subject, &fat, pkgs, created)
				if err != nil {
					t.Fatal(err)
				}
				var m map[string]any
				if err := json.Unmarshal(out, &m); err != nil {
					t.Fatal(err)
				}
				return out, m[f.key].(string)
			}
			a, keyA := gen(slim, pkgs)
			b, _ := gen(slim, shuffled)
			if !bytes.Equal(a, b) {
				t.Errorf("the packages' order changed the document")
			}
			if _, k := gen(slim, fewer); k == keyA {
				t.Errorf("one package fewer kept %s %s", f.key, k)
			}
			if _, k := gen(other, pkgs); k == keyA {
				t.Errorf("another digest kept %s %s", f.key, k)
			}
		})
	}
}

// TestHostile: names, versions and licences with quotes, newlines, NUL, markup and unicode come back from
// both readers exactly; bytes that are not UTF-8 come back as U+FFFD (encoding/json's rule), in a document
// that still parses.
func TestHostile(t *testing.T) {
	bad := "bad\xff\xfeutf8"
	pkgs := []*pkgdb.Package{
		{Type: pkgdb.Deb, Namespace: "debian", Name: hostile, Version: hostile, License: hostile, Source: hostile,
			PURL: "pkg:deb/debian/" + hostile, DB: "/var/lib/dpkg/status"},
		{Type: pkgdb.Npm, Namespace: hostile, Name: bad, Version: bad, License: bad, PURL: "pkg:npm/" + bad},
	}
	subject := Image{Name: "oci:/tmp/" + hostile + ":latest", Digest: slimDigest}
	out, err := SPDX(subject, nil, pkgs, created)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := spdxjson.Read(bytes.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if err := spdxlib.ValidateDocument(doc); err != nil {
		t.Fatal(err)
	}
	validateSchema(t, spdxSchema(t), "", out, nil)
	if doc.DocumentName != subject.Name {
		t.Errorf("document name %q, want %q", doc.DocumentName, subject.Name)
	}
	p := findSPDX(doc, pkgs[0])
	if p == nil || p.PackageName != hostile || p.PackageVersion != hostile || purlOf(p) != pkgs[0].PURL {
		t.Fatalf("hostile package came back as %+v", p)
	}
	var text string
	for _, l := range doc.OtherLicenses {
		if l.LicenseIdentifier == p.PackageLicenseDeclared {
			text = l.ExtractedText
		}
	}
	if text != hostile {
		t.Errorf("hostile licence came back as %q", text)
	}
	fixed := "bad\ufffd\ufffdutf8" // one U+FFFD a byte
	found := false
	for _, p := range doc.Packages {
		if strings.HasSuffix(p.PackageName, fixed) && p.PackageVersion == fixed {
			found = true
		}
	}
	if !found {
		t.Errorf("no package named %q", fixed)
	}

	out, err = CycloneDX(subject, nil, pkgs, created)
	if err != nil {
		t.Fatal(err)
	}
	var bom cdx.BOM
	if err := cdx.NewBOMDecoder(bytes.NewReader(out), cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
		t.Fatal(err)
	}
	c := (*bom.Components)[slices.IndexFunc(*bom.Components, func(c cdx.Component) bool { return c.PackageURL == pkgs[0].PURL })]
	if c.Name != hostile || c.Version != hostile || (*c.Licenses)[0].License.Name != hostile {
		t.Errorf("hostile component came back as %+v", c)
	}
	if bom.Metadata.Component.Name != subject.Name {
		t.Errorf("image name %q", bom.Metadata.Component.Name)
	}
}

func TestImagePURL(t *testing.T) {
	d := slimDigest
	hexd := strings.TrimPrefix(d, "sha256:")
	for _, c := range []struct{ name, want string }{
		{"localhost:5000/slimoci/python:latest", "pkg:oci/python@sha256:" + hexd + "?repository_url=localhost:5000%2Fslimoci%2Fpython&tag=latest"},
		{"docker://registry.example/team/App:v1", ""},
		{"docker://registry.example/team/app:v1", "pkg:oci/app@sha256:" + hexd + "?repository_url=registry.example%2Fteam%2Fapp&tag=v1"},
		{"registry.example/team/app@" + d, "pkg:oci/app@sha256:" + hexd + "?repository_url=registry.example%2Fteam%2Fapp"},
		{"registry.example:5000/app", "pkg:oci/app@sha256:" + hexd + "?repository_url=registry.example:5000%2Fapp"},
		{"oci:/var/cache/slimoci-testbed/oci/python:latest", "pkg:oci/python@sha256:" + hexd},
		{"oci:/srv/Layouts/Java", "pkg:oci/java@sha256:" + hexd},
		{"oci-archive:/tmp/ruby.oci.tar:latest", "pkg:oci/ruby.oci@sha256:" + hexd},
		{"docker-archive:/tmp/node.docker.tar:localhost/x/node:latest", "pkg:oci/node.docker@sha256:" + hexd},
		{"/plain/path/web", "pkg:oci/web@sha256:" + hexd},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := ociPURL(Image{Name: c.name, Digest: d})
			if c.want == "" {
				// An uppercase repository is not a registry reference: a path-like name.
				if !strings.HasPrefix(got, "pkg:oci/") {
					t.Errorf("purl %q", got)
				}
				return
			}
			if got != c.want {
				t.Errorf("purl %q, want %q", got, c.want)
			}
			if _, err := packageurl.FromString(got); err != nil {
				t.Errorf("%q does not parse back: %v", got, err)
			}
		})
	}
}

func TestBadDigest(t *testing.T) {
	for _, d := range []string{"sha256:abc", "md5:" + strings.Repeat("0", 64), "sha256:" + strings.Repeat("g", 64)} {
		if _, err := SPDX(Image{Name: "x", Digest: d}, nil, nil, created); err == nil {
			t.Errorf("SPDX took digest %q", d)
		}
		if _, err := CycloneDX(Image{Name: "x", Digest: d}, nil, nil, created); err == nil {
			t.Errorf("CycloneDX took digest %q", d)
		}
	}
	// No digest at all (a docker-archive): the documents are still written, without checksums.
	out, err := SPDX(Image{Name: "docker-archive:/tmp/x.tar"}, nil, nil, created)
	if err != nil {
		t.Fatal(err)
	}
	validateSchema(t, spdxSchema(t), "", out, nil)
}

func purlOf(p *spdx.Package) string {
	for _, r := range p.PackageExternalReferences {
		if r.Category == spdx.CategoryPackageManager && r.RefType == spdx.PackageManagerPURL {
			return r.Locator
		}
	}
	return ""
}

// findSPDX finds want's SPDX package by PURL and ID (two entries may share a PURL).
func findSPDX(doc *spdx.Document, want *pkgdb.Package) *spdx.Package {
	id := elementIDs([]*pkgdb.Package{want})[0]
	for _, p := range doc.Packages {
		if purlOf(p) == want.PURL && string(p.PackageSPDXIdentifier) == id {
			return p
		}
	}
	return nil
}

// moduleDir is where the Go module cache holds module (a dependency of this module).
func moduleDir(t *testing.T, module string) string {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", module).Output()
	if err != nil || strings.TrimSpace(string(out)) == "" {
		t.Fatalf("go list -m %s: %v", module, err)
	}
	return strings.TrimSpace(string(out))
}

// spdxSchema is the SPDX 2.3 JSON schema, as syft's module ships it (the SPDX project publishes it in no Go
// module). `make deps` installs syft, which puts that module in the module cache.
func spdxSchema(t *testing.T) string {
	out, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		t.Fatalf("go env GOMODCACHE: %v", err)
	}
	f := filepath.Join(strings.TrimSpace(string(out)), "github.com/anchore/syft@"+testbed.SyftVersion, "schema/spdx-json/spdx-schema-2.3.json")
	if _, err := os.Stat(f); err != nil {
		t.Skipf("the SPDX 2.3 JSON schema is not in the module cache (%v): run `make deps`, which installs syft %s", err, testbed.SyftVersion)
	}
	return f
}

// validateSchema validates doc against the JSON schema in file, with format assertions on; the extra
// schemas it refers to (name: file) are loaded from their files as base + name (nothing is fetched).
func validateSchema(t *testing.T, file, base string, doc []byte, extra map[string]string) {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	load := func(f, url string) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("reading schema %s: %v", f, err)
		}
		if err := c.AddResource(url, v); err != nil {
			t.Fatal(err)
		}
	}
	for name, f := range extra {
		load(f, base+name)
	}
	main := "file://" + file
	if base != "" {
		main = base + filepath.Base(file)
	}
	load(file, main)
	s, err := c.Compile(main)
	if err != nil {
		t.Fatalf("compiling schema %s: %v", file, err)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(v); err != nil {
		t.Errorf("the document does not validate against %s: %v", filepath.Base(file), err)
	}
}
