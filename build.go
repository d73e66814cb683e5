package slimoci

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/slimoci/slimoci/emit"
	"github.com/slimoci/slimoci/emit/sbom"
	"github.com/slimoci/slimoci/internal/atomicfile"
	"github.com/slimoci/slimoci/oci"
	"github.com/slimoci/slimoci/reverse"
	"github.com/slimoci/slimoci/rootfs"
	"github.com/slimoci/slimoci/rootfs/pkgdb"
	"github.com/slimoci/slimoci/runner"
)

// BuildOptions say how Build makes a slim image. The zero value of each field is the usual choice, except
// Run.Spec.Sensor, which must name the sensor binary.
type BuildOptions struct {
	JobOptions
	Run RunOptions
	// Keep says what the slim image keeps besides what the app used: Include, Exclude, IncludeShell, Certs
	// and Keep. Observed, Workdir, Env and Extra are Build's.
	Keep rootfs.ClosureOptions
	// ImageOverrides names the run's overrides the slim image keeps (mint's --image-overrides): "all", or
	// some of OverrideNames. They are applied before Edits.
	ImageOverrides []string
	// Edits change the slim image's config (the --new-* and --remove-* flags).
	Edits emit.ConfigEdits
	// Compression is "gzip" (default) or "zstd".
	Compression string
	// NoVerify skips running the slim image under the same probes. VerifyRounds bounds how many slim images
	// verify may build, repairing each from what its run missed (default 3).
	NoVerify     bool
	VerifyRounds int
	// Destinations are where the slim image is written; none: the OCI layout StateDir/image, tagged as the
	// source.
	Destinations []Destination
	// Epoch, when set (SOURCE_DATE_EPOCH), clamps the layer's mtimes and dates its history entry.
	Epoch *time.Time
	// NoPackageDB leaves the package database out of the slim image; by default it is kept, pruned to
	// the packages and files the slim image has (see pkgdb.Set.Prune), and SBOMs of the slim image are
	// written (and, to registry destinations, attached as referrers).
	NoPackageDB bool
	// RemoveArtifacts removes the state directory's artifacts at the end.
	RemoveArtifacts bool
	// Sabotage, when set, edits the first closure (tests use it to break a build that verify must repair).
	Sabotage func(keep map[string][]string)
	// Platforms are the platforms of a multi-platform source to slim, AllPlatforms all of them. With none
	// (JobOptions.OCI.Platform's, by default the host's) or one, Build makes one image. With more, each is
	// built as one image is (observed under the same probes and verified, a foreign one under emulation, see
	// RunOptions.EmulationFactor), one after another, with its artifacts in its own subdirectory of the state directory
	// (PlatformDir); the destinations get an OCI index of the slim images, each listed with its platform, the
	// index annotated with the source and the source index's digest. A source that is a single image is built
	// as one, whatever these say, when its platform is among them.
	Platforms    []v1.Platform
	AllPlatforms bool
}

// Destination is where a slim image goes, and under which names (an OCI layout's or archive's ref.name,
// a docker-archive's name:tag) when the reference names none.
type Destination struct {
	oci.Reference
	Names []string
}

func (d Destination) String() string {
	if len(d.Names) == 0 {
		return d.Reference.String()
	}
	return d.Reference.String() + " as " + strings.Join(d.Names, ", ")
}

// Artifacts are the files Build writes to the state directory besides report.json.
var Artifacts = []string{"Dockerfile.fat", "seccomp.json", "apparmor.profile", "kept.json", "dropped.json", PackagesFile, sbom.SPDXFile, sbom.CycloneDXFile}

