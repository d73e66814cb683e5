package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/slimoci/slimoci"
	"github.com/slimoci/slimoci/runner"
	"github.com/slimoci/slimoci/sensor"
)

// planOf parses the keep flags as the command line does (kong, with their defaults) into a plan.
func planOf(t *testing.T, args ...string) (*keepPlan, error) {
	t.Helper()
	var cli struct{ KeepFlags }
	p, err := kong.New(&cli)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Parse(args); err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	return cli.plan()
}

func TestKeepPlan(t *testing.T) {
	dir := t.TempDir()
	paths := filepath.Join(dir, "paths.txt")
	os.WriteFile(paths, []byte("# kept for the plugins\n/etc/app.d\n\n  /opt/plugins/**/*.so  \n"), 0o644)
	bins := filepath.Join(dir, "bins.txt")
	os.WriteFile(bins, []byte("/usr/bin/curl\n/usr/lib/x86_64-linux-gnu/libz.so.1\n"), 0o644)
	exes := filepath.Join(dir, "exes.txt")
	os.WriteFile(exes, []byte("ls\n# a comment\ncat\n"), 0o644)

	p, err := planOf(t)
	if err != nil {
		t.Fatal(err)
	}
	// The defaults: all certificates, the resolver's libraries, the pruned package database, stale locks
	// dropped; nothing else.
	if !p.certs || !p.packageDB || p.opts.CertBundles || p.opts.CertDirs || p.opts.CertKeys || !p.opts.OSLibsNet || !p.opts.ExcludeVarLock || p.shell ||
		p.opts.Workdir || p.opts.LastLayers != 0 || len(p.include)+len(p.exclude)+len(p.opts.Bins) != 0 {
		t.Errorf("defaults: %+v", p)
	}
	p, err = planOf(t, "--include-path", "/etc/x", "--include-path-file", paths, "--preserve-path", "/srv/www", "--include-bin", "/bin/ls",
		"--include-bin-file", bins, "--include-exe", "sh", "--include-exe-file", exes, "--include-dir-bins", "/opt/bin", "--exclude-path", "/usr/share/doc",
		"--exclude-pattern", "/usr/**/*.pyc", "--include-node-package", "@scope/pkg", "--include-last-image-layers", "2", "--include-shell",
		"--include-workdir", "--include-zoneinfo", "--include-ssh-client", "--no-include-oslibs-net", "--no-exclude-varlock-files", "--no-package-db")
	if err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string][2][]string{
		"include": {p.include, {"/etc/x", "/etc/app.d", "/opt/plugins/**/*.so", "/srv/www"}},
		"exclude": {p.exclude, {"/usr/share/doc", "/usr/**/*.pyc"}},
		"bins":    {p.opts.Bins, {"/bin/ls", "/usr/bin/curl", "/usr/lib/x86_64-linux-gnu/libz.so.1"}},
		"exes":    {p.opts.Exes, {"sh", "ls", "cat"}},
		"dirbins": {p.opts.DirBins, {"/opt/bin"}},
		"node":    {p.opts.NodePackages, {"@scope/pkg"}},
	} {
		if !slices.Equal(got[0], got[1]) {
			t.Errorf("%s: %q, want %q", name, got[0], got[1])
		}
	}
	if p.opts.LastLayers != 2 || !p.shell || p.packageDB || !p.opts.Workdir || !p.opts.Zoneinfo || !p.opts.SSHClient || p.opts.OSLibsNet || p.opts.ExcludeVarLock {
		t.Errorf("switches: %+v", p)
	}
	for _, tc := range []struct {
		args                              []string
		all, bundles, dirs, keys, anyCert bool
	}{
		{nil, true, false, false, false, true},
		{[]string{"--include-cert-bundles-only"}, false, true, false, false, true},
		{[]string{"--include-cert-dirs"}, false, false, true, false, true},
		{[]string{"--no-include-cert-all"}, false, false, false, false, false},
		{[]string{"--no-include-certs"}, false, false, false, false, false},
		{[]string{"--no-include-certs", "--include-cert-dirs"}, false, false, true, false, true},
		{[]string{"--include-cert-pk-dirs"}, true, false, false, true, true},
		{[]string{"--include-cert-pk-all", "--no-include-cert-all"}, false, false, false, true, true},
	} {
		p, err := planOf(t, tc.args...)
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if p.certs != tc.all || p.opts.CertBundles != tc.bundles || p.opts.CertDirs != tc.dirs || p.opts.CertKeys != tc.keys {
			t.Errorf("%v: all %v bundles %v dirs %v keys %v", tc.args, p.certs, p.opts.CertBundles, p.opts.CertDirs, p.opts.CertKeys)
		}
	}
}

