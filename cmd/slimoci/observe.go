package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/slimoci/slimoci/internal/atomicfile"
	"github.com/slimoci/slimoci/internal/termsafe"
	"github.com/slimoci/slimoci/oci"
	"github.com/slimoci/slimoci/rootfs"
	"github.com/slimoci/slimoci/runner"
)

// ObserveFlags say how the app is run and exercised; profile and build share them.
type ObserveFlags struct {
	Sensor           string        `help:"The static slimoci-sensor binary (default: beside slimoci)." type:"path"`
	SensorBackend    string        `help:"How the sensor sees the app's syscalls: notify (seccomp user notification, Linux 5.5; the default where the kernel has it) or ptrace (a ptrace stop per syscall, slower). Both record the same." enum:"auto,notify,ptrace" default:"auto"`
	HTTPProbe        bool          `help:"Probe the app over HTTP on its exposed TCP ports (GET /, HTTP then HTTPS, unless --http-probe-cmd says otherwise)." default:"true" negatable:""`
	HTTPProbeCmd     []string      `help:"An HTTP probe, [crawl:][PROTO:][METHOD:]/PATH, PROTO http, https, http2, http2c, ws or wss, sent to every probed port (repeatable; replaces GET /)." sep:"none" placeholder:"[PROTO:][METHOD:]/PATH"`
	HTTPProbeCmdFile string        `help:"HTTP probes in mint's JSON format, {\"commands\":[...]}, each with method, resource, port, protocol, headers, body, body_file, body_generate, body_is_form, form_field_name, form_file_name, username, password, crawl, fastcgi (see the README); an unknown field is an error." type:"existingfile" placeholder:"FILE"`
	HTTPProbePorts   []int         `help:"Ports to probe instead of the image's exposed TCP ports." sep:","`
	Exec             []string      `help:"Run a command in the sandbox while the app runs, as the image user: a shell command (/bin/sh -c) or a JSON array (repeatable; what it uses is recorded)." sep:"none" placeholder:"CMD"`
	ContinueAfter    string        `help:"When to stop observing: probe (after the probes), exec, host-exec, app-exit, enter, signal (SIGUSR1 to slimoci), timeout, or a number of seconds; or several joined by & as mint's (probe&exec, host-exec&probe: done in that order, the steps not named added as usual). Default: probe when there are probes, app-exit otherwise; never enter, so it does not wait for a terminal." placeholder:"MODE"`
	Timeout          time.Duration `help:"The longest the app is observed (app-exit, enter, signal; the wait of --continue-after=timeout)." default:"10m"`
	ProbeTimeout     time.Duration `help:"How long HTTP probes wait for the app to take connections (all probes together, from the first)." default:"60s"`
	StopTimeout      time.Duration `help:"How long the app has to stop after its stop signal before it is killed." default:"10s"`
	Network          string        `help:"private: the app gets its own network; host: it shares the host's (to reach a database you run)." enum:"private,host" default:"private"`
	Entrypoint       []string      `help:"Override the image's ENTRYPOINT for the observation (repeat for each argument; --entrypoint='' clears it)." sep:"none"`
	Cmd              []string      `help:"Override the image's CMD for the observation (repeat for each argument)." sep:"none"`
	Env              []string      `help:"Add or override an environment variable for the observation, NAME=VALUE (repeatable)." sep:"none"`
	Mount            []string      `help:"Bind a host path into the sandbox, SRC:DST[:ro] as docker -v (repeatable); its files are not the image's." sep:"none"`
	ShowClogs        bool          `help:"Stream the app's stdout and stderr to slimoci's stderr."`
	ExecTimeout      time.Duration `help:"How long each --exec command may run before it is killed." default:"60s"`
	Memory           string        `help:"The app's memory limit, as docker's --memory (512m, 2g). Default: a quarter of the RAM, at most 4g." placeholder:"SIZE"`
	PidsLimit        int64         `help:"The most processes and threads the app may have." default:"4096"`
	CPUs             float64       `name:"cpus" help:"How many CPUs' worth of time the app may use (1.5); default: no limit, as docker's." placeholder:"N"`
	WritableSize     string        `help:"The most the app may write to its root filesystem (512m, 2g)." default:"1g" placeholder:"SIZE"`
	Userns           string        `help:"auto: as root, the app's root is an unprivileged host id (a user namespace of its own, as podman's --userns=auto); host: it is the host's root (confined by namespaces, capabilities, seccomp and cgroups only). Rootless, always a user namespace." enum:"auto,host" default:"auto"`
	SecurityOpt      []string      `help:"seccomp=unconfined runs the app without docker's default seccomp profile (as podman's flag)." placeholder:"OPT" sep:"none"`
	WorkDir          string        `help:"Where the unpacked image and the sandboxes' files go while slimoci runs (removed at the end). Default: /dev/shm when it is a tmpfs with room, else the state path." type:"path" placeholder:"DIR"`

	// The image's own exec probe, apart from the user's.
	IncludeHealthcheck bool `help:"Run the image's HEALTHCHECK in the sandbox as the runtime would (after the HTTP probes, and again after the exec probes; its interval shortened to 1s), so that what it uses is kept; verify runs it too." default:"true" negatable:""`

	RunFlags
	CommandFlags
	ProbeFlags
	HostExecFlags
	CrawlFlags
}

