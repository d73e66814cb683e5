package runner

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"github.com/slimoci/slimoci/emit"
	"github.com/slimoci/slimoci/rootfs"
)

// Overrides are what docker run's flags change in an image's config for one run: --entrypoint, --cmd,
// --workdir, --user, --env-file and --env, --expose; and what they declare that the sandbox does not use
// (--volume's directories, --label's labels), which a slim image may keep.
type Overrides struct {
	// SetEntrypoint replaces ENTRYPOINT with Entrypoint (nil clears it) and, as docker's --entrypoint, clears
	// CMD unless SetCmd is set too; SetCmd replaces CMD with Cmd.
	SetEntrypoint, SetCmd bool
	Entrypoint, Cmd       []string
	// Workdir and User, when set, replace WORKDIR and USER.
	Workdir, User string
	// Env sets NAME=VALUE variables, in order (the env files' first, then --env's: a later one wins).
	Env []string
	// Expose adds exposed ports ("8080/tcp").
	Expose []string
	// Volumes are --volume's directories and Labels --label's: the run does not read them (the sandbox
	// mounts volumes from Spec), a build may keep them as VOLUME and LABEL.
	Volumes []string
	Labels  map[string]string
}

// Apply returns c as docker run would run it with the overrides.
func (r Overrides) Apply(c v1.Config) v1.Config {
	c = *c.DeepCopy()
	if r.SetEntrypoint {
		c.Entrypoint, c.Cmd = slices.Clone(r.Entrypoint), nil
	}
	if r.SetCmd {
		c.Cmd = slices.Clone(r.Cmd)
	}
	if r.Workdir != "" {
		c.WorkingDir = r.Workdir
	}
	if r.User != "" {
		c.User = r.User
	}
	// The same edits a slim image's config gets, so that the two agree on what an override means.
	(&emit.ConfigEdits{Env: r.Env, ExposedPorts: r.Expose}).Apply(&c)
	return c
}

// ConfigOptions say how FromConfig turns an image's config into a run.
type ConfigOptions struct {
	Overrides Overrides
	// Healthcheck runs the image's HEALTHCHECK (see Plan.Healthcheck).
	Healthcheck bool
	// HTTPProbe probes the app over HTTP: on Ports, or the TCP ports the config exposes; with GET / when the
	// plan has no HTTP probe of its own. ExtraProbes (an API spec's operations) are added after it.
	HTTPProbe   bool
	Ports       []int
	ExtraProbes []HTTPCommand
}

// DefaultPath is the PATH a config without one runs with (docker's and podman's).
const DefaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// FromConfig completes spec and plan to run tree's app as `docker run` with o.Overrides would: the
// command (ENTRYPOINT then CMD), the user resolved in the image's own /etc/passwd and /etc/group, the
// environment with PATH and HOME defaulted, the working directory, the stop signal, the HEALTHCHECK, and
// the ports to probe. It returns the user. An image with nothing to run, a USER it cannot resolve, a
// StopSignal that is no signal or probes with no port are errors naming what is wrong.
func FromConfig(tree *rootfs.Tree, o ConfigOptions, spec *Spec, plan *Plan) (User, error) {
	cfg := o.Overrides.Apply(tree.Config.Config)
	args := append(slices.Clone(cfg.Entrypoint), cfg.Cmd...)
	if len(args) == 0 {
		return User{}, fmt.Errorf("the image has no entrypoint and no cmd: nothing to run (give --cmd)")
	}
	passwd, perr := tree.ReadFile("/etc/passwd")
	group, gerr := tree.ReadFile("/etc/group")
	for _, err := range []error{perr, gerr} {
		// A missing file is the image's business (ResolveUser says what it lacks); one that is not a regular
		// file or is over the size slimoci reads is hostile or broken: fatal only when a name must be looked up
		// in it.
		if err != nil && !errors.Is(err, fs.ErrNotExist) && needsNames(cfg.User) {
			return User{}, fmt.Errorf("the image's user %q: %w", cfg.User, err)
		}
	}
	user, err := ResolveUser(cfg.User, passwd, group)
	if err != nil {
		return User{}, err
	}
	env := slices.Clone(cfg.Env)
	if !hasVar(env, "PATH") {
		env = append(env, DefaultPath)
	}
	if !hasVar(env, "HOME") {
		env = append(env, "HOME="+user.Home)
	}
	spec.Args, spec.Env, spec.Cwd = args, env, cfg.WorkingDir
	spec.UID, spec.GID, spec.Groups = user.UID, user.GID, user.Groups
	if plan.StopSignal, err = ParseSignal(cfg.StopSignal); err != nil {
		return User{}, fmt.Errorf("the image's StopSignal: %w", err)
	}
	plan.Healthcheck = nil
	if o.Healthcheck {
		plan.Healthcheck = HealthcheckFromConfig(cfg.Healthcheck)
	}
	if o.HTTPProbe {
		plan.Ports = o.Ports
		if len(plan.Ports) == 0 {
			plan.Ports = TCPPorts(cfg.ExposedPorts)
		}
		if len(plan.HTTP) == 0 && len(plan.Ports) > 0 {
			plan.HTTP = []HTTPCommand{{Method: "GET", Resource: "/"}}
		}
		plan.HTTP = append(slices.Clone(plan.HTTP), o.ExtraProbes...)
		if len(plan.APISpecs) > 0 && len(plan.Ports) == 0 {
			return User{}, fmt.Errorf("--http-probe-apispec %s: the image exposes no TCP port (give --http-probe-ports)", plan.APISpecs[0].Path)
		}
		for _, c := range plan.HTTP {
			if c.Port == 0 && len(plan.Ports) == 0 {
				return User{}, fmt.Errorf("http probe %s %s: the image exposes no TCP port (give --http-probe-ports or a port in --http-probe-cmd-file)", c.Method, c.Resource)
			}
		}
	}
	hostExecPorts(plan, spec, o.Ports, cfg.ExposedPorts)
	return user, nil
}

// hostExecPorts sets the ports a host command is given, once per observation (verify keeps the fat run's):
// the ports asked for in their order, then the TCP ports the image exposes, the probes' own ports and
// the published ones, each once. The first is SLIMOCI_ADDR.
func hostExecPorts(plan *Plan, spec *Spec, asked []int, exposed map[string]struct{}) {
	if len(plan.HostExec) == 0 || len(plan.HostExecPorts) > 0 {
		return
	}
	ports := slices.Clone(asked)
	ports = append(ports, TCPPorts(exposed)...)
	for _, c := range plan.HTTP {
		if c.Port != 0 {
			ports = append(ports, c.Port)
		}
	}
	for _, m := range spec.Publish {
		ports = append(ports, m.Port)
	}
	for _, p := range ports {
		if !slices.Contains(plan.HostExecPorts, p) {
			plan.HostExecPorts = append(plan.HostExecPorts, p)
		}
	}
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

func hasVar(env []string, name string) bool {
	return slices.ContainsFunc(env, func(e string) bool { return strings.HasPrefix(e, name+"=") })
}

// ParseSignal reads an image's StopSignal: "SIGTERM", "TERM" or "15"; "" is SIGTERM.
func ParseSignal(s string) (os.Signal, error) {
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

// TCPPorts are the TCP ports of a config's ExposedPorts ("8080", "8080/tcp"), sorted.
func TCPPorts(exposed map[string]struct{}) []int {
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
