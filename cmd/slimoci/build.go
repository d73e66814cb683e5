package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/slimoci/slimoci/emit"
	"github.com/slimoci/slimoci/internal/atomicfile"
	"github.com/slimoci/slimoci/internal/termsafe"
	"github.com/slimoci/slimoci/oci"
	"github.com/slimoci/slimoci/reverse"
	"github.com/slimoci/slimoci/rootfs"
	"github.com/slimoci/slimoci/runner"
)

// BuildCmd is the main job: observe the app, keep what it needs, write a one-layer image, verify it, deliver.
type BuildCmd struct {
	Image               string   `arg:"" help:"Image to slim." name:"IMAGE"`
	Tag                 []string `help:"With --push, a registry reference to push the slim image to (default: the source repository with .slim appended to its name, same tag); without, a name for the outputs that name none (an OCI layout's or archive's ref.name, a docker-archive's name:tag) (repeatable)." placeholder:"REF" sep:"none"`
	Push                bool     `help:"Push the slim image to --tag."`
	Output              []string `help:"Also write the slim image here: oci:DIR[:tag], docker-archive:FILE[:name:tag], oci-archive:FILE[:tag] or a registry reference (repeatable). Without --push or --output it goes to the OCI layout STATE/image." placeholder:"DEST" sep:"none"`
	StatePath           string   `help:"Directory for the artifacts: report.json, Dockerfile.fat, seccomp.json, apparmor.profile, kept.json, dropped.json." default:"slimoci-state" type:"path"`
	Compression         string   `help:"Layer compression: gzip (klauspost, level 3) or zstd." enum:"gzip,zstd" default:"gzip"`
	Verify              bool     `help:"Run the slim image under the same probes; repair it from what its run missed, or fail (nothing is pushed)." default:"true" negatable:""`
	VerifyRounds        int      `help:"How many slim images verify may build before it gives up." default:"3"`
	RemoveFileArtifacts bool     `help:"Remove the artifacts (the state path's files) at the end."`
	ObserveFlags
	KeepFlags
	ImageFlags
}

// BuildReport is build's report.json: the fat run, the verify run, and what the build did.
type BuildReport struct {
	Image       string              `json:"image"`
	Digest      string              `json:"digest,omitempty"`
	Slim        string              `json:"slimDigest"`
	Outputs     []string            `json:"outputs"`
	Args        []string            `json:"args"`
	User        runner.User         `json:"user"`
	FatSize     int64               `json:"fatBytes"`
	SlimSize    int64               `json:"slimBytes"`
	Layer       *emit.LayerStats    `json:"layer"`
	Rounds      int                 `json:"rounds"`
	Added       []string            `json:"addedByVerify,omitempty"`
	MissingLibs []string            `json:"missingLibraries,omitempty"`
	Timings     map[string]float64  `json:"timingsSeconds"`
	Fat         *runner.Observation `json:"fat"`
	Verify      *runner.Observation `json:"verify,omitempty"`
}

