package runner

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/slimoci/slimoci/rootfs"
)

// configTree is an unpacked image of cfg with an /etc/passwd and /etc/group, in a temporary directory.
func configTree(t *testing.T, cfg v1.Config) *rootfs.Tree {
	t.Helper()
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "etc"), 0o755)
	os.WriteFile(filepath.Join(dir, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "etc/group"), []byte("root:x:0:\napp:x:1000:\nweb:x:33:app\n"), 0o644)
	return &rootfs.Tree{Dir: dir, Config: &v1.ConfigFile{Config: cfg}}
}

// An image's config becomes the run as docker run would make it: docker's ENTRYPOINT/CMD override rules,
// USER resolved in the image, PATH and HOME defaulted, the stop signal, the ports to probe.
func TestFromConfig(t *testing.T) {
	img := v1.Config{
		Entrypoint: []string{"python3", "app.py"}, Cmd: []string{"--fast"}, WorkingDir: "/app", User: "app",
		Env: []string{"A=img", "B=img"}, ExposedPorts: map[string]struct{}{"8080/tcp": {}, "53/udp": {}, "9090": {}}, StopSignal: "SIGINT",
	}
	type want struct {
		args, env []string
		cwd       string
		uid, gid  int
		groups    []int
		ports     []int
		probes    []string
		signal    os.Signal
		err       string
	}
	for _, tc := range []struct {
		name string
		cfg  v1.Config
		o    ConfigOptions
		want want
	}{
		{"the image as it is", img, ConfigOptions{HTTPProbe: true}, want{
			args: []string{"python3", "app.py", "--fast"}, env: []string{"A=img", "B=img", DefaultPath, "HOME=/home/app"}, cwd: "/app",
			uid: 1000, gid: 1000, groups: []int{33}, ports: []int{8080, 9090}, probes: []string{"GET /"}, signal: syscall.SIGINT}},
		{"--entrypoint clears CMD", img, ConfigOptions{Overrides: Overrides{SetEntrypoint: true, Entrypoint: []string{"/bin/sh"}}}, want{
			args: []string{"/bin/sh"}, env: []string{"A=img", "B=img", DefaultPath, "HOME=/home/app"}, cwd: "/app", uid: 1000, gid: 1000, groups: []int{33}, signal: syscall.SIGINT}},
		{"--entrypoint with --cmd", img, ConfigOptions{Overrides: Overrides{SetEntrypoint: true, Entrypoint: []string{"/bin/sh"}, SetCmd: true, Cmd: []string{"-c", "true"}}}, want{
			args: []string{"/bin/sh", "-c", "true"}, env: []string{"A=img", "B=img", DefaultPath, "HOME=/home/app"}, cwd: "/app", uid: 1000, gid: 1000, groups: []int{33}, signal: syscall.SIGINT}},
		{"--cmd replaces CMD only", img, ConfigOptions{Overrides: Overrides{SetCmd: true, Cmd: []string{"--slow"}}}, want{
			args: []string{"python3", "app.py", "--slow"}, env: []string{"A=img", "B=img", DefaultPath, "HOME=/home/app"}, cwd: "/app", uid: 1000, gid: 1000, groups: []int{33}, signal: syscall.SIGINT}},
		{"--entrypoint='' and no --cmd: nothing to run", img, ConfigOptions{Overrides: Overrides{SetEntrypoint: true}}, want{err: "nothing to run"}},
		{"--user, --workdir, --env, --expose; the env's PATH and HOME win", img, ConfigOptions{HTTPProbe: true, Overrides: Overrides{
			User: "0:33", Workdir: "/tmp", Env: []string{"A=run", "PATH=/bin", "HOME=/x"}, Expose: []string{"7070/tcp"}}}, want{
			args: []string{"python3", "app.py", "--fast"}, env: []string{"A=run", "B=img", "PATH=/bin", "HOME=/x"}, cwd: "/tmp",
			uid: 0, gid: 33, ports: []int{7070, 8080, 9090}, probes: []string{"GET /"}, signal: syscall.SIGINT}},
		{"ports asked for replace the exposed ones", img, ConfigOptions{HTTPProbe: true, Ports: []int{5000}}, want{
			args: []string{"python3", "app.py", "--fast"}, env: []string{"A=img", "B=img", DefaultPath, "HOME=/home/app"}, cwd: "/app",
			uid: 1000, gid: 1000, groups: []int{33}, ports: []int{5000}, probes: []string{"GET /"}, signal: syscall.SIGINT}},
		{"root by default, HOME /root", v1.Config{Cmd: []string{"/srv"}}, ConfigOptions{}, want{
			args: []string{"/srv"}, env: []string{DefaultPath, "HOME=/root"}, signal: syscall.SIGTERM}},
		{"an API spec's operations follow GET /", v1.Config{Cmd: []string{"/srv"}, ExposedPorts: map[string]struct{}{"80/tcp": {}}},
			ConfigOptions{HTTPProbe: true, ExtraProbes: []HTTPCommand{{Method: "POST", Resource: "/v1/items"}}}, want{
				args: []string{"/srv"}, env: []string{DefaultPath, "HOME=/root"}, ports: []int{80}, probes: []string{"GET /", "POST /v1/items"}, signal: syscall.SIGTERM}},
		{"probes and no port", v1.Config{Cmd: []string{"/srv"}}, ConfigOptions{HTTPProbe: true, ExtraProbes: []HTTPCommand{{Method: "GET", Resource: "/x"}}},
			want{err: "exposes no TCP port"}},
		{"a user the image lacks", v1.Config{Cmd: []string{"/srv"}, User: "nobody"}, ConfigOptions{}, want{err: "nobody"}},
		{"a StopSignal that is none", v1.Config{Cmd: []string{"/srv"}, StopSignal: "SIGNOPE"}, ConfigOptions{}, want{err: "StopSignal"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var spec Spec
			var plan Plan
			_, err := FromConfig(configTree(t, tc.cfg), tc.o, &spec, &plan)
			if tc.want.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want.err) {
					t.Fatalf("error %v, want %q", err, tc.want.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var probes []string
			for _, c := range plan.HTTP {
				probes = append(probes, c.Method+" "+c.Resource)
			}
			got := want{args: spec.Args, env: spec.Env, cwd: spec.Cwd, uid: spec.UID, gid: spec.GID, groups: spec.Groups, ports: plan.Ports, probes: probes, signal: plan.StopSignal}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
	// The image's config is not changed by the overrides.
	if !slices.Equal(img.Env, []string{"A=img", "B=img"}) || len(img.ExposedPorts) != 3 {
		t.Errorf("the image's config was changed: %+v", img)
	}
}

// The HEALTHCHECK runs only when asked for, with its interval shortened.
func TestFromConfigHealthcheck(t *testing.T) {
	cfg := v1.Config{Cmd: []string{"/srv"}, Healthcheck: &v1.HealthConfig{Test: []string{"CMD", "curl", "-f", "http://localhost/"}, Interval: time.Minute}}
	var spec Spec
	plan := Plan{Healthcheck: &Healthcheck{}}
	if _, err := FromConfig(configTree(t, cfg), ConfigOptions{}, &spec, &plan); err != nil || plan.Healthcheck != nil {
		t.Errorf("not asked for: %+v %v", plan.Healthcheck, err)
	}
	if _, err := FromConfig(configTree(t, cfg), ConfigOptions{Healthcheck: true}, &spec, &plan); err != nil || plan.Healthcheck == nil ||
		!slices.Equal(plan.Healthcheck.Args, []string{"curl", "-f", "http://localhost/"}) {
		t.Errorf("asked for: %+v %v", plan.Healthcheck, err)
	}
}

func TestHostExecPorts(t *testing.T) {
	plan := &Plan{HostExec: []string{"true"}, HTTP: []HTTPCommand{{Resource: "/"}, {Resource: "/admin", Port: 9443}}}
	spec := &Spec{Publish: []PortMapping{{HostIP: "127.0.0.1", HostPort: 18080, Port: 6000}, {Port: 8080}}}
	hostExecPorts(plan, spec, []int{9000, 8080}, map[string]struct{}{"8080/tcp": {}, "7070": {}, "53/udp": {}, "5432/tcp": {}})
	// The ports asked for first (the first is SLIMOCI_ADDR), then the image's TCP ports, the probes' and
	// the published ones, each once.
	if want := []int{9000, 8080, 5432, 7070, 9443, 6000}; !slices.Equal(plan.HostExecPorts, want) {
		t.Errorf("ports %v, want %v", plan.HostExecPorts, want)
	}
	// Verify's observation keeps the fat run's ports.
	hostExecPorts(plan, spec, nil, map[string]struct{}{"1234/tcp": {}})
	if plan.HostExecPorts[0] != 9000 || len(plan.HostExecPorts) != 6 {
		t.Errorf("recomputed: %v", plan.HostExecPorts)
	}
	// Without host commands there is nothing to give ports to.
	plan = &Plan{}
	hostExecPorts(plan, spec, nil, map[string]struct{}{"8080/tcp": {}})
	if plan.HostExecPorts != nil {
		t.Errorf("without host commands: %v", plan.HostExecPorts)
	}
}

func TestParseSignal(t *testing.T) {
	for in, want := range map[string]syscall.Signal{"": syscall.SIGTERM, "SIGQUIT": syscall.SIGQUIT, "int": syscall.SIGINT, "9": syscall.SIGKILL} {
		got, err := ParseSignal(in)
		if err != nil || got != want {
			t.Errorf("%q: %v %v, want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"SIGNOPE", "0", "99"} {
		if _, err := ParseSignal(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
