package main

import (
	"context"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/slimoci/slimoci"
	"github.com/slimoci/slimoci/internal/termsafe"
	"github.com/slimoci/slimoci/oci"
)

// CopyCmd copies an image from any source to any destination slimoci knows, keeping its digests.
type CopyCmd struct {
	Source      string `arg:"" help:"Image to read." name:"SOURCE"`
	Destination string `arg:"" help:"Where to write it: a registry reference, oci:DIR[:tag], docker-archive:FILE[:name:tag] or oci-archive:FILE[:tag]." name:"DESTINATION"`
}

// copyResult is copy's --json document.
type copyResult struct {
	Source      string `json:"source"`
	Destination string `json:"destination"`
	// Digest is the manifest's, the same at both ends; empty when the destination is a docker-archive, which
	// stores no manifest (its image is known by its config digest).
	Digest       string `json:"digest,omitempty"`
	MediaType    string `json:"mediaType"`
	ConfigDigest string `json:"configDigest"`
	Layers       int    `json:"layers"`
	// Bytes is the image's size: its manifest, config and layer blobs as the manifest lists them.
	Bytes int64 `json:"bytes"`
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
	st := g.stage(slimoci.StagePush, dst.String())
	opts.Progress = func(u v1.Update) { st.bytes(u.Complete, u.Total, 0) }
	err = oci.Write(ctx, s.Image, dst, opts)
	st.done(err == nil)
	if err != nil {
		return fmt.Errorf("copying %s: %w", src, err)
	}
	if g.JSON {
		r, err := copied(s.Image, src, dst)
		if err != nil {
			return fmt.Errorf("copying %s: %w", src, err)
		}
		return g.printJSON(r)
	}
	if !g.Quiet {
		fmt.Fprintln(g.stdout, termsafe.String(fmt.Sprintf("copied %s to %s", src, dst)))
	}
	return nil
}

// copied describes the image written; the manifest was read (or, for a docker-archive, computed) by the copy.
func copied(img v1.Image, src, dst oci.Reference) (*copyResult, error) {
	raw, err := img.RawManifest()
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	mt, err := img.MediaType()
	if err != nil {
		return nil, fmt.Errorf("media type: %w", err)
	}
	r := &copyResult{Source: src.String(), Destination: dst.String(), MediaType: string(mt), ConfigDigest: m.Config.Digest.String(),
		Layers: len(m.Layers), Bytes: int64(len(raw)) + m.Config.Size}
	for _, l := range m.Layers {
		r.Bytes += l.Size
	}
	if dst.Transport != oci.DockerArchive {
		d, err := img.Digest()
		if err != nil {
			return nil, fmt.Errorf("digest: %w", err)
		}
		r.Digest = d.String()
	}
	return r, nil
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
