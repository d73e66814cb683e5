package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/alecthomas/kong"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/slimoci/slimoci/internal/termsafe"
	"github.com/slimoci/slimoci/oci"
	"github.com/slimoci/slimoci/runner"
)

// CLI is slimoci's command line: one struct per command, each in its own file.
type CLI struct {
	Globals

	Info    InfoCmd    `cmd:"" help:"Describe an image: digests, platform, sizes, layers, config and the Dockerfile its history implies."`
	Copy    CopyCmd    `cmd:"" help:"Copy an image between a registry, OCI layouts, docker-archives and OCI archives."`
	Unpack  UnpackCmd  `cmd:"" help:"Unpack an image's root filesystem into a directory, safely, with a file index."`
	Build   BuildCmd   `cmd:"" help:"Make a slim image: observe the app, keep what it needs, write one layer, verify it, push or write it."`
	Sbom    SbomCmd    `cmd:"" help:"Write the SBOM of an image's packages (dpkg, apk, Python, node, Ruby, Java): SPDX 2.3 and CycloneDX 1.6 JSON."`
	Profile ProfileCmd `cmd:"" help:"Run the image's app in a sandbox under slimoci's sensor, probe it, and record what it used."`
	Version VersionCmd `cmd:"" help:"Print slimoci's version and the versions of Go and its libraries."`

	Completion CompletionCmd `cmd:"" help:"Print the script that makes bash, zsh or fish complete slimoci's commands, flags and arguments."`
	Man        ManCmd        `cmd:"" hidden:"" help:"Write slimoci's man pages into a directory (make man)."`
}

// Globals are the flags every command takes.
type Globals struct {
	Debug    bool   `help:"Log debug messages to stderr."`
	Insecure bool   `help:"Allow plain HTTP and unverified TLS to registries."`
	Platform string `help:"Platform to pick from a multi-platform image, os/arch[/variant] (default: this host's). build also takes several, comma-separated, or all: it slims each and writes an index." placeholder:"OS/ARCH"`
	Jobs     int    `help:"Concurrent blob transfers and layer reads." default:"4"`
	JSON     bool   `name:"json" help:"Print the result as one JSON document on stdout (logs and progress stay on stderr)."`
	Quiet    bool   `short:"q" help:"Print no progress and no summary: only errors (and the JSON document with --json)."`

	stdout io.Writer
	stderr io.Writer
	logger *slog.Logger
	level  slog.Level
}

// Validate refuses a --platform that does not parse before any command starts: a usage error.
func (g *Globals) Validate() error {
	_, _, err := g.platforms()
	return err
}

// platforms reads --platform: none, one, several (comma-separated) or all.
func (g *Globals) platforms() (ps []v1.Platform, all bool, err error) {
	if g.Platform == "" {
		return nil, false, nil
	}
	if g.Platform == "all" {
		return nil, true, nil
	}
	for _, s := range strings.Split(g.Platform, ",") {
		p, err := oci.ParsePlatform(s)
		if err != nil {
			return nil, false, fmt.Errorf("--platform: %w (or several, comma-separated, or all)", err)
		}
		if slices.ContainsFunc(ps, func(q v1.Platform) bool { return q.Equals(p) }) {
			return nil, false, fmt.Errorf("--platform: %s is named twice", s)
		}
		ps = append(ps, p)
	}
	return ps, false, nil
}

// ociOptions turns the global flags into options for the oci package.
func (g *Globals) ociOptions() (*oci.Options, error) {
	o := &oci.Options{
		Insecure: g.Insecure, Jobs: g.Jobs, Logger: g.logger, UserAgent: "slimoci/" + version,
		// Transient registry errors (5xx, 429, resets) are retried twice, after 0.5 and 1 s: enough for a
		// hiccup, without making a user wait 13 s for a registry that is down.
		Retry: &remote.Backoff{Duration: 500 * time.Millisecond, Factor: 2, Jitter: 0.1, Steps: 3},
	}
	ps, all, err := g.platforms()
	if err != nil {
		return nil, err
	}
	if all || len(ps) > 1 {
		return nil, usage(fmt.Errorf("--platform %s: only build slims several platforms; this command takes one", g.Platform))
	}
	if len(ps) == 1 {
		o.Platform = &ps[0]
	}
	return o, nil
}

// open parses an image reference and opens it with the global flags. The caller closes the source.
func (g *Globals) open(ctx context.Context, image string) (*oci.Source, error) {
	opts, err := g.ociOptions()
	if err != nil {
		return nil, err
	}
	ref, err := oci.ParseReference(image)
	if err != nil {
		return nil, err
	}
	return oci.Open(ctx, ref, opts)
}

const description = `slimoci makes container images smaller without a Docker daemon.

Image references: registry/repo:tag, registry/repo@sha256:..., docker://...; oci:DIR[:tag|@digest];
docker-archive:FILE[:name:tag]; oci-archive:FILE[:tag]; or a plain path to an OCI layout or an archive.`

// Main parses args, runs the command and renders its error as one line on stderr. It returns the exit code
// (exitcode.go): 0 on success, 2 for a command line that does not parse or that a command refuses, 3 for an
// image or registry error, 4 for an app that did not run or answered no probe, 5 for a failed verify, 130
// when interrupted, 1 for anything else. With --json, stdout holds the command's one document and nothing
// else (README: "Exit codes").
func Main(args []string, stdout, stderr io.Writer) int {
	var cli CLI
	exit := -1
	parser, err := kong.New(&cli,
		kong.Name("slimoci"),
		kong.Description(description),
		kong.UsageOnError(),
		kong.Writers(stdout, stderr),
		kong.Exit(func(code int) { exit = code }),
	)
	if err != nil {
		return fail(stderr, err, exitFailure)
	}
	kctx, err := parser.Parse(args)
	if exit >= 0 {
		return exit // --help
	}
	if err != nil {
		return fail(stderr, err, exitUsage)
	}
	level := slog.LevelWarn
	if cli.Debug {
		level = slog.LevelDebug
	}
	if cli.Quiet && !cli.Debug {
		// --quiet: only errors.
		level = slog.LevelError
	}
	cli.Globals.stdout, cli.Globals.stderr, cli.Globals.level = stdout, stderr, level
	cli.Globals.logger = cli.Globals.loggerTo(stderr)
	// libcontainer's own logs (logrus) are slimoci's debug logs, and go nowhere without --debug.
	runner.LibcontainerLogs(cli.Globals.logger)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	kctx.BindTo(ctx, (*context.Context)(nil))
	if err := kctx.Run(&cli.Globals); err != nil {
		return fail(stderr, err, exitCode(err, ctx.Err() != nil))
	}
	return exitOK
}

// fail writes err as one line on stderr and returns code.
func fail(stderr io.Writer, err error, code int) int {
	if code == exitInterrupted {
		fmt.Fprintln(stderr, "slimoci: interrupted")
	} else {
		fmt.Fprintf(stderr, "slimoci: %s\n", termsafe.String(oneLine(err)))
	}
	return code
}

// oneLine keeps an error to one line: registries sometimes answer with multi-line bodies. Main escapes what
// is left of control characters (termsafe.String): errors quote images, registries and apps.
func oneLine(err error) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", " ")), " ")
}
