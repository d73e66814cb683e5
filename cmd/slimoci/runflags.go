package main

import (
	"fmt"
	"io"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/slimoci/slimoci/emit"
	"github.com/slimoci/slimoci/runner"
)

// RunFlags are docker's and mint's run options for the observed app: as whom, where, with what, and what the
// host may reach. profile and build take them; verify runs the slim image with them too (see forVerify).
type RunFlags struct {
	User        string   `help:"Run the app as this user (USER's syntax: name, uid, name:group, uid:gid, looked up in the image). Not kept in the slim image (mint's --image-overrides has no user either)." placeholder:"USER"`
	Workdir     string   `help:"The app's working directory for the observation (docker's --workdir: the image's WORKDIR overridden). Not --work-dir, slimoci's own scratch directory. Kept with --image-overrides workdir." placeholder:"DIR"`
	EnvFile     []string `help:"Environment variables from a file, NAME=VALUE a line as docker's --env-file (# comments and blank lines skipped, the value as it is); --env wins (repeatable). Kept with --image-overrides env." type:"existingfile" placeholder:"FILE" sep:"none"`
	Expose      []string `help:"Expose a port for the observation, PORT[/PROTO] or START-END: its TCP ports are probed unless --http-probe-ports says which (repeatable). Kept with --image-overrides expose." placeholder:"PORT" sep:"none"`
	PublishPort []string `help:"Relay a host port to one of the app's ports while it is observed: PORT (the same host port, as mint), HOSTPORT:PORT, HOSTIP:HOSTPORT:PORT or HOSTIP::PORT (a free port). Loopback only (127.0.0.1 when no HOSTIP; another address is refused); not with --network host (repeatable)." placeholder:"SPEC" sep:"none"`
	Hostname    string   `help:"The sandbox's host name (default: slimoci)." placeholder:"NAME"`
	EtcHostsMap []string `help:"Add HOST:IP to the sandbox's /etc/hosts (repeatable)." placeholder:"HOST:IP" sep:"none"`
	Label       []string `help:"A label KEY=VALUE: the sandbox has none, so it matters only with --image-overrides label, which adds it to the slim image (repeatable)." placeholder:"KEY=VALUE" sep:"none"`
	Volume      []string `help:"An anonymous volume at DIR, as docker's: a tmpfs of its own (at most --writable-size) holding a copy of the image's files there, which still count as the image's; what the app writes there is dropped. SRC:DST[:ro] is a --mount. Kept as VOLUME with --image-overrides volume (repeatable)." placeholder:"DIR" sep:"none"`

	// What parseRun read: the env files' variables, the exposed ports ("8080/tcp"), labels and the
	// volumes' destinations.
	envFiles []string
	exposed  []string
	labels   map[string]string
	volumes  []string
}

// parseRun checks the run options and puts what does not depend on the image into o's spec.
func (f *ObserveFlags) parseRun(o *observation) error {
	r := &f.RunFlags
	for _, file := range r.EnvFile {
		env, err := runner.ReadEnvFile(file)
		if err != nil {
			return err
		}
		r.envFiles = append(r.envFiles, env...)
	}
	for _, p := range r.Expose {
		ports, err := emit.ParsePorts(p)
		if err != nil {
			return fmt.Errorf("--expose: %w", err)
		}
		r.exposed = append(r.exposed, ports...)
	}
	for _, p := range r.PublishPort {
		m, err := runner.ParsePublish(p)
		if err != nil {
			return err
		}
		o.spec.Publish = append(o.spec.Publish, m)
	}
	if len(o.spec.Publish) > 0 && o.spec.HostNetwork {
		return fmt.Errorf("--publish-port: with --network host the app's ports are the host's already")
	}
	if r.Hostname != "" {
		if err := runner.CheckHostname(r.Hostname); err != nil {
			return fmt.Errorf("--hostname: %w", err)
		}
		o.spec.Hostname = r.Hostname
	}
	for _, h := range r.EtcHostsMap {
		e, err := runner.ParseHostEntry(h)
		if err != nil {
			return err
		}
		o.spec.ExtraHosts = append(o.spec.ExtraHosts, e)
	}
	var err error
	if r.labels, err = parseKeyValues("--label", r.Label); err != nil {
		return err
	}
	for _, v := range r.Volume {
		dir, bind, err := runner.ParseVolume(v)
		if err != nil {
			return err
		}
		if bind != nil {
			o.spec.Mounts = append(o.spec.Mounts, *bind)
			dir = bind.Destination
		} else {
			o.spec.Volumes = append(o.spec.Volumes, dir)
		}
		r.volumes = append(r.volumes, dir)
	}
	if r.Workdir != "" && !strings.HasPrefix(r.Workdir, "/") {
		return fmt.Errorf("--workdir %q: want an absolute path", r.Workdir)
	}
	return nil
}

