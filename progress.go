package slimoci

import (
	"context"
	"time"

	"github.com/slimoci/slimoci/runner"
)

// Stage names a step of a job, in the order a build runs them.
type Stage string

const (
	// StageUnpack reads the image's layers into a directory; pulling is lazy, so it includes the pull.
	StageUnpack Stage = "unpack"
	// StageObserve runs the app in the sandbox under the probes.
	StageObserve Stage = "observe"
	// StageClosure computes what to keep.
	StageClosure Stage = "closure"
	// StageEmit writes the slim image's layer.
	StageEmit Stage = "emit"
	// StageVerify unpacks the slim image and runs it under the same probes.
	StageVerify Stage = "verify"
	// StagePush writes the slim image to each destination.
	StagePush Stage = "push"
)

// EventKind says what an Event reports.
type EventKind string

const (
	// Started is a stage beginning (a verify round, a destination).
	Started EventKind = "start"
	// Progressed is a stage's counts moving on, or what it now waits for (Message).
	Progressed EventKind = "progress"
	// Finished is a stage done; Elapsed says how long it took.
	Finished EventKind = "done"
)

// Event is one report of a job's progress. Progress is data: the library sends events, the caller draws.
type Event struct {
	Stage Stage     `json:"stage"`
	Kind  EventKind `json:"kind"`
	// Complete of Total, in Unit ("bytes" or "files"); Total is 0 when not known.
	Complete int64  `json:"complete,omitempty"`
	Total    int64  `json:"total,omitempty"`
	Unit     string `json:"unit,omitempty"`
	// Files of TotalFiles are the entries done besides, where a stage counts both (unpack: bytes read and
	// files written; emit: bytes and files written); TotalFiles is 0 when not known.
	Files      int64 `json:"files,omitempty"`
	TotalFiles int64 `json:"totalFiles,omitempty"`
	// Message is what the stage is doing or waiting for: "waiting for the app on :8080", a probe's answer, a
	// destination. It may quote the image or the app: escape it before it reaches a terminal.
	Message string `json:"message,omitempty"`
	// Waiting says Message is what the stage now waits for (sent again every few seconds with the time so
	// far), not something that happened.
	Waiting bool `json:"waiting,omitempty"`
	// Round is the verify round (1, 2, ...) of an observe or verify event; 0 for the fat image's run.
	Round int `json:"round,omitempty"`
	// Elapsed is the stage's time, on Finished.
	Elapsed time.Duration `json:"elapsed,omitempty"`
	// Platform is the platform the event's stage works on, when Build slims several (os/arch[/variant]); ""
	// for one platform, and for the index's own push.
	Platform string `json:"platform,omitempty"`
}

// progress sends a job's events to a channel, in order; it drops nothing and blocks while the receiver
// is slow (as ggcr's remote.WithProgress), and stops sending once ctx is done.
type progress struct {
	ctx context.Context
	ch  chan<- Event
	// platform marks every event sent (Event.Platform).
	platform string
}

// forPlatform is a progress sending to the same channel with the platform marked; the caller's progress
// closes the channel.
func (p *progress) forPlatform(platform string) *progress {
	if p == nil {
		return nil
	}
	return &progress{ctx: p.ctx, ch: p.ch, platform: platform}
}

func (p *progress) send(e Event) {
	if p == nil || p.ch == nil {
		return
	}
	if e.Platform == "" {
		e.Platform = p.platform
	}
	select {
	case p.ch <- e:
	case <-p.ctx.Done():
	}
}

// status turns an observation's statuses (what it does and waits for, each probe's answer) into stage's
// events, and passes them on to also (the caller's own Plan.Status) when set.
func (p *progress) status(stage Stage, round int, also func(runner.Status)) func(runner.Status) {
	if p == nil || p.ch == nil {
		return also
	}
	return func(st runner.Status) {
		p.send(Event{Stage: stage, Kind: Progressed, Round: round, Message: st.Message, Waiting: st.Waiting})
		if also != nil {
			also(st)
		}
	}
}

// close ends the events: the job closes the caller's channel when it returns, so a receiver can range it.
func (p *progress) close() {
	if p != nil && p.ch != nil {
		close(p.ch)
	}
}