// BuildResult is what Build made. Its JSON is build --json's document.
type BuildResult struct {
	// Image is the source reference, SourceDigest its manifest's digest (when it has one).
	Image        string `json:"image"`
	SourceDigest string `json:"sourceDigest,omitempty"`
	// Digest is the slim image's manifest digest: what a registry destination holds.
	Digest string `json:"digest"`
	// FatBytes and SlimBytes are the images' file sizes (what docker images shows, near enough);
	// CompressedBytes the slim layer's.
	FatBytes        int64 `json:"fatBytes"`
	SlimBytes       int64 `json:"slimBytes"`
	CompressedBytes int64 `json:"compressedBytes"`
	// Destinations are where it was written.
	Destinations []string `json:"destinations"`
	// Stages are how long each stage took, in the order they ran.
	Stages []StageTime `json:"stages"`
	// VerifyRounds is how many slim images were built (0 without verify); AddedByVerify the paths verify
	// found missing and added back.
	VerifyRounds  int      `json:"verifyRounds"`
	Verified      bool     `json:"verified"`
	AddedByVerify []string `json:"addedByVerify,omitempty"`
	// Warnings are what the user should know: a library found nowhere, an edit that removed nothing, a
	// HEALTHCHECK podman will not read. They may quote the image: escape them before a terminal.
	Warnings []string `json:"warnings"`
	// KeptPaths of Paths were kept; LargestDropped are the largest directories dropped.
	KeptPaths      int       `json:"keptPaths"`
	Paths          int       `json:"paths"`
	LargestDropped []Dropped `json:"largestDropped"`
	// Packages says what the slim image keeps of the image's packages (nil when the image lists none, or
	// with NoPackageDB).
	Packages *PackageSummary `json:"packages,omitempty"`
	// Platform is the platform slimmed (os/arch[/variant], as its config says); OtherPlatforms are those of
	// the source's index that were not (Build slims one platform unless told which, or all).
	Platform       string   `json:"platform,omitempty"`
	OtherPlatforms []string `json:"otherPlatforms,omitempty"`
	// Emulated says the app ran under emulation (a foreign platform); Seconds is how long the build took.
	Emulated bool    `json:"emulated,omitempty"`
	Seconds  float64 `json:"seconds"`
	// Manifests are each platform's build when Build made an index; Digest is then the index's digest, the
	// sizes are their sums, and Args, User, Stages and the counts are each manifest's.
	Manifests []*BuildResult `json:"manifests,omitempty"`
	// Args and User are what was run; StateDir holds the artifacts (unless RemoveArtifacts).
	Args     []string    `json:"args"`
	User     runner.User `json:"user"`
	StateDir string      `json:"stateDir,omitempty"`
	Report   string      `json:"report,omitempty"`

	// Fat is the fat image's run, Verify the last verify run (nil without verify).
	Fat    *runner.Observation `json:"-"`
	Verify *runner.Observation `json:"-"`
	// Closure is what was kept and why; SlimImage the image itself; Layer its layer's statistics.
	Closure   *rootfs.Closure  `json:"-"`
	SlimImage v1.Image         `json:"-"`
	Layer     *emit.LayerStats `json:"-"`
}

// PackageSummary is what a slim image keeps of its image's packages.
type PackageSummary struct {
	// Kept packages have a file (not only a directory) in the slim image and are in its pruned database;
	// Dropped ones do not, and are not.
	Kept    int `json:"kept"`
	Dropped int `json:"dropped"`
	// LargestDropped are the dropped packages with the most bytes, the largest first.
	LargestDropped []PackageSize `json:"largestDropped"`
	// SBOMs are the SBOM artifacts written (file names in the state directory); Attached the referrers
	// pushed with them, "DESTINATION@DIGEST" each.
	SBOMs    []string `json:"sboms"`
	Attached []string `json:"attached,omitempty"`
}

// PackageSize is a package and how much of it a slim image left out.
type PackageSize struct {
	// Name is TYPE/NAME (deb/libperl5.36), for people; PURL says which exactly.
	Name  string `json:"name"`
	PURL  string `json:"purl"`
	Files int    `json:"files"`
	Bytes int64  `json:"bytes"`
}

// PackagesFile is the artifact listing every package of the image with what the slim image keeps of it
// (PackageUsage), the most dropped bytes first.
const PackagesFile = "packages.json"

// PackageUsage is a packages.json entry: a package, whether the slim image's database lists it, and its
// kept and dropped files (not directories) and bytes.
type PackageUsage struct {
	PURL         string `json:"purl"`
	Kept         bool   `json:"kept"`
	KeptFiles    int    `json:"keptFiles"`
	DroppedFiles int    `json:"droppedFiles"`
	KeptBytes    int64  `json:"keptBytes"`
	DroppedBytes int64  `json:"droppedBytes"`
}

