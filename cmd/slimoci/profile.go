package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/slimoci/slimoci/emit"
	"github.com/slimoci/slimoci/internal/atomicfile"
	"github.com/slimoci/slimoci/rootfs"
	"github.com/slimoci/slimoci/runner"
	"github.com/slimoci/slimoci/sensor"
)

// ProfileCmd runs the image's app under the sensor in a sandbox, probes it, and writes what it used.
type ProfileCmd struct {
	Image        string        `arg:"" help:"Image to profile." name:"IMAGE"`
	StatePath    string        `help:"Directory for the artifacts: report.json (the record) and seccomp.json." default:"slimoci-state" type:"path"`
	Sensor       string        `help:"The static slimoci-sensor binary (default: beside slimoci)." type:"path"`
	HTTPProbe    bool          `help:"Probe GET / on every exposed TCP port (HTTP, then HTTPS)." default:"true" negatable:""`
	ProbeTimeout time.Duration `help:"How long probes retry while the app starts." default:"60s"`
	Network      string        `help:"private: the app gets its own network; host: it shares the host's." enum:"private,host" default:"private"`
	Entrypoint   []string      `help:"Override the image's ENTRYPOINT (repeat for each argument; --entrypoint='' clears it)." sep:"none"`
	Cmd          []string      `help:"Override the image's CMD (repeat for each argument)." sep:"none"`
	Env          []string      `help:"Add or override an environment variable, NAME=VALUE (repeatable)." sep:"none"`
	ShowClogs    bool          `help:"Stream the app's stdout and stderr to slimoci's stderr."`
	Mount        []string      `help:"Bind a host path into the sandbox, SRC:DST[:ro] as docker -v (repeatable); its files are not the image's." sep:"none"`
}

// Report is what `profile` writes to report.json.
type Report struct {
	Image    string               `json:"image"`
	Digest   string               `json:"digest,omitempty"`
	Config   string               `json:"configDigest"`
	Args     []string             `json:"args"`
	User     runner.User          `json:"user"`
	Probes   []runner.ProbeResult `json:"probes"`
	Record   *sensor.Record       `json:"record"`
	Duration time.Duration        `json:"durationNs"`
}

