package emit

import (
	"context"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/slimoci/slimoci/rootfs"
)

func baseConfig() v1.Config {
	return v1.Config{
		Entrypoint: []string{"python3", "/app/app.py"}, Cmd: []string{"--debug"}, WorkingDir: "/app",
		Env:          []string{"PATH=/usr/bin", "PORT=8080", "PYTHONUNBUFFERED=1"},
		ExposedPorts: map[string]struct{}{"8080/tcp": {}}, Volumes: map[string]struct{}{"/data": {}},
		Labels: map[string]string{"maintainer": "x", "version": "1"}, User: "app",
	}
}

func TestConfigEdits(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edits []ConfigEdits
		want  func(c *v1.Config)
		notes []string
	}{
		{"none", nil, func(c *v1.Config) {}, nil},
		{"new entrypoint keeps cmd", []ConfigEdits{{SetEntrypoint: true, Entrypoint: []string{"/usr/bin/python3", "-u"}}},
			func(c *v1.Config) { c.Entrypoint = []string{"/usr/bin/python3", "-u"} }, nil},
		{"clear entrypoint, new cmd", []ConfigEdits{{SetEntrypoint: true, SetCmd: true, Cmd: []string{"/bin/app"}}},
			func(c *v1.Config) { c.Entrypoint, c.Cmd = nil, []string{"/bin/app"} }, nil},
		{"workdir, env set in place and appended", []ConfigEdits{{WorkingDir: "/srv", Env: []string{"PORT=9090", "NEW=a=b"}}},
			func(c *v1.Config) {
				c.WorkingDir = "/srv"
				c.Env = []string{"PATH=/usr/bin", "PORT=9090", "PYTHONUNBUFFERED=1", "NEW=a=b"}
			}, nil},
		{"add ports, volumes, labels", []ConfigEdits{{ExposedPorts: []string{"9090/tcp", "53/udp"}, Volumes: []string{"/cache"}, Labels: map[string]string{"version": "2", "new": "y"}}},
			func(c *v1.Config) {
				c.ExposedPorts = map[string]struct{}{"8080/tcp": {}, "9090/tcp": {}, "53/udp": {}}
				c.Volumes = map[string]struct{}{"/data": {}, "/cache": {}}
				c.Labels = map[string]string{"maintainer": "x", "version": "2", "new": "y"}
			}, nil},
		{"removals, down to nothing", []ConfigEdits{{RemoveEnv: []string{"PORT", "PYTHONUNBUFFERED"}, RemoveExposedPorts: []string{"8080/tcp"}, RemoveVolumes: []string{"/data"}, RemoveLabels: []string{"maintainer", "version"}}},
			func(c *v1.Config) {
				c.Env = []string{"PATH=/usr/bin"}
				c.ExposedPorts, c.Volumes, c.Labels = nil, nil, nil
			}, nil},
		{"added then removed is gone (mint's order)", []ConfigEdits{{Env: []string{"TMP=1"}, RemoveEnv: []string{"TMP"}, Labels: map[string]string{"tmp": "1"}, RemoveLabels: []string{"tmp"}, ExposedPorts: []string{"1/tcp"}, RemoveExposedPorts: []string{"1/tcp"}}},
			func(c *v1.Config) {}, nil},
		{"overrides then new instructions: the later wins", []ConfigEdits{{WorkingDir: "/run-dir", Env: []string{"PORT=1"}}, {WorkingDir: "/new-dir", Env: []string{"PORT=2"}}},
			func(c *v1.Config) { c.WorkingDir, c.Env[1] = "/new-dir", "PORT=2" }, nil},
		{"removing what is not there is a note", []ConfigEdits{{RemoveEnv: []string{"NOPE"}, RemoveExposedPorts: []string{"1/tcp"}, RemoveVolumes: []string{"/nope"}, RemoveLabels: []string{"nope"}}},
			func(c *v1.Config) {}, []string{"--remove-env NOPE", "--remove-expose 1/tcp", "--remove-volume /nope", "--remove-label nope"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := baseConfig()
			got := src
			var notes []string
			for i := range tc.edits {
				notes = append(notes, tc.edits[i].Apply(&got)...)
			}
			want := baseConfig()
			tc.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
			if !reflect.DeepEqual(src, baseConfig()) {
				t.Errorf("the source config was changed: %+v", src)
			}
			if len(notes) != len(tc.notes) {
				t.Fatalf("notes %q, want %q", notes, tc.notes)
			}
			for i, n := range tc.notes {
				if !strings.HasPrefix(notes[i], n+":") {
					t.Errorf("note %q, want %q...", notes[i], n)
				}
			}
			for _, e := range tc.edits {
				if e.Empty() {
					t.Errorf("Empty() on %+v", e)
				}
			}
		})
	}
	if (&ConfigEdits{SetCmd: true}).Empty() || !(*ConfigEdits)(nil).Empty() || !(&ConfigEdits{}).Empty() {
		t.Error("Empty: a cleared CMD is an edit; nil and the zero value are none")
	}
}