// KeptPath is a kept.json entry: why a path is kept, and the packages that own it.
type KeptPath struct {
	Reasons  []string `json:"reasons"`
	Packages []string `json:"packages,omitempty"`
}

// StageTime is how long a stage took.
type StageTime struct {
	Stage   Stage   `json:"stage"`
	Seconds float64 `json:"seconds"`
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
	Platform    string              `json:"platform,omitempty"`
	Emulated    bool                `json:"emulated,omitempty"`
}

// OverrideNames are ImageOverrides' names, as mint's --image-overrides.
var OverrideNames = []string{"entrypoint", "cmd", "workdir", "env", "expose", "volume", "label"}

// Build makes a slim image of image (a reference oci.ParseReference reads): it unpacks it, observes its
// app in the sandbox under the probes, keeps what the app used and what that needs, writes a one-layer
// image with the original config (edited as asked), verifies it under the same probes (repairing it from
// what its run missed), writes it to each destination, and writes the artifacts to the state directory.
//
// When the build fails after the app was observed, the result holds what is known (the fat run's
// artifacts are written); errors match ErrApp, ErrVerify, and oci's and rootfs' sentinels.
func Build(ctx context.Context, image string, o *BuildOptions) (res *BuildResult, err error) {
	if o == nil {
		o = &BuildOptions{}
	}
	bo := *o
	bo.fill()
	p := &progress{ctx: ctx, ch: bo.Progress}
	defer p.close()
	kept, err := ParseImageOverrides(bo.ImageOverrides)
	if err != nil {
		return nil, err
	}
	if bo.Run.Spec.Sensor == "" {
		return nil, fmt.Errorf("no sensor binary: RunOptions.Spec.Sensor names none")
	}
	if bo.VerifyRounds <= 0 {
		bo.VerifyRounds = 3
	}
	if bo.Compression == "" {
		bo.Compression = "gzip"
	}
	start := time.Now()
	plan, err := bo.platforms(ctx, image)
	if err != nil {
		return nil, err
	}
	if plan.index {
		return bo.buildIndex(ctx, image, plan, kept, p)
	}
	if plan.want != nil {
		oc := *bo.OCI
		oc.Platform = plan.want
		bo.OCI = &oc
	}
	one, err := bo.buildOne(ctx, image, kept, p)
	if one != nil {
		defer one.close()
		res = one.res
	}
	if err != nil {
		return res, err
	}
	res.OtherPlatforms = plan.others(res.Platform)
	if err := bo.deliver(ctx, res, one.w.src.Ref, one.pr.Image, nil, []*oneBuild{one}, p); err != nil {
		return res, err
	}
	res.Seconds = time.Since(start).Seconds()
	if err := one.report(&bo); err != nil {
		return res, err
	}
	bo.removeArtifacts(res)
	return res, nil
}

// oneBuild is one platform's slim image, built and verified, not yet delivered: its work directory holds
// the image's layer until close.
type oneBuild struct {
	res   *BuildResult
	pr    *pipelineResult
	w     *work
	sboms map[string][]byte
	start time.Time
}

func (b *oneBuild) close() { b.w.close() }

