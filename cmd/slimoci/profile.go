package main

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/slimoci/slimoci/emit"
	"github.com/slimoci/slimoci/internal/atomicfile"
	"github.com/slimoci/slimoci/runner"
)

// ProfileCmd runs the image's app under the sensor in a sandbox, probes it, and writes what it used.
type ProfileCmd struct {
	Image     string `arg:"" help:"Image to profile." name:"IMAGE"`
	StatePath string `help:"Directory for the artifacts: report.json (the record) and seccomp.json." default:"slimoci-state" type:"path"`
	ObserveFlags
}

// Report is what `profile` writes to report.json: the image, how its app was run, and what was seen.
type Report struct {
	Image  string      `json:"image"`
	Digest string      `json:"digest,omitempty"`
	Config string      `json:"configDigest"`
	Args   []string    `json:"args"`
	User   runner.User `json:"user"`
	*runner.Observation
}

func (c *ProfileCmd) Run(ctx context.Context, g *Globals) error {
	o, err := c.parse(g)
	if err != nil {
		return err
	}
	u, err := g.openAndUnpack(ctx, c.Image, c.StatePath, c.WorkDir)
	if err != nil {
		return err
	}
	defer u.close()
	o.workRoot = u.private
	src, work, tree, ref := u.src, u.work, u.tree, u.src.Ref
	if err := c.forImage(o, tree); err != nil {
		return fmt.Errorf("%s: %w", ref, err)
	}
	obs, runErr := o.run(ctx, tree.Dir, filepath.Join(work, "sandbox"), g)
	if obs == nil {
		return fmt.Errorf("running %s: %w", ref, runErr)
	}
	report := Report{Image: ref.String(), Args: o.spec.Args, User: o.user, Observation: obs}
	if cn, err := src.Image.ConfigName(); err == nil {
		report.Config = cn.String()
	}
	if src.Digest.Hex != "" {
		report.Digest = src.Digest.String()
	}
	where, err := c.writeReport(c.StatePath, report)
	if err != nil {
		return err
	}
	if err := writeSeccomp(filepath.Join(c.StatePath, "seccomp.json"), obs); err != nil {
		return err
	}
	summary(g.stdout, ref.String(), obs)
	fmt.Fprintf(g.stdout, "artifacts in %s\n", c.StatePath)
	if runErr != nil {
		if where == "" {
			return fmt.Errorf("running %s: %w", ref, runErr)
		}
		return fmt.Errorf("running %s: %w (the record is in %s)", ref, runErr, where)
	}
	return obs.ProbeError()
}

// writeSeccomp writes a seccomp profile allowing the syscalls seen.
func writeSeccomp(path string, obs *runner.Observation) error {
	var names []string
	for n := range obs.Record.Syscalls {
		names = append(names, n)
	}
	sort.Strings(names)
	profile, err := emit.SeccompProfile(names)
	if err != nil {
		return err
	}
	return atomicfile.WriteBytes(path, profile)
}

// tail keeps the last 64 KiB an app wrote, for error messages.
type tail struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > 64<<10 {
		t.buf = t.buf[len(t.buf)-64<<10:]
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

func nonEmpty(v []string) []string {
	var out []string
	for _, s := range v {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

func hasVar(env []string, name string) bool {
	for _, e := range env {
		if strings.HasPrefix(e, name+"=") {
			return true
		}
	}
	return false
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
