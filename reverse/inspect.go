package reverse

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sync/errgroup"

	"github.com/slimoci/slimoci/oci"
)

// Info is what a person needs to understand an image; `slimoci info --json` prints it.
type Info struct {
	Reference string `json:"reference"`
	Transport string `json:"transport"`
	// Digest is the manifest digest; empty for a docker-archive, which stores no manifest.
	Digest       string    `json:"digest,omitempty"`
	IndexDigest  string    `json:"indexDigest,omitempty"`
	MediaType    string    `json:"mediaType,omitempty"`
	ConfigDigest string    `json:"configDigest"`
	Platform     string    `json:"platform"`
	Created      time.Time `json:"created,omitzero"`
	Author       string    `json:"author,omitempty"`
	// CompressedSize is the sum of the stored layer blobs; -1 when the source stores them uncompressed.
	CompressedSize int64 `json:"compressedSize"`
	// UncompressedSize is the sum of the layer tars; -1 when not measured.
	UncompressedSize int64     `json:"uncompressedSize"`
	Layers           []Layer   `json:"layers"`
	Config           Config    `json:"config"`
	History          []History `json:"history"`
	Dockerfile       string    `json:"dockerfile"`
	// Referrers are the artifacts (SBOMs, signatures...) whose subject is the image's manifest, for an image
	// in a registry (API or referrers tag schema); absent for other transports, where go-containerregistry
	// reads no referrers (an OCI layout may hold some in its index.json: they are not looked for), and
	// empty for a registry image without any.
	Referrers []Referrer `json:"referrers,omitzero"`
	// ReferrersError says why the registry's referrers could not be listed; the rest of Info stands.
	ReferrersError string `json:"referrersError,omitempty"`
	// Packages are the packages the image's databases list (dpkg, apk, the language ecosystems'), when
	// they were read (info unpacks the image for them: by default a one-layer image, such as a slim one).
	Packages []Package `json:"packages,omitempty"`
}

// Referrer is one artifact attached to the image, as the registry's referrers listing describes it.
type Referrer struct {
	// Digest, MediaType and Size are the artifact manifest's.
	Digest       string            `json:"digest"`
	ArtifactType string            `json:"artifactType,omitempty"`
	MediaType    string            `json:"mediaType"`
	Size         int64             `json:"size"`
	Annotations  map[string]string `json:"annotations,omitempty"`
}

// Layer is one layer, with the history step that made it.
type Layer struct {
	// Digest and CompressedSize are the stored blob's; empty and -1 for a docker-archive.
	Digest           string `json:"digest,omitempty"`
	DiffID           string `json:"diffID"`
	MediaType        string `json:"mediaType,omitempty"`
	CompressedSize   int64  `json:"compressedSize"`
	UncompressedSize int64  `json:"uncompressedSize"`
	// History is the index of the history entry that created the layer, -1 when the history does not say.
	History     int    `json:"history"`
	CreatedBy   string `json:"createdBy,omitempty"`
	Instruction string `json:"instruction,omitempty"`
}

// Config is the part of the image config a runtime uses.
type Config struct {
	User         string            `json:"user,omitempty"`
	Env          []string          `json:"env,omitempty"`
	Entrypoint   []string          `json:"entrypoint,omitempty"`
	Cmd          []string          `json:"cmd,omitempty"`
	WorkingDir   string            `json:"workingDir,omitempty"`
	ExposedPorts []string          `json:"exposedPorts,omitempty"`
	Volumes      []string          `json:"volumes,omitempty"`
	Labels       map[string]string `json:"labels,omitempty"`
	StopSignal   string            `json:"stopSignal,omitempty"`
	Shell        []string          `json:"shell,omitempty"`
	Healthcheck  *Healthcheck      `json:"healthcheck,omitempty"`
}

// Healthcheck is the config's HEALTHCHECK as the image states it (0 for what it leaves to the runtime). It is
// ggcr's v1.HealthConfig with lowerCamel JSON names, as the rest of Info (v1.HealthConfig's are docker's
// Test, Interval, ...); durations are nanoseconds, named so as runner.Healthcheck's in report.json.
type Healthcheck struct {
	// Test is ["NONE"], ["CMD", args...] or ["CMD-SHELL", command].
	Test        []string      `json:"test,omitempty"`
	Interval    time.Duration `json:"intervalNs,omitempty"`
	Timeout     time.Duration `json:"timeoutNs,omitempty"`
	StartPeriod time.Duration `json:"startPeriodNs,omitempty"`
	Retries     int           `json:"retries,omitempty"`
}

