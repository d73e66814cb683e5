package main

import (
	"io"

	"github.com/slimoci/slimoci"
)

// job turns the global flags and a command's state and work directories into the library's job options.
func (c *CommandFlags) job(g *Globals, stateDir, workDir string) (*slimoci.JobOptions, error) {
	opts, err := g.ociOptions()
	if err != nil {
		return nil, err
	}
	return &slimoci.JobOptions{StateDir: stateDir, Report: c.Report, WorkDir: workDir, OCI: opts, Logger: g.logger}, nil
}

// humanOut is where a command's human-readable lines go: stdout, or stderr with --json (stdout holds the
// JSON document alone).
func (g *Globals) humanOut() io.Writer {
	if g.JSON {
		return g.stderr
	}
	return g.stdout
}
