package main

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/slimoci/slimoci"
	"github.com/slimoci/slimoci/emit/sbom"
	"github.com/slimoci/slimoci/internal/atomicfile"
	"github.com/slimoci/slimoci/internal/termsafe"
	"github.com/slimoci/slimoci/oci"
	"github.com/slimoci/slimoci/rootfs"
	"github.com/slimoci/slimoci/rootfs/pkgdb"
)

// SbomCmd writes the SBOM of any image: it unpacks the image into a temporary directory (removed at the
// end), reads its package databases (pkgdb.Read) and writes SPDX 2.3 and CycloneDX 1.6 JSON.
type SbomCmd struct {
	Image     string `arg:"" help:"Image to describe." name:"IMAGE"`
	OutputDir string `help:"Directory to write sbom.spdx.json and sbom.cdx.json into, created if missing (default: the current directory)." type:"path" placeholder:"DIR"`
	Format    string `help:"Print one SBOM on stdout instead of writing both: spdx (SPDX 2.3 JSON) or cyclonedx (CycloneDX 1.6 JSON)." placeholder:"FORMAT"`
}

// sbomResult is sbom's --json document.
type sbomResult struct {
	Image string `json:"image"`
	// Digest is the manifest's; empty for a docker-archive, which stores no manifest.
	Digest   string `json:"digest,omitempty"`
	Packages int    `json:"packages"`
	// ByType counts the packages by type (deb, apk, pypi, npm, gem, maven).
	ByType map[string]int `json:"byType"`
	// Files are the SBOMs written, SPDX's first.
	Files []string `json:"files"`
	// Unreadable are the language packages' metadata files Read skipped, and why.
	Unreadable []string `json:"unreadable,omitempty"`
}

// Validate refuses a --format other than spdx and cyclonedx, and --format with --output-dir: a usage error.
func (c *SbomCmd) Validate() error {
	switch {
	case c.Format != "" && c.Format != "spdx" && c.Format != "cyclonedx":
		return fmt.Errorf("--format %q: want spdx or cyclonedx", c.Format)
	case c.Format != "" && c.OutputDir != "":
		return fmt.Errorf("--format prints the SBOM on stdout and writes no files: drop --output-dir")
	}
	return nil
}

func (c *SbomCmd) Run(ctx context.Context, g *Globals) (err error) {
	if c.Format != "" && g.JSON {
		return usage(fmt.Errorf("--format prints the SBOM on stdout, where --json prints the summary: use one"))
	}
	dir := c.OutputDir
	if dir == "" {
		dir = "."
	}
	src, err := g.open(ctx, c.Image)
	if err != nil {
		return err
	}
	defer src.Close()
	ref := src.Ref
	created, err := sourceDateEpoch()
	if err != nil {
		return usage(err)
	}

	st := g.stage(slimoci.StageUnpack, ref.String())
	set, config, err := unpackPackages(ctx, src, g, func(p rootfs.Progress) { st.bytes(p.Read, p.Total, p.Files) })
	st.done(err == nil)
	if err != nil {
		return err
	}
	for _, u := range set.Unreadable {
		g.logger.Warn("package metadata skipped", "why", u)
	}

	// Dated as a build dates its SBOMs (SOURCE_DATE_EPOCH, else the image's creation), so that the same
	// image gives the same bytes; an image without a date gets the epoch.
	if created == nil {
		t := time.Unix(0, 0).UTC()
		if !config.Created.IsZero() {
			t = config.Created.UTC()
		}
		created = &t
	}
	img := sbom.Image{Name: ref.String()}
	if src.Digest != (v1.Hash{}) {
		img.Digest = src.Digest.String()
	}
	docs := []struct {
		format, file string
		gen          func(sbom.Image, *sbom.Image, []*pkgdb.Package, time.Time) ([]byte, error)
	}{{"spdx", sbom.SPDXFile, sbom.SPDX}, {"cyclonedx", sbom.CycloneDXFile, sbom.CycloneDX}}

	r := sbomResult{Image: ref.String(), Digest: img.Digest, Packages: len(set.Packages), ByType: map[string]int{}, Files: []string{}, Unreadable: set.Unreadable}
	for _, p := range set.Packages {
		r.ByType[p.Type]++
	}
	for _, d := range docs {
		if c.Format != "" && c.Format != d.format {
			continue
		}
		b, err := d.gen(img, nil, set.Packages, *created)
		if err != nil {
			return err
		}
		if c.Format != "" {
			if _, err := g.stdout.Write(b); err != nil {
				return fmt.Errorf("writing the SBOM: %w", err)
			}
			return nil
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("making %s: %w", dir, err)
		}
		f := filepath.Join(dir, d.file)
		if err := atomicfile.WriteBytes(f, b); err != nil {
			return fmt.Errorf("writing %s: %w", f, err)
		}
		r.Files = append(r.Files, f)
	}
	if g.JSON {
		return g.printJSON(r)
	}
	if g.Quiet {
		return nil
	}
	var types []string
	for _, t := range slices.Sorted(maps.Keys(r.ByType)) {
		types = append(types, fmt.Sprintf("%s %d", t, r.ByType[t]))
	}
	summary := "no packages"
	if len(types) > 0 {
		summary = fmt.Sprintf("%d packages (%s)", r.Packages, strings.Join(types, ", "))
	}
	fmt.Fprintln(g.stdout, termsafe.String(fmt.Sprintf("wrote %s: %s of %s", strings.Join(r.Files, " and "), summary, ref)))
	return nil
}

// unpackPackages unpacks src into a temporary directory, removed before it returns (with rootfs.RemoveTree:
// an image's tree may hold read-only directories, which os.RemoveAll stops at), and reads its package
// databases. It returns them with the image's config. progress, when not nil, is called as the unpack goes.
func unpackPackages(ctx context.Context, src *oci.Source, g *Globals, progress func(rootfs.Progress)) (*pkgdb.Set, *v1.ConfigFile, error) {
	dir, err := os.MkdirTemp("", "slimoci-packages-")
	if err != nil {
		return nil, nil, fmt.Errorf("making a directory to unpack %s into: %w", src.Ref, err)
	}
	defer rootfs.RemoveTree(dir)
	tree, err := rootfs.Unpack(ctx, src.Image, filepath.Join(dir, "rootfs"), &rootfs.Options{Jobs: min(g.Jobs, 2), Logger: g.logger, Progress: progress})
	if err != nil {
		return nil, nil, fmt.Errorf("unpacking %s to read its packages: %w", src.Ref, err)
	}
	set, err := pkgdb.Read(tree)
	if err != nil {
		return nil, nil, fmt.Errorf("reading %s's packages: %w", src.Ref, err)
	}
	return set, tree.Config, nil
}
