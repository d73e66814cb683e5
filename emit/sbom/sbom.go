// Package sbom writes an image's software bill of materials, SPDX 2.3 JSON and CycloneDX 1.6 JSON, from the
// packages its databases list (rootfs/pkgdb), through the formats' own libraries (spdx/tools-golang,
// CycloneDX/cyclonedx-go).
package sbom

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/github/go-spdx/v2/spdxexp"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/uuid"
	"github.com/package-url/packageurl-go"
	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx"
	"github.com/spdx/tools-golang/spdx/v2/common"

	"github.com/slimoci/slimoci/rootfs/pkgdb"
)

// Image names an image an SBOM describes or descends from.
type Image struct {
	// Name is the image's reference as the user gave it (registry/repo:tag, oci:DIR:tag, ...).
	Name string
	// Digest is the manifest's digest, sha256:...; empty for an image that stores no manifest (a
	// docker-archive).
	Digest string
}

// The SBOMs' file names, in a build's state directory and in `slimoci sbom`'s output directory.
const (
	SPDXFile      = "sbom.spdx.json"
	CycloneDXFile = "sbom.cdx.json"
)

// Tool is the creator both formats name.
const Tool = "slimoci"

// namespaceBase prefixes the SPDX documents' namespaces: a URI under the project's own address (SPDX 2.3
// §6.5 wants a unique URI, not one that resolves).
const namespaceBase = "https://github.com/slimoci/slimoci/sbom/"

// noAssertion is SPDX's "the document makes no claim".
const noAssertion = "NOASSERTION"

// The SPDX element IDs of the images: the document DESCRIBES the subject.
const (
	subjectID = "Image"
	sourceID  = "SourceImage"
)

// SPDX returns an SPDX 2.3 JSON document of subject holding pkgs: one SPDX package per pkgdb.Package (its
// PURL as a PACKAGE-MANAGER purl reference, its version and declared licence), each CONTAINED_BY the
// image's own package, which the document DESCRIBES. With source (the image subject was made from), the
// source is a package too (its digest as a SHA256 checksum and in its pkg:oci purl) and subject is
// DESCENDANT_OF it: SPDX 2.3 defines that as "same lineage but postdates", its example a patched version of
// a package, which is what a slim image is to its source, the same software with files removed.
// GENERATED_FROM is for an artifact made from its sources by a build (a binary from source code), which a
// slim image is not.
//
// The document is a function of its arguments alone: packages sorted by PURL, created as given (the build
// passes SOURCE_DATE_EPOCH or the source's creation date), the namespace derived from the subject's digest
// and the packages, so that the same image gives the same bytes.
func SPDX(subject Image, source *Image, pkgs []*pkgdb.Package, created time.Time) ([]byte, error) {
	pkgs = sorted(pkgs)
	ids := elementIDs(pkgs)
	doc := &spdx.Document{
		SPDXVersion:       spdx.Version,
		DataLicense:       spdx.DataLicense,
		SPDXIdentifier:    "DOCUMENT",
		DocumentName:      subject.Name,
		DocumentNamespace: namespaceBase + pathName(subject.Name) + "-" + contentKey(subject, source, pkgs),
		CreationInfo: &spdx.CreationInfo{
			Creators: []common.Creator{{CreatorType: "Tool", Creator: Tool}},
			Created:  created.UTC().Format(time.RFC3339),
		},
	}
	image, err := spdxImage(subjectID, subject)
	if err != nil {
		return nil, err
	}
	doc.Packages = append(doc.Packages, image)
	rel := func(a, kind, b string) {
		doc.Relationships = append(doc.Relationships, &spdx.Relationship{
			RefA: common.MakeDocElementID("", a), RefB: common.MakeDocElementID("", b), Relationship: kind})
	}
	rel("DOCUMENT", spdx.RelationshipDescribes, subjectID)
	if source != nil {
		src, err := spdxImage(sourceID, *source)
		if err != nil {
			return nil, err
		}
		doc.Packages = append(doc.Packages, src)
		rel(subjectID, spdx.RelationshipDescendantOf, sourceID)
	}
	refs := map[string]*spdx.OtherLicense{}
	for i, p := range pkgs {
		sp := &spdx.Package{
			PackageName:             displayName(p),
			PackageSPDXIdentifier:   common.ElementID(ids[i]),
			PackageVersion:          p.Version,
			PackageDownloadLocation: noAssertion,
			PackageLicenseConcluded: noAssertion,
			PackageLicenseDeclared:  spdxLicense(p.License, refs),
			PackageCopyrightText:    noAssertion,
			PackageSourceInfo:       sourceInfo(p),
			PrimaryPackagePurpose:   "LIBRARY",
		}
		if p.PURL != "" {
			sp.PackageExternalReferences = []*spdx.PackageExternalReference{
				{Category: spdx.CategoryPackageManager, RefType: spdx.PackageManagerPURL, Locator: p.PURL}}
		}
		doc.Packages = append(doc.Packages, sp)
		rel(ids[i], spdx.RelationshipContainedBy, subjectID)
	}
	for _, id := range sortedKeys(refs) {
		doc.OtherLicenses = append(doc.OtherLicenses, refs[id])
	}
	var buf bytes.Buffer
	if err := spdxjson.Write(doc, &buf, spdxjson.Indent("  ")); err != nil {
		return nil, fmt.Errorf("writing the SPDX document of %s: %w", subject.Name, err)
	}
	return buf.Bytes(), nil
}

