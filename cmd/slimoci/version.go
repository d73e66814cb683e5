package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// VersionCmd prints slimoci's version and what it was built with.
type VersionCmd struct{}

// libraries are the modules whose versions a bug report needs.
var libraries = []string{
	"github.com/google/go-containerregistry",
	"github.com/opencontainers/image-spec",
	"github.com/opencontainers/runc",
	"github.com/alecthomas/kong",
	"github.com/klauspost/compress",
	"golang.org/x/sys",
}

// versionResult is version's --json document.
type versionResult struct {
	Version string `json:"version"`
	// Go is the toolchain's version without its "go" prefix ("1.26.0"); Platform is os/arch.
	Go       string `json:"go"`
	Platform string `json:"platform"`
	// Libraries maps each of libraries the binary holds to its module version.
	Libraries map[string]string `json:"libraries"`
}

func (c *VersionCmd) Run(g *Globals) error {
	r := versionResult{Version: version, Go: strings.TrimPrefix(runtime.Version(), "go"), Platform: runtime.GOOS + "/" + runtime.GOARCH,
		Libraries: map[string]string{}}
	if bi, ok := debug.ReadBuildInfo(); ok {
		deps := map[string]string{}
		for _, d := range bi.Deps {
			v := d.Version
			if d.Replace != nil {
				v = d.Replace.Version
			}
			deps[d.Path] = v
		}
		for _, l := range libraries {
			if v, ok := deps[l]; ok {
				r.Libraries[l] = v
			}
		}
	}
	if g.JSON {
		return g.printJSON(r)
	}
	fmt.Fprintf(g.stdout, "slimoci %s\ngo %s %s\n", r.Version, r.Go, r.Platform)
	for _, l := range libraries {
		if v, ok := r.Libraries[l]; ok {
			fmt.Fprintf(g.stdout, "%s %s\n", l, v)
		}
	}
	return nil
}