// History is one history entry with its Dockerfile instruction.
type History struct {
	Created     time.Time `json:"created,omitzero"`
	CreatedBy   string    `json:"createdBy,omitempty"`
	Comment     string    `json:"comment,omitempty"`
	EmptyLayer  bool      `json:"emptyLayer,omitempty"`
	Instruction string    `json:"instruction,omitempty"`
}

// Options tune Inspect. The zero value measures with four concurrent layer reads.
type Options struct {
	// SkipMeasure leaves uncompressed sizes unknown instead of streaming every layer (which also verifies
	// every layer against its digests).
	SkipMeasure bool
	// Jobs bounds concurrent layer reads; 0 means 4.
	Jobs   int
	Logger *slog.Logger
	// OCI says how to reach the registry for a registry image's referrers (credentials, plain HTTP); nil
	// is the oci package's defaults.
	OCI *oci.Options
	// SkipReferrers does not ask the registry for referrers; Info.Referrers stays absent.
	SkipReferrers bool
}

func (o *Options) fill() *Options {
	out := Options{}
	if o != nil {
		out = *o
	}
	if out.Jobs <= 0 {
		out.Jobs = 4
	}
	if out.Logger == nil {
		out.Logger = slog.New(slog.DiscardHandler)
	}
	return &out
}

// Inspect describes the image src holds. Unless told not to, it streams every layer to measure its
// uncompressed size, which verifies each blob against its digest and DiffID on the way.
func Inspect(ctx context.Context, src *oci.Source, o *Options) (*Info, error) {
	opts := o.fill()
	img := src.Image
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading config of %s: %w", src.Ref, err)
	}
	cfgName, err := img.ConfigName()
	if err != nil {
		return nil, fmt.Errorf("reading config of %s: %w", src.Ref, err)
	}
	info := &Info{
		Reference:        src.Ref.String(),
		Transport:        string(src.Ref.Transport),
		ConfigDigest:     cfgName.String(),
		Platform:         platform(cf),
		Created:          cf.Created.Time,
		Author:           cf.Author,
		CompressedSize:   0,
		UncompressedSize: 0,
		Config:           config(cf.Config),
		Dockerfile:       Dockerfile(cf.History),
	}
	if src.IndexDigest != nil {
		info.IndexDigest = src.IndexDigest.String()
	}
	archive := src.Ref.Transport == oci.DockerArchive
	var manifest *v1.Manifest
	if !archive {
		info.Digest = src.Digest.String()
		if manifest, err = img.Manifest(); err != nil {
			return nil, fmt.Errorf("reading manifest of %s: %w", src.Ref, err)
		}
		info.MediaType = string(manifest.MediaType)
		if info.MediaType == "" {
			mt, _ := img.MediaType()
			info.MediaType = string(mt)
		}
	}
	historyOf := layerHistory(cf.History, len(cf.RootFS.DiffIDs))
	for _, h := range cf.History {
		info.History = append(info.History, History{
			Created: h.Created.Time, CreatedBy: h.CreatedBy, Comment: h.Comment, EmptyLayer: h.EmptyLayer,
			Instruction: Instruction(h.CreatedBy),
		})
	}
	for i, diffID := range cf.RootFS.DiffIDs {
		l := Layer{DiffID: diffID.String(), CompressedSize: -1, UncompressedSize: -1, History: historyOf[i]}
		if manifest != nil && i < len(manifest.Layers) {
			d := manifest.Layers[i]
			l.Digest, l.MediaType, l.CompressedSize = d.Digest.String(), string(d.MediaType), d.Size
		}
		if l.History >= 0 {
			l.CreatedBy = cf.History[l.History].CreatedBy
			l.Instruction = Instruction(l.CreatedBy)
		}
		info.Layers = append(info.Layers, l)
	}
	if manifest != nil && len(manifest.Layers) != len(cf.RootFS.DiffIDs) {
		return nil, fmt.Errorf("reading %s: the manifest lists %d layers, the config %d DiffIDs", src.Ref, len(manifest.Layers), len(cf.RootFS.DiffIDs))
	}
	if !opts.SkipMeasure {
		if err := measure(ctx, img, cf.RootFS.DiffIDs, info.Layers, opts); err != nil {
			return nil, fmt.Errorf("reading %s: %w", src.Ref, err)
		}
	}
	for _, l := range info.Layers {
		info.CompressedSize = addKnown(info.CompressedSize, l.CompressedSize)
		info.UncompressedSize = addKnown(info.UncompressedSize, l.UncompressedSize)
	}
	if src.Ref.Transport == oci.Registry && !opts.SkipReferrers {
		if info.Referrers, err = referrers(ctx, src, opts); err != nil {
			// An image that opened is described even when the registry refuses or fails the listing.
			info.Referrers, info.ReferrersError = nil, err.Error()
			opts.Logger.Debug("listing referrers failed", "ref", src.Ref.String(), "err", err)
		}
	}
	return info, nil
}

