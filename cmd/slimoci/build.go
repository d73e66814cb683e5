package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/slimoci/slimoci"
	"github.com/slimoci/slimoci/internal/termsafe"
	"github.com/slimoci/slimoci/oci"
)

// BuildCmd is the main job: observe the app, keep what it needs, write a one-layer image, verify it, deliver.
type BuildCmd struct {
	Image               string   `arg:"" help:"Image to slim." name:"IMAGE"`
	Tag                 []string `help:"With --push, a registry reference to push the slim image to (default: the source repository with .slim appended to its name, same tag); without, a name for the outputs that name none (an OCI layout's or archive's ref.name, a docker-archive's name:tag) (repeatable)." placeholder:"REF" sep:"none"`
	Push                bool     `help:"Push the slim image to --tag."`
	Output              []string `help:"Also write the slim image here: oci:DIR[:tag], docker-archive:FILE[:name:tag], oci-archive:FILE[:tag] or a registry reference (repeatable). Without --push or --output it goes to the OCI layout STATE/image." placeholder:"DEST" sep:"none"`
	StatePath           string   `help:"Directory for the artifacts: report.json, Dockerfile.fat, seccomp.json, apparmor.profile, kept.json, dropped.json, packages.json, sbom.spdx.json, sbom.cdx.json." default:"slimoci-state" type:"path"`
	Compression         string   `help:"Layer compression: gzip (klauspost, level 3) or zstd." enum:"gzip,zstd" default:"gzip"`
	Verify              bool     `help:"Run the slim image under the same probes; repair it from what its run missed, or fail (nothing is pushed)." default:"true" negatable:""`
	VerifyRounds        int      `help:"How many slim images verify may build before it gives up." default:"3"`
	RemoveFileArtifacts bool     `help:"Remove the artifacts (the state path's files) at the end."`
	ObserveFlags
	KeepFlags
	ImageFlags
}

func (c *BuildCmd) Run(ctx context.Context, g *Globals) error {
	run, stop, err := c.runOptions(g)
	if err != nil {
		return err
	}
	defer stop()
	opts, done, err := c.options(g)
	if err != nil {
		return err
	}
	opts.Run = *run
	res, err := slimoci.Build(ctx, c.Image, opts)
	done()
	if err != nil {
		if res != nil && res.Fat != nil && !g.JSON && !g.Quiet {
			// What the app did is worth seeing when the build fails.
			summary(g.humanOut(), res.Image, res.Fat)
		}
		return err
	}
	if g.JSON {
		return g.printJSON(res)
	}
	if !g.Quiet {
		buildSummary(g.stdout, res)
	}
	return nil
}

// Validate checks every flag and their combinations before anything is pulled (kong: a usage error).
func (c *BuildCmd) Validate() error {
	if err := c.ObserveFlags.validate(); err != nil {
		return err
	}
	_, err := c.flagOptions()
	return err
}

// options turns the flags into the library's options (all but Run).
// The job's progress is drawn until done is called, after the build.
func (c *BuildCmd) options(g *Globals) (_ *slimoci.BuildOptions, done func(), err error) {
	opts, err := c.flagOptions()
	if err != nil {
		return nil, nil, usage(err)
	}
	if opts.Epoch, err = sourceDateEpoch(); err != nil {
		return nil, nil, err
	}
	// Several platforms are the build's to choose, one at a time: the job's own options pick none.
	if opts.Platforms, opts.AllPlatforms, err = g.platforms(); err != nil {
		return nil, nil, usage(err)
	}
	jg := *g
	jg.Platform = ""
	job, done, err := c.job(&jg, c.StatePath, c.WorkDir)
	if err != nil {
		return nil, nil, usage(err)
	}
	opts.JobOptions = *job
	return opts, done, nil
}

