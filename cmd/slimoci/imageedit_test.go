package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slimoci/slimoci/internal/testbed"
	"github.com/slimoci/slimoci/sensor"
)

// skopeoConfig is the image config skopeo reads from ref.
func skopeoConfig(t *testing.T, ref string) (cfg struct {
	Entrypoint, Cmd, Env []string
	WorkingDir           string
	ExposedPorts         map[string]struct{}
	Volumes              map[string]struct{}
	Labels               map[string]string
}) {
	t.Helper()
	raw, err := testbed.Skopeo(context.Background(), "inspect", "--config", ref)
	if err != nil {
		t.Fatal(err)
	}
	var c struct{ Config json.RawMessage }
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(c.Config, &cfg); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Every metadata edit of build, seen by skopeo in the slim image's config; the observation's overrides kept
// by --image-overrides; both --tag names on the outputs. podman loads the docker-archive under both names
// and runs the slim image as its new entrypoint, cmd, workdir and env say (the app listens on the new
// PORT); verify ran it so too.
func TestE2EImageEdits(t *testing.T) {
	sensorBin := rootSandbox(t, "the build uses the root sandbox")
	ctx := context.Background()
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	envFile := writeFile(t, "app.env", "# kept by --image-overrides env\nGREETING=hello from the env file\n")
	layout, archive := filepath.Join(dir, "layout"), filepath.Join(dir, "slim.tar")
	one, two := "localhost/slimoci/edited:one", "localhost/slimoci/edited:two"
	out, errs, code := runCLI(t, "build", "--sensor", sensorBin, "--state-path", state,
		// The observation: the app on port 9090, with the env file's variable, an extra exposed port, a
		// volume and a label, all kept in the slim image.
		"--env", "PORT=9090", "--http-probe-ports", "9090", "--env-file", envFile, "--expose", "9091",
		"--volume", "/cache", "--volume", "/scratch", "--label", "run.label=1", "--label", "gone=1",
		"--image-overrides", "env,expose,volume,label",
		// The new instructions, then the removals (one of an override, as mint orders them).
		"--new-entrypoint", `["/usr/bin/python3", "-u"]`, "--new-cmd", "/app/app.py --from-new-cmd", "--new-workdir", "/srv",
		"--new-env", "PORT=9090", "--new-expose", "9090", "--new-volume", "/data", "--new-label", "new.label=2",
		"--remove-expose", "8080", "--remove-env", "PYTHONUNBUFFERED", "--remove-label", "io.buildah.version",
		"--remove-label", "gone", "--remove-volume", "/scratch",
		"--tag", one, "--tag", two, "--output", "oci:"+layout, "--output", "docker-archive:"+archive,
		"oci:"+bed.Layout("python")+":latest")
	if code != 0 {
		t.Fatalf("exit %d: %s %s", code, out, errs)
	}
	r := buildReport(t, state)
	if r.Verify == nil || r.Verify.Probes[0].Status != 200 || r.Verify.Probes[0].Port != 9090 {
		t.Fatalf("verify: %+v", r.Verify)
	}
	// The fat run ran the observation's command; verify ran the slim image's new one.
	ranNew := func(execs []sensor.Exec) bool {
		return slices.ContainsFunc(execs, func(e sensor.Exec) bool { return slices.Contains(e.Argv, "--from-new-cmd") })
	}
	if ranNew(r.Fat.Record.Execs) || !ranNew(r.Verify.Record.Execs) {
		t.Errorf("the new cmd ran in the fat run %v, in verify %v", ranNew(r.Fat.Record.Execs), ranNew(r.Verify.Record.Execs))
	}

	for _, ref := range []string{"oci:" + layout + ":" + one, "oci:" + layout + ":" + two, "docker-archive:" + archive + ":" + two} {
		cfg := skopeoConfig(t, ref)
		checks := []struct {
			what      string
			got, want any
		}{
			{"Entrypoint", cfg.Entrypoint, []string{"/usr/bin/python3", "-u"}},
			{"Cmd", cfg.Cmd, []string{"/app/app.py", "--from-new-cmd"}},
			{"WorkingDir", cfg.WorkingDir, "/srv"},
			{"Env", cfg.Env, []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "PORT=9090", "GREETING=hello from the env file"}},
			{"ExposedPorts", keys(cfg.ExposedPorts), []string{"9090/tcp", "9091/tcp"}},
			{"Volumes", keys(cfg.Volumes), []string{"/cache", "/data"}},
			{"Labels", cfg.Labels, map[string]string{"run.label": "1", "new.label": "2"}},
		}
		for _, c := range checks {
			if !reflect.DeepEqual(c.got, c.want) {
				t.Errorf("%s: %s %q, want %q", ref, c.what, c.got, c.want)
			}
		}
	}
	// The source is untouched.
	if src := skopeoConfig(t, "oci:"+bed.Layout("python")+":latest"); src.WorkingDir != "/app" || len(src.Labels) != 1 {
		t.Errorf("the source's config changed: %+v", src)
	}

	if _, err := testbed.Run(ctx, "podman", "load", "-q", "-i", archive); err != nil {
		t.Fatal(err)
	}
	defer testbed.Run(ctx, "podman", "rmi", "-f", one, two)
	ids := map[string]bool{}
	for _, name := range []string{one, two} {
		id, err := testbed.Run(ctx, "podman", "image", "inspect", "--format", "{{.Id}}", name)
		if err != nil {
			t.Fatalf("podman load did not name the image %s: %v", name, err)
		}
		ids[strings.TrimSpace(string(id))] = true
	}
	if len(ids) != 1 {
		t.Errorf("the two names are two images: %v", ids)
	}
	name, _ := podmanServePort(t, two, "9090")
	// What PID 1 is, where it runs, and its environment, as podman started it from the slim config.
	script := `import json, os; print(json.dumps([open("/proc/1/cmdline").read().split("\0")[:-1], os.readlink("/proc/1/cwd"), os.environ.get("GREETING"), os.environ.get("PYTHONUNBUFFERED")]))`
	got, err := testbed.Run(ctx, "podman", "exec", name, "/usr/bin/python3", "-c", script)
	if err != nil {
		t.Fatal(err)
	}
	want := `[["/usr/bin/python3", "-u", "/app/app.py", "--from-new-cmd"], "/srv", "hello from the env file", null]`
	if strings.TrimSpace(string(got)) != want {
		t.Errorf("in the slim container: %s, want %s", got, want)
	}
}

