package slimoci

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/slimoci/slimoci/emit"
	"github.com/slimoci/slimoci/rootfs"
	"github.com/slimoci/slimoci/runner"
)

// pipelineOptions drive runPipeline: Build's stages once the image is unpacked and the run prepared.
type pipelineOptions struct {
	// Tree is the fat image, unpacked.
	Tree *rootfs.Tree
	// Observe runs the app over an unpacked tree (the fat one, then each slim one) with the same probes.
	// round is 0 for the fat image's run, then each verify round's number.
	Observe func(ctx context.Context, treeDir string, round int) (*runner.Observation, error)
	// ObserveSlim, when set, runs verify's observations instead of Observe: it gets the slim tree, whose
	// config (Image.Edits applied) may run the app otherwise than the fat one's.
	ObserveSlim func(ctx context.Context, tree *rootfs.Tree, round int) (*runner.Observation, error)
	// Closure says what to keep besides what was observed (Observed is Build's; Build adds to Extra what
	// verify finds missing).
	Closure rootfs.ClosureOptions
	Image   emit.ImageOptions
	// Verify runs the slim image with the same probes; Rounds bounds the repairs (default 3).
	Verify bool
	Rounds int
	// PackageDB, when set, is given each round's kept paths: it adds the package database's paths the slim
	// image keeps, and returns the content the slim image gets for them instead of the tree's.
	PackageDB func(keep map[string][]string) (replace map[string][]byte, err error)
	// Sabotage, when set, edits the first closure (tests use it to break a build that verify must repair).
	Sabotage func(keep map[string][]string)
	Logger   *slog.Logger
	progress *progress
}

// pipelineResult is what runPipeline made and saw.
type pipelineResult struct {
	Fat     *runner.Observation
	Slim    *runner.Observation // the last verify run; nil without verify
	Closure *rootfs.Closure
	Image   v1.Image
	Stats   *emit.LayerStats
	// Added are the paths verify found the slim image missing and added back.
	Added []string
	// Rounds is how many slim images were built.
	Rounds int
	// Timings by stage: observe, closure, emit, verify.
	Timings map[string]time.Duration
}

