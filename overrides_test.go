package slimoci

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/slimoci/slimoci/emit"
	"github.com/slimoci/slimoci/runner"
)

func TestImageOverrideNames(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want []string
	}{
		{nil, nil},
		{[]string{"all"}, OverrideNames},
		{[]string{"Env,LABEL", "cmd"}, []string{"cmd", "env", "label"}},
		{[]string{"entrypoint,all"}, OverrideNames},
	} {
		got, err := ParseImageOverrides(tc.in)
		var names []string
		for n := range got {
			names = append(names, n)
		}
		slices.Sort(names)
		want := slices.Sorted(slices.Values(tc.want))
		if err != nil || !slices.Equal(names, want) {
			t.Errorf("%q: %v %v, want %v", tc.in, names, err, want)
		}
	}
	for _, bad := range []string{"user", "env,", "entrypoints"} {
		if _, err := ParseImageOverrides([]string{bad}); err == nil || !strings.Contains(err.Error(), "--image-overrides") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// The overrides --image-overrides keeps become the slim image's first config edits, as the run ran.
func TestKeptEdits(t *testing.T) {
	ov := runner.Overrides{SetEntrypoint: true, Entrypoint: []string{"/bin/run"}, Workdir: "/run",
		Env: []string{"FROM_FILE=1", "A=file", "A=flag"}, Expose: []string{"9000/tcp", "9001/tcp"},
		Volumes: []string{"/cache"}, Labels: map[string]string{"run": "1"}}
	all, _ := ParseImageOverrides([]string{"all"})
	want := emit.ConfigEdits{
		// The observation ran /bin/run without the image's CMD: kept as it ran.
		SetEntrypoint: true, Entrypoint: []string{"/bin/run"}, SetCmd: true, WorkingDir: "/run",
		Env: []string{"FROM_FILE=1", "A=file", "A=flag"}, ExposedPorts: []string{"9000/tcp", "9001/tcp"},
		Volumes: []string{"/cache"}, Labels: map[string]string{"run": "1"},
	}
	if got := keptEdits(all, ov); !reflect.DeepEqual(got, want) {
		t.Errorf("all kept:\n got %+v\nwant %+v", got, want)
	}
	if got := keptEdits(map[string]bool{"env": true}, ov); !reflect.DeepEqual(got, emit.ConfigEdits{Env: ov.Env}) {
		t.Errorf("env kept: %+v", got)
	}
	if got := keptEdits(nil, ov); !got.Empty() {
		t.Errorf("nothing kept: %+v", got)
	}
}

// What verify runs the slim image with: the overrides the slim image does not carry.
func TestForVerify(t *testing.T) {
	ov := runner.Overrides{Entrypoint: []string{"/bin/sh"}, SetEntrypoint: true, Cmd: []string{"-c", "true"}, SetCmd: true, Workdir: "/tmp", User: "0",
		Env: []string{"A=run", "C=run"}, Expose: []string{"9090/tcp"}}
	noCmd := ov
	noCmd.Cmd, noCmd.SetCmd = nil, false
	for _, tc := range []struct {
		name  string
		ov    runner.Overrides
		kept  map[string]bool
		edits *emit.ConfigEdits
		want  runner.Overrides
	}{
		{"nothing kept or edited: the same run", noCmd, nil, &emit.ConfigEdits{}, noCmd},
		{"all kept: only --user stays", ov, map[string]bool{"entrypoint": true, "cmd": true, "workdir": true, "env": true}, &emit.ConfigEdits{},
			runner.Overrides{User: "0", Expose: ov.Expose}},
		{"--new-cmd replaces --cmd; --entrypoint stays (podman's --entrypoint clears it)", ov, nil, &emit.ConfigEdits{SetCmd: true, Cmd: []string{"serve"}},
			runner.Overrides{Entrypoint: ov.Entrypoint, SetEntrypoint: true, Workdir: "/tmp", User: "0", Env: ov.Env, Expose: ov.Expose}},
		{"--new-entrypoint, --new-workdir, and variables --new-env or --remove-env name", ov, nil,
			&emit.ConfigEdits{SetEntrypoint: true, WorkingDir: "/srv", Env: []string{"A=new"}, RemoveEnv: []string{"C"}},
			runner.Overrides{Cmd: ov.Cmd, SetCmd: true, User: "0", Expose: ov.Expose}},
	} {
		got := forVerify(tc.ov, tc.kept, tc.edits)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.name, got, tc.want)
		}
	}
}
