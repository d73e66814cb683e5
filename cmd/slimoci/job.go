package main

import (
	"io"
	"log/slog"
	"time"

	"github.com/slimoci/slimoci"
	"github.com/slimoci/slimoci/internal/termsafe"
)

// job turns the global flags and a command's state and work directories into the library's job options,
// and starts drawing the job's progress on stderr (nothing with --quiet). The job closes the events; done
// waits until the last is drawn. While it runs, logs go through the renderer (on a terminal, above the
// bars).
func (c *CommandFlags) job(g *Globals, stateDir, workDir string) (_ *slimoci.JobOptions, done func(), err error) {
	opts, err := g.ociOptions()
	if err != nil {
		return nil, nil, err
	}
	events := make(chan slimoci.Event)
	logs, wait := renderProgress(events, g.stderr, g.Quiet)
	logger := g.loggerTo(logs)
	opts.Logger = logger
	return &slimoci.JobOptions{StateDir: stateDir, Report: c.Report, WorkDir: workDir, OCI: opts, Logger: logger, Progress: events}, wait, nil
}

// stage draws one stage of a command that calls a stage package itself (unpack, copy): start it, send
// its counts, finish it; done waits until the last is drawn.
type stage struct {
	name   slimoci.Stage
	events chan slimoci.Event
	start  time.Time
	wait   func()
}

func (g *Globals) stage(name slimoci.Stage, message string) *stage {
	s := &stage{name: name, events: make(chan slimoci.Event, 16), start: time.Now()}
	_, s.wait = renderProgress(s.events, g.stderr, g.Quiet)
	s.events <- slimoci.Event{Stage: name, Kind: slimoci.Started, Message: message}
	return s
}

// bytes reports complete of total bytes, and files.
func (s *stage) bytes(complete, total, files int64) {
	s.events <- slimoci.Event{Stage: s.name, Kind: slimoci.Progressed, Complete: complete, Total: total, Unit: "bytes", Files: files}
}

// done finishes the stage (ok: drawn as finished; otherwise just ended) and waits until it is drawn.
func (s *stage) done(ok bool) {
	if ok {
		s.events <- slimoci.Event{Stage: s.name, Kind: slimoci.Finished, Elapsed: time.Since(s.start)}
	}
	close(s.events)
	s.wait()
}

// loggerTo is the command's logger, writing to w.
func (g *Globals) loggerTo(w io.Writer) *slog.Logger {
	// slog quotes what it logs, controls escaped; the terminal writer is there for anything it misses.
	return slog.New(slog.NewTextHandler(termsafe.NewWriter(w), &slog.HandlerOptions{Level: g.level}))
}

// humanOut is where a command's human-readable lines go: stdout, or stderr with --json (stdout holds the
// JSON document alone).
func (g *Globals) humanOut() io.Writer {
	if g.JSON {
		return g.stderr
	}
	return g.stdout
}
