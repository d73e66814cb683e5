package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/slimoci/slimoci/emit"
)

// ImageFlags are mint's edits of the slim image's config: build's --new-*, --remove-* and
// --image-overrides. Without them the slim image's config is the original's.
type ImageFlags struct {
	NewEntrypoint  string   `help:"The slim image's ENTRYPOINT: a JSON array, or words split as a shell would (quotes, no expansion); a single space clears it. CMD stays (mint's, not a Dockerfile's ENTRYPOINT)." placeholder:"CMD"`
	NewCmd         string   `help:"The slim image's CMD, as --new-entrypoint (a single space clears it)." placeholder:"CMD"`
	NewExpose      []string `help:"Add EXPOSE PORT[/PROTO] (or START-END) to the slim image (repeatable)." placeholder:"PORT" sep:"none"`
	NewWorkdir     string   `help:"The slim image's WORKDIR (absolute; the directory is kept)." placeholder:"DIR"`
	NewEnv         []string `help:"Set ENV NAME=VALUE in the slim image (repeatable)." placeholder:"NAME=VALUE" sep:"none"`
	NewVolume      []string `help:"Add VOLUME DIR to the slim image (repeatable)." placeholder:"DIR" sep:"none"`
	NewLabel       []string `help:"Set LABEL KEY=VALUE in the slim image (repeatable)." placeholder:"KEY=VALUE" sep:"none"`
	RemoveExpose   []string `help:"Remove EXPOSE PORT[/PROTO] from the slim image, after the additions (repeatable)." placeholder:"PORT" sep:"none"`
	RemoveEnv      []string `help:"Remove the variable NAME from the slim image's ENV, after the additions (repeatable)." placeholder:"NAME" sep:"none"`
	RemoveLabel    []string `help:"Remove the label KEY from the slim image, after the additions (repeatable)." placeholder:"KEY" sep:"none"`
	RemoveVolume   []string `help:"Remove VOLUME DIR from the slim image, after the additions (repeatable)." placeholder:"DIR" sep:"none"`
	ImageOverrides []string `help:"Keep the observation's overrides in the slim image: all, or some of entrypoint, cmd, workdir, env, expose, volume, label (--entrypoint, --cmd, --workdir, --env-file and --env, --expose, --volume, --label). Applied before the --new-* flags, which win." placeholder:"NAMES"`
}

// overrideNames are --image-overrides' names, as mint's.
var overrideNames = []string{"entrypoint", "cmd", "workdir", "env", "expose", "volume", "label"}

// parseImageOverrides reads --image-overrides: all, or names from overrideNames (any case); another name is
// an error naming it (mint ignores it).
func parseImageOverrides(values []string) (map[string]bool, error) {
	kept := map[string]bool{}
	for _, v := range values {
		for _, name := range strings.Split(v, ",") {
			name = strings.ToLower(strings.TrimSpace(name))
			switch {
			case name == "all":
				for _, n := range overrideNames {
					kept[n] = true
				}
			case slices.Contains(overrideNames, name):
				kept[name] = true
			default:
				return nil, fmt.Errorf("--image-overrides %q: want all, or some of %s", name, strings.Join(overrideNames, ", "))
			}
		}
	}
	return kept, nil
}

// imageEdits turns the flags into the slim image's config edits: first the observation's overrides kept
// (kept names them), then the new instructions and removals. It returns the two edits (for
// emit.ImageOptions, in order) and the second alone, which verify needs (see forVerify).
func (f *ImageFlags) imageEdits(kept map[string]bool, ov runOverrides, run *RunFlags) (all []emit.ConfigEdits, edits *emit.ConfigEdits, err error) {
	var keep emit.ConfigEdits
	if kept["entrypoint"] && ov.hasEntrypoint {
		keep.SetEntrypoint, keep.Entrypoint = true, ov.entrypoint
		if !ov.hasCmd {
			// What ran: --entrypoint cleared the image's CMD.
			keep.SetCmd = true
		}
	}
	if kept["cmd"] && ov.hasCmd {
		keep.SetCmd, keep.Cmd = true, ov.cmd
	}
	if kept["workdir"] {
		keep.WorkingDir = ov.workdir
	}
	if kept["env"] {
		keep.Env = ov.env
	}
	if kept["expose"] {
		keep.ExposedPorts = ov.expose
	}
	if kept["volume"] {
		keep.Volumes = run.volumes
	}
	if kept["label"] {
		keep.Labels = run.labels
	}

	e := &emit.ConfigEdits{}
	for _, c := range []struct {
		flag  string
		value string
		set   *bool
		argv  *[]string
	}{
		{"--new-entrypoint", f.NewEntrypoint, &e.SetEntrypoint, &e.Entrypoint},
		{"--new-cmd", f.NewCmd, &e.SetCmd, &e.Cmd},
	} {
		argv, clear, err := emit.ParseCommand(c.value)
		if err != nil {
			return nil, nil, fmt.Errorf("%s %w", c.flag, err)
		}
		*c.set, *c.argv = clear || argv != nil, argv
	}
	if f.NewWorkdir != "" {
		if !strings.HasPrefix(f.NewWorkdir, "/") {
			return nil, nil, fmt.Errorf("--new-workdir %q: want an absolute path", f.NewWorkdir)
		}
		e.WorkingDir = f.NewWorkdir
	}
	for _, kv := range f.NewEnv {
		if name, _, ok := strings.Cut(kv, "="); !ok || name == "" {
			return nil, nil, fmt.Errorf("--new-env %q: want NAME=VALUE", kv)
		}
	}
	e.Env = f.NewEnv
	if e.Labels, err = parseKeyValues("--new-label", f.NewLabel); err != nil {
		return nil, nil, err
	}
	e.RemoveEnv, e.RemoveLabels = f.RemoveEnv, f.RemoveLabel
	volume := func(v string) ([]string, error) {
		dir, err := emit.CleanVolume(v)
		return []string{dir}, err
	}
	for _, l := range []struct {
		flag  string
		in    []string
		out   *[]string
		parse func(string) ([]string, error)
	}{
		{"--new-expose", f.NewExpose, &e.ExposedPorts, emit.ParsePorts}, {"--remove-expose", f.RemoveExpose, &e.RemoveExposedPorts, emit.ParsePorts},
		{"--new-volume", f.NewVolume, &e.Volumes, volume}, {"--remove-volume", f.RemoveVolume, &e.RemoveVolumes, volume},
	} {
		for _, v := range l.in {
			keys, err := l.parse(v)
			if err != nil {
				return nil, nil, fmt.Errorf("%s: %w", l.flag, err)
			}
			*l.out = append(*l.out, keys...)
		}
	}
	for _, ed := range []*emit.ConfigEdits{&keep, e} {
		if !ed.Empty() {
			all = append(all, *ed)
		}
	}
	return all, e, nil
}
