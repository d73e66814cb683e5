package main

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kong"

	"github.com/slimoci/slimoci/emit"
	"github.com/slimoci/slimoci/oci"
	"github.com/slimoci/slimoci/runner"
)

// parseCLI parses args as Main does, without running the command.
func parseCLI(t *testing.T, args ...string) (*CLI, error) {
	t.Helper()
	var cli CLI
	parser, err := kong.New(&cli, kong.Name("slimoci"), kong.Exit(func(int) { t.Fatal("kong exited") }))
	if err != nil {
		t.Fatal(err)
	}
	_, err = parser.Parse(args)
	return &cli, err
}

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// mint's params file: kebab or snake names, every value type; the command line wins; --workdir and
// --work-dir stay two flags.
func TestCommandParamsFile(t *testing.T) {
	file := writeFile(t, "params.json", `{
		"http-probe-cmd": ["/a", "/b"],
		"timeout": "5m",
		"probe_timeout": "7s",
		"show-clogs": true,
		"include-healthcheck": false,
		"env": "A=1",
		"workdir": "/srv",
		"work-dir": "/var/tmp",
		"pids-limit": 100,
		"new-cmd": "serve --port 80",
		"debug": true,
		"tag": ["x/a:1", "x/b:2"]
	}`)
	cli, err := parseCLI(t, "build", "--command-params-file", file, "--timeout", "1m", "example/image")
	if err != nil {
		t.Fatal(err)
	}
	b := cli.Build
	switch {
	case !slices.Equal(b.HTTPProbeCmd, []string{"/a", "/b"}) || b.IncludeHealthcheck || !b.ShowClogs:
		t.Errorf("probes %v, healthcheck %v, clogs %v", b.HTTPProbeCmd, b.IncludeHealthcheck, b.ShowClogs)
	case b.Timeout != time.Minute || b.ProbeTimeout != 7*time.Second:
		t.Errorf("timeout %s (the command line's 1m wins), probe timeout %s", b.Timeout, b.ProbeTimeout)
	case b.RunFlags.Workdir != "/srv" || b.WorkDir != "/var/tmp":
		t.Errorf("--workdir %q, --work-dir %q", b.RunFlags.Workdir, b.WorkDir)
	case !slices.Equal(b.Env, []string{"A=1"}) || b.PidsLimit != 100 || b.NewCmd != "serve --port 80" || !cli.Debug:
		t.Errorf("env %v, pids %d, new cmd %q, debug %v", b.Env, b.PidsLimit, b.NewCmd, cli.Debug)
	case !slices.Equal(b.Tag, []string{"x/a:1", "x/b:2"}):
		t.Errorf("tags %v", b.Tag)
	}
	// A repeatable flag on the command line replaces the file's list, it does not add to it.
	cli, err = parseCLI(t, "build", "--command-params-file", file, "--http-probe-cmd", "/c", "example/image")
	if err != nil || !slices.Equal(cli.Build.HTTPProbeCmd, []string{"/c"}) {
		t.Errorf("%v %v", cli.Build.HTTPProbeCmd, err)
	}
	// profile takes the file too; build's flags are not profile's.
	if _, err := parseCLI(t, "profile", "--command-params-file", writeFile(t, "p.json", `{"timeout": "1s"}`), "example/image"); err != nil {
		t.Error(err)
	}

	for body, want := range map[string]string{
		`{"frobnicate": 1}`:                         `"frobnicate" is not a flag of this command`,
		`{"new-cmd": "x"}`:                          `"new-cmd" is not a flag`, // profile has no image edits
		`{"target": "img"}`:                         "IMAGE argument",
		`{"timeout": 60}`:                           `"timeout": give a duration as a string`,
		`{"hostname": ["a", "b"]}`:                  `"hostname": an array for a flag that takes one value`,
		`{"env": [["A=1"]]}`:                        "is not a string, number or boolean",
		`{"env": null}`:                             "is not a string, boolean, number or array",
		`{"show-clogs": true, "show_clogs": false}`: `name the same flag`,
		`{"command-params-file": "x"}`:              "cannot be given in the file",
		`["timeout"]`:                               "not a JSON object of flags",
		`{"timeout": "1s"} {}`:                      "more after the object",
		`{"pids-limit": "many"}`:                    "pids-limit",
	} {
		f := writeFile(t, "bad.json", body)
		_, err := parseCLI(t, "profile", "--command-params-file", f, "example/image")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", body, err, want)
		}
	}
}

