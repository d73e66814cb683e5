package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/slimoci/slimoci/oci"
)

// Fast command tests on random images: no test bed, no network beyond 127.0.0.1.

// sampleLayout writes a random image with a real-looking config and history to a new layout.
func sampleLayout(t *testing.T) (string, v1.Image) {
	t.Helper()
	img, err := random.Image(1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config = v1.Config{
		User: "app", Env: []string{"PATH=/usr/bin", "PORT=8080"}, Entrypoint: []string{"python3", "/app/app.py"},
		WorkingDir: "/app", ExposedPorts: map[string]struct{}{"8080/tcp": {}}, Volumes: map[string]struct{}{"/data": {}},
		Labels:      map[string]string{"org.example": "yes"},
		Healthcheck: &v1.HealthConfig{Test: []string{"CMD-SHELL", "true"}},
	}
	cf.History = []v1.History{
		{CreatedBy: "/bin/sh -c #(nop) ADD file:abc123 in / "},
		{CreatedBy: "/bin/sh -c apt-get update && apt-get install -y python3", Comment: "FROM localhost/base:latest"},
		{CreatedBy: "/bin/sh -c #(nop) EXPOSE 8080", EmptyLayer: true},
	}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	return writeLayout(t, img, "v1"), img
}

// writeLayout writes img to a new OCI layout under tag.
func writeLayout(t *testing.T, img v1.Image, tag string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "layout")
	if err := oci.Write(context.Background(), img, oci.Reference{Transport: oci.Layout, Path: dir, Tag: tag}, nil); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestInfoText(t *testing.T) {
	dir, img := sampleLayout(t)
	df := filepath.Join(t.TempDir(), "Dockerfile")
	out, errs, code := runCLI(t, "info", "--dockerfile", df, "oci:"+dir+":v1")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	cfg, _ := img.ConfigName()
	digest, _ := img.Digest()
	for _, want := range []string{
		"Digest:      " + digest.String(), "Config:      " + cfg.String(), "Platform:    linux/amd64",
		"2 layers", "User:          app", `Entrypoint:    ["python3","/app/app.py"]`, "WorkingDir:    /app",
		"PORT=8080", "ExposedPorts:  8080/tcp", "Volumes:       /data", "org.example=yes", "Healthcheck:",
		"RUN apt-get update && ...", "ADD file:abc123 /", "  EXPOSE 8080",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("info output lacks %q:\n%s", want, out)
		}
	}
	b, err := os.ReadFile(df)
	if err != nil || !strings.Contains(string(b), "RUN apt-get update && \\\n\tapt-get install -y python3\n") {
		t.Fatalf("Dockerfile: %v\n%s", err, b)
	}
}

func TestInfoJSONSizes(t *testing.T) {
	dir, img := sampleLayout(t)
	info := infoJSON(t, dir)
	layers, _ := img.Layers()
	var compressed, uncompressed int64
	for _, l := range layers {
		s, _ := l.Size()
		compressed += s
		rc, _ := l.Uncompressed()
		n, _ := ioCount(rc)
		uncompressed += n
	}
	if info.CompressedSize != compressed || info.UncompressedSize != uncompressed {
		t.Fatalf("sizes %d/%d, want %d/%d", info.CompressedSize, info.UncompressedSize, compressed, uncompressed)
	}
	if info.Layers[1].Instruction == "" || info.Layers[1].History != 1 {
		t.Fatalf("layer 1 is not tied to its history entry: %+v", info.Layers[1])
	}
	quick := infoJSON(t, "--no-measure", dir)
	if quick.UncompressedSize != -1 || quick.CompressedSize != compressed {
		t.Fatalf("--no-measure: sizes %d/%d", quick.CompressedSize, quick.UncompressedSize)
	}
}

func ioCount(rc interface {
	Read([]byte) (int, error)
	Close() error
}) (int64, error) {
	defer rc.Close()
	var n int64
	buf := make([]byte, 32<<10)
	for {
		m, err := rc.Read(buf)
		n += int64(m)
		if err != nil {
			return n, nil
		}
	}
}

func TestVersion(t *testing.T) {
	out, _, code := runCLI(t, "version")
	if code != 0 || !strings.HasPrefix(out, "slimoci ") || !strings.Contains(out, "\ngo 1.") {
		t.Fatalf("exit %d: %q", code, out)
	}
}