// buildOne builds the slim image of the one platform bo.OCI picks, up to delivery. The result is nil only
// when nothing was opened; otherwise the caller closes it.
func (bo *BuildOptions) buildOne(ctx context.Context, image string, kept map[string]bool, p *progress) (one *oneBuild, err error) {
	start := time.Now()
	p.send(Event{Stage: StageUnpack, Kind: Started, Message: image})
	w, err := openAndUnpack(ctx, image, &bo.JobOptions, p)
	if err != nil {
		return nil, err
	}
	one = &oneBuild{w: w, start: start}
	var res *BuildResult
	defer func() { one.res = res }()
	unpackTime := time.Since(start)
	p.send(Event{Stage: StageUnpack, Kind: Finished, Elapsed: unpackTime, Complete: int64(w.tree.Index.Len()), Unit: "files"})
	src, tree, ref := w.src, w.tree, w.src.Ref
	if err := bo.Keep.Keep.Check(tree); err != nil {
		return one, fmt.Errorf("%s: %w", ref, err)
	}
	cfgOpts := bo.Run.Config
	fatRun, err := bo.Run.prepare(tree, cfgOpts, w, bo.Logger)
	if err != nil {
		return one, fmt.Errorf("%s: %w", ref, err)
	}
	res = &BuildResult{Image: ref.String(), SourceDigest: digestOf(src), Args: fatRun.spec.Args, User: fatRun.user, StateDir: bo.StateDir,
		Warnings: []string{}, Platform: platformOf(tree), Emulated: fatRun.emulated}

	// The slim image's config: the overrides it keeps, then the edits.
	edits := slices.DeleteFunc([]emit.ConfigEdits{keptEdits(kept, bo.Run.Config.Overrides), bo.Edits}, func(e emit.ConfigEdits) bool { return e.Empty() })
	slimCfg := *tree.Config.Config.DeepCopy()
	for i := range edits {
		res.Warnings = append(res.Warnings, edits[i].Apply(&slimCfg)...)
	}
	// Its WORKDIR is kept besides the run's working directory (the closure's Workdir, whole with
	// Keep.Workdir).
	extra := map[string]string{}
	if slimCfg.WorkingDir != "" && slimCfg.WorkingDir != fatRun.spec.Cwd {
		extra[slimCfg.WorkingDir] = rootfs.ReasonWorkdir
	}
	verifyCfg := cfgOpts
	verifyCfg.Overrides = forVerify(cfgOpts.Overrides, kept, &bo.Edits)
	verifyCfg.ExtraProbes = nil
	srcType, err := src.Image.MediaType()
	if err != nil {
		return one, fmt.Errorf("%s: %w", ref, err)
	}
	docker := emit.DockerFormat(srcType, tree.Config, bo.Compression)
	if srcType == types.DockerManifestSchema2 && tree.Config.Config.Healthcheck != nil && !docker {
		res.Warnings = append(res.Warnings, "the slim image is OCI (zstd layers): podman does not read the HEALTHCHECK of an OCI image")
	}

	var pkgs *pkgdb.Set
	var pruned *pkgdb.Pruned
	var packageDB func(map[string][]string) (map[string][]byte, error)
	if !bo.NoPackageDB {
		if pkgs, err = pkgdb.Read(tree); err != nil {
			// A database slimoci cannot read is not a reason to fail the build: the slim image has none.
			res.Warnings = append(res.Warnings, fmt.Sprintf("the slim image has no package database: %v", err))
			pkgs = nil
		}
	}
	if pkgs != nil && len(pkgs.Packages) > 0 {
		// Scanners name the distribution from os-release (syft gives a deb package no purl without it,
		// grype and trivy match no vulnerability): kept with the database.
		for _, p := range []string{"/etc/os-release", "/usr/lib/os-release"} {
			if _, ok := tree.Index.Lookup(p); ok {
				extra[p] = pkgdb.ReasonPackageDB
			}
		}
		packageDB = func(keep map[string][]string) (map[string][]byte, error) {
			var err error
			if pruned, err = pkgs.Prune(tree, keep); err != nil {
				return nil, err
			}
			for p, why := range pruned.Keep {
				if !slices.Contains(keep[p], why) {
					keep[p] = append(keep[p], why)
					slices.Sort(keep[p])
				}
			}
			return pruned.Replace, nil
		}
	}
	runs := 0
	sandbox := func() string { runs++; return filepath.Join(w.dir, fmt.Sprintf("sandbox-%d", runs)) }
	closure := bo.Keep
	closure.Workdir, closure.Env, closure.Extra = fatRun.spec.Cwd, fatRun.spec.Env, extra
	pr, err := runPipeline(ctx, pipelineOptions{
		Tree: tree,
		Observe: func(ctx context.Context, treeDir string, round int) (*runner.Observation, error) {
			fatRun.plan.Status = p.status(StageObserve, 0, bo.Run.Plan.Status)
			return fatRun.observe(ctx, treeDir, sandbox())
		},
		ObserveSlim: func(ctx context.Context, slim *rootfs.Tree, round int) (*runner.Observation, error) {
			// As the slim image will be run (forVerify), under the fat run's probes, on the fat run's ports.
			v, err := bo.Run.prepare(slim, verifyCfg, w, bo.Logger)
			if err != nil {
				return nil, err
			}
			v.plan.Ports, v.plan.HTTP, v.plan.HostExecPorts = fatRun.plan.Ports, fatRun.plan.HTTP, fatRun.plan.HostExecPorts
			v.plan.Status = p.status(StageVerify, round, bo.Run.Plan.Status)
			return v.observe(ctx, slim.Dir, sandbox())
		},
		Closure: closure,
		Image: emit.ImageOptions{
			Compression: bo.Compression, Epoch: bo.Epoch, Source: ref.String(), SourceDigest: digestOf(src), Dir: w.dir,
			Docker: docker, Edits: edits,
		},
		Verify: !bo.NoVerify, Rounds: bo.VerifyRounds, Sabotage: bo.Sabotage, Logger: bo.Logger, progress: p,
		PackageDB: packageDB,
	})
	var dropped []Dropped
	if pr != nil {
		res.Fat, res.Verify, res.Closure = pr.Fat, pr.Slim, pr.Closure
		if pr.Closure != nil {
			dropped = droppedPaths(tree.Index, pr.Closure.Keep)
		}
		if pr.Fat != nil {
			// The fat run's artifacts are worth having even when the build fails.
			if werr := bo.writeArtifacts(res, tree, dropped, pkgs); werr != nil && err == nil {
				err = werr
			}
		}
	}
	if err != nil {
		return one, fmt.Errorf("building %s: %w", ref, err)
	}
	one.pr = pr
	res.SlimImage, res.Layer, res.VerifyRounds, res.AddedByVerify = pr.Image, pr.Stats, pr.Rounds, pr.Added
	res.Verified = pr.Slim != nil
	if bo.NoVerify {
		res.VerifyRounds = 0
	}
	res.Stages = append(res.Stages, StageTime{StageUnpack, unpackTime.Seconds()})
	for _, s := range []Stage{StageObserve, StageClosure, StageEmit, StageVerify} {
		if d, ok := pr.Timings[string(s)]; ok {
			res.Stages = append(res.Stages, StageTime{s, d.Seconds()})
		}
	}
	for _, m := range pr.Closure.MissingLibs {
		res.Warnings = append(res.Warnings, "library "+m+" is not in the image")
	}
	digest, err := pr.Image.Digest()
	if err != nil {
		return one, fmt.Errorf("the slim image's digest: %w", err)
	}
	res.Digest = digest.String()
	var sboms map[string][]byte
	if pruned != nil {
		if sboms, err = bo.writeSBOMs(res, pkgs, pruned, pr.Closure.Keep, tree); err != nil {
			return one, err
		}
	}

	res.FatBytes, res.SlimBytes, res.CompressedBytes = imageSize(tree.Index), pr.Stats.Bytes, pr.Stats.Compressed
	res.KeptPaths, res.Paths = len(pr.Closure.Keep), tree.Index.Len()
	res.LargestDropped = topDropped(dropped, 3, 5)
	one.sboms = sboms
	return one, nil
}

