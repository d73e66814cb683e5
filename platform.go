package slimoci

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/slimoci/slimoci/oci"
	"github.com/slimoci/slimoci/rootfs"
	"github.com/slimoci/slimoci/runner"
)

// platformPlan is which platforms of the source Build slims.
type platformPlan struct {
	// index: several platforms, into an index; then build are they, in order.
	index bool
	build []v1.Platform
	// want is the one platform to pick (nil: JobOptions.OCI's).
	want *v1.Platform
	// source is what the source offers.
	source *oci.IndexPlatforms
}

// others are the source index's platforms that the one platform built is not.
func (pp *platformPlan) others(built string) []string {
	if pp.source == nil {
		return nil
	}
	var out []string
	for _, p := range pp.source.Platforms {
		if s := p.String(); s != built {
			out = append(out, s)
		}
	}
	return out
}

// platforms reads which platforms the source has (manifests only) and decides which to build. A platform
// asked for that the source lacks is an oci.ErrPlatform naming what it has, before anything is pulled.
func (bo *BuildOptions) platforms(ctx context.Context, image string) (*platformPlan, error) {
	ref, err := oci.ParseReference(image)
	if err != nil {
		return nil, err
	}
	pp := &platformPlan{}
	if len(bo.Platforms) == 1 {
		pp.want = &bo.Platforms[0]
	}
	if ref.Transport == oci.DockerArchive {
		// One image, always: docker save's format has no index.
		return pp, nil
	}
	if pp.source, err = oci.ListPlatforms(ctx, ref, bo.OCI); err != nil {
		return nil, err
	}
	have := pp.source.Platforms
	multi := pp.source.Index != nil || len(have) > 1
	if !bo.AllPlatforms && len(bo.Platforms) <= 1 {
		return pp, nil
	}
	if !multi {
		// A single image: built as one, when it is one of those asked for.
		if !bo.AllPlatforms && len(have) == 1 && !slices.ContainsFunc(bo.Platforms, func(w v1.Platform) bool { return oci.PlatformMatches(have[0], w) }) {
			return nil, fmt.Errorf("%s: %w: the image is %s, not %s", ref, oci.ErrPlatform, have[0].String(), platformList(bo.Platforms))
		}
		pp.want = nil
		return pp, nil
	}
	pp.index = true
	if bo.AllPlatforms {
		pp.build = have
	} else {
		for _, w := range bo.Platforms {
			i := slices.IndexFunc(have, func(h v1.Platform) bool { return oci.PlatformMatches(h, w) })
			if i < 0 {
				return nil, fmt.Errorf("%s: %w: no image for %s (available: %s)", ref, oci.ErrPlatform, w.String(), platformList(have))
			}
			if !slices.ContainsFunc(pp.build, func(b v1.Platform) bool { return b.Equals(have[i]) }) {
				pp.build = append(pp.build, have[i])
			}
		}
	}
	if len(pp.build) == 0 {
		return nil, fmt.Errorf("%s: %w: the index names no platforms", ref, oci.ErrPlatform)
	}
	if len(pp.build) == 1 {
		// One platform of an index: one image, as --platform P makes.
		pp.index, pp.want = false, &pp.build[0]
	}
	return pp, nil
}

func platformList(ps []v1.Platform) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}

// PlatformDir is the state directory's subdirectory for a platform's artifacts when Build slims several:
// os-arch[-variant], such as linux-arm64-v8.
func PlatformDir(p v1.Platform) string {
	return strings.NewReplacer("/", "-", ":", "-").Replace(p.String())
}

// platformOf is the platform the unpacked image's config names (os/arch[/variant]).
func platformOf(tree *rootfs.Tree) string {
	if p := treePlatform(tree); p != nil {
		return p.String()
	}
	return ""
}

// emulator is the emulator the unpacked image's platform runs under on this host (runner.CheckEmulation):
// nil when the host runs it natively; when it needs one the host lacks, the error says how to get one.
func emulator(tree *rootfs.Tree) (*runner.Emulator, error) {
	p := treePlatform(tree)
	if p == nil {
		return nil, nil
	}
	return runner.CheckEmulation(*p)
}

// treePlatform is the platform the unpacked image's config names; nil when it names no architecture.
func treePlatform(tree *rootfs.Tree) *v1.Platform {
	if tree == nil || tree.Config == nil || tree.Config.Architecture == "" {
		return nil
	}
	p := tree.Config.Platform()
	if p.OS == "" {
		p.OS = "linux"
	}
	return p
}

