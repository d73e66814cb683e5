package slimoci

import (
	"slices"
	"strings"
	"testing"

	"github.com/slimoci/slimoci/rootfs"
	"github.com/slimoci/slimoci/runner"
	"github.com/slimoci/slimoci/sensor"
)

func TestCompare(t *testing.T) {
	fat := &runner.Observation{
		Probes: []runner.ProbeResult{{Port: 8080, Method: "GET", Path: "/", Status: 200}, {Port: 8080, Method: "GET", Path: "/x", Status: 404}},
		Execs:  []runner.ExecResult{{Args: []string{"true"}, ExitCode: 0}},
	}
	same := &runner.Observation{
		Probes: []runner.ProbeResult{{Status: 200}, {Status: 404}},
		Execs:  []runner.ExecResult{{ExitCode: 0}},
	}
	if d := Compare(fat, same); len(d) != 0 {
		t.Errorf("same behaviour reported as %v", d)
	}
	for name, c := range map[string]struct {
		slim *runner.Observation
		want string
	}{
		"status":        {&runner.Observation{Probes: []runner.ProbeResult{{Status: 500}, {Status: 404}}, Execs: same.Execs}, "GET :8080/: 500, the fat image gave 200"},
		"no answer":     {&runner.Observation{Probes: []runner.ProbeResult{{Error: "connection refused"}, {Status: 404}}, Execs: same.Execs}, "connection refused"},
		"probe missing": {&runner.Observation{Probes: []runner.ProbeResult{{Status: 200}}, Execs: same.Execs}, "was not run"},
		"exec code":     {&runner.Observation{Probes: same.Probes, Execs: []runner.ExecResult{{ExitCode: 1}}}, "exit 1, the fat image gave exit 0"},
		"died early":    {&runner.Observation{Probes: same.Probes, Execs: same.Execs, AppExited: true, ExitCode: 1}, "exited with 1 before it was asked to stop"},
	} {
		d := Compare(fat, c.slim)
		if len(d) != 1 || !strings.Contains(d[0], c.want) {
			t.Errorf("%s: %v, want one difference with %q", name, d, c.want)
		}
	}
	// A command-style app must exit as it did.
	cmdFat := &runner.Observation{AppExited: true, ExitCode: 0}
	if d := Compare(cmdFat, &runner.Observation{AppExited: true, ExitCode: 2}); len(d) != 1 || !strings.Contains(d[0], "exited with 2") {
		t.Errorf("exit code: %v", d)
	}
	if d := Compare(cmdFat, &runner.Observation{}); len(d) != 1 || !strings.Contains(d[0], "kept running") {
		t.Errorf("kept running: %v", d)
	}
}

func TestMissedPathsAndDropped(t *testing.T) {
	ix := rootfs.NewIndex()
	for _, e := range []rootfs.Entry{
		{Path: "/", Type: rootfs.TypeDir}, {Path: "/usr", Type: rootfs.TypeDir}, {Path: "/usr/lib", Type: rootfs.TypeDir},
		{Path: "/usr/lib/a.so", Type: rootfs.TypeFile, Size: 100}, {Path: "/usr/lib/b.so", Type: rootfs.TypeFile, Size: 5000},
		{Path: "/lib", Type: rootfs.TypeSymlink, Linkname: "usr/lib"}, {Path: "/usr/share", Type: rootfs.TypeDir},
		{Path: "/usr/share/doc", Type: rootfs.TypeDir}, {Path: "/usr/share/doc/x", Type: rootfs.TypeFile, Size: 700},
	} {
		e := e
		ix.Add(&e)
	}
	keep := map[string][]string{"/": {"parent"}, "/usr": {"parent"}, "/usr/lib": {"parent"}, "/usr/lib/a.so": {"observed:open"}, "/lib": {"symlink"}}
	slim := &runner.Observation{Record: &sensor.Record{Files: map[string][]string{
		"/lib/b.so": {"missing", "open"}, "/lib/a.so": {"open"}, "/nowhere": {"missing", "stat"},
	}}}
	if got := missedPaths(slim, ix, keep); !slices.Equal(got, []string{"/lib/b.so"}) {
		t.Errorf("missed %v", got)
	}
	dropped := droppedPaths(ix, keep)
	var paths []string
	for _, d := range dropped {
		paths = append(paths, d.Path)
	}
	if !slices.Equal(paths, []string{"/usr/lib/b.so", "/usr/share", "/usr/share/doc", "/usr/share/doc/x"}) {
		t.Errorf("dropped %v", paths)
	}
	top := topDropped(dropped, 2, 5)
	if len(top) != 2 || top[0] != (Dropped{Path: "/usr/lib", Size: 5000}) || top[1] != (Dropped{Path: "/usr/share", Size: 700}) {
		t.Errorf("top dropped %v", top)
	}
}