// flagOptions checks build's own flags and turns them into the library's options, but for the job's.
func (c *BuildCmd) flagOptions() (*slimoci.BuildOptions, error) {
	keep, err := c.KeepFlags.plan()
	if err != nil {
		return nil, err
	}
	if c.VerifyRounds < 1 {
		return nil, fmt.Errorf("--verify-rounds %d: want at least 1", c.VerifyRounds)
	}
	srcRef, err := oci.ParseReference(c.Image)
	if err != nil {
		return nil, err
	}
	dests, err := c.destinations(srcRef)
	if err != nil {
		return nil, err
	}
	edits, err := c.ImageFlags.edits()
	if err != nil {
		return nil, err
	}
	if _, err := slimoci.ParseImageOverrides(c.ImageOverrides); err != nil {
		return nil, err
	}
	return &slimoci.BuildOptions{
		Keep: keep.closure(), ImageOverrides: c.ImageOverrides, Edits: *edits,
		Compression: c.Compression, NoVerify: !c.Verify, VerifyRounds: c.VerifyRounds, Destinations: dests,
		RemoveArtifacts: c.RemoveFileArtifacts, NoPackageDB: !keep.packageDB,
	}, nil
}

// buildSummary prints what the build did: the fat run, verify, what was kept and dropped, the sizes, where
// the image went. Paths and library names are the image's: escaped for the terminal.
func buildSummary(w io.Writer, res *slimoci.BuildResult) {
	if len(res.Manifests) > 0 {
		indexSummary(w, res)
		return
	}
	manifestSummary(w, res)
	if res.Platform != "" && len(res.OtherPlatforms) > 0 {
		fmt.Fprintf(w, "slimmed %s of the index's platforms; not slimmed: %s (--platform all slims every one)\n",
			termsafe.String(res.Platform), termsafe.String(strings.Join(res.OtherPlatforms, ", ")))
	}
	deliverySummary(w, res)
}

// indexSummary prints each platform's summary, then the index's.
func indexSummary(w io.Writer, res *slimoci.BuildResult) {
	for _, m := range res.Manifests {
		how := "native"
		if m.Emulated {
			how = "emulated"
		}
		fmt.Fprintf(w, "== %s (%s, %.1f s)\n", termsafe.String(m.Platform), how, m.Seconds)
		manifestSummary(w, m)
		if m.StateDir != "" {
			fmt.Fprintf(w, "artifacts in %s\n", m.StateDir)
		}
	}
	platforms := make([]string, len(res.Manifests))
	for i, m := range res.Manifests {
		platforms[i] = m.Platform
	}
	fmt.Fprintf(w, "== index of %s\n%s: %s -> %s (%.1fx smaller), %s compressed, in %.1f s\n", termsafe.String(strings.Join(platforms, ", ")),
		res.Digest, mb(res.FatBytes), mb(res.SlimBytes), float64(res.FatBytes)/float64(max(res.SlimBytes, 1)), mb(res.CompressedBytes), res.Seconds)
	for _, out := range res.Destinations {
		fmt.Fprintf(w, "wrote %s\n", termsafe.String(out))
	}
}

// manifestSummary is one image's: its run, verify, warnings, packages, kept paths and sizes.
func manifestSummary(w io.Writer, res *slimoci.BuildResult) {
	summary(w, res.Image, res.Fat)
	if res.Verified {
		fmt.Fprintf(w, "verified: the slim image answered every probe as the fat one (%d round(s))\n", res.VerifyRounds)
	}
	if len(res.AddedByVerify) > 0 {
		fmt.Fprintf(w, "verify added back: %s\n", termsafe.String(strings.Join(res.AddedByVerify, ", ")))
	}
	for _, m := range res.Warnings {
		fmt.Fprintf(w, "warning: %s\n", termsafe.String(m))
	}
	if p := res.Packages; p != nil {
		fmt.Fprintf(w, "packages: %d kept, %d dropped; largest dropped:", p.Kept, p.Dropped)
		for _, d := range p.LargestDropped {
			fmt.Fprintf(w, " %s %s", termsafe.String(d.Name), mb(d.Bytes))
		}
		fmt.Fprintln(w)
		for _, a := range p.Attached {
			fmt.Fprintf(w, "attached an SBOM: %s\n", termsafe.String(a))
		}
	}
	fmt.Fprintf(w, "kept %d of %d paths; largest dropped:", res.KeptPaths, res.Paths)
	for _, d := range res.LargestDropped {
		fmt.Fprintf(w, " %s %s", termsafe.String(d.Path), mb(d.Size))
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "%s: %s -> %s (%.1fx smaller), %s compressed; %s\n", res.Digest, mb(res.FatBytes), mb(res.SlimBytes),
		float64(res.FatBytes)/float64(max(res.SlimBytes, 1)), mb(res.CompressedBytes), stageLine(res.Stages))
}

