package main

import (
	"context"
	"fmt"

	"github.com/slimoci/slimoci"
)

// ProfileCmd runs the image's app under the sensor in a sandbox, probes it, and writes what it used.
type ProfileCmd struct {
	Image     string `arg:"" help:"Image to profile." name:"IMAGE"`
	StatePath string `help:"Directory for the artifacts: report.json (the record) and seccomp.json." default:"slimoci-state" type:"path"`
	ObserveFlags
}

// Validate checks every flag and their combinations before anything is pulled (kong: a usage error).
func (c *ProfileCmd) Validate() error { return c.ObserveFlags.validate() }

func (c *ProfileCmd) Run(ctx context.Context, g *Globals) error {
	run, stop, err := c.runOptions(g)
	if err != nil {
		return err
	}
	defer stop()
	job, done, err := c.job(g, c.StatePath, c.WorkDir)
	if err != nil {
		return usage(err)
	}
	res, err := slimoci.Profile(ctx, c.Image, &slimoci.ProfileOptions{JobOptions: *job, Run: *run})
	done()
	if g.JSON && res != nil {
		if jerr := g.printJSON(res); jerr != nil && err == nil {
			err = jerr
		}
	} else if res != nil && !g.Quiet {
		summary(g.stdout, res.Image, res.Observation)
		fmt.Fprintf(g.stdout, "artifacts in %s\n", c.StatePath)
	}
	return err
}
