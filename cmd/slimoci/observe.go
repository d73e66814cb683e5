package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/slimoci/slimoci"
	"github.com/slimoci/slimoci/internal/termsafe"
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

// observation is what the observe flags say before the image is known: the library's run options, built
// up by each flag group's parse.
type observation struct {
	spec runner.Spec
	plan runner.Plan
	// clogs is --show-clogs' writer to the terminal: the app's output with its control characters escaped.
	clogs *termsafe.Writer
	// specProbes are the operations of --http-probe-apispec-file, added to the plan's probes once, after
	// the default GET / is chosen: they do not replace it (runner.ConfigOptions.ExtraProbes).
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

// validate checks every observe flag and their combinations, for the commands' Validate: kong reports what
// it returns as a usage error (exit 2), before anything is pulled.
func (f *ObserveFlags) validate() error {
	_, err := f.parse(&Globals{stdout: io.Discard, stderr: io.Discard})
	return err
}

// parse checks every flag, and prepares what does not depend on the image.
func (f *ObserveFlags) parse(g *Globals) (*observation, error) {
	var err error
	if err := runner.ParseContinueAfter(f.ContinueAfter); err != nil {
		return nil, err
	}
	o := &observation{}
	if f.ShowClogs {
		o.clogs = termsafe.NewWriter(g.stderr)
	}
	o.spec = runner.Spec{HostNetwork: f.Network == "host", AllSyscalls: true}
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
		StopTimeout: f.StopTimeout, Enter: os.Stdin, Published: published(g.humanOut()),
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

// configOptions say how the image's config becomes the run: the overrides, the HEALTHCHECK, HTTP probing.
func (f *ObserveFlags) configOptions(o *observation) runner.ConfigOptions {
	return runner.ConfigOptions{
		Overrides: f.overrides(), Healthcheck: f.IncludeHealthcheck, HTTPProbe: f.HTTPProbe, Ports: f.HTTPProbePorts,
		ExtraProbes: o.specProbes,
	}
}

// runOptions checks every observe flag, before anything is pulled, and turns them into the library's
// run options. SIGUSR1 becomes the signal --continue-after=signal waits for, until stop is called.
func (f *ObserveFlags) runOptions(g *Globals) (_ *slimoci.RunOptions, stop func(), err error) {
	o, err := f.parse(g)
	if err != nil {
		return nil, nil, usage(err)
	}
	// Not a usage error: slimoci's installation lacks it.
	if o.spec.Sensor, err = f.sensorPath(); err != nil {
		return nil, nil, err
	}
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	o.plan.Signal = usr1
	ro := &slimoci.RunOptions{Spec: o.spec, Plan: o.plan, Config: f.configOptions(o)}
	if o.clogs != nil {
		ro.Output = o.clogs
	}
	return ro, func() {
		signal.Stop(usr1)
		if o.clogs != nil {
			o.clogs.Flush()
		}
	}, nil
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

// summary prints the probe results and one line on what was seen. Probe errors and exec arguments may quote
// the app or the image: each line is escaped for the terminal.
func summary(w io.Writer, ref string, obs *runner.Observation) {
	for _, p := range obs.Probes {
		fmt.Fprintln(w, termsafe.String(p.String()))
	}
	crawlSummary(w, obs)
	for _, e := range obs.Execs {
		fmt.Fprintln(w, termsafe.String(e.String()))
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
