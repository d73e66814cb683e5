package main

import (
	"fmt"
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

// edits turns the --new-* and --remove-* flags into the slim image's config edits (the library applies
// the overrides --image-overrides keeps before them).
func (f *ImageFlags) edits() (e *emit.ConfigEdits, err error) {
	e = &emit.ConfigEdits{}
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
			return nil, fmt.Errorf("%s %w", c.flag, err)
		}
		*c.set, *c.argv = clear || argv != nil, argv
	}
	if f.NewWorkdir != "" {
		if !strings.HasPrefix(f.NewWorkdir, "/") {
			return nil, fmt.Errorf("--new-workdir %q: want an absolute path", f.NewWorkdir)
		}
		e.WorkingDir = f.NewWorkdir
	}
	for _, kv := range f.NewEnv {
		if name, _, ok := strings.Cut(kv, "="); !ok || name == "" {
			return nil, fmt.Errorf("--new-env %q: want NAME=VALUE", kv)
		}
	}
	e.Env = f.NewEnv
	if e.Labels, err = parseKeyValues("--new-label", f.NewLabel); err != nil {
		return nil, err
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
				return nil, fmt.Errorf("%s: %w", l.flag, err)
			}
			*l.out = append(*l.out, keys...)
		}
	}
	return e, nil
}
