package main

import (
	"archive/tar"
	"bytes"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	spdxjson "github.com/spdx/tools-golang/json"

	"github.com/slimoci/slimoci/reverse"
)

// dpkgStatus is a dpkg database of two installed packages and one removed (config-files only), which no
// SBOM lists.
const dpkgStatus = `Package: libc6
Status: install ok installed
Architecture: amd64
Source: glibc
Version: 2.36-9+deb12u7

Package: bash
Status: install ok installed
Architecture: amd64
Version: 5.2.15-2+b2

Package: gone
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0
`

// packagedImage is an image with a dpkg database and a Python package, created at a fixed date.
func packagedImage(t *testing.T) v1.Image {
	t.Helper()
	files := map[string]string{
		"var/lib/dpkg/status":                dpkgStatus,
		"var/lib/dpkg/info/libc6.list":       "/.\n/usr\n/usr/lib\n/usr/lib/x86_64-linux-gnu\n/usr/lib/x86_64-linux-gnu/libc.so.6\n",
		"var/lib/dpkg/info/bash.list":        "/.\n/usr\n/usr/bin\n/usr/bin/bash\n",
		"usr/lib/x86_64-linux-gnu/libc.so.6": "ELF",
		"usr/bin/bash":                       "ELF",
		"usr/lib/python3/dist-packages/flask-2.2.2.dist-info/METADATA": "Metadata-Version: 2.1\nName: Flask\nVersion: 2.2.2\nLicense: BSD-3-Clause\n",
		"usr/lib/python3/dist-packages/flask-2.2.2.dist-info/RECORD":   "flask/__init__.py,,\n",
		"usr/lib/python3/dist-packages/flask/__init__.py":              "",
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	dirs := map[string]bool{}
	for _, n := range names {
		for d := filepath.Dir(n); d != "."; d = filepath.Dir(d) {
			dirs[d] = true
		}
	}
	for _, d := range slices.Sorted(maps.Keys(dirs)) {
		if err := tw.WriteHeader(&tar.Header{Name: d + "/", Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(files[n]))}); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, files[n])
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Created = v1.Time{Time: time.Date(2024, 3, 4, 5, 6, 7, 0, time.UTC)}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestSbom(t *testing.T) {
	img := packagedImage(t)
	digest, _ := img.Digest()
	layout := writeLayout(t, img, "v1")
	ref := "oci:" + layout + ":v1"
	t.Setenv("SOURCE_DATE_EPOCH", "")

	out := filepath.Join(t.TempDir(), "new", "dir")
	stdout, stderr, code := runCLI(t, "sbom", "--output-dir", out, ref)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "3 packages (deb 2, pypi 1)") {
		t.Errorf("summary %q", stdout)
	}
	b, err := os.ReadFile(filepath.Join(out, "sbom.spdx.json"))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := spdxjson.Read(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if doc.CreationInfo.Created != "2024-03-04T05:06:07Z" {
		t.Errorf("created %q, want the image's creation date", doc.CreationInfo.Created)
	}
	got := map[string]string{}
	for _, p := range doc.Packages {
		got[p.PackageName] = p.PackageVersion
	}
	want := map[string]string{ref: digest.String(), "libc6": "2.36-9+deb12u7", "bash": "5.2.15-2+b2", "flask": "2.2.2"}
	for n, v := range want {
		if got[n] != v && !(n == "flask" && got["Flask"] == v) {
			t.Errorf("SPDX package %q: version %q, want %q (all: %v)", n, got[n], v, got)
		}
	}
	if _, ok := got["gone"]; ok || len(got) != len(want) {
		t.Errorf("SPDX packages %v, want %v (no removed package)", got, want)
	}

	f, err := os.Open(filepath.Join(out, "sbom.cdx.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var bom cdx.BOM
	if err := cdx.NewBOMDecoder(f, cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
		t.Fatal(err)
	}
	if bom.Metadata.Component.Version != digest.String() || bom.Components == nil || len(*bom.Components) != 3 {
		t.Errorf("CycloneDX image %+v, components %v", bom.Metadata.Component, bom.Components)
	}

	// --format prints one SBOM, the same bytes as the file (both dated by the image).
	stdout, stderr, code = runCLI(t, "sbom", "--format", "spdx", ref)
	if code != 0 || stdout != string(b) {
		t.Errorf("--format spdx: exit %d, %s; stdout is the file: %v", code, stderr, stdout == string(b))
	}
	// SOURCE_DATE_EPOCH dates it instead.
	t.Setenv("SOURCE_DATE_EPOCH", "86400")
	stdout, _, _ = runCLI(t, "sbom", "--format", "cyclonedx", ref)
	if !strings.Contains(stdout, `"timestamp": "1970-01-02T00:00:00Z"`) {
		t.Errorf("--format cyclonedx with SOURCE_DATE_EPOCH: %.400s", stdout)
	}

	// --json: the summary.
	dir2 := t.TempDir()
	stdout, stderr, code = runCLI(t, "sbom", "--json", "--output-dir", dir2, ref)
	var sum sbomResult
	oneDocument(t, stdout, &sum)
	if code != 0 || sum.Packages != 3 || sum.ByType["deb"] != 2 || sum.Digest != digest.String() ||
		!slices.Equal(sum.Files, []string{filepath.Join(dir2, "sbom.spdx.json"), filepath.Join(dir2, "sbom.cdx.json")}) {
		t.Errorf("exit %d %s: %+v", code, stderr, sum)
	}
}

func TestSbomUsage(t *testing.T) {
	layout := writeLayout(t, packagedImage(t), "v1")
	for _, args := range [][]string{
		{"sbom", "--format", "xml", layout},
		{"sbom", "--format", "spdx", "--output-dir", t.TempDir(), layout},
		{"sbom", "--format", "spdx", "--json", layout},
	} {
		stdout, stderr, code := runCLI(t, args...)
		if code != 2 || stdout != "" || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want a one-line usage error", args, code, stdout, stderr)
		}
	}
	// An image that is not there: an image error, and no file written.
	dir := t.TempDir()
	if _, stderr, code := runCLI(t, "sbom", "--output-dir", dir, "oci:"+filepath.Join(dir, "nothing")); code != 3 {
		t.Errorf("missing image: exit %d: %s", code, stderr)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("files left behind: %v", entries)
	}
}

// TestInfoPackages: info reads a one-layer image's packages as sbom does (unpackPackages), and removes what
// it unpacked.
func TestInfoPackages(t *testing.T) {
	layout := writeLayout(t, packagedImage(t), "v1")
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	stdout, stderr, code := runCLI(t, "info", "--json", "--no-measure", "oci:"+layout+":v1")
	var info reverse.Info
	oneDocument(t, stdout, &info)
	var got []string
	for _, p := range info.Packages {
		got = append(got, p.Type+" "+strings.ToLower(p.Name)+" "+p.Version)
	}
	slices.Sort(got)
	if want := []string{"deb bash 5.2.15-2+b2", "deb libc6 2.36-9+deb12u7", "pypi flask 2.2.2"}; code != 0 || !slices.Equal(got, want) {
		t.Errorf("exit %d %s: packages %q, want %q", code, stderr, got, want)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("left in TMPDIR: %v", left)
	}
}
