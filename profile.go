package slimoci

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/slimoci/slimoci/runner"
)

// ProfileOptions say how Profile runs an image's app. Run.Spec.Sensor must name the sensor binary.
type ProfileOptions struct {
	JobOptions
	Run RunOptions
}

// ProfileResult is what Profile saw: the image, how its app was run, and the observation. It is also
// profile's report.json and profile --json's document.
type ProfileResult struct {
	Image  string      `json:"image"`
	Digest string      `json:"digest,omitempty"`
	Config string      `json:"configDigest"`
	Args   []string    `json:"args"`
	User   runner.User `json:"user"`
	*runner.Observation
	// Stages are how long unpacking and observing took; Report is where report.json went.
	Stages []StageTime `json:"stages"`
	Report string      `json:"-"`
}

// Profile runs image's app in the sandbox under the sensor, exercises it with the probes, and writes what
// it used to the state directory: report.json (the record) and seccomp.json (a profile allowing the
// syscalls seen). A run that hit a limit or failed its probes still returns its result, with the error.
func Profile(ctx context.Context, image string, o *ProfileOptions) (*ProfileResult, error) {
	if o == nil {
		o = &ProfileOptions{}
	}
	po := *o
	po.fill()
	p := &progress{ctx: ctx, ch: po.Progress}
	defer p.close()
	if po.Run.Spec.Sensor == "" {
		return nil, fmt.Errorf("no sensor binary: RunOptions.Spec.Sensor names none")
	}
	start := time.Now()
	p.send(Event{Stage: StageUnpack, Kind: Started, Message: image})
	w, err := openAndUnpack(ctx, image, &po.JobOptions, p)
	if err != nil {
		return nil, err
	}
	defer w.close()
	unpackTime := time.Since(start)
	p.send(Event{Stage: StageUnpack, Kind: Finished, Elapsed: unpackTime, Complete: int64(w.tree.Index.Len()), Unit: "files"})
	ref := w.src.Ref
	r, err := po.Run.prepare(w.tree, po.Run.Config, w, po.Logger)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	start = time.Now()
	r.plan.Status = p.status(StageObserve, 0, po.Run.Plan.Status)
	p.send(Event{Stage: StageObserve, Kind: Started})
	obs, runErr := r.observe(ctx, w.tree.Dir, filepath.Join(w.dir, "sandbox"))
	observeTime := time.Since(start)
	p.send(Event{Stage: StageObserve, Kind: Finished, Elapsed: observeTime})
	if obs == nil {
		return nil, fmt.Errorf("running %s: %w", ref, runErr)
	}
	res := &ProfileResult{Image: ref.String(), Digest: digestOf(w.src), Args: r.spec.Args, User: r.user, Observation: obs,
		Stages: []StageTime{{StageUnpack, unpackTime.Seconds()}, {StageObserve, observeTime.Seconds()}}}
	if cn, err := w.src.Image.ConfigName(); err == nil {
		res.Config = cn.String()
	}
	if res.Report, err = po.writeReport(res); err != nil {
		return res, err
	}
	if err := writeSeccomp(filepath.Join(po.StateDir, "seccomp.json"), w.tree, obs); err != nil {
		return res, err
	}
	if runErr != nil {
		if res.Report == "" {
			return res, fmt.Errorf("running %s: %w", ref, runErr)
		}
		return res, fmt.Errorf("running %s: %w (the record is in %s)", ref, runErr, res.Report)
	}
	if err := obs.ProbeError(); err != nil {
		return res, appError{err}
	}
	return res, nil
}
