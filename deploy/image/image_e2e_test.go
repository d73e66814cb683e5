// Package image tests slimoci's own image (Containerfile, build.sh): `make image`, and slimoci run in it,
// unprivileged, by podman.
package image

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slimoci/slimoci/internal/testbed"
)

// e2eImage is where the tests build slimoci's image (make image IMAGE=...), not to replace a developer's
// localhost/slimoci:latest.
const e2eImage = "localhost/slimoci-e2e/slimoci"

// Unprivileged: uid 1000, podman's default capabilities, not privileged.
var runFlags = []string{"run", "--rm", "--user", "1000:1000", "--network", "host"}

// The two relaxations slimoci needs, and the profile it ships for the first.
const (
	unconfined = "seccomp=unconfined"
	unmasked   = "unmask=ALL"
)

// `make image` twice gives the same digests (the index and both images); the image is a manifest list of
// linux/amd64 and linux/arm64, exported as an OCI index, whose arm64 binaries are static aarch64 ELF files
// that run under qemu and say linux/arm64. slimoci in that image, as uid 1000 with an unmasked /proc and
// seccomp unconfined (the line) or slimoci's deploy/seccomp.json, slims the python sample from a
// real registry and pushes it; podman runs the pushed slim image and it answers GET / as the fat one. Without
// either relaxation slimoci fails with its own one line, and never prints libcontainer's logrus warnings.
func TestE2EImage(t *testing.T) {
	bed := needBed(t)
	ctx := context.Background()
	image, layoutA := makeImage(t, "a")
	again, layoutB := makeImage(t, "b")
	if digestOf(t, again) != digestOf(t, image) {
		t.Fatalf("two make image runs: %s and %s", digestOf(t, image), digestOf(t, again))
	}
	if a, b := indexOf(t, layoutA), indexOf(t, layoutB); a.digest != b.digest || a.platforms["linux/arm64"] != b.platforms["linux/arm64"] {
		t.Fatalf("two make image runs: index %s (arm64 %s) and %s (arm64 %s)", a.digest, a.platforms["linux/arm64"], b.digest, b.platforms["linux/arm64"])
	}
	checkPlatforms(t, image, layoutA)
	// What the image is: one layer, uid 1000, slimoci as the entrypoint, the OCI labels.
	out, err := testbed.Run(ctx, "podman", "image", "inspect", "--format",
		`{{len .RootFS.Layers}} {{.Config.User}} {{json .Config.Entrypoint}} {{index .Labels "org.opencontainers.image.source"}} {{index .Labels "org.opencontainers.image.version"}} {{index .Labels "org.opencontainers.image.licenses"}}`, image)
	if err != nil {
		t.Fatal(err)
	}
	if f := strings.Fields(string(out)); len(f) != 6 || f[0] != "1" || f[1] != "1000:1000" || f[2] != `["slimoci"]` || f[3] != "https://github.com/slimoci/slimoci" {
		t.Errorf("image: layers, user, entrypoint, source, version, licenses: %q", out)
	}
	reg, err := testbed.StartRegistry()
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Stop()
	if err := reg.Push(ctx, "oci:"+bed.Layout("python")+":latest", "samples/python:latest", false); err != nil {
		t.Fatal(err)
	}
	fat := podmanGet(t, reg.Addr+"/samples/python:latest")
	profile, err := filepath.Abs("../seccomp.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, seccomp string }{{"unconfined", unconfined}, {"deploy-seccomp", "seccomp=" + profile}} {
		t.Run(tc.name, func(t *testing.T) {
			slim := reg.Addr + "/samples/python.slim:" + tc.name
			stderr, err := slimociIn(t, image, []string{"--security-opt", tc.seccomp, "--security-opt", unmasked}, nil,
				"build", "--insecure", "--push", "--tag", slim, reg.Addr+"/samples/python:latest")
			if err != nil {
				t.Fatalf("%v\n%s", err, stderr)
			}
			noLibcontainerWords(t, stderr)
			if got := podmanGet(t, slim); got != fat {
				t.Errorf("GET / of the slim image: sha256 %s, the fat one's %s", got, fat)
			}
		})
	}
	for _, tc := range []struct{ name, want string }{
		{unconfined, "slimoci runs inside a container whose /proc is masked (/proc/"},
		{unmasked, "slimoci runs inside a container whose seccomp profile refuses sethostname, which its sandbox needs: run it with --security-opt seccomp=deploy/seccomp.json"},
	} {
		t.Run("only-"+tc.name, func(t *testing.T) {
			stderr, err := slimociIn(t, image, []string{"--security-opt", tc.name}, nil,
				"build", "--insecure", "--push", "--tag", reg.Addr+"/samples/python.slim:no", reg.Addr+"/samples/python:latest")
			if err == nil {
				t.Fatalf("slimoci succeeded with only %s:\n%s", tc.name, stderr)
			}
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			last := lines[len(lines)-1]
			if !strings.HasPrefix(last, "slimoci: ") || !strings.Contains(last, tc.want) {
				t.Errorf("last line %q, want slimoci's one line with %q\n%s", last, tc.want, stderr)
			}
			noLibcontainerWords(t, stderr)
		})
	}
}