func (c *BuildCmd) Run(ctx context.Context, g *Globals) error {
	o, err := c.parse(g)
	if err != nil {
		return err
	}
	keep, err := c.KeepFlags.plan()
	if err != nil {
		return err
	}
	if c.VerifyRounds < 1 {
		return fmt.Errorf("--verify-rounds %d: want at least 1", c.VerifyRounds)
	}
	srcRef, err := oci.ParseReference(c.Image)
	if err != nil {
		return err
	}
	dests, err := c.destinations(srcRef)
	if err != nil {
		return err
	}
	kept, err := parseImageOverrides(c.ImageOverrides)
	if err != nil {
		return err
	}
	edits, newEdits, err := c.imageEdits(kept, c.overrides(), &c.RunFlags)
	if err != nil {
		return err
	}
	timings := map[string]float64{}
	t0 := time.Now()
	u, err := g.openAndUnpack(ctx, c.Image, c.StatePath, c.WorkDir)
	if err != nil {
		return err
	}
	defer u.close()
	o.workRoot = u.private
	src, work, tree, ref := u.src, u.work, u.tree, u.src.Ref
	// Pulling is lazy: the layers stream into the unpack, which this counts.
	timings["unpack"] = time.Since(t0).Seconds()
	if err := keep.forImage(tree); err != nil {
		return fmt.Errorf("%s: %w", ref, err)
	}
	if err := c.forImage(o, tree); err != nil {
		return fmt.Errorf("%s: %w", ref, err)
	}
	// The slim image's config, to warn of removals that find nothing and to keep its WORKDIR besides the
	// run's working directory (the closure's Workdir, whole with --include-workdir).
	slimCfg := tree.Config.Config
	for i := range edits {
		for _, note := range edits[i].Apply(&slimCfg) {
			g.logger.Warn(note)
		}
	}
	extra := map[string]string{}
	if slimCfg.WorkingDir != "" && slimCfg.WorkingDir != o.spec.Cwd {
		extra[slimCfg.WorkingDir] = rootfs.ReasonWorkdir
	}
	verifyOverrides := c.overrides().forVerify(kept, newEdits)
	epoch, err := sourceDateEpoch()
	if err != nil {
		return err
	}
	srcType, err := src.Image.MediaType()
	if err != nil {
		return fmt.Errorf("%s: %w", ref, err)
	}
	docker := emit.DockerFormat(srcType, tree.Config, c.Compression)
	if srcType == types.DockerManifestSchema2 && tree.Config.Config.Healthcheck != nil && !docker {
		g.logger.Warn("the slim image is OCI (zstd layers): podman does not read the HEALTHCHECK of an OCI image")
	}
	runs := 0
	res, err := emit.Build(ctx, emit.BuildOptions{
		Tree: tree,
		Observe: func(ctx context.Context, treeDir string) (*runner.Observation, error) {
			runs++
			return o.run(ctx, treeDir, filepath.Join(work, fmt.Sprintf("sandbox-%d", runs)), g)
		},
		ObserveSlim: func(ctx context.Context, slim *rootfs.Tree) (*runner.Observation, error) {
			runs++
			// As the slim image will be run (forVerify), under the fat run's probes, on the fat run's ports.
			v := *o
			if err := c.forConfig(&v, slim, verifyOverrides); err != nil {
				return nil, err
			}
			v.plan.Ports, v.plan.HTTP = o.plan.Ports, o.plan.HTTP
			return v.run(ctx, slim.Dir, filepath.Join(work, fmt.Sprintf("sandbox-%d", runs)), g)
		},
		Closure: keep.closure(rootfs.ClosureOptions{Workdir: o.spec.Cwd, Env: o.spec.Env, Extra: extra}),
		Image: emit.ImageOptions{
			Compression: c.Compression, Epoch: epoch, Source: ref.String(), SourceDigest: digestOf(src), Dir: work,
			Docker: docker, Edits: edits,
		},
		Verify: c.Verify, Rounds: c.VerifyRounds, Logger: g.logger,
	})
	var dropped []emit.Dropped
	if res != nil && res.Closure != nil {
		dropped = emit.DroppedPaths(tree.Index, res.Closure.Keep)
	}
	if res != nil && res.Fat != nil {
		// The fat run's artifacts are worth having even when the build fails.
		if werr := c.writeArtifacts(src, o, tree, res, dropped); werr != nil && err == nil {
			err = werr
		}
	}
	if err != nil {
		return fmt.Errorf("building %s: %w", ref, err)
	}
	for k, v := range res.Timings {
		timings[k] = v.Seconds()
	}
	t0 = time.Now()
	opts, err := g.ociOptions()
	if err != nil {
		return err
	}
	var outs []string
	for _, d := range dests {
		if err := oci.WriteNamed(ctx, res.Image, d.Reference, d.names, opts); err != nil {
			return fmt.Errorf("writing the slim image to %s: %w", d.Reference, err)
		}
		outs = append(outs, d.String())
	}
	timings["push"] = time.Since(t0).Seconds()

	fatSize := imageSize(tree.Index)
	slimDigest, _ := res.Image.Digest()
	report := BuildReport{
		Image: ref.String(), Digest: digestOf(src), Slim: slimDigest.String(), Outputs: outs, Args: o.spec.Args, User: o.user,
		FatSize: fatSize, SlimSize: res.Stats.Bytes, Layer: res.Stats, Rounds: res.Rounds, Added: res.Added,
		MissingLibs: res.Closure.MissingLibs, Timings: timings, Fat: res.Fat, Verify: res.Slim,
	}
	if _, err := c.writeReport(c.StatePath, report); err != nil {
		return err
	}
	summary(g.stdout, ref.String(), res.Fat)
	if res.Slim != nil {
		fmt.Fprintf(g.stdout, "verified: the slim image answered every probe as the fat one (%d round(s))\n", res.Rounds)
	}
	// Paths and library names are the image's: escaped for the terminal.
	if len(res.Added) > 0 {
		fmt.Fprintf(g.stdout, "verify added back: %s\n", termsafe.String(strings.Join(res.Added, ", ")))
	}
	for _, m := range res.Closure.MissingLibs {
		fmt.Fprintf(g.stdout, "warning: library %s is not in the image\n", termsafe.String(m))
	}
	fmt.Fprintf(g.stdout, "kept %d of %d paths; largest dropped:", len(res.Closure.Keep), tree.Index.Len())
	for _, d := range emit.TopDropped(dropped, 3, 5) {
		fmt.Fprintf(g.stdout, " %s %s", termsafe.String(d.Path), mb(d.Size))
	}
	fmt.Fprintln(g.stdout)
	fmt.Fprintf(g.stdout, "%s: %s -> %s (%.1fx smaller), %s compressed; %s\n", slimDigest, mb(fatSize), mb(res.Stats.Bytes),
		float64(fatSize)/float64(max(res.Stats.Bytes, 1)), mb(res.Stats.Compressed), stageLine(timings))
	for _, out := range outs {
		fmt.Fprintf(g.stdout, "wrote %s\n", termsafe.String(out))
	}
	if c.RemoveFileArtifacts {
		for _, f := range []string{"report.json", "Dockerfile.fat", "seccomp.json", "apparmor.profile", "kept.json", "dropped.json"} {
			os.Remove(filepath.Join(c.StatePath, f))
		}
	} else {
		fmt.Fprintf(g.stdout, "artifacts in %s\n", c.StatePath)
	}
	return nil
}

