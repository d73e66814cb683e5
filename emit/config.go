package emit

import (
	"encoding/json"
	"fmt"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/shlex"
)

// ConfigEdits change the slim image's config (build's --new-* and --remove-* flags, and the observation's
// overrides --image-overrides keeps). Apply sets, then removes: what a ConfigEdits both adds and removes is
// gone, as in mint.
type ConfigEdits struct {
	// SetEntrypoint and SetCmd replace ENTRYPOINT and CMD with Entrypoint and Cmd (nil clears). A new
	// ENTRYPOINT leaves CMD as it is (mint's --new-entrypoint does; a Dockerfile's ENTRYPOINT would reset it).
	SetEntrypoint, SetCmd bool
	Entrypoint, Cmd       []string
	// WorkingDir, when set, replaces WORKDIR.
	WorkingDir string
	// Env sets NAME=VALUE variables (replacing a variable of the same name, in place).
	Env []string
	// ExposedPorts ("8080/tcp") and Volumes (absolute paths) are added; Labels set.
	ExposedPorts []string
	Volumes      []string
	Labels       map[string]string
	// The removals: variables by name, ports ("8080/tcp"), volumes and label keys.
	RemoveEnv, RemoveExposedPorts, RemoveVolumes, RemoveLabels []string
}

// Empty reports whether e changes nothing.
func (e *ConfigEdits) Empty() bool {
	return e == nil || (!e.SetEntrypoint && !e.SetCmd && e.WorkingDir == "" && len(e.Env) == 0 && len(e.ExposedPorts) == 0 &&
		len(e.Volumes) == 0 && len(e.Labels) == 0 && len(e.RemoveEnv) == 0 && len(e.RemoveExposedPorts) == 0 &&
		len(e.RemoveVolumes) == 0 && len(e.RemoveLabels) == 0)
}

// Apply edits c in place and returns notes on removals that found nothing to remove (a warning for the
// user: most likely a typo).
func (e *ConfigEdits) Apply(c *v1.Config) []string {
	if e == nil {
		return nil
	}
	if e.SetEntrypoint {
		c.Entrypoint = slices.Clone(e.Entrypoint)
	}
	if e.SetCmd {
		c.Cmd = slices.Clone(e.Cmd)
	}
	if e.WorkingDir != "" {
		c.WorkingDir = e.WorkingDir
	}
	for _, kv := range e.Env {
		c.Env = SetEnv(c.Env, kv)
	}
	c.ExposedPorts = addKeys(c.ExposedPorts, e.ExposedPorts)
	c.Volumes = addKeys(c.Volumes, e.Volumes)
	if len(e.Labels) > 0 {
		c.Labels = maps.Clone(c.Labels)
		if c.Labels == nil {
			c.Labels = map[string]string{}
		}
		maps.Copy(c.Labels, e.Labels)
	}

	var notes []string
	for _, name := range e.RemoveEnv {
		kept := c.Env[:0:0]
		for _, kv := range c.Env {
			if n, _, _ := strings.Cut(kv, "="); n != name {
				kept = append(kept, kv)
			}
		}
		if len(kept) == len(c.Env) {
			notes = append(notes, fmt.Sprintf("--remove-env %s: the image has no such variable", name))
		}
		c.Env = kept
	}
	remove := func(flag string, have map[string]struct{}, keys []string) map[string]struct{} {
		if len(keys) == 0 {
			return have
		}
		have = maps.Clone(have)
		for _, k := range keys {
			if _, ok := have[k]; !ok {
				notes = append(notes, fmt.Sprintf("%s %s: the image has no such entry", flag, k))
			}
			delete(have, k)
		}
		if len(have) == 0 {
			return nil
		}
		return have
	}
	c.ExposedPorts = remove("--remove-expose", c.ExposedPorts, e.RemoveExposedPorts)
	c.Volumes = remove("--remove-volume", c.Volumes, e.RemoveVolumes)
	if len(e.RemoveLabels) > 0 {
		c.Labels = maps.Clone(c.Labels)
		for _, k := range e.RemoveLabels {
			if _, ok := c.Labels[k]; !ok {
				notes = append(notes, fmt.Sprintf("--remove-label %s: the image has no such label", k))
			}
			delete(c.Labels, k)
		}
		if len(c.Labels) == 0 {
			c.Labels = nil
		}
	}
	return notes
}