// deliver writes what was built (the one image, or the index of them) to each destination, attaching each
// image's SBOMs to it in a registry.
func (bo *BuildOptions) deliver(ctx context.Context, res *BuildResult, src oci.Reference, img v1.Image, idx v1.ImageIndex, built []*oneBuild, p *progress) error {
	start := time.Now()
	p.send(Event{Stage: StagePush, Kind: Started})
	dests := bo.Destinations
	if len(dests) == 0 {
		dests = []Destination{{Reference: oci.Reference{Transport: oci.Layout, Path: filepath.Join(bo.StateDir, "image"), Tag: SourceTag(src)}}}
	}
	for _, d := range dests {
		p.send(Event{Stage: StagePush, Kind: Progressed, Message: d.String()})
		wopts := *bo.OCI
		if p.ch != nil {
			wopts.Progress = func(u v1.Update) {
				p.send(Event{Stage: StagePush, Kind: Progressed, Complete: u.Complete, Total: u.Total, Unit: "bytes", Message: d.String()})
			}
		}
		var err error
		if idx != nil {
			err = oci.WriteIndex(ctx, idx, d.Reference, d.Names, &wopts)
		} else {
			err = oci.WriteNamed(ctx, img, d.Reference, d.Names, &wopts)
		}
		if err != nil {
			return fmt.Errorf("writing the slim image to %s: %w", d.Reference, err)
		}
		res.Destinations = append(res.Destinations, d.String())
		if d.Transport != oci.Registry {
			continue
		}
		for _, b := range built {
			if b.sboms != nil {
				if err := bo.attachSBOMs(ctx, b.res, b.pr.Image, d, b.sboms); err != nil {
					return err
				}
			}
		}
	}
	pushTime := time.Since(start)
	p.send(Event{Stage: StagePush, Kind: Finished, Elapsed: pushTime})
	res.Stages = append(res.Stages, StageTime{StagePush, pushTime.Seconds()})
	return nil
}

