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

func (c *VersionCmd) Run(g *Globals) error {
	fmt.Fprintf(g.stdout, "slimoci %s\n", version)
	fmt.Fprintf(g.stdout, "go %s %s/%s\n", strings.TrimPrefix(runtime.Version(), "go"), runtime.GOOS, runtime.GOARCH)
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return nil
	}
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
			fmt.Fprintf(g.stdout, "%s %s\n", l, v)
		}
	}
	return nil
}
