package main

import (
	"context"
	"fmt"

	"github.com/slimoci/slimoci/internal/termsafe"
	"github.com/slimoci/slimoci/oci"
)

// CopyCmd copies an image from any source to any destination slimoci knows, keeping its digests.
type CopyCmd struct {
	Source      string `arg:"" help:"Image to read." name:"SOURCE"`
	Destination string `arg:"" help:"Where to write it: a registry reference, oci:DIR[:tag], docker-archive:FILE[:name:tag] or oci-archive:FILE[:tag]." name:"DESTINATION"`
}

func (c *CopyCmd) Run(ctx context.Context, g *Globals) error {
	opts, err := g.ociOptions()
	if err != nil {
		return err
	}
	src, err := oci.ParseReference(c.Source)
	if err != nil {
		return err
	}
	dst, err := parseDestination(c.Destination)
	if err != nil {
		return err
	}
	s, err := oci.Open(ctx, src, opts)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := oci.Write(ctx, s.Image, dst, opts); err != nil {
		return fmt.Errorf("copying %s: %w", src, err)
	}
	fmt.Fprintln(g.stdout, termsafe.String(fmt.Sprintf("copied %s to %s", src, dst)))
	return nil
}

// parseDestination reads a destination: the source syntax, except that a plain path that does not exist yet
// is not guessed at (name the transport).
func parseDestination(s string) (oci.Reference, error) {
	ref, err := oci.ParseDestination(s)
	if err != nil {
		return oci.Reference{}, fmt.Errorf("destination: %w", err)
	}
	return ref, nil
}
