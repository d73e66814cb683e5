package main

import (
	"fmt"
	"io"
	"slices"
	"strings"

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
	// Validate parses too, before Run does: what parseRun reads is read afresh.
	r.envFiles, r.exposed, r.labels, r.volumes = nil, nil, nil, nil
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

// overrides collects the observation's overrides of the image's config from the flags (after parseRun),
// as docker run's --entrypoint, --cmd, --workdir, --user, --env-file and --env, --expose, --volume and
// --label (see runner.Overrides).
func (f *ObserveFlags) overrides() runner.Overrides {
	return runner.Overrides{
		// --entrypoint='' clears: its empty arguments are dropped.
		Entrypoint: slices.DeleteFunc(slices.Clone(f.Entrypoint), func(s string) bool { return s == "" }), SetEntrypoint: f.Entrypoint != nil,
		Cmd: f.Cmd, SetCmd: f.Cmd != nil,
		Workdir: f.RunFlags.Workdir, User: f.RunFlags.User,
		Env:     append(slices.Clone(f.RunFlags.envFiles), f.Env...),
		Expose:  f.RunFlags.exposed,
		Volumes: f.RunFlags.volumes, Labels: f.RunFlags.labels,
	}
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