// referrers lists what refers to the image's own manifest (for an image picked from an index: that image's,
// not the index's), never nil.
func referrers(ctx context.Context, src *oci.Source, o *Options) ([]Referrer, error) {
	ref, err := src.Ref.AtDigest(src.Digest)
	if err != nil {
		return nil, err
	}
	list, err := oci.Referrers(ctx, ref, o.OCI)
	if err != nil {
		return nil, err
	}
	out := make([]Referrer, 0, len(list))
	for _, d := range list {
		out = append(out, Referrer{
			Digest: d.Digest.String(), ArtifactType: d.ArtifactType, MediaType: string(d.MediaType), Size: d.Size,
			Annotations: d.Annotations,
		})
	}
	return out, nil
}

func addKnown(sum, v int64) int64 {
	if sum < 0 || v < 0 {
		return -1
	}
	return sum + v
}

// measure streams each layer's uncompressed tar, with a bound on concurrency, and records its size.
func measure(ctx context.Context, img v1.Image, diffIDs []v1.Hash, layers []Layer, o *Options) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(o.Jobs)
	for i, diffID := range diffIDs {
		g.Go(func() error {
			if err := ctx.Err(); err != nil {
				return err
			}
			start := time.Now()
			l, err := img.LayerByDiffID(diffID)
			if err != nil {
				return fmt.Errorf("layer %d: %w", i, err)
			}
			rc, err := l.Uncompressed()
			if err != nil {
				return fmt.Errorf("layer %d (%s): %w", i, diffID, err)
			}
			defer rc.Close()
			n, err := io.Copy(io.Discard, &ctxReader{ctx: ctx, r: rc})
			if err != nil {
				return fmt.Errorf("layer %d (%s): %w", i, diffID, err)
			}
			layers[i].UncompressedSize = n
			o.Logger.Debug("measured layer", "layer", i, "bytes", n, "took", time.Since(start))
			return nil
		})
	}
	return g.Wait()
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// layerHistory maps each layer to the history entry that made it: the entries that are not empty layers,
// in order. When the counts disagree, the history cannot be trusted and no layer gets an entry.
func layerHistory(history []v1.History, layers int) []int {
	out := make([]int, layers)
	for i := range out {
		out[i] = -1
	}
	var idx []int
	for i, h := range history {
		if !h.EmptyLayer {
			idx = append(idx, i)
		}
	}
	if len(idx) != layers {
		return out
	}
	copy(out, idx)
	return out
}

func platform(cf *v1.ConfigFile) string {
	p := cf.OS + "/" + cf.Architecture
	if cf.Variant != "" {
		p += "/" + cf.Variant
	}
	return p
}

func config(c v1.Config) Config {
	out := Config{
		User: c.User, Env: c.Env, Entrypoint: c.Entrypoint, Cmd: c.Cmd, WorkingDir: c.WorkingDir,
		Labels: c.Labels, StopSignal: c.StopSignal, Shell: c.Shell,
	}
	if h := c.Healthcheck; h != nil {
		out.Healthcheck = &Healthcheck{Test: h.Test, Interval: h.Interval, Timeout: h.Timeout, StartPeriod: h.StartPeriod, Retries: h.Retries}
	}
	for p := range c.ExposedPorts {
		out.ExposedPorts = append(out.ExposedPorts, p)
	}
	sort.Strings(out.ExposedPorts)
	for v := range c.Volumes {
		out.Volumes = append(out.Volumes, v)
	}
	sort.Strings(out.Volumes)
	return out
}

// Package is a package an image's database lists.
type Package struct {
	Type    string `json:"type"`
	Name    string `json:"name"`
	Version string `json:"version"`
	PURL    string `json:"purl"`
}
