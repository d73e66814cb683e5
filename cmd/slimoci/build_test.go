package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slimoci/slimoci"
	"github.com/slimoci/slimoci/internal/testbed"
)

// buildReport reads what build wrote to its state path.
// BuildReport is the library's report.json.
type BuildReport = slimoci.BuildReport

func buildReport(t *testing.T, state string) BuildReport {
	t.Helper()
	var r BuildReport
	b, err := os.ReadFile(filepath.Join(state, "report.json"))
	if err == nil {
		err = json.Unmarshal(b, &r)
	}
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// podmanGet runs image with podman (extra run flags first) and returns the SHA-256 of GET /'s body.
func podmanGet(t *testing.T, image string, flags ...string) string {
	t.Helper()
	name, sum := podmanServe(t, image, flags...)
	testbed.Run(context.Background(), "podman", "rm", "-f", "-t", "0", name)
	return sum
}

// podmanServe runs image with podman (extra run flags first) until GET / answers 200, and returns the
// container's name and the SHA-256 of the body. The container is removed when the test ends.
func podmanServe(t *testing.T, image string, flags ...string) (name, sum string) {
	t.Helper()
	return podmanServePort(t, image, "8080", flags...)
}

// podmanServePort is podmanServe for an app on another port.
func podmanServePort(t *testing.T, image, appPort string, flags ...string) (name, sum string) {
	t.Helper()
	ctx := context.Background()
	name = "slimoci-e2e-" + strings.NewReplacer("/", "-", ":", "-", ".", "-").Replace(filepath.Base(image))
	testbed.Run(ctx, "podman", "rm", "-f", name)
	t.Cleanup(func() { testbed.Run(ctx, "podman", "rm", "-f", "-t", "0", name) })
	args := append(append([]string{"run", "-d", "--name", name, "-p", "127.0.0.1::" + appPort}, flags...), image)
	if _, err := testbed.Run(ctx, "podman", args...); err != nil {
		t.Fatal(err)
	}
	port, err := testbed.Run(ctx, "podman", "port", name, appPort)
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + strings.TrimSpace(string(port)) + "/"
	deadline := time.Now().Add(30 * time.Second)
	// Each request bounded: a server that accepts and never answers (it cannot start a thread) must fail
	// the test, not hang it.
	client := &http.Client{Timeout: 5 * time.Second}
	for {
		resp, err := client.Get(url)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				sum := sha256.Sum256(body)
				return name, hex.EncodeToString(sum[:])
			}
		}
		if time.Now().After(deadline) {
			logs, _ := testbed.Run(ctx, "podman", "logs", name)
			t.Fatalf("%s does not answer: %v\n%s", image, err, logs)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// `slimoci build --push` of every sample from the real registry: podman pulls the slim image and runs it
// under the build's seccomp profile, and GET / gives the fat image's body; the image has one layer; skopeo
// and umoci accept it; it is smaller than the fat one.
func TestE2EBuildPush(t *testing.T) {
	sensorBin := rootSandbox(t, "these builds use the root sandbox; the rootless one has its own test")
	ctx := context.Background()
	for _, s := range testbed.Samples {
		t.Run(s, func(t *testing.T) {
			state := filepath.Join(t.TempDir(), "state")
			out, errs, code := runCLI(t, "build", "--json", "--sensor", sensorBin, "--state-path", state, "--push", registry.Addr+"/samples/"+s+":oci")
			if code != 0 {
				t.Fatalf("exit %d: %s %s", code, out, errs)
			}
			// --json: stdout is one JSON document, and jq finds the digest in it.
			var res slimoci.BuildResult
			dec := json.NewDecoder(strings.NewReader(out))
			if err := dec.Decode(&res); err != nil || dec.More() {
				t.Fatalf("stdout is not one JSON document (%v): %s", err, out)
			}
			jq := exec.Command("jq", "-e", "-r", ".digest")
			jq.Stdin = strings.NewReader(out)
			digest, err := jq.Output()
			if err != nil || strings.TrimSpace(string(digest)) != res.Digest || !strings.HasPrefix(res.Digest, "sha256:") {
				t.Fatalf("jq -e .digest: %q %v (document's %q)", digest, err, res.Digest)
			}
			r := buildReport(t, state)
			slim := registry.Addr + "/samples/" + s + ".slim:oci"
			if len(r.Outputs) != 1 || r.Outputs[0] != "docker://"+slim || r.Rounds < 1 || r.Verify == nil {
				t.Errorf("outputs %v, rounds %d, verified %v", r.Outputs, r.Rounds, r.Verify != nil)
			}
			if r.SlimSize <= 0 || r.SlimSize*2 > r.FatSize {
				t.Errorf("slim %d bytes, fat %d: not even half", r.SlimSize, r.FatSize)
			}
			raw, err := testbed.Skopeo(ctx, "inspect", "--tls-verify=false", "--raw", "docker://"+slim)
			if err != nil {
				t.Fatal(err)
			}
			// The digest --json gave is the pushed manifest's.
			if pushed := fmt.Sprintf("sha256:%x", sha256.Sum256(raw)); pushed != res.Digest || r.Slim != res.Digest {
				t.Errorf("pushed manifest %s, --json's digest %s, report's %s", pushed, res.Digest, r.Slim)
			}
			if res.SlimBytes != r.SlimSize || res.FatBytes != r.FatSize || len(res.Stages) < 5 || res.VerifyRounds != r.Rounds ||
				len(res.Destinations) != 1 || res.Destinations[0] != "docker://"+slim {
				t.Errorf("--json document %+v, report %+v", res, r)
			}
			var m struct {
				MediaType string
				Layers    []struct{ Digest string }
			}
			json.Unmarshal(raw, &m)
			if len(m.Layers) != 1 || m.MediaType != "application/vnd.oci.image.manifest.v1+json" {
				t.Errorf("slim manifest: %s", raw)
			}
			layout := filepath.Join(t.TempDir(), "layout")
			if _, err := testbed.Skopeo(ctx, "copy", "--quiet", "--src-tls-verify=false", "docker://"+slim, "oci:"+layout+":slim"); err != nil {
				t.Fatal(err)
			}
			bundle := filepath.Join(t.TempDir(), "bundle")
			if _, err := testbed.Run(ctx, "umoci", "unpack", "--image", layout+":slim", bundle); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(bundle, "rootfs", "app")); err != nil {
				t.Errorf("umoci's unpack lacks /app: %v", err)
			}
			if _, err := testbed.Run(ctx, "podman", "pull", "--quiet", "--tls-verify=false", slim); err != nil {
				t.Fatal(err)
			}
			defer testbed.Run(ctx, "podman", "rmi", "-f", slim)
			got := podmanGet(t, slim, "--security-opt", "seccomp="+filepath.Join(state, "seccomp.json"))
			if want := r.Fat.Probes[0].BodySHA256; got != want {
				t.Errorf("the slim image's GET / body hashes to %s, the fat one's to %s", got, want)
			}
		})
	}
}

// Air-gapped: from an OCI layout to a docker-archive, no registry anywhere; podman loads and runs it. The
// same build twice gives the same image.
func TestE2EBuildOffline(t *testing.T) {
	sensorBin := rootSandbox(t, "these builds use the root sandbox; the rootless one has its own test")
	ctx := context.Background()
	dir := t.TempDir()
	archive := filepath.Join(dir, "slim.tar")
	src := "oci:" + bed.Layout("python") + ":latest"
	out, errs, code := runCLI(t, "build", "--sensor", sensorBin, "--state-path", filepath.Join(dir, "a"), "--output", "docker-archive:"+archive+":localhost/slimoci-e2e/python-slim:latest", src)
	if code != 0 {
		t.Fatalf("exit %d: %s %s", code, out, errs)
	}
	if _, err := testbed.Run(ctx, "podman", "load", "-i", archive); err != nil {
		t.Fatal(err)
	}
	defer testbed.Run(ctx, "podman", "rmi", "-f", "localhost/slimoci-e2e/python-slim:latest")
	r := buildReport(t, filepath.Join(dir, "a"))
	if got := podmanGet(t, "localhost/slimoci-e2e/python-slim:latest"); got != r.Fat.Probes[0].BodySHA256 {
		t.Errorf("body %s, want %s", got, r.Fat.Probes[0].BodySHA256)
	}
	out, errs, code = runCLI(t, "build", "--sensor", sensorBin, "--state-path", filepath.Join(dir, "b"), "--remove-file-artifacts",
		"--output", "oci-archive:"+filepath.Join(dir, "slim.oci.tar"), src)
	if code != 0 {
		t.Fatalf("exit %d: %s %s", code, out, errs)
	}
	// The summary names the slim image's digest.
	if !strings.Contains(out, r.Slim+": ") {
		t.Errorf("two builds of the same image: %s, then %q", r.Slim, out)
	}
	if info := infoJSON(t, "oci-archive:"+filepath.Join(dir, "slim.oci.tar")); len(info.Layers) != 1 {
		t.Errorf("the OCI archive has %d layers", len(info.Layers))
	}
	for _, f := range []string{"report.json", "Dockerfile.fat", "seccomp.json", "kept.json", "dropped.json", "apparmor.profile"} {
		if _, err := os.Stat(filepath.Join(dir, "a", f)); err != nil {
			t.Errorf("artifact %s: %v", f, err)
		}
		if _, err := os.Stat(filepath.Join(dir, "b", f)); err == nil {
			t.Errorf("artifact %s not removed with --remove-file-artifacts", f)
		}
	}
	noLeftovers(t, filepath.Join(dir, "b"))
}

// A CLI image: the sample's interpreter run as a command on a script from a --mount, observed until it exits
// (and again as an exec probe into a sandbox that sleeps), slimmed; the slim images print what the fat one
// prints.
func TestE2EBuildCommand(t *testing.T) {
	sensorBin := rootSandbox(t, "these builds use the root sandbox; the rootless one has its own test")
	ctx := context.Background()
	data := t.TempDir()
	// The script also writes a "secret" and appends to /etc/passwd (it runs as root): neither may reach the
	// slim image, whose files are the image's own.
	os.WriteFile(filepath.Join(data, "script.py"), []byte("import csv, io, json, sys\n"+
		"open('/etc/rendered.conf', 'w').write('secret')\nopen('/etc/passwd', 'a').write('intruder:x:0:0::/:/bin/sh\\n')\n"+
		"rows = list(csv.reader(io.StringIO(open('/data/in.csv').read())))\n"+
		"print(json.dumps({'rows': rows, 'n': len(rows)}, sort_keys=True))\n"), 0o644)
	os.WriteFile(filepath.Join(data, "in.csv"), []byte("a,b\n1,2\n"), 0o644)
	dir := t.TempDir()
	archive := filepath.Join(dir, "slim.tar")
	out, errs, code := runCLI(t, "build", "--sensor", sensorBin, "--state-path", filepath.Join(dir, "state"),
		"--entrypoint=python3", "--cmd=/data/script.py", "--mount", data+":/data:ro", "--no-http-probe",
		"--output", "docker-archive:"+archive+":localhost/slimoci-e2e/python-cli:latest", "oci:"+bed.Layout("python")+":latest")
	if code != 0 || !strings.Contains(out, "exited by itself with 0") {
		t.Fatalf("exit %d: %s %s", code, out, errs)
	}
	if _, err := testbed.Run(ctx, "podman", "load", "-i", archive); err != nil {
		t.Fatal(err)
	}
	defer testbed.Run(ctx, "podman", "rmi", "-f", "localhost/slimoci-e2e/python-cli:latest")
	run := func(image string) string {
		b, err := testbed.Run(ctx, "podman", "run", "--rm", "-v", data+":/data:ro", "--entrypoint", "python3", image, "/data/script.py")
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	fat, slim := run("localhost/slimoci/python:latest"), run("localhost/slimoci-e2e/python-cli:latest")
	if fat != slim || !strings.Contains(fat, `"n": 2`) {
		t.Errorf("fat printed %q, slim %q", fat, slim)
	}
	r := buildReport(t, filepath.Join(dir, "state"))
	if _, ok := r.Fat.Record.Files["/data/script.py"]; ok {
		t.Errorf("the mounted script counts as an image file")
	}
	// The same command as an exec probe, into a sandbox that only sleeps: what the probe used is kept.
	archive2 := filepath.Join(dir, "slim-exec.tar")
	out, errs, code = runCLI(t, "build", "--sensor", sensorBin, "--state-path", filepath.Join(dir, "state-exec"),
		"--entrypoint=sleep", "--cmd=600", "--mount", data+":/data:ro", "--no-http-probe", `--exec=["python3", "/data/script.py"]`,
		"--output", "docker-archive:"+archive2+":localhost/slimoci-e2e/python-exec:latest", "oci:"+bed.Layout("python")+":latest")
	if code != 0 || !strings.Contains(out, "exec python3 /data/script.py: exit 0") || !strings.Contains(out, "verified") {
		t.Fatalf("exit %d: %s %s", code, out, errs)
	}
	if _, err := testbed.Run(ctx, "podman", "load", "-i", archive2); err != nil {
		t.Fatal(err)
	}
	defer testbed.Run(ctx, "podman", "rmi", "-f", "localhost/slimoci-e2e/python-exec:latest")
	if viaExec := run("localhost/slimoci-e2e/python-exec:latest"); viaExec != fat {
		t.Errorf("fat printed %q, the image slimmed with an exec probe %q", fat, viaExec)
	}

	passwd, err := testbed.Run(ctx, "podman", "run", "--rm", "--entrypoint", "python3", "localhost/slimoci-e2e/python-cli:latest",
		"-c", "import os; print(open('/etc/passwd').read()); print(os.path.exists('/etc/rendered.conf'))")
	if err != nil || strings.Contains(string(passwd), "intruder") || !strings.Contains(string(passwd), "root:x:0:0") || !strings.HasSuffix(strings.TrimSpace(string(passwd)), "False") {
		t.Errorf("what the app wrote reached the slim image: %s %v", passwd, err)
	}
}

// The build run by an unprivileged user (rootless sandbox, rootless unpack): the slim image keeps the
// image's owners from the index, verifies, and podman runs it.
func TestE2EBuildRootless(t *testing.T) {
	sensorBin := rootSandbox(t, "the test runs slimoci as user 65534 and needs root to switch to it")
	ctx := context.Background()
	cmd, home := rootlessCLI(t, sensorBin, "build", "--state-path", "state", "--output", "oci:slim:latest", "oci:"+bed.Layout("python")+":latest")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v: %s %s", err, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "verified") {
		t.Errorf("stdout %q", out.String())
	}
	r := buildReport(t, filepath.Join(home, "state"))
	if !r.Fat.Rootless {
		t.Errorf("the report does not say rootless")
	}
	layout := filepath.Join(home, "slim")
	bundle := filepath.Join(t.TempDir(), "bundle")
	if _, err := testbed.Run(ctx, "umoci", "unpack", "--image", layout+":latest", bundle); err != nil {
		t.Fatal(err)
	}
	// Owners come from the image, not from the rootless files (all 65534's on disk).
	st, err := exec.Command("stat", "-c", "%u %a", filepath.Join(bundle, "rootfs", "app", "app.py")).Output()
	if err != nil || strings.TrimSpace(string(st)) != "0 644" {
		t.Errorf("/app/app.py in the slim image: %q %v", st, err)
	}
	if got := podmanGet(t, "oci:"+layout+":latest"); got != r.Fat.Probes[0].BodySHA256 {
		t.Errorf("body %s, want %s", got, r.Fat.Probes[0].BodySHA256)
	}
	rootlessLeftoversExcept(t, home, "slim")
}