// addKeys returns a copy of set with keys added (set itself when there are none).
func addKeys(set map[string]struct{}, keys []string) map[string]struct{} {
	if len(keys) == 0 {
		return set
	}
	set = maps.Clone(set)
	if set == nil {
		set = map[string]struct{}{}
	}
	for _, k := range keys {
		set[k] = struct{}{}
	}
	return set
}

// SetEnv sets NAME=VALUE in env: an earlier value of NAME is replaced where it was, otherwise it is appended.
func SetEnv(env []string, kv string) []string {
	name, _, _ := strings.Cut(kv, "=")
	out := slices.Clone(env)
	for i, e := range out {
		if n, _, _ := strings.Cut(e, "="); n == name {
			out[i] = kv
			return out
		}
	}
	return append(out, kv)
}

// ParseCommand reads mint's --new-entrypoint and --new-cmd syntax: a JSON array of strings, or words split
// as a shell would (quotes and backslashes; no variable expansion, as mint's shlex). A single whitespace
// character clears (clear is true, argv nil); "" is no change (argv nil, clear false).
func ParseCommand(s string) (argv []string, clear bool, err error) {
	if s == "" {
		return nil, false, nil
	}
	if r, n := utf8.DecodeRuneInString(s); n == len(s) && unicode.IsSpace(r) {
		return nil, true, nil
	}
	if strings.HasPrefix(strings.TrimSpace(s), "[") {
		if err := json.Unmarshal([]byte(s), &argv); err != nil {
			return nil, false, fmt.Errorf("%q: not a JSON array of strings: %w", s, err)
		}
	} else if argv, err = shlex.Split(s); err != nil {
		return nil, false, fmt.Errorf("%q: %w", s, err)
	}
	if len(argv) == 0 {
		return nil, false, fmt.Errorf("%q: no words (a single space clears)", s)
	}
	return argv, false, nil
}

// maxPortRange bounds a port range: an image config lists each port.
const maxPortRange = 1024

// ParsePorts reads an EXPOSE value as docker does: PORT, PORT/PROTO or a range START-END[/PROTO]
// (PROTO tcp, udp or sctp; tcp when none), and returns each port as a config key ("8080/tcp").
func ParsePorts(s string) ([]string, error) {
	ports, proto, _ := strings.Cut(s, "/")
	proto = strings.ToLower(proto)
	switch proto {
	case "":
		proto = "tcp"
	case "tcp", "udp", "sctp":
	default:
		return nil, fmt.Errorf("port %q: protocol %q is not tcp, udp or sctp", s, proto)
	}
	lo, hi, isRange := strings.Cut(ports, "-")
	if !isRange {
		hi = lo
	}
	start, err1 := strconv.ParseUint(lo, 10, 16)
	end, err2 := strconv.ParseUint(hi, 10, 16)
	switch {
	case err1 != nil || err2 != nil || start == 0 || end == 0:
		return nil, fmt.Errorf("port %q: want PORT[/PROTO] or START-END[/PROTO], ports 1-65535", s)
	case end < start:
		return nil, fmt.Errorf("port %q: the range ends before it starts", s)
	case end-start >= maxPortRange:
		return nil, fmt.Errorf("port %q: a range of more than %d ports", s, maxPortRange)
	}
	var out []string
	for p := start; p <= end; p++ {
		out = append(out, fmt.Sprintf("%d/%s", p, proto))
	}
	return out, nil
}

// CleanVolume checks a VOLUME path: absolute, cleaned ("/data/" is "/data").
func CleanVolume(s string) (string, error) {
	if !strings.HasPrefix(s, "/") {
		return "", fmt.Errorf("volume %q: want an absolute path", s)
	}
	return path.Clean(s), nil
}