// Registry credentials come from a docker config mounted into slimoci's container, found through
// DOCKER_CONFIG or at ~/.docker/config.json: slimoci reads an image in a registry that wants a password, and
// without the config the registry refuses it.
func TestE2EImageDockerConfig(t *testing.T) {
	bed := needBed(t)
	ctx := context.Background()
	image, _ := makeImage(t, "a")
	reg, err := testbed.StartAuthRegistry("ci", "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Stop()
	ref := reg.Addr + "/samples/python:latest"
	if _, err := testbed.Skopeo(ctx, "copy", "--quiet", "--dest-tls-verify=false", "--dest-creds", "ci:s3cret",
		"oci:"+bed.Layout("python")+":latest", "docker://"+ref); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	auth := base64.StdEncoding.EncodeToString([]byte("ci:s3cret"))
	config := fmt.Sprintf(`{"auths": {%q: {"auth": %q}}}`, reg.Addr, auth)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		flags []string
	}{
		{"DOCKER_CONFIG", []string{"-v", dir + ":/run/docker:ro", "-e", "DOCKER_CONFIG=/run/docker"}},
		{"home", []string{"-v", filepath.Join(dir, "config.json") + ":/home/slimoci/.docker/config.json:ro"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stderr, err := slimociIn(t, image, nil, tc.flags, "info", "--json", "--insecure", ref)
			if err != nil {
				t.Fatalf("slimoci info with the mounted config: %v\n%s", err, stderr)
			}
		})
	}
	stderr, err := slimociIn(t, image, nil, nil, "info", "--insecure", ref)
	if err == nil || !strings.Contains(strings.ToLower(stderr), "unauthorized") {
		t.Fatalf("without the config: %v, want the registry's refusal:\n%s", err, stderr)
	}
	if exit := (*exec.ExitError)(nil); !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Errorf("without the config: %v, want exit 3 (the image or the registry)", err)
	}
}

func needBed(t *testing.T) *testbed.Bed {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: end-to-end tests need the test bed")
	}
	bed, reason := testbed.Find()
	if bed == nil {
		t.Skip(reason)
	}
	if os.Geteuid() != 0 {
		t.Skip("podman here runs as root (the test bed's storage)")
	}
	return bed
}

// makeImage runs `make image` with IMAGE e2eImage:tag and IMAGE_LAYOUT a directory of the test's, and returns
// the image (a manifest list) and the layout; the list and its two images are removed when the test ends.
func makeImage(t *testing.T, tag string) (image, layout string) {
	t.Helper()
	image = e2eImage + ":" + tag
	layout = filepath.Join(t.TempDir(), "slimoci-image")
	cmd := exec.Command("make", "-C", "../..", "image", "IMAGE="+image, "IMAGE_LAYOUT="+layout)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make image: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		testbed.Run(ctx, "podman", "manifest", "rm", image)
		testbed.Run(ctx, "podman", "rmi", "-f", image+"-amd64", image+"-arm64")
	})
	return image, layout
}

// digestOf is the digest of image's instance for this host (podman image inspect of a list resolves to it).
func digestOf(t *testing.T, image string) string {
	t.Helper()
	out, err := testbed.Run(context.Background(), "podman", "image", "inspect", "--format", "{{.Digest}}", image)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

// slimociIn runs slimoci's image with podman as uid 1000 (security options, then other run flags, then
// slimoci's arguments) and returns its stderr; stdout goes to the test log.
func slimociIn(t *testing.T, image string, security, flags []string, args ...string) (string, error) {
	t.Helper()
	all := append(append(append(append(append([]string(nil), runFlags...), security...), flags...), image), args...)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "podman", all...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	t.Logf("podman %s\n%s", strings.Join(all, " "), out)
	return stderr.String(), err
}

// noLibcontainerWords fails on what libcontainer would print itself: logrus lines ("level=warning msg=...
// unable to get oom kill count") and its init's errors.
func noLibcontainerWords(t *testing.T, stderr string) {
	t.Helper()
	for _, w := range []string{"oom kill count", "level=", "error mounting", "container init"} {
		if strings.Contains(stderr, w) {
			t.Errorf("stderr has libcontainer's %q:\n%s", w, stderr)
		}
	}
}

// podmanGet pulls image from the plain-HTTP test registry, runs it with podman until GET / answers 200, and
// returns the SHA-256 of the body.
func podmanGet(t *testing.T, image string) string {
	t.Helper()
	ctx := context.Background()
	name := "slimoci-e2e-image-" + strings.NewReplacer("/", "-", ":", "-", ".", "-").Replace(filepath.Base(image))
	testbed.Run(ctx, "podman", "rm", "-f", name)
	defer testbed.Run(ctx, "podman", "rm", "-f", "-t", "0", name)
	if _, err := testbed.Run(ctx, "podman", "run", "-d", "--tls-verify=false", "--name", name, "-p", "127.0.0.1::8080", image); err != nil {
		t.Fatal(err)
	}
	defer testbed.Run(ctx, "podman", "rmi", "-f", image)
	port, err := testbed.Run(ctx, "podman", "port", name, "8080")
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 5 * time.Second}
	url := "http://" + strings.TrimSpace(string(port)) + "/"
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		resp, err := client.Get(url)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				sum := sha256.Sum256(body)
				return hex.EncodeToString(sum[:])
			}
		}
		if time.Now().After(deadline) {
			logs, _ := testbed.Run(ctx, "podman", "logs", name)
			t.Fatalf("%s does not answer GET /: %v\n%s", image, err, logs)
		}
	}
}