// runPipeline observes the fat image's app, computes what to keep, writes the slim image and, with Verify, runs
// it under the same probes: when it does not answer as the fat one did, what its run looked up and missed
// (and the fat image has) is added back and the image rebuilt, up to Rounds times.
func runPipeline(ctx context.Context, o pipelineOptions) (*pipelineResult, error) {
	if o.Rounds <= 0 {
		o.Rounds = 3
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	res := &pipelineResult{Timings: map[string]time.Duration{}}
	stage := func(name Stage, start time.Time, round int) {
		d := time.Since(start)
		res.Timings[string(name)] += d
		o.progress.send(Event{Stage: name, Kind: Finished, Round: round, Elapsed: d})
	}
	begin := func(name Stage, round int) time.Time {
		o.progress.send(Event{Stage: name, Kind: Started, Round: round})
		return time.Now()
	}

	start := begin(StageObserve, 0)
	fat, err := o.Observe(ctx, o.Tree.Dir, 0)
	if err != nil {
		if fat != nil {
			// A limit hit or a full record: the observation is kept for the report, the build stops.
			res.Fat = fat
			return res, fmt.Errorf("observing the app: %w", err)
		}
		return nil, fmt.Errorf("observing the app: %w", err)
	}
	stage(StageObserve, start, 0)
	res.Fat = fat
	if err := fat.ProbeError(); err != nil {
		return res, appError{err}
	}
	copts := o.Closure
	copts.Observed = fat.Record.Files
	copts.Extra = maps.Clone(o.Closure.Extra)
	if copts.Extra == nil {
		copts.Extra = map[string]string{}
	}
	for round := 1; ; round++ {
		start = begin(StageClosure, round)
		c, err := o.Tree.ComputeClosure(copts)
		if err != nil {
			return res, fmt.Errorf("computing what to keep: %w", err)
		}
		markHealthcheck(c.Keep, fat.Healthcheck, o.Tree.Index)
		if round == 1 && o.Sabotage != nil {
			o.Sabotage(c.Keep)
		}
		var replace map[string][]byte
		if o.PackageDB != nil {
			if replace, err = o.PackageDB(c.Keep); err != nil {
				return res, fmt.Errorf("pruning the package database: %w", err)
			}
		}
		stage(StageClosure, start, round)
		res.Closure, res.Rounds = c, round

		start = begin(StageEmit, round)
		iopts := o.Image
		iopts.Replace = replace
		if o.progress != nil && o.progress.ch != nil {
			iopts.Progress = func(lp emit.LayerProgress) {
				o.progress.send(Event{Stage: StageEmit, Kind: Progressed, Round: round, Complete: lp.Bytes, Total: lp.TotalBytes, Unit: "bytes",
					Files: lp.Files, TotalFiles: lp.TotalFiles})
			}
		}
		img, stats, err := emit.SlimImage(o.Tree, c.Keep, iopts)
		if err != nil {
			return nil, fmt.Errorf("writing the slim image: %w", err)
		}
		stage(StageEmit, start, round)
		res.Image, res.Stats = img, stats
		if !o.Verify {
			return res, nil
		}

		start = begin(StageVerify, round)
		slim, reasons, err := verify(ctx, o, img, fat, round)
		stage(StageVerify, start, round)
		if err != nil {
			return nil, err
		}
		res.Slim = slim
		if len(reasons) == 0 {
			return res, nil
		}
		added := missedPaths(slim, o.Tree.Index, c.Keep)
		if round >= o.Rounds || len(added) == 0 {
			return res, fmt.Errorf("%w after %d rounds: %s", ErrVerify, round, strings.Join(reasons, "; "))
		}
		o.Logger.Info("verify: the slim image failed; adding back what its run missed", "round", round, "reasons", reasons, "added", added)
		for _, p := range added {
			copts.Extra[p] = rootfs.ReasonVerify
			res.Added = append(res.Added, p)
		}
	}
}

// verify unpacks the slim image and observes it, returning why it does not behave as the fat one.
func verify(ctx context.Context, o pipelineOptions, img v1.Image, fat *runner.Observation, round int) (*runner.Observation, []string, error) {
	dir, err := os.MkdirTemp(o.Image.Dir, "verify-")
	if err != nil {
		return nil, nil, err
	}
	defer rootfs.RemoveTree(dir)
	tree, err := rootfs.Unpack(ctx, img, filepath.Join(dir, "rootfs"), &rootfs.Options{Logger: o.Logger})
	if err != nil {
		return nil, nil, fmt.Errorf("unpacking the slim image: %w", err)
	}
	observe := func() (*runner.Observation, error) { return o.Observe(ctx, tree.Dir, round) }
	if o.ObserveSlim != nil {
		observe = func() (*runner.Observation, error) { return o.ObserveSlim(ctx, tree, round) }
	}
	slim, err := observe()
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, err
		}
		return nil, []string{"it did not run: " + err.Error()}, nil
	}
	return slim, Compare(fat, slim), nil
}

// Compare lists how slim's run differs from fat's: each probe's status, each exec probe's and host command's
// exit code, each crawled page's status, and the app's exit behaviour.
func Compare(fat, slim *runner.Observation) []string {
	var out []string
	for i, p := range fat.Probes {
		if i >= len(slim.Probes) {
			out = append(out, fmt.Sprintf("probe %s :%d%s was not run", p.Method, p.Port, p.Path))
			continue
		}
		if s := slim.Probes[i]; s.Status != p.Status {
			got := fmt.Sprint(s.Status)
			if s.Status == 0 {
				got = s.Error
			}
			out = append(out, fmt.Sprintf("probe %s :%d%s: %s, the fat image gave %d", p.Method, p.Port, p.Path, got, p.Status))
		}
	}
	for i, e := range fat.Execs {
		if i >= len(slim.Execs) || slim.Execs[i].ExitCode != e.ExitCode {
			got := "not run"
			if i < len(slim.Execs) {
				got = fmt.Sprintf("exit %d", slim.Execs[i].ExitCode)
			}
			out = append(out, fmt.Sprintf("exec %s: %s, the fat image gave exit %d", strings.Join(e.Args, " "), got, e.ExitCode))
		}
	}
	if fat.Healthcheck.OK() && !slim.Healthcheck.OK() {
		got := "not run"
		if last := slim.Healthcheck.Last(); last != nil {
			got = fmt.Sprintf("unhealthy (exit %d)", last.ExitCode)
			if last.Error != "" {
				got = "unhealthy (" + last.Error + ")"
			}
		}
		out = append(out, fmt.Sprintf("healthcheck %s: %s, the fat image was healthy", strings.Join(fat.Healthcheck.Args, " "), got))
	}
	out = append(out, runner.HostExecDiff(fat, slim)...)
	out = append(out, runner.CrawlDiff(fat, slim)...)
	switch {
	case fat.AppExited && (!slim.AppExited || slim.ExitCode != fat.ExitCode):
		out = append(out, fmt.Sprintf("the app exited with %d (fat) but %s (slim)", fat.ExitCode, exitText(slim)))
	case !fat.AppExited && slim.AppExited:
		out = append(out, fmt.Sprintf("the app exited with %d before it was asked to stop", slim.ExitCode))
	}
	return out
}