// writeArtifacts writes Dockerfile.fat, the profiles, and the kept and dropped lists.
func (c *BuildCmd) writeArtifacts(src *oci.Source, o *observation, tree *rootfs.Tree, res *emit.BuildResult, dropped []emit.Dropped) error {
	write := func(name string, b []byte) error { return atomicfile.WriteBytes(filepath.Join(c.StatePath, name), b) }
	if err := write("Dockerfile.fat", []byte(reverse.Dockerfile(tree.Config.History))); err != nil {
		return err
	}
	if err := writeSeccomp(filepath.Join(c.StatePath, "seccomp.json"), res.Fat); err != nil {
		return err
	}
	if err := write("apparmor.profile", []byte(emit.AppArmorProfile("slimoci-"+filepath.Base(src.Ref.String()), res.Fat))); err != nil {
		return err
	}
	if res.Closure == nil {
		_, err := c.writeReport(c.StatePath, BuildReport{Image: src.Ref.String(), Args: o.spec.Args, User: o.user, Fat: res.Fat})
		return err
	}
	if err := writeJSON(filepath.Join(c.StatePath, "kept.json"), res.Closure.Keep); err != nil {
		return err
	}
	return writeJSON(filepath.Join(c.StatePath, "dropped.json"), dropped)
}

// destination is where the slim image goes, and under which names (--tag without --push).
type destination struct {
	oci.Reference
	names []string
}

func (d destination) String() string {
	if len(d.names) == 0 {
		return d.Reference.String()
	}
	return d.Reference.String() + " as " + strings.Join(d.names, ", ")
}

// destinations reads --push, --tag and --output. With --push each --tag is a registry reference pushed to
// (one by default, slimTag); without, the tags name the outputs that name no image themselves (oci:DIR,
// oci-archive:FILE, docker-archive:FILE, and the default layout STATE/image, otherwise tagged as the source).
func (c *BuildCmd) destinations(src oci.Reference) ([]destination, error) {
	var dests []destination
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
			dests = append(dests, destination{Reference: ref})
		}
	} else {
		for _, tag := range c.Tag {
			if _, err := name.NewTag(tag); err != nil {
				return nil, fmt.Errorf("--tag %q: not an image name: %w", tag, err)
			}
		}
		names = c.Tag
	}
	named := func(ref oci.Reference) destination {
		unnamed := (ref.Transport == oci.Layout || ref.Transport == oci.OCIArchive) && ref.Tag == "" && ref.Digest == "" ||
			ref.Transport == oci.DockerArchive && ref.Name == ""
		if unnamed {
			return destination{Reference: ref, names: names}
		}
		return destination{Reference: ref}
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
		if len(def.names) == 0 {
			def.Tag = srcTag(src)
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

func srcTag(src oci.Reference) string {
	if src.Transport == oci.Registry {
		if r, err := name.ParseReference(src.Name); err == nil {
			if t, ok := r.(name.Tag); ok {
				return t.TagStr()
			}
		}
	}
	if src.Tag != "" {
		return src.Tag
	}
	return "latest"
}

func digestOf(src *oci.Source) string {
	if src.Digest.Hex != "" {
		return src.Digest.String()
	}
	return ""
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

// imageSize is the sum of the image's file sizes (what docker images shows, near enough).
func imageSize(ix *rootfs.Index) int64 {
	var n int64
	seen := map[string]bool{}
	ix.Walk(func(e *rootfs.Entry) error {
		if e.HardlinkGroup != "" {
			if seen[e.HardlinkGroup] {
				return nil
			}
			seen[e.HardlinkGroup] = true
		}
		n += e.Size
		return nil
	})
	return n
}

func mb(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }

func stageLine(t map[string]float64) string {
	var parts []string
	total := 0.0
	for _, s := range []string{"pull", "unpack", "observe", "closure", "emit", "verify", "push"} {
		if v, ok := t[s]; ok {
			parts = append(parts, fmt.Sprintf("%s %.1fs", s, v))
			total += v
		}
	}
	return fmt.Sprintf("%.1fs (%s)", total, strings.Join(parts, ", "))
}