// observation is one prepared run: what to start and how to exercise it.
type observation struct {
	// workRoot is the per-user work directory the sandboxes' state directories are under.
	workRoot string
	spec     runner.Spec
	plan     runner.Plan
	user     runner.User
	out      *tail
	// clogs is --show-clogs' writer to the terminal: the app's output with its control characters escaped.
	clogs *termsafe.Writer
	// specProbes are the operations of --http-probe-apispec-file, added to the plan's probes once (by
	// forConfig, after the default GET / is chosen: they do not replace it).
	specProbes []runner.HTTPCommand
}

// sensorPath is --sensor, or the sensor beside the slimoci binary.
func (f *ObserveFlags) sensorPath() (string, error) {
	bin := f.Sensor
	if bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return "", err
		}
		bin = filepath.Join(filepath.Dir(exe), "slimoci-sensor")
	}
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("the sensor %s is missing (make build puts it beside slimoci; --sensor names another)", bin)
	}
	return bin, nil
}

// parse checks every flag before anything is pulled, and prepares what does not depend on the image.
func (f *ObserveFlags) parse(g *Globals) (*observation, error) {
	sensorBin, err := f.sensorPath()
	if err != nil {
		return nil, err
	}
	if err := runner.ParseContinueAfter(f.ContinueAfter); err != nil {
		return nil, err
	}
	o := &observation{out: &tail{}}
	var out io.Writer = o.out
	if f.ShowClogs {
		o.clogs = termsafe.NewWriter(g.stderr)
		out = io.MultiWriter(o.out, o.clogs)
	}
	o.spec = runner.Spec{HostNetwork: f.Network == "host", Stdout: out, Stderr: out, Sensor: sensorBin, AllSyscalls: true}
	if f.SensorBackend != "auto" {
		o.spec.SensorBackend = f.SensorBackend
	}
	if o.spec.Limits.Memory, err = runner.ParseSize("memory", f.Memory); err != nil {
		return nil, err
	}
	if o.spec.Limits.WritableSize, err = runner.ParseSize("writable-size", f.WritableSize); err != nil {
		return nil, err
	}
	if f.PidsLimit < 0 || f.CPUs < 0 {
		return nil, fmt.Errorf("--pids-limit and --cpus must not be negative")
	}
	o.spec.Limits.Pids, o.spec.Limits.CPUs = f.PidsLimit, f.CPUs
	o.spec.ExecTimeout = f.ExecTimeout
	o.spec.HostUserns = f.Userns == "host"
	for _, opt := range f.SecurityOpt {
		switch opt {
		case "seccomp=unconfined":
			o.spec.SeccompUnconfined = true
		default:
			return nil, fmt.Errorf("--security-opt %q: only seccomp=unconfined is known", opt)
		}
	}
	for _, m := range f.Mount {
		mnt, err := runner.ParseMount(m)
		if err != nil {
			return nil, err
		}
		o.spec.Mounts = append(o.spec.Mounts, mnt)
	}
	for _, e := range f.Env {
		if name, _, ok := strings.Cut(e, "="); !ok || name == "" {
			return nil, fmt.Errorf("--env %q: want NAME=VALUE", e)
		}
	}
	if err := f.parseRun(o); err != nil {
		return nil, err
	}
	o.plan = runner.Plan{
		ProbeTimeout: f.ProbeTimeout, ContinueAfter: f.ContinueAfter, Timeout: f.Timeout,
		StopTimeout: f.StopTimeout, Enter: os.Stdin, ExecOutput: out, Published: published(g.stdout),
	}
	if o.plan.HTTP, o.plan.Probe, err = f.httpProbes(); err != nil {
		return nil, err
	}
	if err := f.parseCrawl(o); err != nil {
		return nil, err
	}
	for _, e := range f.Exec {
		argv, err := execArgs(e)
		if err != nil {
			return nil, err
		}
		o.plan.Exec = append(o.plan.Exec, argv)
	}
	if err := f.parseHostExec(o); err != nil {
		return nil, err
	}
	return o, nil
}