// CycloneDX returns a CycloneDX 1.6 JSON BOM of subject holding pkgs: metadata.component is the image (type
// container, its pkg:oci purl and digest), source (when given) its pedigree's one ancestor, and each
// pkgdb.Package a component with its purl, version and licence. Deterministic as SPDX is: the serial number
// is a UUID (version 5) of the same key as the SPDX document's namespace.
func CycloneDX(subject Image, source *Image, pkgs []*pkgdb.Package, created time.Time) ([]byte, error) {
	pkgs = sorted(pkgs)
	ids := elementIDs(pkgs)
	image, err := cdxImage(subject)
	if err != nil {
		return nil, err
	}
	if source != nil {
		src, err := cdxImage(*source)
		if err != nil {
			return nil, err
		}
		image.Pedigree = &cdx.Pedigree{Ancestors: &[]cdx.Component{*src}}
	}
	bom := cdx.NewBOM()
	key := namespaceBase + pathName(subject.Name) + "-" + contentKey(subject, source, pkgs)
	bom.SerialNumber = uuid.NewSHA1(uuid.NameSpaceURL, []byte(key)).URN()
	bom.Metadata = &cdx.Metadata{
		Timestamp: created.UTC().Format(time.RFC3339),
		Tools:     &cdx.ToolsChoice{Components: &[]cdx.Component{{Type: cdx.ComponentTypeApplication, Name: Tool}}},
		Component: image,
	}
	components := make([]cdx.Component, 0, len(pkgs))
	for i, p := range pkgs {
		c := cdx.Component{
			BOMRef:     ids[i],
			Type:       cdx.ComponentTypeLibrary,
			Name:       p.Name,
			Version:    p.Version,
			PackageURL: p.PURL,
			Licenses:   cdxLicenses(p.License),
		}
		if p.Type == pkgdb.Npm || p.Type == pkgdb.Maven {
			c.Group = p.Namespace
		}
		components = append(components, c)
	}
	bom.Components = &components
	var buf bytes.Buffer
	enc := cdx.NewBOMEncoder(&buf, cdx.BOMFileFormatJSON)
	enc.SetPretty(true)
	if err := enc.EncodeVersion(bom, cdx.SpecVersion1_6); err != nil {
		return nil, fmt.Errorf("writing the CycloneDX BOM of %s: %w", subject.Name, err)
	}
	return buf.Bytes(), nil
}

// sorted returns pkgs ordered by PURL, then by database, without the nil ones.
func sorted(pkgs []*pkgdb.Package) []*pkgdb.Package {
	out := make([]*pkgdb.Package, 0, len(pkgs))
	for _, p := range pkgs {
		if p != nil {
			out = append(out, p)
		}
	}
	slices.SortStableFunc(out, func(a, b *pkgdb.Package) int {
		return strings.Compare(a.PURL+"\x00"+a.DB, b.PURL+"\x00"+b.DB)
	})
	return out
}

// notIDChars are the characters SPDX element and licence reference IDs may not hold ([a-zA-Z0-9.-] only).
var notIDChars = regexp.MustCompile(`[^A-Za-z0-9.-]+`)

// elementIDs names each package, in both formats: its type and name made safe for an SPDX ID, and a hash of
// its PURL and database, which two entries of the same package (the same wheel in two site-packages) differ
// in.
func elementIDs(pkgs []*pkgdb.Package) []string {
	ids := make([]string, len(pkgs))
	for i, p := range pkgs {
		sum := sha256.Sum256([]byte(p.PURL + "\x00" + p.DB + "\x00" + p.Name + "\x00" + p.Version))
		safe := strings.Trim(notIDChars.ReplaceAllString(p.Type+"-"+p.Name, "-"), "-")
		ids[i] = "Package-" + safe + "-" + hex.EncodeToString(sum[:8])
	}
	return ids
}

