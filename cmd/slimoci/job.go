package main

import (
	"io"
	"log/slog"

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