// buildIndex builds each platform of pp, one after another, and delivers the index of the slim images.
func (bo *BuildOptions) buildIndex(ctx context.Context, image string, pp *platformPlan, kept map[string]bool, p *progress) (*BuildResult, error) {
	start := time.Now()
	ref, err := oci.ParseReference(image)
	if err != nil {
		return nil, err
	}
	for _, d := range bo.Destinations {
		if err := oci.HoldsIndex(d.Reference); err != nil {
			return nil, err
		}
	}
	res := &BuildResult{Image: ref.String(), StateDir: bo.StateDir, Warnings: []string{}}
	if pp.source.Index != nil {
		res.SourceDigest = pp.source.Index.String()
	}
	var built []*oneBuild
	defer func() {
		for _, b := range built {
			b.close()
		}
	}()
	// Every platform's emulator is checked before anything is pulled: a missing one fails the build now.
	for _, plat := range pp.build {
		if _, err := runner.CheckEmulation(plat); err != nil {
			return nil, err
		}
	}
	var imgs []oci.PlatformImage
	for _, plat := range pp.build {
		sub := *bo
		oc := *bo.OCI
		oc.Platform = &plat
		sub.OCI = &oc
		sub.StateDir = filepath.Join(bo.StateDir, PlatformDir(plat))
		if sub.Report != ReportOff {
			sub.Report = ""
		}
		one, err := sub.buildOne(ctx, image, kept, p.forPlatform(plat.String()))
		if one != nil {
			built = append(built, one)
			res.Manifests = append(res.Manifests, one.res)
		}
		if err != nil {
			return res, fmt.Errorf("%s: %w", plat.String(), err)
		}
		one.res.Seconds = time.Since(one.start).Seconds()
		imgs = append(imgs, oci.PlatformImage{Platform: plat, Image: one.pr.Image})
		res.FatBytes += one.res.FatBytes
		res.SlimBytes += one.res.SlimBytes
		res.CompressedBytes += one.res.CompressedBytes
		for _, w := range one.res.Warnings {
			res.Warnings = append(res.Warnings, plat.String()+": "+w)
		}
	}
	ann := map[string]string{"org.opencontainers.image.base.name": ref.String()}
	if res.SourceDigest != "" {
		ann["org.opencontainers.image.base.digest"] = res.SourceDigest
	}
	idx, err := oci.NewIndex(imgs, ann)
	if err != nil {
		return res, err
	}
	d, err := idx.Digest()
	if err != nil {
		return res, fmt.Errorf("the slim index's digest: %w", err)
	}
	res.Digest = d.String()
	// The index is verified when each of its images is.
	res.Verified = !slices.ContainsFunc(built, func(b *oneBuild) bool { return !b.res.Verified })
	if err := bo.deliver(ctx, res, ref, nil, idx, built, p); err != nil {
		return res, err
	}
	for _, b := range built {
		b.res.Destinations = res.Destinations
		if err := b.report(bo); err != nil {
			return res, err
		}
		// A platform's report is in its own directory, whatever JobOptions.Report says: the index's goes there.
		sub := *bo
		sub.StateDir = b.res.StateDir
		sub.removeArtifacts(b.res)
	}
	res.Seconds = time.Since(start).Seconds()
	if res.Report, err = bo.writeReport(IndexReport{Image: res.Image, Digest: res.SourceDigest, Slim: res.Digest, Outputs: res.Destinations,
		FatSize: res.FatBytes, SlimSize: res.SlimBytes, Manifests: res.Manifests}); err != nil {
		return res, err
	}
	if bo.RemoveArtifacts {
		res.StateDir, res.Report = "", ""
	}
	return res, nil
}

// IndexReport is report.json of a build that made an index: the index, and each platform's build (whose own
// report.json is in its PlatformDir).
type IndexReport struct {
	Image     string         `json:"image"`
	Digest    string         `json:"digest,omitempty"`
	Slim      string         `json:"slimDigest"`
	Outputs   []string       `json:"outputs"`
	FatSize   int64          `json:"fatBytes"`
	SlimSize  int64          `json:"slimBytes"`
	Manifests []*BuildResult `json:"manifests"`
}