// contentKey is a digest of what the document says: the subject's and source's names and digests, and every
// package. The SPDX namespace and the CycloneDX serial number are made from it, so that two documents share
// them only when they describe the same thing.
func contentKey(subject Image, source *Image, pkgs []*pkgdb.Package) string {
	h := sha256.New()
	fmt.Fprintf(h, "%q %q\n", subject.Name, subject.Digest)
	if source != nil {
		fmt.Fprintf(h, "%q %q\n", source.Name, source.Digest)
	}
	for _, p := range pkgs {
		fmt.Fprintf(h, "%q %q %q %q %q\n", p.PURL, p.DB, p.Name, p.Version, p.License)
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// pathName is name made safe for a URI's path segment.
func pathName(n string) string {
	s := strings.Trim(notIDChars.ReplaceAllString(ociName(n), "-"), "-")
	if s == "" {
		return "image"
	}
	return s
}

// ociPURL is the image's package URL as the purl spec's oci type has it: the repository's last path
// element as the name, the digest as the version, the repository and tag as qualifiers
// (pkg:oci/python@sha256%3A...?repository_url=localhost/slimoci/python&tag=latest). An image outside a
// registry (a layout, an archive) has no repository_url.
func ociPURL(img Image) string {
	var q packageurl.Qualifiers
	if ref, ok := registryRef(img.Name); ok {
		q = append(q, packageurl.Qualifier{Key: "repository_url", Value: ref.Context().Name()})
		// ggcr gives every reference without a digest a tag, "latest" if none is written: only a written
		// one is the image's.
		rest := strings.TrimPrefix(img.Name, "docker://")
		if t, ok := ref.(name.Tag); ok && strings.Contains(rest[strings.LastIndex(rest, "/")+1:], ":") {
			q = append(q, packageurl.Qualifier{Key: "tag", Value: t.TagStr()})
		}
	}
	return packageurl.NewPackageURL("oci", "", ociName(img.Name), img.Digest, q, "").ToString()
}

// registryRef parses an image name that names a registry image (registry/repo:tag, docker://...), and
// refuses the other transports (oci:DIR, oci-archive:FILE, docker-archive:FILE) and paths.
func registryRef(n string) (name.Reference, bool) {
	rest, docker := strings.CutPrefix(n, "docker://")
	if !docker {
		if prefix, _, ok := strings.Cut(n, ":"); ok && slices.Contains(pathTransports, prefix) {
			return nil, false
		}
		if strings.HasPrefix(n, "/") || strings.HasPrefix(n, ".") {
			return nil, false
		}
	}
	ref, err := name.ParseReference(rest)
	return ref, err == nil
}

// pathTransports are the transports (as oci.Reference writes them) whose images are files on this machine.
var pathTransports = []string{"oci", "oci-archive", "docker-archive"}

// ociName is the name in an image's purl: its repository's last path element, lowercased, without a tag or
// digest; for a layout or an archive, the directory's or file's base name.
func ociName(n string) string {
	if ref, ok := registryRef(n); ok {
		return path.Base(ref.Context().RepositoryStr())
	}
	if prefix, rest, ok := strings.Cut(n, ":"); ok && slices.Contains(pathTransports, prefix) {
		n, _, _ = strings.Cut(rest, ":") // oci.Reference's paths hold no ':'
	}
	n, _, _ = strings.Cut(n, "@")
	base := path.Base(strings.TrimRight(n, "/"))
	for _, ext := range []string{".tar.gz", ".tgz", ".tar"} {
		base = strings.TrimSuffix(base, ext)
	}
	base = strings.ToLower(base)
	if base == "" || base == "." || base == "/" {
		return "image"
	}
	return base
}

// digestHex is the hex of a sha256:... digest, or an error for anything else.
func digestHex(d string) (string, error) {
	hexPart, ok := strings.CutPrefix(d, "sha256:")
	if _, err := hex.DecodeString(hexPart); !ok || err != nil || len(hexPart) != 64 {
		return "", fmt.Errorf("image digest %q: want sha256:<64 hex digits>", d)
	}
	return hexPart, nil
}

// spdxImage is the SPDX package of an image: a CONTAINER with its manifest digest as a SHA256 checksum and
// its pkg:oci purl.
func spdxImage(id string, img Image) (*spdx.Package, error) {
	p := &spdx.Package{
		PackageName:             img.Name,
		PackageSPDXIdentifier:   common.ElementID(id),
		PackageVersion:          img.Digest,
		PackageDownloadLocation: noAssertion,
		PackageLicenseConcluded: noAssertion,
		PackageLicenseDeclared:  noAssertion,
		PackageCopyrightText:    noAssertion,
		PrimaryPackagePurpose:   "CONTAINER",
		PackageExternalReferences: []*spdx.PackageExternalReference{
			{Category: spdx.CategoryPackageManager, RefType: spdx.PackageManagerPURL, Locator: ociPURL(img)}},
	}
	if img.Digest != "" {
		h, err := digestHex(img.Digest)
		if err != nil {
			return nil, err
		}
		p.PackageChecksums = []common.Checksum{{Algorithm: common.SHA256, Value: h}}
	}
	return p, nil
}

// cdxImage is the CycloneDX component of an image: a container with its digest as the version and a
// SHA-256 hash, and its pkg:oci purl as purl and bom-ref.
func cdxImage(img Image) (*cdx.Component, error) {
	purl := ociPURL(img)
	c := &cdx.Component{BOMRef: purl, Type: cdx.ComponentTypeContainer, Name: img.Name, Version: img.Digest, PackageURL: purl}
	if img.Digest != "" {
		h, err := digestHex(img.Digest)
		if err != nil {
			return nil, err
		}
		c.Hashes = &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: h}}
	}
	return c, nil
}