func TestCopyThroughRegistry(t *testing.T) {
	dir, img := sampleLayout(t)
	srv := httptest.NewServer(ggcrregistry.New())
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	out := filepath.Join(t.TempDir(), "img.tar")
	for _, hop := range [][2]string{
		{"oci:" + dir + ":v1", host + "/a/b:v1"},
		{host + "/a/b:v1", "docker-archive:" + out + ":localhost/a/b:v1"},
		{out, "oci-archive:" + out + ".oci"},
	} {
		stdout, errs, code := runCLI(t, "copy", hop[0], hop[1])
		if code != 0 || !strings.Contains(stdout, "copied ") {
			t.Fatalf("copy %s %s: exit %d: %s", hop[0], hop[1], code, errs)
		}
	}
	want, _ := img.ConfigName()
	var info struct{ ConfigDigest string }
	stdout, _, _ := runCLI(t, "info", "--json", "oci-archive:"+out+".oci")
	if err := json.Unmarshal([]byte(stdout), &info); err != nil || info.ConfigDigest != want.String() {
		t.Fatalf("after three hops: %q %v, want %s", info.ConfigDigest, err, want)
	}
}

// Bad input: one line on stderr naming the input and the problem, exit 2 for a bad command line, 3 for an
// image or registry that cannot be read, 1 for the rest (exitcode.go); nothing written.
func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	notTar := filepath.Join(dir, "notes.tar")
	os.WriteFile(notTar, []byte(strings.Repeat("hello ", 200)), 0o644)
	badIndex := filepath.Join(dir, "badindex")
	os.Mkdir(badIndex, 0o755)
	os.WriteFile(filepath.Join(badIndex, "index.json"), []byte("{not json"), 0o644)
	os.WriteFile(filepath.Join(badIndex, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
	badType := filepath.Join(dir, "badtype")
	os.Mkdir(badType, 0o755)
	os.WriteFile(filepath.Join(badType, "index.json"), []byte(`{"schemaVersion":2,"manifests":[{"mediaType":"application/x-thing","digest":"sha256:`+strings.Repeat("a", 64)+`","size":3}]}`), 0o644)
	good, img := sampleLayout(t)
	m, _ := img.Manifest()
	badBlob := filepath.Join(dir, "badblob")
	copyDir(t, good, badBlob)
	layer := filepath.Join(badBlob, "blobs", "sha256", m.Layers[0].Digest.Hex)
	raw, _ := os.ReadFile(layer)
	raw[len(raw)/2] ^= 0x55
	os.WriteFile(layer, raw, 0o644)

	status := func(code int) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/v2/" {
				return
			}
			w.WriteHeader(code)
			fmt.Fprintf(w, `{"errors":[{"code":"TEST","message":"status %d"}]}`, code)
		}))
		t.Cleanup(srv.Close)
		return strings.TrimPrefix(srv.URL, "http://")
	}
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := l.Addr().String()
	l.Close()
	out := filepath.Join(dir, "out")

	for _, tc := range []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"unknown transport", []string{"info", "ftp://x/y"}, 3, []string{"ftp://x/y", "unknown transport"}},
		{"unsupported transport", []string{"info", "containers-storage:x"}, 3, []string{"containers-storage:", "unknown transport"}},
		{"missing file", []string{"info", filepath.Join(dir, "nope.tar")}, 3, []string{"nope.tar", "no such file"}},
		{"missing archive", []string{"info", "docker-archive:" + filepath.Join(dir, "nope.tar")}, 3, []string{"nope.tar", "no such file"}},
		{"not a tarball", []string{"info", "oci-archive:" + notTar}, 3, []string{notTar, "not a tar archive"}},
		{"not a tarball, detected", []string{"info", notTar}, 3, []string{notTar, "not a tar archive"}},
		{"corrupt index.json", []string{"info", badIndex}, 3, []string{badIndex, "index.json is not a valid image index"}},
		{"unknown media type", []string{"info", badType}, 3, []string{badType, `unknown media type "application/x-thing"`}},
		{"digest mismatch", []string{"info", badBlob}, 3, []string{badBlob, "digest mismatch", m.Layers[0].Digest.String()}},
		{"digest mismatch, copy", []string{"copy", badBlob, "oci-archive:" + out}, 3, []string{badBlob, "digest mismatch", out}},
		{"registry 401", []string{"info", status(401) + "/x/y:z"}, 3, []string{"/x/y:z", "401"}},
		{"registry 404", []string{"info", status(404) + "/x/y:z"}, 3, []string{"/x/y:z", "404"}},
		{"registry 500", []string{"info", status(500) + "/x/y:z"}, 3, []string{"/x/y:z", "500"}},
		{"unreachable registry", []string{"info", closed + "/x/y:z"}, 3, []string{closed + "/x/y:z", "connection refused"}},
		{"new plain path as destination", []string{"copy", good, filepath.Join(dir, "new.tar")}, 3, []string{"new.tar", "name the format"}},
		{"bad platform", []string{"--platform", "linux", "info", good}, 2, []string{`"linux"`, "os/arch"}},
		{"missing sensor", []string{"profile", "--sensor", filepath.Join(dir, "nosensor"), good}, 1, []string{"nosensor", "missing"}},
		{"bad continue-after", []string{"profile", "--sensor", notTar, "--continue-after", "later", good}, 2, []string{`"later"`, "app-exit"}},
		{"bad probe command", []string{"profile", "--sensor", notTar, "--http-probe-cmd", "health", good}, 2, []string{`"health"`, "does not start with /"}},
		{"bad probe file", []string{"profile", "--sensor", notTar, "--http-probe-cmd-file", notTar, good}, 2, []string{notTar, "invalid character"}},
		{"bad exec", []string{"profile", "--sensor", notTar, "--exec", `["ls", 1]`, good}, 2, []string{"--exec", "JSON array"}},
		{"bad mount", []string{"profile", "--sensor", notTar, "--mount", "relative:/x", good}, 2, []string{"relative:/x", "/host/path"}},
		{"bad env", []string{"profile", "--sensor", notTar, "--env", "NOVALUE", good}, 2, []string{"NOVALUE", "NAME=VALUE"}},
		{"bad network", []string{"profile", "--network", "bridge", good}, 2, []string{"--network", "bridge"}},
		{"build: push from a layout without --tag", []string{"build", "--sensor", notTar, "--push", good}, 2, []string{good, "no default --tag"}},
		{"build: tag without push, not a name", []string{"build", "--sensor", notTar, "--tag", "X/y:z", good}, 2, []string{`"X/y:z"`, "not an image name"}},
		{"build: unknown image override", []string{"build", "--sensor", notTar, "--image-overrides", "env,user", good}, 2, []string{`"user"`, "want all, or some of entrypoint"}},
		{"build: new entrypoint not JSON", []string{"build", "--sensor", notTar, "--new-entrypoint", `["a", 1]`, good}, 2, []string{"--new-entrypoint", "JSON array"}},
		{"build: new cmd unterminated", []string{"build", "--sensor", notTar, "--new-cmd", `run "x`, good}, 2, []string{"--new-cmd", "EOF"}},
		{"build: relative new workdir", []string{"build", "--sensor", notTar, "--new-workdir", "srv", good}, 2, []string{`"srv"`, "absolute"}},
		{"build: new env without value", []string{"build", "--sensor", notTar, "--new-env", "PORT", good}, 2, []string{`"PORT"`, "NAME=VALUE"}},
		{"build: bad new expose", []string{"build", "--sensor", notTar, "--new-expose", "80/icmp", good}, 2, []string{"--new-expose", `"icmp"`}},
		{"build: bad remove expose", []string{"build", "--sensor", notTar, "--remove-expose", "0", good}, 2, []string{"--remove-expose", `"0"`}},
		{"build: relative new volume", []string{"build", "--sensor", notTar, "--new-volume", "data", good}, 2, []string{"--new-volume", "absolute"}},
		{"build: new label without =", []string{"build", "--sensor", notTar, "--new-label", "k", good}, 2, []string{"--new-label", "KEY=VALUE"}},
		{"publish on all addresses", []string{"profile", "--sensor", notTar, "--publish-port", "0.0.0.0:8080:8080", good}, 2, []string{"0.0.0.0", "not a loopback address"}},
		{"publish with the host network", []string{"profile", "--sensor", notTar, "--network", "host", "--publish-port", "8080", good}, 2, []string{"--publish-port", "--network host"}},
		{"bad etc-hosts-map", []string{"profile", "--sensor", notTar, "--etc-hosts-map", "db:nope", good}, 2, []string{"db:nope", "not an IP"}},
		{"bad hostname", []string{"profile", "--sensor", notTar, "--hostname", "a_b", good}, 2, []string{"--hostname", "a_b"}},
		{"bad env file", []string{"profile", "--sensor", notTar, "--env-file", notTar, good}, 2, []string{notTar + ":1", "has no value"}},
		{"bad expose", []string{"profile", "--sensor", notTar, "--expose", "9-8", good}, 2, []string{"--expose", "ends before"}},
		{"relative volume", []string{"profile", "--sensor", notTar, "--volume", "cache", good}, 2, []string{`"cache"`, "anonymous volume"}},
		{"bad label", []string{"profile", "--sensor", notTar, "--label", "=x", good}, 2, []string{"--label", "KEY=VALUE"}},
		{"relative workdir", []string{"profile", "--sensor", notTar, "--workdir", "app", good}, 2, []string{"--workdir", "absolute"}},
		{"params file not JSON", []string{"profile", "--sensor", notTar, "--command-params-file", notTar, good}, 2, []string{notTar, "not a JSON object"}},
		{"build: tag not a registry", []string{"build", "--sensor", notTar, "--push", "--tag", "oci:" + dir, good}, 2, []string{"--tag", "registry reference"}},
		{"build: relative include", []string{"build", "--sensor", notTar, "--include-path", "etc/x", good}, 2, []string{"etc/x", "absolute"}},
		{"build: bad glob", []string{"build", "--sensor", notTar, "--exclude-path", "/a[", good}, 2, []string{"/a[", "syntax"}},
		{"build: bad compression", []string{"build", "--compression", "lz4", good}, 2, []string{"--compression", "lz4"}},
		{"build: bad output", []string{"build", "--sensor", notTar, "--output", filepath.Join(dir, "new.tar"), good}, 2, []string{"new.tar", "name the format"}},
		{"missing argument", []string{"info"}, 2, []string{"expected \"<IMAGE>\""}},
		{"unknown flag", []string{"info", "--frobnicate", good}, 2, []string{"--frobnicate"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := runCLI(t, tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d: %s", code, tc.code, stderr)
			}
			first, _, _ := strings.Cut(stderr, "\n")
			if strings.TrimRight(stderr, "\n") != first {
				t.Fatalf("error is not one line: %q", stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(first, w) {
					t.Errorf("error %q does not name %q", first, w)
				}
			}
		})
	}
	if _, err := os.Stat(out); err == nil {
		t.Fatal("a failed copy left its output")
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Fatalf("a failed command left %s", e.Name())
		}
	}
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.Walk(from, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if fi.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestUnpack(t *testing.T) {
	dir, _ := sampleLayout(t)
	target := filepath.Join(t.TempDir(), "rootfs")
	out, errs, code := runCLI(t, "unpack", "oci:"+dir+":v1", target)
	if code != 0 || !strings.Contains(out, "unpacked oci:"+dir+":v1 into "+target) {
		t.Fatalf("exit %d: %s %s", code, out, errs)
	}
	// --json's document holds the index, which names every path on disk.
	target2 := filepath.Join(t.TempDir(), "rootfs")
	out, errs, code = runCLI(t, "unpack", "--json", dir, target2)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var doc struct {
		Index struct {
			Entries []struct {
				Path string
				Type string
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil || len(doc.Index.Entries) < 2 {
		t.Fatalf("index: %v, %d entries", err, len(doc.Index.Entries))
	}
	for _, e := range doc.Index.Entries {
		if _, err := os.Lstat(filepath.Join(target2, e.Path)); err != nil {
			t.Errorf("index names %s, not on disk: %v", e.Path, err)
		}
	}
	// A target that is not empty is refused, untouched.
	_, errs, code = runCLI(t, "unpack", dir, target)
	if code != 3 || !strings.Contains(errs, target+" is not empty") {
		t.Fatalf("exit %d: %s", code, errs)
	}
}

func TestExecArgs(t *testing.T) {
	if got, _ := execArgs("curl -s localhost"); !slices.Equal(got, []string{"/bin/sh", "-c", "curl -s localhost"}) {
		t.Errorf("shell form: %v", got)
	}
	if got, _ := execArgs(` ["ls", "-l"]`); !slices.Equal(got, []string{"ls", "-l"}) {
		t.Errorf("exec form: %v", got)
	}
	for _, bad := range []string{"", "[", "[]", `["a", 1]`} {
		if _, err := execArgs(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