// Bad keep flags: one line naming the flag, the value (and the file and its line) and the problem, before
// anything is pulled; bad values for the image: after the unpack, before the app runs.
func TestKeepFlagErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(body), 0o644)
		return p
	}
	perms := write("perms.txt", "/etc/app\n/etc/secret:0600#1000\n")
	relative := write("relative.txt", "/etc/app\n\nopt/x\n")
	notJSON := write("notjson.json", "{not json")
	unknown := write("unknown.json", `{"image":"x","probes":[]}`)
	mintNoFiles := write("mint.json", `{"document":"doc.report.container","image":{"layers":[]}}`)
	relReport := write("rel.json", `{"record":{"files":{"etc/passwd":["open"]}}}`)
	good, _ := sampleLayout(t)
	noWorkdir := layoutWith(t, v1.Config{Env: []string{"PATH=/usr/bin"}})
	rootWorkdir := layoutWith(t, v1.Config{WorkingDir: "/"})
	sensorBin := notJSON // any file: these fail before the sensor is needed

	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"bundles and dirs", []string{"--include-cert-bundles-only", "--include-cert-dirs"}, []string{"--include-cert-bundles-only", "--include-cert-dirs", "give one"}},
		{"missing path file", []string{"--include-path-file", filepath.Join(dir, "nope.txt")}, []string{"--include-path-file", "nope.txt", "no such file"}},
		{"missing bin file", []string{"--include-bin-file", filepath.Join(dir, "nope.txt")}, []string{"--include-bin-file", "nope.txt", "no such file"}},
		{"mint's perms in a path file", []string{"--include-path-file", perms}, []string{"--include-path-file", perms, "line 2", "/etc/secret:0600#1000", "mode"}},
		{"relative path in a path file", []string{"--preserve-path-file", relative}, []string{"--preserve-path-file", relative, "line 3", `"opt/x"`, "absolute"}},
		{"report not JSON", []string{"--include-paths-creport-file", notJSON}, []string{"--include-paths-creport-file", notJSON, "not a JSON report"}},
		{"report of another kind", []string{"--include-paths-creport-file", unknown}, []string{unknown, "neither", "record.files", "image.files"}},
		{"creport without files", []string{"--include-paths-creport-file", mintNoFiles}, []string{mintNoFiles, "without image.files"}},
		{"report with a relative path", []string{"--include-paths-creport-file", relReport}, []string{relReport, `"etc/passwd"`, "not absolute"}},
		{"missing report", []string{"--include-paths-creport-file", filepath.Join(dir, "nope.json")}, []string{"nope.json", "no such file"}},
		{"relative bin", []string{"--include-bin", "usr/bin/curl"}, []string{"--include-bin", `"usr/bin/curl"`, "absolute"}},
		{"exe with a slash", []string{"--include-exe", "/usr/bin/curl"}, []string{"--include-exe", "--include-bin"}},
		{"bad node package", []string{"--include-node-package", "../etc"}, []string{"--include-node-package", `"../etc"`}},
		{"negative layers", []string{"--include-last-image-layers=-1"}, []string{"--include-last-image-layers", "-1"}},
		{"bad pattern", []string{"--exclude-pattern", "/a/[b"}, []string{"--exclude-pattern", "/a/[b", "syntax"}},
		{"relative pattern", []string{"--exclude-pattern", "*.pyc"}, []string{"--exclude-pattern", "*.pyc", "absolute"}},
		{"no exclude mounts", []string{"--no-exclude-mounts"}, []string{"--no-exclude-mounts", "--mount"}},
		// Checked on the unpacked image: not usage errors (exit 1).
		{"bin not in the image", []string{"--include-bin", "/usr/bin/curl"}, []string{"--include-bin /usr/bin/curl", "no such file in the image"}},
		{"exe not on the PATH", []string{"--include-exe", "curl"}, []string{"--include-exe curl", "PATH"}},
		{"dir not in the image", []string{"--include-dir-bins", "/opt/bin"}, []string{"--include-dir-bins /opt/bin", "no such directory"}},
		{"node package not in the image", []string{"--include-node-package", "express"}, []string{"--include-node-package express", "node_modules/express"}},
		{"no WORKDIR", []string{"--include-workdir", "oci:" + noWorkdir}, []string{"--include-workdir", "no WORKDIR"}},
		{"WORKDIR /", []string{"--include-workdir", "oci:" + rootWorkdir}, []string{"--include-workdir", "WORKDIR is /"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// --quiet: the error alone on stderr, no stage lines before it.
			args := append([]string{"--quiet", "build", "--sensor", sensorBin, "--state-path", filepath.Join(t.TempDir(), "state")}, tc.args...)
			if !strings.HasPrefix(args[len(args)-1], "oci:") {
				args = append(args, good)
			}
			_, stderr, code := runCLI(t, args...)
			// A flag's value is a usage error; what the image lacks is found once it is unpacked.
			want := 2
			if strings.Contains(tc.name, "in the image") || strings.Contains(tc.name, "PATH") || strings.Contains(tc.name, "WORKDIR") {
				want = 1
			}
			if code != want {
				t.Fatalf("exit %d, want %d: %s", code, want, stderr)
			}
			if strings.Count(strings.TrimRight(stderr, "\n"), "\n") != 0 {
				t.Fatalf("error is not one line: %q", stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("error %q does not name %q", stderr, w)
				}
			}
		})
	}
}