func (c *ProfileCmd) Run(ctx context.Context, g *Globals) error {
	sensorBin := c.Sensor
	if sensorBin == "" {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		sensorBin = filepath.Join(filepath.Dir(exe), "slimoci-sensor")
	}
	if _, err := os.Stat(sensorBin); err != nil {
		return fmt.Errorf("the sensor %s is missing (make build puts it beside slimoci; --sensor names another)", sensorBin)
	}
	src, err := g.open(ctx, c.Image)
	if err != nil {
		return err
	}
	defer src.Close()
	ref := src.Ref
	if err := os.MkdirAll(c.StatePath, 0o755); err != nil {
		return err
	}
	work, err := os.MkdirTemp(c.StatePath, ".work-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	tree, err := rootfs.Unpack(ctx, src.Image, filepath.Join(work, "rootfs"), &rootfs.Options{Logger: g.logger})
	if err != nil {
		return fmt.Errorf("unpacking %s: %w", ref, err)
	}
	cfg := tree.Config.Config
	entrypoint, cmd := cfg.Entrypoint, cfg.Cmd
	if c.Entrypoint != nil {
		// As docker run --entrypoint: the image's CMD goes with it only when not overridden either; an empty
		// --entrypoint clears it.
		entrypoint, cmd = nonEmpty(c.Entrypoint), nil
	}
	if c.Cmd != nil {
		cmd = c.Cmd
	}
	args := append(append([]string(nil), entrypoint...), cmd...)
	if len(args) == 0 {
		return fmt.Errorf("%s has no entrypoint and no cmd: nothing to run", ref)
	}
	passwd, _ := tree.ReadFile("/etc/passwd")
	group, _ := tree.ReadFile("/etc/group")
	user, err := runner.ResolveUser(cfg.User, passwd, group)
	if err != nil {
		return fmt.Errorf("%s: %w", ref, err)
	}
	env := append([]string(nil), cfg.Env...)
	for _, e := range c.Env {
		name, _, ok := strings.Cut(e, "=")
		if !ok || name == "" {
			return fmt.Errorf("--env %q: want NAME=VALUE", e)
		}
		env = setVar(env, e)
	}
	if !hasVar(env, "PATH") {
		env = append(env, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	}
	if !hasVar(env, "HOME") {
		env = append(env, "HOME="+user.Home)
	}
	var mounts []runner.Mount
	for _, m := range c.Mount {
		mnt, err := runner.ParseMount(m)
		if err != nil {
			return err
		}
		mounts = append(mounts, mnt)
	}
	start := time.Now()
	var appOut tail
	var out io.Writer = &appOut
	if c.ShowClogs {
		out = io.MultiWriter(&appOut, g.stderr)
	}
	s, err := runner.Start(ctx, tree.Dir, runner.Spec{
		Args: args, Env: env, Cwd: cfg.WorkingDir, UID: user.UID, GID: user.GID, Groups: user.Groups,
		HostNetwork: c.Network == "host", Stdout: out, Stderr: out, Mounts: mounts,
		Sensor: sensorBin, AllSyscalls: true,
	}, &runner.Options{StateDir: filepath.Join(work, "sandbox"), Logger: g.logger})
	if err != nil {
		return fmt.Errorf("running %s: %w", ref, err)
	}
	defer s.Close()
	var probes []runner.ProbeResult
	if c.HTTPProbe {
		pctx, cancel := context.WithTimeout(ctx, c.ProbeTimeout)
		for _, port := range tcpPorts(cfg.ExposedPorts) {
			probes = append(probes, runner.HTTPProbe(pctx, s, port, "GET", "/"))
		}
		cancel()
	}
	if len(probes) == 0 {
		// Nothing to probe: the app is a command; let it finish (up to --probe-timeout).
		wctx, cancel := context.WithTimeout(ctx, c.ProbeTimeout)
		s.Wait(wctx)
		cancel()
	}
	// The app is asked to stop, as a runtime would, then killed.
	s.Signal(syscall.SIGTERM)
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	_, werr := s.Wait(wctx)
	cancel()
	if werr != nil {
		s.Close()
	}
	rec, err := s.Record()
	if err != nil {
		return fmt.Errorf("%w (the app said: %s)", err, lastLine(appOut.String()))
	}
	report := Report{Image: ref.String(), Config: tree.Config.RootFS.Type, Args: args, User: user, Probes: probes, Record: rec, Duration: time.Since(start)}
	if cn, err := src.Image.ConfigName(); err == nil {
		report.Config = cn.String()
	}
	if src.Digest.Hex != "" {
		report.Digest = src.Digest.String()
	}
	if err := writeJSON(filepath.Join(c.StatePath, "report.json"), report); err != nil {
		return err
	}
	var names []string
	for n := range rec.Syscalls {
		names = append(names, n)
	}
	sort.Strings(names)
	profile, err := emit.SeccompProfile(names)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteBytes(filepath.Join(c.StatePath, "seccomp.json"), profile); err != nil {
		return err
	}
	ok := 0
	for _, p := range probes {
		status := p.Error
		if p.OK() {
			ok++
			status = fmt.Sprintf("%s %d, %d bytes", p.Proto, p.Status, p.Size)
		}
		fmt.Fprintf(g.stdout, "probe %s :%d%s: %s\n", p.Method, p.Port, p.Path, status)
	}
	fmt.Fprintf(g.stdout, "profiled %s: %d files, %d processes, %d syscalls, app ran %.1fs; artifacts in %s\n",
		ref, len(rec.Files), len(rec.Execs), len(rec.Syscalls), report.Duration.Seconds(), c.StatePath)
	if len(probes) > 0 && ok == 0 {
		return errors.New("every probe failed: the app was not exercised, a slim image made from this run would be useless")
	}
	return nil
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

// setVar sets NAME=VALUE in env, replacing an earlier value.
func setVar(env []string, kv string) []string {
	name, _, _ := strings.Cut(kv, "=")
	for i, e := range env {
		if strings.HasPrefix(e, name+"=") {
			env[i] = kv
			return env
		}
	}
	return append(env, kv)
}

func hasVar(env []string, name string) bool {
	for _, e := range env {
		if strings.HasPrefix(e, name+"=") {
			return true
		}
	}
	return false
}

func tcpPorts(exposed map[string]struct{}) []int {
	var ports []int
	for p := range exposed {
		num, proto, _ := strings.Cut(p, "/")
		if proto == "" || proto == "tcp" {
			if n, err := strconv.Atoi(num); err == nil {
				ports = append(ports, n)
			}
		}
	}
	sort.Ints(ports)
	return ports
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteBytes(path, b)
}