// report writes one platform's report.json.
func (b *oneBuild) report(bo *BuildOptions) error {
	res, pr := b.res, b.pr
	timings := map[string]float64{}
	for _, s := range res.Stages {
		timings[string(s.Stage)] = s.Seconds
	}
	var err error
	res.Report, err = bo.writeReport(BuildReport{
		Image: res.Image, Digest: res.SourceDigest, Slim: res.Digest, Outputs: res.Destinations, Args: res.Args, User: res.User,
		FatSize: res.FatBytes, SlimSize: res.SlimBytes, Layer: pr.Stats, Rounds: pr.Rounds, Added: pr.Added,
		MissingLibs: pr.Closure.MissingLibs, Timings: timings, Fat: pr.Fat, Verify: pr.Slim,
		Platform: res.Platform, Emulated: res.Emulated,
	})
	return err
}

// removeArtifacts removes the state directory's artifacts when asked (RemoveArtifacts).
func (bo *BuildOptions) removeArtifacts(res *BuildResult) {
	if !bo.RemoveArtifacts {
		return
	}
	for _, f := range append([]string{"report.json"}, Artifacts...) {
		os.Remove(filepath.Join(bo.StateDir, f))
	}
	res.StateDir, res.Report = "", ""
}

// writeArtifacts writes Dockerfile.fat, the profiles, and the kept and dropped lists (and, when the build
// got no closure, a report of the fat run).
func (o *BuildOptions) writeArtifacts(res *BuildResult, tree *rootfs.Tree, dropped []Dropped, pkgs *pkgdb.Set) error {
	write := func(name string, b []byte) error { return atomicfile.WriteBytes(filepath.Join(o.StateDir, name), b) }
	if err := write("Dockerfile.fat", []byte(reverse.Dockerfile(tree.Config.History))); err != nil {
		return err
	}
	if err := writeSeccomp(filepath.Join(o.StateDir, "seccomp.json"), tree, res.Fat); err != nil {
		return err
	}
	if err := write("apparmor.profile", []byte(emit.AppArmorProfile("slimoci-"+filepath.Base(res.Image), res.Fat.Record, res.Fat.Written))); err != nil {
		return err
	}
	if res.Closure == nil {
		_, err := o.writeReport(BuildReport{Image: res.Image, Args: res.Args, User: res.User, Fat: res.Fat})
		return err
	}
	kept := make(map[string]KeptPath, len(res.Closure.Keep))
	for p, why := range res.Closure.Keep {
		k := KeptPath{Reasons: why}
		if pkgs != nil {
			for _, pkg := range pkgs.Owners(p) {
				k.Packages = append(k.Packages, pkg.PURL)
			}
		}
		kept[p] = k
	}
	if err := writeJSON(filepath.Join(o.StateDir, "kept.json"), kept); err != nil {
		return err
	}
	return writeJSON(filepath.Join(o.StateDir, "dropped.json"), dropped)
}