func exitText(o *runner.Observation) string {
	if !o.AppExited {
		return "kept running"
	}
	return fmt.Sprintf("exited with %d", o.ExitCode)
}

// ReasonHealthcheck marks a kept path the image's HEALTHCHECK used (besides its other reasons).
const ReasonHealthcheck = "healthcheck"

// markHealthcheck adds ReasonHealthcheck to the kept paths the healthcheck's runs used: each recorded name
// and what it resolves to in the fat image.
func markHealthcheck(keep map[string][]string, hc *runner.HealthcheckResult, fat *rootfs.Index) {
	if hc == nil {
		return
	}
	mark := func(p string) {
		if r := keep[p]; r != nil && !slices.Contains(r, ReasonHealthcheck) {
			keep[p] = append(r, ReasonHealthcheck)
			sort.Strings(keep[p])
		}
	}
	for p := range hc.Files {
		mark(p)
		if real, err := fat.Resolve(p, true); err == nil && real != p {
			mark(real)
		}
	}
}

// missedPaths are the paths the slim run used (or looked for) that the slim image lacks and the fat image
// has: the names themselves and what they lead to in the fat image.
func missedPaths(slim *runner.Observation, fat *rootfs.Index, keep map[string][]string) []string {
	if slim == nil || slim.Record == nil {
		return nil
	}
	var out []string
	for p := range slim.Record.Files {
		real, err := fat.Resolve(p, true)
		if err != nil {
			continue
		}
		if _, ok := fat.Lookup(real); ok && keep[real] == nil {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

// Dropped is a path of the fat image the slim one does not have.
type Dropped struct {
	Path string `json:"path"`
	Size int64  `json:"size"`
}

// droppedPaths lists the fat image's entries not kept, with their sizes.
func droppedPaths(ix *rootfs.Index, keep map[string][]string) []Dropped {
	var out []Dropped
	ix.Walk(func(e *rootfs.Entry) error {
		if keep[e.Path] == nil && e.Path != "/" {
			out = append(out, Dropped{Path: e.Path, Size: e.Size})
		}
		return nil
	})
	return out
}

// topDropped sums the dropped sizes by directory, depth levels down ("/usr/lib/jvm" at depth 3), and
// returns the n largest.
func topDropped(dropped []Dropped, depth, n int) []Dropped {
	sums := map[string]int64{}
	for _, d := range dropped {
		if d.Size == 0 {
			continue
		}
		parts := strings.Split(strings.TrimPrefix(d.Path, "/"), "/")
		if len(parts) > depth {
			parts = parts[:depth]
		} else if len(parts) > 1 {
			parts = parts[:len(parts)-1]
		}
		sums["/"+path.Join(parts...)] += d.Size
	}
	out := make([]Dropped, 0, len(sums))
	for p, s := range sums {
		out = append(out, Dropped{Path: p, Size: s})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Size != out[j].Size {
			return out[i].Size > out[j].Size
		}
		return out[i].Path < out[j].Path
	})
	if len(out) > n {
		out = out[:n]
	}
	return out
}