// --tag is pushed to, each of them, with --push.
func TestE2EPushTags(t *testing.T) {
	sensorBin := rootSandbox(t, "the build uses the root sandbox")
	a, b := registry.Addr+"/tags/python:a", registry.Addr+"/tags/python:b"
	state := filepath.Join(t.TempDir(), "state")
	out, errs, code := runCLI(t, "build", "--sensor", sensorBin, "--state-path", state, "--no-verify", "--push", "--tag", a, "--tag", b,
		"--new-label", "pushed=yes", registry.Addr+"/samples/python:oci")
	if code != 0 {
		t.Fatalf("exit %d: %s %s", code, out, errs)
	}
	var digests []string
	for _, ref := range []string{a, b} {
		raw, err := testbed.Skopeo(context.Background(), "inspect", "--tls-verify=false", "docker://"+ref)
		if err != nil {
			t.Fatal(err)
		}
		var m struct {
			Digest string
			Labels map[string]string
		}
		json.Unmarshal(raw, &m)
		if m.Labels["pushed"] != "yes" {
			t.Errorf("%s: labels %v", ref, m.Labels)
		}
		digests = append(digests, m.Digest)
	}
	if digests[0] != digests[1] || digests[0] == "" {
		t.Errorf("the tags name different images: %v", digests)
	}
}

