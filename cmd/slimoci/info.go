package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/slimoci/slimoci/internal/atomicfile"
	"github.com/slimoci/slimoci/internal/termsafe"
	"github.com/slimoci/slimoci/oci"
	"github.com/slimoci/slimoci/reverse"
)

// InfoCmd describes an image. With --json it prints the reverse.Info it renders, as one JSON document.
type InfoCmd struct {
	Image       string `arg:"" help:"Image to describe." name:"IMAGE"`
	Dockerfile  string `help:"Also write the reverse-engineered Dockerfile to FILE." placeholder:"FILE" type:"path"`
	NoMeasure   bool   `help:"Do not read the layers: uncompressed sizes stay unknown and layer blobs are not verified."`
	NoReferrers bool   `help:"Do not ask the registry for the artifacts (SBOMs, signatures) attached to the image."`
	Packages    string `help:"List the packages the image's databases list (dpkg, apk, Python, node, Ruby, Java), which unpacks the image in a temporary directory: auto does for a one-layer image (a slim image), always, never." enum:"auto,always,never" default:"auto"`
}

func (c *InfoCmd) Run(ctx context.Context, g *Globals) error {
	src, err := g.open(ctx, c.Image)
	if err != nil {
		return err
	}
	defer src.Close()
	opts, err := g.ociOptions()
	if err != nil {
		return err
	}
	info, err := reverse.Inspect(ctx, src, &reverse.Options{
		SkipMeasure: c.NoMeasure, SkipReferrers: c.NoReferrers, Jobs: g.Jobs, Logger: g.logger, OCI: opts,
	})
	if err != nil {
		return err
	}
	if c.Packages == "always" || c.Packages == "auto" && len(info.Layers) == 1 {
		if info.Packages, err = imagePackages(ctx, src, g); err != nil {
			return err
		}
	}
	if c.Dockerfile != "" {
		if err := atomicfile.WriteBytes(c.Dockerfile, []byte(info.Dockerfile)); err != nil {
			return fmt.Errorf("writing Dockerfile %s: %w", c.Dockerfile, err)
		}
	}
	if g.JSON {
		return g.printJSON(info)
	}
	return renderInfo(g.stdout, info)
}

// renderInfo prints info as text for a terminal. Most of it is the image's to choose (labels, env, cmd,
// history): each value is escaped (termsafe), so that no control character reaches the terminal and no value
// spans lines; the --dockerfile file keeps the bytes as they are.
func renderInfo(out io.Writer, info *reverse.Info) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(w, "%s:\t%s\n", k, termsafe.String(v))
		}
	}
	row("Reference", info.Reference)
	if info.Digest == "" {
		row("Digest", "none (a docker-archive stores no manifest)")
	} else {
		row("Digest", info.Digest)
	}
	row("Index", info.IndexDigest)
	row("Media type", info.MediaType)
	row("Config", info.ConfigDigest)
	row("Platform", info.Platform)
	if !info.Created.IsZero() {
		row("Created", info.Created.UTC().Format("2006-01-02 15:04:05 MST"))
	}
	row("Author", info.Author)
	row("Size", fmt.Sprintf("%s compressed, %s uncompressed, %d layers", size(info.CompressedSize), size(info.UncompressedSize), len(info.Layers)))
	w.Flush()

	fmt.Fprintln(out, "\nLayers:")
	w = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "  #\tDIGEST\tDIFFID\tCOMPRESSED\tUNCOMPRESSED\tCREATED BY")
	for i, l := range info.Layers {
		created := firstLine(l.Instruction)
		if l.History < 0 {
			created = "(not in the history)"
		}
		fmt.Fprintf(w, "  %d\t%s\t%s\t%s\t%s\t%s\n", i, termsafe.String(short(l.Digest)), termsafe.String(short(l.DiffID)),
			size(l.CompressedSize), size(l.UncompressedSize), termsafe.String(created))
	}
	w.Flush()

	renderReferrers(out, info)
	if len(info.Packages) > 0 {
		fmt.Fprintf(out, "\nPackages (%d):\n", len(info.Packages))
		w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "  TYPE\tNAME\tVERSION")
		for _, p := range info.Packages {
			fmt.Fprintf(w, "  %s\t%s\t%s\n", termsafe.String(p.Type), termsafe.String(p.Name), termsafe.String(p.Version))
		}
		w.Flush()
	}

	fmt.Fprintln(out, "\nConfig:")
	w = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	c := info.Config
	user := c.User
	if user == "" {
		user = "(none: root)"
	}
	crow := func(k string, vs ...string) {
		if len(vs) == 0 || len(vs) == 1 && vs[0] == "" {
			return
		}
		for i, v := range vs {
			v = termsafe.String(v)
			if i == 0 {
				fmt.Fprintf(w, "  %s:\t%s\n", k, v)
			} else {
				fmt.Fprintf(w, "  \t%s\n", v)
			}
		}
	}
	crow("User", user)
	crow("Entrypoint", list(c.Entrypoint))
	crow("Cmd", list(c.Cmd))
	crow("WorkingDir", c.WorkingDir)
	if len(c.Env) > 0 {
		crow("Env", c.Env...)
	}
	crow("ExposedPorts", strings.Join(c.ExposedPorts, " "))
	crow("Volumes", strings.Join(c.Volumes, " "))
	for _, k := range sortedKeys(c.Labels) {
		crow("Label", k+"="+c.Labels[k])
	}
	if h := c.Healthcheck; h != nil {
		crow("Healthcheck", fmt.Sprintf("%s interval=%s timeout=%s retries=%d", list(h.Test), h.Interval, h.Timeout, h.Retries))
	}
	if c.StopSignal != "" {
		crow("StopSignal", c.StopSignal)
	}
	if len(c.Shell) > 0 {
		crow("Shell", list(c.Shell))
	}
	w.Flush()

	fmt.Fprintln(out, "\nDockerfile (reverse-engineered from the history):")
	for _, line := range strings.Split(strings.TrimRight(info.Dockerfile, "\n"), "\n") {
		fmt.Fprintln(out, "  "+termsafe.Text(line))
	}
	return nil
}