// forImage completes the observation from the unpacked image: what to run, as whom, and the ports to probe.
func (f *ObserveFlags) forImage(o *observation, tree *rootfs.Tree) error {
	return f.forConfig(o, tree, f.overrides())
}

// forConfig completes the observation from the unpacked image's config with ov applied (the observation's
// overrides; verify's, see forVerify).
func (f *ObserveFlags) forConfig(o *observation, tree *rootfs.Tree, ov runOverrides) error {
	cfg := ov.apply(tree.Config.Config)
	args := append(slices.Clone(cfg.Entrypoint), cfg.Cmd...)
	if len(args) == 0 {
		return fmt.Errorf("the image has no entrypoint and no cmd: nothing to run (give --cmd)")
	}
	passwd, perr := tree.ReadFile("/etc/passwd")
	group, gerr := tree.ReadFile("/etc/group")
	for _, err := range []error{perr, gerr} {
		// A missing file is the image's business (ResolveUser says what it lacks); one that is not a regular
		// file or is over the size slimoci reads is hostile or broken: fatal only when a name must be looked up
		// in it.
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			if needsNames(cfg.User) {
				return fmt.Errorf("the image's user %q: %w", cfg.User, err)
			}
		}
	}
	user, err := runner.ResolveUser(cfg.User, passwd, group)
	if err != nil {
		return err
	}
	env := slices.Clone(cfg.Env)
	if !hasVar(env, "PATH") {
		env = append(env, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	}
	if !hasVar(env, "HOME") {
		env = append(env, "HOME="+user.Home)
	}
	o.user = user
	o.spec.Args, o.spec.Env, o.spec.Cwd = args, env, cfg.WorkingDir
	o.spec.UID, o.spec.GID, o.spec.Groups = user.UID, user.GID, user.Groups
	if o.plan.StopSignal, err = parseSignal(cfg.StopSignal); err != nil {
		return fmt.Errorf("the image's StopSignal: %w", err)
	}
	if f.IncludeHealthcheck {
		o.plan.Healthcheck = runner.HealthcheckFromConfig(cfg.Healthcheck)
	}
	if f.HTTPProbe {
		o.plan.Ports = f.HTTPProbePorts
		if len(o.plan.Ports) == 0 {
			o.plan.Ports = tcpPorts(cfg.ExposedPorts)
		}
		if len(o.plan.HTTP) == 0 && len(o.plan.Ports) > 0 {
			o.plan.HTTP = []runner.HTTPCommand{{Method: "GET", Resource: "/"}}
		}
		o.plan.HTTP, o.specProbes = append(o.plan.HTTP, o.specProbes...), nil
		if len(o.plan.APISpecs) > 0 && len(o.plan.Ports) == 0 {
			return fmt.Errorf("--http-probe-apispec %s: the image exposes no TCP port (give --http-probe-ports)", o.plan.APISpecs[0].Path)
		}
		for _, c := range o.plan.HTTP {
			if c.Port == 0 && len(o.plan.Ports) == 0 {
				return fmt.Errorf("http probe %s %s: the image exposes no TCP port (give --http-probe-ports or a port in --http-probe-cmd-file)", c.Method, c.Resource)
			}
		}
	}
	f.hostExecPorts(o, cfg.ExposedPorts)
	return nil
}