// The run options reach the app: the env file's variables, the host name, the /etc/hosts entries, the user,
// the working directory and an anonymous volume holding the image's files; given through a mint params file
// as a user would paste it, the command line winning over it. --report writes the report there too.
func TestE2ERunOptions(t *testing.T) {
	sensorBin := rootSandbox(t, "the observation uses the root sandbox")
	dir := t.TempDir()
	envFile := writeFile(t, "app.env", "GREETING=hello from the env file\nEMPTY=\n")
	params := writeFile(t, "params.json", fmt.Sprintf(`{
		"hostname": "from-the-file",
		"etc-hosts-map": ["db.internal:10.1.2.3", "cache:::1"],
		"env_file": %q,
		"workdir": "/tmp",
		"show-clogs": true,
		"http-probe": false
	}`, envFile))
	script := `import json, os, socket
print("RESULT " + json.dumps({"host": socket.gethostname(), "db": socket.gethostbyname("db.internal"),
  "greeting": os.environ.get("GREETING"), "empty": os.environ.get("EMPTY"), "uid": os.getuid(), "cwd": os.getcwd(),
  "volume": os.path.ismount("/app") and "app.py" in os.listdir("/app")}))`
	state := filepath.Join(dir, "state")
	report := filepath.Join(dir, "report.json")
	out, errs, code := runCLI(t, "profile", "--sensor", sensorBin, "--state-path", state, "--report", report,
		"--command-params-file", params, "--hostname", "from-the-command-line", "--user", "65534:65534", "--volume", "/app",
		"--entrypoint=python3", "--cmd=-c", "--cmd="+script, "oci:"+bed.Layout("python")+":latest")
	if code != 0 {
		t.Fatalf("exit %d: %s %s", code, out, errs)
	}
	_, line, ok := strings.Cut(errs, "RESULT ")
	line, _, _ = strings.Cut(line, "\n")
	var got map[string]any
	if !ok || json.Unmarshal([]byte(line), &got) != nil {
		t.Fatalf("no result in the app's output: %s", errs)
	}
	want := map[string]any{"host": "from-the-command-line", "db": "10.1.2.3", "greeting": "hello from the env file", "empty": "",
		"uid": float64(65534), "cwd": "/tmp", "volume": true}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("the app saw %v, want %v", got, want)
	}
	a, err1 := os.ReadFile(report)
	b, err2 := os.ReadFile(filepath.Join(state, "report.json"))
	if err1 != nil || err2 != nil || string(a) != string(b) {
		t.Errorf("--report: %v %v, same content: %v", err1, err2, string(a) == string(b))
	}
	// The volume's files are the image's: recorded, not set apart as a mount's.
	var rec struct {
		Record   struct{ Files map[string][]string }
		NotImage []string
	}
	json.Unmarshal(b, &rec)
	if rec.Record.Files["/app"] == nil || slices.Contains(rec.NotImage, "/app") {
		t.Errorf("/app: recorded %v, not the image's %v", rec.Record.Files["/app"], rec.NotImage)
	}
}

// --publish-port: the app's port is reachable on the host's loopback while it is observed (here until
// slimoci gets SIGUSR1); --report off writes no report.
func TestE2EPublishPort(t *testing.T) {
	sensorBin := rootSandbox(t, "the observation uses the root sandbox")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, port, _ := net.SplitHostPort(addr)

	answered := make(chan string, 1)
	go func() {
		client := &http.Client{Timeout: 2 * time.Second}
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) {
			resp, err := client.Get("http://" + addr + "/")
			if err == nil {
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode == 200 {
					answered <- string(body)
					syscall.Kill(os.Getpid(), syscall.SIGUSR1)
					return
				}
			}
			time.Sleep(200 * time.Millisecond)
		}
		answered <- ""
		syscall.Kill(os.Getpid(), syscall.SIGUSR1)
	}()
	state := filepath.Join(t.TempDir(), "state")
	out, errs, code := runCLI(t, "profile", "--sensor", sensorBin, "--state-path", state, "--report", "off", "--no-http-probe",
		"--publish-port", "127.0.0.1:"+port+":8080", "--continue-after", "signal", "--timeout", "90s",
		"oci:"+bed.Layout("python")+":latest")
	if code != 0 {
		t.Fatalf("exit %d: %s %s", code, out, errs)
	}
	if body := <-answered; !strings.Contains(body, `"app":"python"`) {
		t.Errorf("GET / through the published port: %q", body)
	}
	if !strings.Contains(out, "published "+addr+" -> the app's port 8080") || !strings.Contains(out, "stopped after signal") {
		t.Errorf("output: %s", out)
	}
	if _, err := os.Stat(filepath.Join(state, "report.json")); err == nil {
		t.Error("--report off wrote report.json")
	}
	// The port is free again: nothing is left listening.
	if l, err := net.Listen("tcp", addr); err != nil {
		t.Errorf("the published port is still bound: %v", err)
	} else {
		l.Close()
	}
}