// renderReferrers prints the artifacts attached to a registry image (nothing for other transports, which
// list none).
func renderReferrers(out io.Writer, info *reverse.Info) {
	switch {
	case info.ReferrersError != "":
		fmt.Fprintf(out, "\nReferrers: unknown (%s)\n", termsafe.String(info.ReferrersError))
		return
	case info.Referrers == nil:
		return
	case len(info.Referrers) == 0:
		fmt.Fprintln(out, "\nReferrers: none")
		return
	}
	fmt.Fprintln(out, "\nReferrers:")
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "  DIGEST\tARTIFACT TYPE\tSIZE\tANNOTATIONS")
	for _, r := range info.Referrers {
		var anns []string
		for _, k := range sortedKeys(r.Annotations) {
			anns = append(anns, k+"="+r.Annotations[k])
		}
		at := r.ArtifactType
		if at == "" {
			at = "-"
		}
		fmt.Fprintf(w, "  %s\t%s\t%s\t%s\n", termsafe.String(short(r.Digest)), termsafe.String(at), size(r.Size),
			termsafe.String(strings.Join(anns, " ")))
	}
	w.Flush()
}

func size(n int64) string {
	switch {
	case n < 0:
		return "-"
	case n < 1000:
		return fmt.Sprintf("%d B", n)
	case n < 1000*1000:
		return fmt.Sprintf("%.1f kB", float64(n)/1e3)
	case n < 1000*1000*1000:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	}
	return fmt.Sprintf("%.2f GB", float64(n)/1e9)
}

func short(d string) string {
	if d == "" {
		return "-"
	}
	if _, hex, ok := strings.Cut(d, ":"); ok && len(hex) > 12 {
		return d[:len(d)-len(hex)] + hex[:12]
	}
	return d
}

func list(v []string) string {
	if len(v) == 0 {
		return ""
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func firstLine(s string) string {
	line, _, more := strings.Cut(s, "\n")
	line = strings.TrimSuffix(strings.TrimSpace(line), "\\")
	if more {
		return strings.TrimSpace(line) + " ..."
	}
	return line
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// imagePackages unpacks src into a temporary directory (removed at the end) and reads its package databases.
func imagePackages(ctx context.Context, src *oci.Source, g *Globals) ([]reverse.Package, error) {
	set, _, err := unpackPackages(ctx, src, g, nil)
	if err != nil {
		return nil, err
	}
	pkgs := make([]reverse.Package, 0, len(set.Packages))
	for _, p := range set.Packages {
		pkgs = append(pkgs, reverse.Package{Type: p.Type, Name: p.Name, Version: p.Version, PURL: p.PURL})
	}
	return pkgs, nil
}