// deliverySummary says where the image went and where the artifacts are.
func deliverySummary(w io.Writer, res *slimoci.BuildResult) {
	for _, out := range res.Destinations {
		fmt.Fprintf(w, "wrote %s\n", termsafe.String(out))
	}
	if res.StateDir != "" {
		fmt.Fprintf(w, "artifacts in %s\n", res.StateDir)
	}
}

// destinations reads --push, --tag and --output. With --push each --tag is a registry reference pushed to
// (one by default, slimTag); without, the tags name the outputs that name no image themselves (oci:DIR,
// oci-archive:FILE, docker-archive:FILE, and the default layout STATE/image, otherwise tagged as the source).
func (c *BuildCmd) destinations(src oci.Reference) ([]slimoci.Destination, error) {
	var dests []slimoci.Destination
	var names []string
	if c.Push {
		tags := c.Tag
		if len(tags) == 0 {
			tag, err := slimTag(src)
			if err != nil {
				return nil, err
			}
			tags = []string{tag}
		}
		for _, tag := range tags {
			ref, err := oci.ParseDestination(tag)
			if err != nil || ref.Transport != oci.Registry {
				return nil, fmt.Errorf("--tag %q: want a registry reference to push to", tag)
			}
			dests = append(dests, slimoci.Destination{Reference: ref})
		}
	} else {
		for _, tag := range c.Tag {
			if _, err := name.NewTag(tag); err != nil {
				return nil, fmt.Errorf("--tag %q: not an image name: %w", tag, err)
			}
		}
		names = c.Tag
	}
	named := func(ref oci.Reference) slimoci.Destination {
		unnamed := (ref.Transport == oci.Layout || ref.Transport == oci.OCIArchive) && ref.Tag == "" && ref.Digest == "" ||
			ref.Transport == oci.DockerArchive && ref.Name == ""
		if unnamed {
			return slimoci.Destination{Reference: ref, Names: names}
		}
		return slimoci.Destination{Reference: ref}
	}
	for _, out := range c.Output {
		ref, err := parseDestination(out)
		if err != nil {
			return nil, err
		}
		dests = append(dests, named(ref))
	}
	if len(dests) == 0 {
		def := named(oci.Reference{Transport: oci.Layout, Path: filepath.Join(c.StatePath, "image")})
		if len(def.Names) == 0 {
			def.Tag = slimoci.SourceTag(src)
		}
		dests = append(dests, def)
	}
	return dests, nil
}

// slimTag is docker-slim's default name: the source repository with ".slim" appended, same tag.
func slimTag(src oci.Reference) (string, error) {
	if src.Transport != oci.Registry {
		return "", fmt.Errorf("--push: the source %s is not in a registry, so there is no default --tag: give one", src)
	}
	r, err := name.ParseReference(src.Name)
	if err != nil {
		return "", err
	}
	tag := "latest"
	if t, ok := r.(name.Tag); ok {
		tag = t.TagStr()
	}
	return r.Context().Name() + ".slim:" + tag, nil
}

// sourceDateEpoch reads SOURCE_DATE_EPOCH (reproducible builds' convention).
func sourceDateEpoch() (*time.Time, error) {
	v := os.Getenv("SOURCE_DATE_EPOCH")
	if v == "" {
		return nil, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return nil, fmt.Errorf("SOURCE_DATE_EPOCH %q: want seconds since 1970", v)
	}
	t := time.Unix(n, 0).UTC()
	return &t, nil
}

func mb(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }

func stageLine(stages []slimoci.StageTime) string {
	var parts []string
	total := 0.0
	for _, s := range stages {
		parts = append(parts, fmt.Sprintf("%s %.1fs", s.Stage, s.Seconds))
		total += s.Seconds
	}
	return fmt.Sprintf("%.1fs (%s)", total, strings.Join(parts, ", "))
}