// layoutWith writes a random one-layer image with config cfg to a new layout.
func layoutWith(t *testing.T, cfg v1.Config) string {
	t.Helper()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	if img, err = mutate.Config(img, cfg); err != nil {
		t.Fatal(err)
	}
	return writeLayout(t, img, "latest")
}

// The three formats --include-paths-creport-file reads, told apart by their fields.
func TestReadPathsReport(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		os.WriteFile(p, b, 0o644)
		return p
	}
	obs := &runner.Observation{Record: &sensor.Record{Files: map[string][]string{"/usr/bin/python3": {"exec"}, "/tmp/x": {"missing", "open"}}}}
	profile := write("profile.json", slimoci.ProfileResult{Image: "localhost/x:latest", Observation: obs})
	build := write("build.json", BuildReport{Image: "localhost/x:latest", Fat: obs, Added: []string{"/etc/mime.types"}})
	mint := filepath.Join(dir, "creport.json")
	// As mint writes it (pkg/report/container_report.go): a document type, monitors, and image.files.
	os.WriteFile(mint, []byte(`{"document":"doc.report.container","monitors":{"pt":{"enabled":true}},"image":{"files":[
		{"file_type":"file","file_path":"/usr/bin/curl","mode":"-rwxr-xr-x","file_size":1},
		{"file_type":"symlink","file_path":"/lib64/ld-linux-x86-64.so.2","mode":"Lrwxrwxrwx","link_ref":"x","file_size":0},
		null, {"file_path":""}]}}`), 0o644)
	for file, want := range map[string]map[string][]string{
		profile: {"/usr/bin/python3": {"exec"}, "/tmp/x": {"missing", "open"}},
		build:   {"/usr/bin/python3": {"exec"}, "/tmp/x": {"missing", "open"}, "/etc/mime.types": {"verify"}},
		mint:    {"/usr/bin/curl": nil, "/lib64/ld-linux-x86-64.so.2": nil},
	} {
		got, err := readPathsReport(file)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if len(got) != len(want) {
			t.Errorf("%s: %v, want %v", filepath.Base(file), got, want)
		}
		for p, ops := range want {
			if g, ok := got[p]; !ok || !slices.Equal(g, ops) {
				t.Errorf("%s: %s is %v (%v), want %v", filepath.Base(file), p, g, ok, ops)
			}
		}
	}
}