// A slim image that is unhealthy where the fat one was healthy fails verify; one whose fat image was already
// unhealthy, or that has no healthcheck run, does not.
func TestCompareHealthcheck(t *testing.T) {
	hc := runner.Healthcheck{Args: []string{"curl", "-f", "http://127.0.0.1:8080/"}}
	healthy := &runner.HealthcheckResult{Healthcheck: hc, Status: runner.Healthy, Runs: []runner.ExecResult{{ExitCode: 0}}}
	unhealthy := &runner.HealthcheckResult{Healthcheck: hc, Status: runner.Unhealthy, Runs: []runner.ExecResult{{ExitCode: 127}}}
	timedOut := &runner.HealthcheckResult{Healthcheck: hc, Status: runner.Unhealthy, Runs: []runner.ExecResult{{ExitCode: -1, Error: "timed out after 5s"}}}
	for _, c := range []struct {
		name      string
		fat, slim *runner.HealthcheckResult
		want      string // "" for no difference
	}{
		{"both healthy", healthy, healthy, ""},
		{"slim unhealthy", healthy, unhealthy, "healthcheck curl -f http://127.0.0.1:8080/: unhealthy (exit 127), the fat image was healthy"},
		{"slim timed out", healthy, timedOut, "unhealthy (timed out after 5s)"},
		{"slim not run", healthy, nil, "not run, the fat image was healthy"},
		{"fat unhealthy too", unhealthy, unhealthy, ""},
		{"none", nil, nil, ""},
	} {
		d := Compare(&runner.Observation{Healthcheck: c.fat}, &runner.Observation{Healthcheck: c.slim})
		switch {
		case c.want == "" && len(d) != 0:
			t.Errorf("%s: %v, want no difference", c.name, d)
		case c.want != "" && (len(d) != 1 || !strings.Contains(d[0], c.want)):
			t.Errorf("%s: %v, want one difference with %q", c.name, d, c.want)
		}
	}
}

// What the healthcheck used is kept with the reason "healthcheck", under its recorded name and its target.
func TestMarkHealthcheck(t *testing.T) {
	ix := rootfs.NewIndex()
	for _, e := range []rootfs.Entry{
		{Path: "/", Type: rootfs.TypeDir}, {Path: "/usr", Type: rootfs.TypeDir}, {Path: "/usr/bin", Type: rootfs.TypeDir},
		{Path: "/usr/bin/curl", Type: rootfs.TypeFile}, {Path: "/bin", Type: rootfs.TypeSymlink, Linkname: "usr/bin"},
		{Path: "/usr/bin/httpd", Type: rootfs.TypeFile},
	} {
		e := e
		ix.Add(&e)
	}
	keep := map[string][]string{"/": {"parent"}, "/usr": {"parent"}, "/usr/bin": {"parent"}, "/bin": {"symlink:/bin/curl"},
		"/usr/bin/curl": {"observed:exec"}, "/usr/bin/httpd": {"observed:exec"}}
	hc := &runner.HealthcheckResult{Files: map[string][]string{"/bin/curl": {"exec"}, "/etc/missing": {"missing"}}}
	markHealthcheck(keep, hc, ix)
	markHealthcheck(keep, hc, ix) // twice: one reason
	if want := []string{"healthcheck", "observed:exec"}; !slices.Equal(keep["/usr/bin/curl"], want) {
		t.Errorf("/usr/bin/curl kept for %v, want %v", keep["/usr/bin/curl"], want)
	}
	if slices.Contains(keep["/usr/bin/httpd"], ReasonHealthcheck) || keep["/etc/missing"] != nil {
		t.Errorf("marked what the healthcheck did not keep: httpd %v, missing %v", keep["/usr/bin/httpd"], keep["/etc/missing"])
	}
	markHealthcheck(keep, nil, ix)
}