// ParseImageOverrides reads BuildOptions.ImageOverrides into the set of names it keeps: all, or names from OverrideNames (any case); another name is an
// error naming it (mint ignores it).
func ParseImageOverrides(values []string) (map[string]bool, error) {
	kept := map[string]bool{}
	for _, v := range values {
		for _, name := range strings.Split(v, ",") {
			name = strings.ToLower(strings.TrimSpace(name))
			switch {
			case name == "all":
				for _, n := range OverrideNames {
					kept[n] = true
				}
			case slices.Contains(OverrideNames, name):
				kept[name] = true
			default:
				return nil, fmt.Errorf("--image-overrides %q: want all, or some of %s", name, strings.Join(OverrideNames, ", "))
			}
		}
	}
	return kept, nil
}

// keptEdits are the slim image's config edits that keep the run's overrides kept names.
func keptEdits(kept map[string]bool, ov runner.Overrides) emit.ConfigEdits {
	var keep emit.ConfigEdits
	if kept["entrypoint"] && ov.SetEntrypoint {
		keep.SetEntrypoint, keep.Entrypoint = true, ov.Entrypoint
		if !ov.SetCmd {
			// What ran: --entrypoint cleared the image's CMD.
			keep.SetCmd = true
		}
	}
	if kept["cmd"] && ov.SetCmd {
		keep.SetCmd, keep.Cmd = true, ov.Cmd
	}
	if kept["workdir"] {
		keep.WorkingDir = ov.Workdir
	}
	if kept["env"] {
		keep.Env = ov.Env
	}
	if kept["expose"] {
		keep.ExposedPorts = ov.Expose
	}
	if kept["volume"] {
		keep.Volumes = ov.Volumes
	}
	if kept["label"] {
		keep.Labels = ov.Labels
	}
	return keep
}

// forVerify is what verify runs the slim image with: the slim image as `podman run` with the run options
// the user still has to give would run it. An override kept in the slim image (kept) or replaced by its
// new config (e, the --new-* and --remove-* edits) no longer applies: --new-cmd is what runs, unless
// --entrypoint (not kept) clears it as docker's --entrypoint clears CMD; a variable --new-env or
// --remove-env names is the slim image's. --user, the mounts and the network stay.
func forVerify(r runner.Overrides, kept map[string]bool, e *emit.ConfigEdits) runner.Overrides {
	if kept["entrypoint"] || e.SetEntrypoint {
		r.Entrypoint, r.SetEntrypoint = nil, false
	}
	if kept["cmd"] || e.SetCmd {
		r.Cmd, r.SetCmd = nil, false
	}
	if kept["workdir"] || e.WorkingDir != "" {
		r.Workdir = ""
	}
	if kept["env"] {
		r.Env = nil
	}
	var env []string
	for _, kv := range r.Env {
		name, _, _ := strings.Cut(kv, "=")
		named := func(v string) bool { n, _, _ := strings.Cut(v, "="); return n == name }
		if !slices.ContainsFunc(e.Env, named) && !slices.Contains(e.RemoveEnv, name) {
			env = append(env, kv)
		}
	}
	r.Env = env
	return r
}

// writeSeccomp writes a seccomp profile allowing the syscalls seen, for the image's platform (a foreign
// one's recorded under emulation: see emit.SeccompProfileFor).
func writeSeccomp(path string, tree *rootfs.Tree, obs *runner.Observation) error {
	p := treePlatform(tree)
	if p == nil {
		p = &v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
	}
	profile, err := emit.SeccompProfileFor(*p, slices.Sorted(maps.Keys(obs.Record.Syscalls)))
	if err != nil {
		return err
	}
	return atomicfile.WriteBytes(path, profile)
}

// SourceTag is the tag a slim image is given where nothing names one: the source's, or "latest".
func SourceTag(src oci.Reference) string {
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

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteBytes(path, b)
}