// needsNames reports whether USER names a user or group that must be looked up (not "", "0", "uid:gid").
func needsNames(user string) bool {
	if user == "" {
		return false
	}
	for _, part := range strings.SplitN(user, ":", 2) {
		if _, err := strconv.Atoi(part); err != nil {
			return true
		}
	}
	return false
}

// run observes the app. It turns SIGUSR1 into the signal the signal mode waits for.
func (o *observation) run(ctx context.Context, treeDir, stateDir string, g *Globals) (*runner.Observation, error) {
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	defer signal.Stop(usr1)
	o.plan.Signal = usr1
	obs, err := runner.Observe(ctx, treeDir, o.spec, o.plan, &runner.Options{StateDir: stateDir, WorkRoot: o.workRoot, Logger: g.logger})
	if o.clogs != nil {
		o.clogs.Flush()
	}
	if err != nil && obs == nil {
		if ctx.Err() == nil && strings.TrimSpace(o.out.String()) != "" {
			return nil, fmt.Errorf("%w (the app said: %s)", err, termsafe.String(lastLine(o.out.String())))
		}
		return nil, err
	}
	// With a limit hit or a full record, the observation comes with the error: the caller reports both.
	return obs, err
}

// execArgs reads an --exec value: a JSON array is the argv; anything else is a shell command.
func execArgs(s string) ([]string, error) {
	if strings.HasPrefix(strings.TrimSpace(s), "[") {
		var argv []string
		if err := json.Unmarshal([]byte(s), &argv); err != nil || len(argv) == 0 {
			return nil, fmt.Errorf("--exec %q: not a JSON array of strings", s)
		}
		return argv, nil
	}
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("--exec: empty command")
	}
	return []string{"/bin/sh", "-c", s}, nil
}

