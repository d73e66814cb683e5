// Package testbed gives end-to-end tests the real test bed that testdata/testbed.sh builds: the sample images
// as OCI layouts and archives, and a real registry (Debian's docker-registry) on 127.0.0.1.
package testbed

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// Samples are the test bed's sample apps, each answering GET / on port 8080.
var Samples = []string{"node", "python", "ruby", "java"}

// Apps are more sample apps, for end-to-end tests that the benchmarks leave out. "web" is busybox httpd
// serving /srv/www, a symlink to /app/www, on port 8080, with a HEALTHCHECK that runs curl; its layout holds a
// Docker schema 2 manifest (HEALTHCHECK is a Docker field), which skopeo 1.9 cannot read from a layout: copy
// it from the docker-archive. "probes" is a flask app on the python sample with the pages of mint's probe
// options: /private behind basic authentication (admin, s3cret), /fail answering 500, /upload taking a form's
// "file" (testdata/samples/probes). "lines" is a line protocol on port 7070 (`HSV r g b` answers the colour
// in HSV through colorsys, which nothing else imports) beside GET / on 8080, on the python sample
// (testdata/samples/lines).
var Apps = []string{"web", "probes", "lines"}

// Fixtures are the test bed's images that are not apps: "layers" holds whiteouts, an opaque directory,
// hardlinks, a fifo, setuid and owned files, and a directory replaced by a symlink.
var Fixtures = []string{"layers"}

// The test bed's images of another platform than the host's (linux/amd64), built under qemu-user through
// binfmt_misc.
const (
	// Arm64 is the python sample built for linux/arm64 (variant v8) on a bookworm base made for arm64:
	// its OCI layout holds one arm64 image, answering GET / on $PORT (default 8080) as the python sample does.
	Arm64 = "python-arm64"
	// MultiPlatform is an OCI layout whose tag latest is an image index of the python sample's linux/amd64
	// image and Arm64's linux/arm64/v8 one: each manifest is byte for byte the one in its own layout
	// (MultiPlatformImages), its descriptor with its platform.
	MultiPlatform = "python-multi"
)

// MultiPlatformImages are the layouts whose images MultiPlatform's index lists, by platform.
var MultiPlatformImages = map[string]string{"linux/amd64": "python", "linux/arm64/v8": Arm64}

// Bed is a prepared test bed.
type Bed struct{ Dir string }

// Find returns the test bed named by $SLIMOCI_TESTBED, or why it cannot be used. Its first call also takes
// the Snapshot that Leftovers compares with.
func Find() (*Bed, string) {
	takeStart()
	dir := os.Getenv("SLIMOCI_TESTBED")
	if dir == "" {
		return nil, "SLIMOCI_TESTBED is not set: run the end-to-end tests with `make test` or `make e2e`, which build the test bed"
	}
	b := &Bed{Dir: dir}
	for _, s := range append(append(append([]string(nil), Samples...), Apps...), Fixtures...) {
		for _, f := range []string{filepath.Join(b.Layout(s), "index.json"), b.DockerArchive(s), b.OCIArchive(s)} {
			if _, err := os.Stat(f); err != nil {
				return nil, fmt.Sprintf("test bed in %s is incomplete (%v): run `make testbed`", dir, err)
			}
		}
	}
	for _, s := range []string{Arm64, MultiPlatform} {
		if _, err := os.Stat(filepath.Join(b.Layout(s), "index.json")); err != nil {
			return nil, fmt.Sprintf("test bed in %s is incomplete (%v): run `make testbed`", dir, err)
		}
	}
	for _, tool := range []string{"docker-registry", "skopeo", "podman", "umoci"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Sprintf("%s is not installed: run `make deps`", tool)
		}
	}
	return b, ""
}

// Layout is the sample's OCI layout directory (tag "latest").
func (b *Bed) Layout(s string) string { return filepath.Join(b.Dir, "oci", s) }

// DockerArchive is the sample's docker-archive, holding localhost/slimoci/NAME:latest.
func (b *Bed) DockerArchive(s string) string {
	return filepath.Join(b.Dir, "archives", s+".docker.tar")
}

// OCIArchive is the sample's OCI archive (tag "latest").
func (b *Bed) OCIArchive(s string) string { return filepath.Join(b.Dir, "archives", s+".oci.tar") }