// parseKeyValues reads KEY=VALUE flags (labels) into a map; a later key wins.
func parseKeyValues(flag string, kvs []string) (map[string]string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	m := map[string]string{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%s %q: want KEY=VALUE", flag, kv)
		}
		m[k] = v
	}
	return m, nil
}

// runOverrides are what the observation changes in the image's config, as docker run's --entrypoint,
// --cmd, --workdir, --env-file, --env, --user and --expose would.
type runOverrides struct {
	entrypoint, cmd       []string
	hasEntrypoint, hasCmd bool
	workdir, user         string
	// env is the env files' variables, then --env's.
	env    []string
	expose []string
}

// overrides collects the observation's overrides from the flags (after parseRun).
func (f *ObserveFlags) overrides() runOverrides {
	return runOverrides{
		// --entrypoint='' clears: its empty arguments are dropped.
		entrypoint: nonEmpty(f.Entrypoint), hasEntrypoint: f.Entrypoint != nil,
		cmd: f.Cmd, hasCmd: f.Cmd != nil,
		workdir: f.RunFlags.Workdir, user: f.RunFlags.User,
		env:    append(slices.Clone(f.RunFlags.envFiles), f.Env...),
		expose: f.RunFlags.exposed,
	}
}

// apply returns c as docker run would run it with the overrides: --entrypoint replaces ENTRYPOINT and
// clears CMD unless --cmd is given too.
func (r runOverrides) apply(c v1.Config) v1.Config {
	if r.hasEntrypoint {
		c.Entrypoint, c.Cmd = r.entrypoint, nil
	}
	if r.hasCmd {
		c.Cmd = r.cmd
	}
	if r.workdir != "" {
		c.WorkingDir = r.workdir
	}
	if r.user != "" {
		c.User = r.user
	}
	for _, kv := range r.env {
		c.Env = emit.SetEnv(c.Env, kv)
	}
	if len(r.expose) > 0 {
		(&emit.ConfigEdits{ExposedPorts: r.expose}).Apply(&c)
	}
	return c
}

// forVerify is what verify runs the slim image with: the slim image as `podman run` with the run options
// the user still has to give would run it. An override kept in the slim image (kept, --image-overrides)
// or replaced by its new config (the --new-* and --remove-* edits) no longer applies: --new-cmd is what
// runs, unless --entrypoint (not kept) clears it as docker's --entrypoint clears CMD; a variable --new-env
// or --remove-env names is the slim image's. --user, the mounts and the network stay.
func (r runOverrides) forVerify(kept map[string]bool, e *emit.ConfigEdits) runOverrides {
	if e == nil {
		e = &emit.ConfigEdits{}
	}
	if kept["entrypoint"] || e.SetEntrypoint {
		r.entrypoint, r.hasEntrypoint = nil, false
	}
	if kept["cmd"] || e.SetCmd {
		r.cmd, r.hasCmd = nil, false
	}
	if kept["workdir"] || e.WorkingDir != "" {
		r.workdir = ""
	}
	if kept["env"] {
		r.env = nil
	}
	var env []string
	for _, kv := range r.env {
		name, _, _ := strings.Cut(kv, "=")
		named := func(v string) bool { n, _, _ := strings.Cut(v, "="); return n == name }
		if !slices.ContainsFunc(e.Env, named) && !slices.Contains(e.RemoveEnv, name) {
			env = append(env, kv)
		}
	}
	r.env = env
	return r
}

// published prints the host addresses --publish-port bound, as soon as they are (the user drives the app
// through them while it is observed).
func published(w io.Writer) func([]runner.PublishedPort) {
	return func(ports []runner.PublishedPort) {
		for _, p := range ports {
			fmt.Fprintf(w, "published %s -> the app's port %d\n", p.HostAddr, p.Port)
		}
	}
}
