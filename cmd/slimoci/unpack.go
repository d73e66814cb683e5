package main

import (
	"context"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/slimoci/slimoci"
	"github.com/slimoci/slimoci/internal/termsafe"
	"github.com/slimoci/slimoci/rootfs"
)

// UnpackCmd unpacks an image's root filesystem into a directory, as `umoci unpack` does, safely: nothing in
// the image can write outside DIR.
type UnpackCmd struct {
	Image string `arg:"" help:"Image to unpack." name:"IMAGE"`
	Dir   string `arg:"" help:"Directory to unpack into; it must not exist, or be empty." name:"DIR" type:"path"`
}

// unpackResult is unpack's --json document: what was unpacked where, the digests it was checked against,
// the counts, and the file index (every path with its type, mode, owner, links, xattrs and layer, and what
// later layers removed).
type unpackResult struct {
	Image string `json:"image"`
	Dir   string `json:"dir"`
	// Digest is the manifest's; empty for a docker-archive, which stores no manifest.
	Digest       string `json:"digest,omitempty"`
	IndexDigest  string `json:"indexDigest,omitempty"`
	ConfigDigest string `json:"configDigest"`
	// DiffIDs are the layers' uncompressed digests, in order: each layer was verified against its own.
	DiffIDs []string `json:"diffIDs"`
	// Rootless says owners, device nodes and security xattrs are in the index only.
	Rootless bool          `json:"rootless"`
	Stats    rootfs.Stats  `json:"stats"`
	Index    *rootfs.Index `json:"index"`
}

func (c *UnpackCmd) Run(ctx context.Context, g *Globals) error {
	src, err := g.open(ctx, c.Image)
	if err != nil {
		return err
	}
	defer src.Close()
	ref := src.Ref
	st := g.stage(slimoci.StageUnpack, ref.String())
	tree, err := rootfs.Unpack(ctx, src.Image, c.Dir, &rootfs.Options{Jobs: min(g.Jobs, 2), Logger: g.logger,
		Progress: func(p rootfs.Progress) { st.bytes(p.Read, p.Total, p.Files) }})
	st.done(err == nil)
	if err != nil {
		return fmt.Errorf("unpacking %s into %s: %w", ref, c.Dir, err)
	}
	if g.JSON {
		r := unpackResult{Image: ref.String(), Dir: tree.Dir, Rootless: tree.Rootless, Stats: tree.Stats, Index: tree.Index, DiffIDs: []string{}}
		if src.Digest != (v1.Hash{}) {
			r.Digest = src.Digest.String()
		}
		if src.IndexDigest != nil {
			r.IndexDigest = src.IndexDigest.String()
		}
		cfg, err := src.Image.ConfigName()
		if err != nil {
			return fmt.Errorf("reading %s: config digest: %w", ref, err)
		}
		r.ConfigDigest = cfg.String()
		for _, d := range tree.Config.RootFS.DiffIDs {
			r.DiffIDs = append(r.DiffIDs, d.String())
		}
		return g.printJSON(r)
	}
	if g.Quiet {
		return nil
	}
	fmt.Fprintln(g.stdout, termsafe.String(fmt.Sprintf("unpacked %s into %s: %d entries, %s of files, %d removed by later layers, in %.1fs",
		ref, c.Dir, tree.Stats.Entries, size(tree.Stats.Bytes), len(tree.Index.Removed()), tree.Stats.Duration.Seconds())))
	if tree.Stats.Skipped > 0 {
		fmt.Fprintf(g.stdout, "%d owners, xattrs or device nodes could not be applied here; the index keeps them (--json)\n", tree.Stats.Skipped)
	}
	return nil
}