// writeSBOMs writes the slim image's SBOMs (its pruned database's packages, DESCENDANT_OF the source image)
// to the state directory and sums up what was kept of the packages; it returns the documents by media type.
func (o *BuildOptions) writeSBOMs(res *BuildResult, pkgs *pkgdb.Set, pruned *pkgdb.Pruned, keep map[string][]string, tree *rootfs.Tree) (map[string][]byte, error) {
	kept := map[*pkgdb.Package]bool{}
	for _, p := range pruned.Kept {
		kept[p] = true
	}
	sum := &PackageSummary{Kept: len(pruned.Kept), Dropped: len(pkgs.Packages) - len(pruned.Kept), LargestDropped: []PackageSize{}}
	var usage []PackageUsage
	for _, u := range pkgs.Usage(tree.Index, keep) {
		if !kept[u.Package] && len(sum.LargestDropped) < 5 && u.DroppedBytes > 0 {
			sum.LargestDropped = append(sum.LargestDropped, PackageSize{Name: u.Package.Type + "/" + u.Package.Name, PURL: u.Package.PURL, Files: u.DroppedFiles, Bytes: u.DroppedBytes})
		}
		usage = append(usage, PackageUsage{PURL: u.Package.PURL, Kept: kept[u.Package], KeptFiles: u.KeptFiles, DroppedFiles: u.DroppedFiles,
			KeptBytes: u.KeptBytes, DroppedBytes: u.DroppedBytes})
	}
	if err := writeJSON(filepath.Join(o.StateDir, PackagesFile), usage); err != nil {
		return nil, err
	}
	// Dated as the slim image is: SOURCE_DATE_EPOCH, else the source's config (reproducible either way).
	created := tree.Config.Created.Time
	if o.Epoch != nil {
		created = *o.Epoch
	}
	if created.IsZero() {
		// A config without a date: the epoch, as slimoci sbom dates it, not year 1.
		created = time.Unix(0, 0).UTC()
	}
	subject := sbom.Image{Name: res.Image + " (slim)", Digest: res.Digest}
	if len(o.Destinations) > 0 {
		subject.Name = o.Destinations[0].String()
	}
	source := &sbom.Image{Name: res.Image, Digest: res.SourceDigest}
	spdx, err := sbom.SPDX(subject, source, pruned.Kept, created)
	if err != nil {
		return nil, fmt.Errorf("writing the SPDX SBOM: %w", err)
	}
	cdx, err := sbom.CycloneDX(subject, source, pruned.Kept, created)
	if err != nil {
		return nil, fmt.Errorf("writing the CycloneDX SBOM: %w", err)
	}
	for name, b := range map[string][]byte{sbom.SPDXFile: spdx, sbom.CycloneDXFile: cdx} {
		if err := atomicfile.WriteBytes(filepath.Join(o.StateDir, name), b); err != nil {
			return nil, err
		}
	}
	sum.SBOMs = []string{sbom.SPDXFile, sbom.CycloneDXFile}
	res.Packages = sum
	return map[string][]byte{oci.SPDXMediaType: spdx, oci.CycloneDXMediaType: cdx}, nil
}

// attachSBOMs pushes the SBOMs as OCI 1.1 referrers of the slim image's manifest at d (a registry), one
// after the other (see oci.PushReferrer on registries without the referrers API).
func (o *BuildOptions) attachSBOMs(ctx context.Context, res *BuildResult, img v1.Image, d Destination, sboms map[string][]byte) error {
	desc, err := partial.Descriptor(img)
	if err != nil {
		return fmt.Errorf("the slim image's descriptor: %w", err)
	}
	for _, a := range []struct{ mediaType, title string }{{oci.SPDXMediaType, sbom.SPDXFile}, {oci.CycloneDXMediaType, sbom.CycloneDXFile}} {
		a, err := oci.PushReferrer(ctx, d.Reference, *desc, a.mediaType, a.mediaType, sboms[a.mediaType],
			map[string]string{"org.opencontainers.image.title": a.title}, o.OCI)
		if err != nil {
			return err
		}
		res.Packages.Attached = append(res.Packages.Attached, d.Reference.String()+"@"+a.Digest.String())
	}
	return nil
}
