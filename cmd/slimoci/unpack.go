package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/slimoci/slimoci/internal/termsafe"
	"github.com/slimoci/slimoci/rootfs"
)

// UnpackCmd unpacks an image's root filesystem into a directory, as `umoci unpack` does, safely: nothing in
// the image can write outside DIR.
type UnpackCmd struct {
	Image string `arg:"" help:"Image to unpack." name:"IMAGE"`
	Dir   string `arg:"" help:"Directory to unpack into; it must not exist, or be empty." name:"DIR" type:"path"`
	JSON  bool   `help:"Print the file index (every path with its type, mode, owner, links, xattrs and layer) as JSON." name:"json"`
}

func (c *UnpackCmd) Run(ctx context.Context, g *Globals) error {
	src, err := g.open(ctx, c.Image)
	if err != nil {
		return err
	}
	defer src.Close()
	ref := src.Ref
	tree, err := rootfs.Unpack(ctx, src.Image, c.Dir, &rootfs.Options{Jobs: min(g.Jobs, 2), Logger: g.logger})
	if err != nil {
		return fmt.Errorf("unpacking %s into %s: %w", ref, c.Dir, err)
	}
	if c.JSON {
		// The image's paths, escaped where a terminal would obey them.
		enc := json.NewEncoder(termsafe.NewJSONWriter(g.stdout))
		enc.SetIndent("", " ")
		return enc.Encode(tree.Index)
	}
	fmt.Fprintln(g.stdout, termsafe.String(fmt.Sprintf("unpacked %s into %s: %d entries, %s of files, %d removed by later layers, in %.1fs",
		ref, c.Dir, tree.Stats.Entries, size(tree.Stats.Bytes), len(tree.Index.Removed()), tree.Stats.Duration.Seconds())))
	if tree.Stats.Skipped > 0 {
		fmt.Fprintf(g.stdout, "%d owners, xattrs or device nodes could not be applied here; the index keeps them (--json)\n", tree.Stats.Skipped)
	}
	return nil
}