// displayName is the SPDX package's name: npm's scoped names keep their scope (@babel/core), as npm writes
// them; the other types' namespaces are in the purl.
func displayName(p *pkgdb.Package) string {
	if p.Type == pkgdb.Npm && p.Namespace != "" {
		return p.Namespace + "/" + p.Name
	}
	return p.Name
}

// sourceInfo says which source package a binary package was built from, as dpkg and apk record it.
func sourceInfo(p *pkgdb.Package) string {
	if p.Source == "" || p.Source == p.Name && (p.SourceVersion == "" || p.SourceVersion == p.Version) {
		return ""
	}
	v := p.SourceVersion
	if v == "" {
		v = p.Version
	}
	return "built package from: " + p.Source + " " + v
}

// spdxExpression returns the licence as a normalised SPDX licence expression, or false when it is not one
// (Debian's "GPL-2+", Python's "BSD License").
func spdxExpression(license string) (string, bool) {
	norm, invalid := spdxexp.ValidateAndNormalizeLicensesWithOptions([]string{license}, spdxexp.ValidateLicensesOptions{})
	if len(invalid) > 0 || len(norm) != 1 {
		return "", false
	}
	return norm[0], true
}

// spdxLicense is the package's licenseDeclared: its licence when that is an SPDX expression; otherwise a
// LicenseRef- whose extracted text is the licence as the database states it (added to refs); NOASSERTION
// when the database states none.
func spdxLicense(license string, refs map[string]*spdx.OtherLicense) string {
	license = strings.TrimSpace(license)
	if license == "" {
		return noAssertion
	}
	if expr, ok := spdxExpression(license); ok {
		return expr
	}
	sum := sha256.Sum256([]byte(license))
	safe := strings.Trim(notIDChars.ReplaceAllString(license, "-"), "-")
	if len(safe) > 40 {
		safe = strings.TrimRight(safe[:40], "-.")
	}
	id := "LicenseRef-" + safe + "-" + hex.EncodeToString(sum[:4])
	if safe == "" {
		id = "LicenseRef-" + hex.EncodeToString(sum[:4])
	}
	refs[id] = &spdx.OtherLicense{LicenseIdentifier: id, ExtractedText: license, LicenseName: license}
	return id
}

// cdxLicenses is the component's licences: an SPDX licence ID as an id, an expression as an expression,
// anything else by name; nil when the database states none.
func cdxLicenses(license string) *cdx.Licenses {
	license = strings.TrimSpace(license)
	if license == "" {
		return nil
	}
	expr, ok := spdxExpression(license)
	switch {
	case !ok:
		return &cdx.Licenses{{License: &cdx.License{Name: license}}}
	case strings.ContainsAny(expr, " ()"):
		return &cdx.Licenses{{Expression: expr}}
	default:
		return &cdx.Licenses{{License: &cdx.License{ID: expr}}}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