// Registry is a running docker-registry on 127.0.0.1, storing into a temporary directory.
type Registry struct {
	Addr string
	dir  string
	cmd  *exec.Cmd
}

// StartRegistry starts docker-registry with its own configuration (never the packaged one, which listens on
// every interface) on a free port, and waits until /v2/ answers.
func StartRegistry() (*Registry, error) { return startRegistry("", "") }

// StartAuthRegistry is StartRegistry for a registry that wants basic authentication as user with password
// (an htpasswd file written by apache2-utils' htpasswd, in bcrypt as docker-registry requires).
func StartAuthRegistry(user, password string) (*Registry, error) {
	return startRegistry(user, password)
}

func startRegistry(user, password string) (*Registry, error) {
	dir, err := os.MkdirTemp("", "slimoci-registry-")
	if err != nil {
		return nil, err
	}
	auth := ""
	if user != "" {
		htpasswd, err := Run(context.Background(), "htpasswd", "-nbB", user, password)
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, "htpasswd"), htpasswd, 0o644)
		}
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		auth = fmt.Sprintf("auth:\n  htpasswd:\n    realm: slimoci-test\n    path: %s/htpasswd\n", dir)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	config := fmt.Sprintf(`version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s/data
  delete:
    enabled: true
http:
  addr: %s
%s`, dir, addr, auth)
	cfgFile := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgFile, []byte(config), 0o644); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	r := &Registry{Addr: addr, dir: dir}
	r.cmd = exec.Command("docker-registry", "serve", cfgFile)
	r.cmd.Stdout, r.cmd.Stderr = nil, nil
	if err := r.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("starting docker-registry: %w", err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || user != "" && resp.StatusCode == http.StatusUnauthorized {
				return r, nil
			}
		}
		if time.Now().After(deadline) {
			r.Stop()
			return nil, fmt.Errorf("docker-registry on %s did not answer in 15 s: %v", addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Stop kills the registry and removes its storage.
func (r *Registry) Stop() {
	if r == nil {
		return
	}
	if r.cmd != nil && r.cmd.Process != nil {
		r.cmd.Process.Kill()
		r.cmd.Wait()
	}
	os.RemoveAll(r.dir)
}

// Skopeo runs skopeo with TLS verification off (the registry is plain HTTP on 127.0.0.1).
func Skopeo(ctx context.Context, args ...string) ([]byte, error) {
	return Run(ctx, "skopeo", args...)
}

// Run runs a tool and returns its stdout; its stderr is in the error.
func Run(ctx context.Context, tool string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, tool, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w: %s", tool, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// Push copies an image into the registry with skopeo, as an OCI manifest or (v2s2) a Docker schema 2 one.
func (r *Registry) Push(ctx context.Context, src, repoTag string, v2s2 bool) error {
	args := []string{"copy", "--quiet", "--dest-tls-verify=false"}
	if v2s2 {
		args = append(args, "--format", "v2s2")
	}
	args = append(args, src, "docker://"+r.Addr+"/"+repoTag)
	_, err := Skopeo(ctx, args...)
	return err
}

// PushIndex copies an image index and every image it lists into the registry with skopeo (`copy --all`),
// keeping each manifest's digest: src is, for example, "oci:"+b.Layout(MultiPlatform)+":latest".
func (r *Registry) PushIndex(ctx context.Context, src, repoTag string) error {
	_, err := Skopeo(ctx, "copy", "--quiet", "--all", "--dest-tls-verify=false", src, "docker://"+r.Addr+"/"+repoTag)
	return err
}

// BuildSensor builds the static sensor into dir, as `make build` does, and returns its path. The caller's
// working directory must be inside the module (a test's is).
func BuildSensor(ctx context.Context, dir string) (string, error) {
	return BuildStatic(ctx, dir, "github.com/slimoci/slimoci/cmd/slimoci-sensor")
}

// BuildStatic builds the Go command pkg as a static binary in dir, named as its last path element.
func BuildStatic(ctx context.Context, dir, pkg string) (string, error) {
	out := filepath.Join(dir, path.Base(pkg))
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building %s: %w\n%s", pkg, err, b)
	}
	return out, nil
}
