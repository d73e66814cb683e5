package main

// End-to-end: `slimoci sbom` of the test bed's four samples against syft (github.com/anchore/syft, installed
// by `make deps`), an SBOM reader nobody here wrote, scanning the same OCI layouts.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/package-url/packageurl-go"
	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx"

	"github.com/slimoci/slimoci/emit/sbom"
	"github.com/slimoci/slimoci/internal/testbed"
)

// syftPackages runs syft on the OCI layout (tag latest) and returns the packages it reports, by purl type
// ("deb", "pypi", "npm", "gem", "maven", ...), each as packageKey → version. A package syft gives no purl is
// left out (syft's "binary" finds of executables that name their own version).
func syftPackages(t *testing.T, bed *testbed.Bed, layout string) map[string]map[string]string {
	t.Helper()
	bin, reason := bed.Syft()
	if bin == "" {
		t.Fatal(reason) // CI installs syft with `make deps`: no skip
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	tmp := t.TempDir()
	// syft asks the internet for a newer version of itself unless told not to; its scratch files go to
	// TMPDIR, removed with the test.
	t.Setenv("SYFT_CHECK_FOR_APP_UPDATE", "false")
	t.Setenv("TMPDIR", tmp)
	out, err := testbed.Run(ctx, bin, "scan", "--quiet", "--output", "syft-json", "oci-dir:"+layout)
	if err != nil {
		t.Fatalf("syft: %v", err)
	}
	var doc struct {
		Artifacts []struct {
			Name, Version, Type, PURL string
		}
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("reading syft's JSON: %v", err)
	}
	pkgs := map[string]map[string]string{}
	for _, a := range doc.Artifacts {
		if a.PURL == "" {
			continue
		}
		add(t, pkgs, a.PURL, a.Version)
	}
	return pkgs
}

// spdxPackages reads an SPDX document's packages by purl type, as syftPackages does, with tools-golang's
// reader; the image's own pkg:oci package is left out.
func spdxPackages(t *testing.T, b []byte) map[string]map[string]string {
	t.Helper()
	doc, err := spdxjson.Read(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("reading the SPDX document: %v", err)
	}
	pkgs := map[string]map[string]string{}
	for _, p := range doc.Packages {
		for _, r := range p.PackageExternalReferences {
			if r.Category == spdx.CategoryPackageManager && r.RefType == spdx.PackageManagerPURL && !strings.HasPrefix(r.Locator, "pkg:oci/") {
				add(t, pkgs, r.Locator, p.PackageVersion)
			}
		}
	}
	return pkgs
}

// cdxPackages is spdxPackages for a CycloneDX BOM, with cyclonedx-go's decoder.
func cdxPackages(t *testing.T, b []byte) map[string]map[string]string {
	t.Helper()
	var bom cdx.BOM
	if err := cdx.NewBOMDecoder(bytes.NewReader(b), cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
		t.Fatalf("reading the CycloneDX BOM: %v", err)
	}
	pkgs := map[string]map[string]string{}
	if bom.Components != nil {
		for _, c := range *bom.Components {
			add(t, pkgs, c.PackageURL, c.Version)
		}
	}
	return pkgs
}

// add files purl's package under its type as packageKey → version.
func add(t *testing.T, pkgs map[string]map[string]string, purl, version string) {
	t.Helper()
	p, err := packageurl.FromString(purl)
	if err != nil {
		t.Errorf("purl %q: %v", purl, err)
		return
	}
	if pkgs[p.Type] == nil {
		pkgs[p.Type] = map[string]string{}
	}
	pkgs[p.Type][packageKey(p)] = version
}

// packageKey names a package across SBOMs: namespace/name, and the architecture for deb and apk (one
// package may be installed for two, with multiarch).
func packageKey(p packageurl.PackageURL) string {
	k := p.Name
	if p.Namespace != "" && p.Type != "deb" && p.Type != "apk" {
		k = p.Namespace + "/" + k
	}
	if arch := p.Qualifiers.Map()["arch"]; arch != "" {
		k += ":" + arch
	}
	return k
}

// diffPackages lists what a has and b has not, or has at another version, as "key version" lines.
func diffPackages(a, b map[string]string) []string {
	var d []string
	for _, k := range slices.Sorted(maps.Keys(a)) {
		if v, ok := b[k]; !ok || v != a[k] {
			d = append(d, fmt.Sprintf("%s %s (other: %q)", k, a[k], v))
		}
	}
	return d
}

// syftOnly are the packages syft finds in a sample and slimoci does not, by design: "type key".
//   - ruby: npm ruby-typeprof is typeprof's editor extension (a package.json in the gem's vscode directory);
//     pkgdb reads node packages under node_modules only, where npm installs them.
//   - java: syft names jars by their META-INF/MANIFEST.MF when they hold no pom.properties (the app's own
//     app.jar, the JDK's jrt-fs.jar, Debian's ca-certificates-java.jar, none from a Maven repository);
//     pkgdb reads pom.properties only, as the issue asks: such a name and version are guesses that no
//     vulnerability database matches reliably.
var syftOnly = map[string][]string{
	"ruby": {"npm ruby-typeprof"},
	"java": {"maven app/app", "maven jrt-fs/jrt-fs", "maven org.debian.security.UpdateCertificates/ca-certificates-java"},
}

// TestE2ESbomSyft: the SBOMs `slimoci sbom` writes of each sample list exactly the packages syft finds in the
// same layout, at the same versions (Debian's, and the language packages but for syftOnly); the SPDX and
// CycloneDX documents list the same packages; each holds the image's digest.
func TestE2ESbomSyft(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: end-to-end tests need the test bed")
	}
	bed, reason := testbed.Find()
	if bed == nil {
		t.Skip(reason)
	}
	for _, s := range testbed.Samples {
		t.Run(s, func(t *testing.T) {
			layout := bed.Layout(s)
			dir := t.TempDir()
			stdout, stderr, code := runCLI(t, "sbom", "--json", "--output-dir", dir, "oci:"+layout+":latest")
			if code != 0 {
				t.Fatalf("slimoci sbom: exit %d: %s", code, stderr)
			}
			var sum sbomResult
			oneDocument(t, stdout, &sum)
			spdxDoc, err := os.ReadFile(filepath.Join(dir, sbom.SPDXFile))
			if err != nil {
				t.Fatal(err)
			}
			cdxDoc, err := os.ReadFile(filepath.Join(dir, sbom.CycloneDXFile))
			if err != nil {
				t.Fatal(err)
			}
			if sum.Digest == "" || !bytes.Contains(spdxDoc, []byte(strings.TrimPrefix(sum.Digest, "sha256:"))) ||
				!bytes.Contains(cdxDoc, []byte(sum.Digest)) {
				t.Errorf("the SBOMs do not hold the image's digest %q", sum.Digest)
			}
			ours, theirs := spdxPackages(t, spdxDoc), syftPackages(t, bed, layout)
			if other := cdxPackages(t, cdxDoc); !maps.EqualFunc(ours, other, maps.Equal) {
				t.Errorf("SPDX and CycloneDX differ:\nonly SPDX: %v\nonly CycloneDX: %v", diffAll(ours, other), diffAll(other, ours))
			}
			if len(ours["deb"]) < 50 {
				t.Fatalf("%d Debian packages in the SBOM: a Debian image has about a hundred", len(ours["deb"]))
			}
			counts := map[string][2]int{}
			for _, typ := range slices.Sorted(maps.Keys(union(ours, theirs))) {
				counts[typ] = [2]int{len(ours[typ]), len(theirs[typ])}
				for _, d := range []struct {
					who      string
					a, b     map[string]string
					accepted []string
				}{{"slimoci", ours[typ], theirs[typ], nil}, {"syft", theirs[typ], ours[typ], syftOnly[s]}} {
					var bad []string
					for _, line := range diffPackages(d.a, d.b) {
						key, _, _ := strings.Cut(line, " ")
						if !slices.Contains(d.accepted, typ+" "+key) {
							bad = append(bad, line)
						}
					}
					if len(bad) > 0 {
						t.Errorf("%s packages %s lists and the other does not, or at another version:\n%s", typ, d.who, strings.Join(bad, "\n"))
					}
				}
			}
			t.Logf("packages (slimoci, syft): %v", counts)

			// Any image: the same sample as a docker-archive, which stores no manifest, gives the same
			// packages and no digest.
			if s != "python" {
				return
			}
			stdout, stderr, code = runCLI(t, "sbom", "--format", "spdx", "docker-archive:"+bed.DockerArchive(s))
			if code != 0 {
				t.Fatalf("slimoci sbom of the docker-archive: exit %d: %s", code, stderr)
			}
			if got := spdxPackages(t, []byte(stdout)); !maps.EqualFunc(got, ours, maps.Equal) {
				t.Errorf("the docker-archive's packages differ from the layout's:\nonly archive: %v\nonly layout: %v", diffAll(got, ours), diffAll(ours, got))
			}
			if strings.Contains(stdout, `"checksums"`) {
				t.Errorf("the docker-archive's SBOM has a checksum: it stores no manifest to have a digest of")
			}
		})
	}
}

func union(a, b map[string]map[string]string) map[string]bool {
	u := map[string]bool{}
	for k := range a {
		u[k] = true
	}
	for k := range b {
		u[k] = true
	}
	return u
}

func diffAll(a, b map[string]map[string]string) []string {
	var d []string
	for _, typ := range slices.Sorted(maps.Keys(a)) {
		for _, line := range diffPackages(a[typ], b[typ]) {
			d = append(d, typ+" "+line)
		}
	}
	return d
}