// The flags of build that change the slim image, through kong, into the edits emit applies.
func TestImageEdits(t *testing.T) {
	envFile := writeFile(t, "app.env", "FROM_FILE=1\nA=file\n")
	cli, err := parseCLI(t, "build", "--entrypoint", "/bin/run", "--env-file", envFile, "--env", "A=flag", "--workdir", "/run",
		"--expose", "9000-9001", "--volume", "/cache", "--label", "run=1",
		"--image-overrides", "all",
		"--new-cmd", `["serve", "--port", "80"]`, "--new-expose", "80", "--new-workdir", "/srv", "--new-env", "PORT=80",
		"--new-volume", "/data/", "--new-label", "new=2", "--remove-expose", "8080/tcp", "--remove-env", "DEBUG",
		"--remove-label", "old", "--remove-volume", "/tmp", "example/image")
	if err != nil {
		t.Fatal(err)
	}
	b := &cli.Build
	o := &observation{}
	if err := b.parseRun(o); err != nil {
		t.Fatal(err)
	}
	edits, err := b.ImageFlags.edits()
	if err != nil {
		t.Fatal(err)
	}
	want := emit.ConfigEdits{
		SetCmd: true, Cmd: []string{"serve", "--port", "80"}, WorkingDir: "/srv", Env: []string{"PORT=80"},
		ExposedPorts: []string{"80/tcp"}, Volumes: []string{"/data"}, Labels: map[string]string{"new": "2"},
		RemoveEnv: []string{"DEBUG"}, RemoveExposedPorts: []string{"8080/tcp"}, RemoveVolumes: []string{"/tmp"}, RemoveLabels: []string{"old"},
	}
	if !reflect.DeepEqual(*edits, want) {
		t.Errorf("edits\n%+v\nwant\n%+v", *edits, want)
	}
	// The run's overrides, which --image-overrides keeps (the library's keptEdits turns them into edits).
	wantOv := runner.Overrides{SetEntrypoint: true, Entrypoint: []string{"/bin/run"}, Workdir: "/run",
		Env: []string{"FROM_FILE=1", "A=file", "A=flag"}, Expose: []string{"9000/tcp", "9001/tcp"},
		Volumes: []string{"/cache"}, Labels: map[string]string{"run": "1"}}
	if ov := b.overrides(); !reflect.DeepEqual(ov, wantOv) {
		t.Errorf("overrides\n%+v\nwant\n%+v", ov, wantOv)
	}
	if !slices.Equal(o.spec.Volumes, []string{"/cache"}) {
		t.Errorf("the sandbox's volumes %v", o.spec.Volumes)
	}

	// A single space clears; nothing given is no edit at all.
	cli, _ = parseCLI(t, "build", "--new-entrypoint", " ", "example/image")
	edits, err = cli.Build.ImageFlags.edits()
	if err != nil || !edits.SetEntrypoint || edits.Entrypoint != nil || edits.SetCmd {
		t.Errorf("clear: %+v %v", edits, err)
	}
	cli, _ = parseCLI(t, "build", "--cmd", "x", "example/image")
	if edits, _ = cli.Build.ImageFlags.edits(); !edits.Empty() {
		t.Errorf("no new instructions: %+v", edits)
	}
}

// --tag: pushed to with --push; without, the names of the outputs that name no image.
func TestDestinations(t *testing.T) {
	src, _ := oci.ParseReference("127.0.0.1:5000/app:v1")
	dests := func(args ...string) ([]string, error) {
		cli, err := parseCLI(t, append(append([]string{"build", "--state-path", "/st"}, args...), "example/image")...)
		if err != nil {
			// Build's Validate refuses what destinations would.
			return nil, err
		}
		ds, err := cli.Build.destinations(src)
		var out []string
		for _, d := range ds {
			out = append(out, d.String())
		}
		return out, err
	}
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{nil, []string{"oci:/st/image:v1"}},
		{[]string{"--push"}, []string{"docker://127.0.0.1:5000/app.slim:v1"}},
		{[]string{"--push", "--tag", "r/a:1", "--tag", "r/b:2"}, []string{"docker://r/a:1", "docker://r/b:2"}},
		{[]string{"--push", "--tag", "r/a:1", "--output", "oci:/o"}, []string{"docker://r/a:1", "oci:/o"}},
		{[]string{"--tag", "app:slim", "--tag", "v2"}, []string{"oci:/st/image as app:slim, v2"}},
		{[]string{"--tag", "app:slim", "--output", "oci:/o", "--output", "oci:/p:mine", "--output", "docker-archive:/a.tar", "--output", "docker-archive:/b.tar:x/y:z", "--output", "oci-archive:/c.oci", "--output", "r/x:1"},
			[]string{"oci:/o as app:slim", "oci:/p:mine", "docker-archive:/a.tar as app:slim", "docker-archive:/b.tar:x/y:z", "oci-archive:/c.oci as app:slim", "docker://r/x:1"}},
	} {
		got, err := dests(tc.args...)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%q: %q %v, want %q", tc.args, got, err, tc.want)
		}
	}
	if _, err := dests("--tag", "Bad:Name"); err == nil || !strings.Contains(err.Error(), "not an image name") {
		t.Errorf("a bad name: %v", err)
	}
	if _, err := dests("--push", "--tag", "oci:/x"); err == nil || !strings.Contains(err.Error(), "registry reference") {
		t.Errorf("--push to a layout: %v", err)
	}
}