// The edits reach the slim image's config; the tree's config is left alone.
func TestSlimImageEdits(t *testing.T) {
	tree, err := rootfs.Unpack(context.Background(), fatImage(t), filepath.Join(t.TempDir(), "fat"), nil)
	if err != nil {
		t.Fatal(err)
	}
	keep := map[string][]string{"/app": {"test"}}
	edits := []ConfigEdits{{SetCmd: true, Cmd: []string{"serve"}, RemoveExposedPorts: []string{"8080/tcp"}, ExposedPorts: []string{"9090/tcp"}}}
	img, _, err := SlimImage(tree, keep, ImageOptions{Dir: t.TempDir(), Edits: edits})
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	if !slices.Equal(cf.Config.Cmd, []string{"serve"}) || !reflect.DeepEqual(cf.Config.ExposedPorts, map[string]struct{}{"9090/tcp": {}}) ||
		!slices.Equal(cf.Config.Entrypoint, []string{"/app/bin/t"}) {
		t.Errorf("slim config %+v", cf.Config)
	}
	if _, ok := tree.Config.Config.ExposedPorts["8080/tcp"]; !ok || tree.Config.Config.Cmd != nil {
		t.Errorf("the tree's config was changed: %+v", tree.Config.Config)
	}
}

func TestParseCommand(t *testing.T) {
	for _, tc := range []struct {
		in    string
		argv  []string
		clear bool
		err   string
	}{
		{in: ""},
		{in: " ", clear: true},
		{in: "\t", clear: true},
		{in: `["/app/run", "--port", "8080"]`, argv: []string{"/app/run", "--port", "8080"}},
		{in: ` ["a b"]`, argv: []string{"a b"}},
		{in: `/app/run --name "two words" 'single quoted' back\ slash`, argv: []string{"/app/run", "--name", "two words", "single quoted", "back slash"}},
		{in: `sh -c 'echo $HOME'`, argv: []string{"sh", "-c", "echo $HOME"}},
		{in: `echo $HOME`, argv: []string{"echo", "$HOME"}},
		{in: "  ", err: "no words"},
		{in: "[]", err: "no words"},
		{in: `["a", 1]`, err: "JSON array"},
		{in: `[not json`, err: "JSON array"},
		{in: `run "unterminated`, err: "EOF"},
	} {
		argv, clear, err := ParseCommand(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || clear != tc.clear || !slices.Equal(argv, tc.argv) {
			t.Errorf("%q: %q clear=%v %v; want %q clear=%v", tc.in, argv, clear, err, tc.argv, tc.clear)
		}
	}
}

func TestParsePorts(t *testing.T) {
	for in, want := range map[string][]string{
		"8080":      {"8080/tcp"},
		"53/udp":    {"53/udp"},
		"443/TCP":   {"443/tcp"},
		"9000-9002": {"9000/tcp", "9001/tcp", "9002/tcp"},
		"7-7/sctp":  {"7/sctp"},
	} {
		if got, err := ParsePorts(in); err != nil || !slices.Equal(got, want) {
			t.Errorf("%q: %v %v, want %v", in, got, err, want)
		}
	}
	for in, want := range map[string]string{
		"": "PORT", "0": "PORT", "x": "PORT", "70000": "PORT", "80:80": "PORT", "80/icmp": `"icmp"`, "9-8": "ends before",
		"1-2000": "more than", "-5": "PORT",
	} {
		if _, err := ParsePorts(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", in, err, want)
		}
	}
	if v, err := CleanVolume("/data/"); err != nil || v != "/data" {
		t.Errorf("CleanVolume: %q %v", v, err)
	}
	if _, err := CleanVolume("data"); err == nil {
		t.Error("a relative volume accepted")
	}
}