// parseSignal reads an image's StopSignal: "SIGTERM", "TERM" or "15"; "" is SIGTERM.
func parseSignal(s string) (os.Signal, error) {
	if s == "" {
		return syscall.SIGTERM, nil
	}
	if n, err := strconv.Atoi(s); err == nil && n > 0 && n < 65 {
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return nil, fmt.Errorf("%q is not a signal", s)
}

// summary prints the probe results and one line on what was seen. Probe errors and exec arguments may quote
// the app or the image: each line is escaped for the terminal.
func summary(w io.Writer, ref string, obs *runner.Observation) {
	for _, p := range obs.Probes {
		status := p.Error
		if p.OK() {
			status = fmt.Sprintf("%s %d, %d bytes", p.Proto, p.Status, p.Size)
		}
		fmt.Fprintln(w, termsafe.String(fmt.Sprintf("probe %s :%d%s: %s", p.Method, p.Port, p.Path, status)))
	}
	crawlSummary(w, obs)
	for _, e := range obs.Execs {
		status := fmt.Sprintf("exit %d, %d bytes of output", e.ExitCode, e.OutputSize)
		if e.Error != "" {
			status = e.Error
		}
		fmt.Fprintln(w, termsafe.String(fmt.Sprintf("exec %s: %s", strings.Join(e.Args, " "), status)))
	}
	hostExecSummary(w, obs)
	if h := obs.Healthcheck; h != nil {
		var codes []string
		for _, r := range h.Runs {
			codes = append(codes, strconv.Itoa(r.ExitCode))
		}
		status := fmt.Sprintf("%s (%d runs, exit %s)", h.Status, len(h.Runs), strings.Join(codes, ","))
		if last := h.Last(); last != nil && last.Error != "" {
			status += ": " + last.Error
		}
		fmt.Fprintln(w, termsafe.String(fmt.Sprintf("healthcheck %s: %s", strings.Join(h.Args, " "), status)))
	}
	ended := "stopped after " + obs.ContinuedAfter
	switch {
	case obs.AppExited:
		ended = fmt.Sprintf("exited by itself with %d", obs.ExitCode)
	case obs.Killed:
		ended = "ignored its stop signal and was killed"
	}
	fmt.Fprintln(w, termsafe.String(fmt.Sprintf("observed %s: %d files, %d processes, %d syscalls; the app ran %.1fs and %s",
		ref, len(obs.Record.Files), len(obs.Record.Execs), len(obs.Record.Syscalls), obs.Duration.Seconds(), ended)))
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

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteBytes(path, b)
}

// unpacked is an image opened and unpacked into a work directory under the state path.
type unpacked struct {
	src  *oci.Source
	work string
	// private is the per-user directory work is in: the sandboxes' WorkRoot.
	private string
	tree    *rootfs.Tree
}

// close removes the work directory and closes the source.
func (u *unpacked) close() {
	rootfs.RemoveTree(u.work)
	u.src.Close()
}

// openAndUnpack opens image and unpacks it into a new work directory under workDir ("" picks one: see
// workParent). The caller closes the result, whatever happens after.
func (g *Globals) openAndUnpack(ctx context.Context, image, statePath, workDir string) (*unpacked, error) {
	src, err := g.open(ctx, image)
	if err != nil {
		return nil, err
	}
	u := &unpacked{src: src}
	if err := os.MkdirAll(statePath, 0o755); err != nil {
		src.Close()
		return nil, err
	}
	if workDir == "" {
		workDir = workParent(src, statePath, g)
	}
	// Work directories go in a directory of this user's that no one else can enter (/dev/shm/slimoci-UID):
	// in /dev/shm, anyone could otherwise plant what the clean-up of a killed run's directory would follow.
	private, err := runner.PrivateDir(workDir)
	if err != nil {
		src.Close()
		return nil, fmt.Errorf("%w (--work-dir names another place)", err)
	}
	removed, err := runner.CleanStale(private)
	for _, p := range removed {
		g.logger.Warn("removed the work directory of a slimoci that was killed", "path", p)
	}
	if err != nil {
		g.logger.Warn("could not remove what a killed slimoci left", "err", err)
	}
	if u.work, err = os.MkdirTemp(private, runner.WorkPattern()); err != nil {
		src.Close()
		return nil, err
	}
	// The run's directory is as private as its parent (a sandbox's root gets search only: see
	// runner.Options.WorkRoot).
	if err := os.Chmod(u.work, runner.PrivateDirMode); err != nil {
		u.close()
		return nil, err
	}
	u.private = private
	// The tree in a directory of its own that only slimoci may enter: a sandbox's root may search the run's
	// directory to reach its state directory, never the tree, whose setuid files are the image's.
	fat := filepath.Join(u.work, "fat")
	if err := os.Mkdir(fat, 0o700); err != nil {
		u.close()
		return nil, err
	}
	if u.tree, err = rootfs.Unpack(ctx, src.Image, filepath.Join(fat, "rootfs"), &rootfs.Options{Logger: g.logger}); err != nil {
		u.close()
		return nil, fmt.Errorf("unpacking %s: %w", src.Ref, err)
	}
	return u, nil
}

// shm is the tmpfs workParent prefers.
const shm = "/dev/shm"

// workParent picks where the unpacked trees and the sandboxes' files go: /dev/shm when it is a tmpfs with
// room for them (the fat tree and a verify tree, each taken as 4x the compressed layers, plus 256 MiB), since
// creating tens of thousands of files there is several times faster than on a disk (node's unpack: 2.1 s on
// tmpfs, 10-12 s on this machine's ext4, as slow with tar); otherwise the state path.
func workParent(src *oci.Source, statePath string, g *Globals) string {
	var st unix.Statfs_t
	if err := unix.Statfs(shm, &st); err != nil || st.Type != unix.TMPFS_MAGIC || unix.Access(shm, unix.W_OK) != nil {
		return statePath
	}
	m, err := src.Image.Manifest()
	if err != nil {
		return statePath
	}
	var compressed int64
	for _, l := range m.Layers {
		compressed += l.Size
	}
	if need := 2*4*compressed + 256<<20; int64(st.Bavail)*st.Bsize < need {
		g.logger.Debug("work directory on the state path: /dev/shm is too small", "need", need)
		return statePath
	}
	return shm
}
