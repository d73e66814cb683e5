package main

// End-to-end tests: the real test bed (testdata/testbed.sh), a real registry process and independent consumers
// (podman, skopeo). They skip, saying why, only when the test bed is not built; `make test` builds it.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slimoci/slimoci/internal/testbed"
	"github.com/slimoci/slimoci/reverse"
)

var (
	bed       *testbed.Bed
	bedReason string
	registry  *testbed.Registry
)

func TestMain(m *testing.M) {
	// The test binary doubles as slimoci for tests that need it as a process of its own (Ctrl-C).
	if os.Getenv("SLIMOCI_TEST_AS_CLI") == "1" {
		os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr))
	}
	flag.Parse()
	if testing.Short() {
		bedReason = "-short: end-to-end tests need the test bed"
	} else {
		bed, bedReason = testbed.Find()
	}
	if bed != nil {
		if err := startRegistry(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
			registry.Stop()
			os.Exit(1)
		}
	}
	code := m.Run()
	registry.Stop()
	os.Exit(code)
}

// startRegistry starts the real registry and pushes every sample as an OCI manifest (:oci) and a Docker
// schema 2 manifest (:v2s2).
func startRegistry() error {
	var err error
	if registry, err = testbed.StartRegistry(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	for _, s := range testbed.Samples {
		src := "oci:" + bed.Layout(s) + ":latest"
		if err := registry.Push(ctx, src, "samples/"+s+":oci", false); err != nil {
			return err
		}
		if err := registry.Push(ctx, src, "samples/"+s+":v2s2", true); err != nil {
			return err
		}
	}
	return nil
}

func needBed(t *testing.T) {
	t.Helper()
	if bed == nil {
		t.Skip(bedReason)
	}
}

// runCLI runs the command line in-process and returns stdout, stderr and the exit code.
func runCLI(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(args, &out, &errb)
	return out.String(), errb.String(), code
}

// errorLine checks that stderr is what a failed command prints, the renderer's stage lines and then its error
// on one line ("slimoci: ..."), and returns that line; "" when stderr is anything else.
func errorLine(stderr string) string {
	lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
	for _, l := range lines[:len(lines)-1] {
		if !plainStageLine.MatchString(l) {
			return ""
		}
	}
	if last := lines[len(lines)-1]; strings.HasPrefix(last, "slimoci: ") {
		return last
	}
	return ""
}

func infoJSON(t *testing.T, args ...string) *reverse.Info {
	t.Helper()
	out, errs, code := runCLI(t, append([]string{"info", "--json"}, args...)...)
	if code != 0 {
		t.Fatalf("slimoci info %v: exit %d: %s", args, code, errs)
	}
	var info reverse.Info
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatalf("slimoci info %v: output is not JSON: %v", args, err)
	}
	return &info
}

func diffIDs(info *reverse.Info) []string {
	var ids []string
	for _, l := range info.Layers {
		ids = append(ids, l.DiffID)
	}
	return ids
}

func TestE2EInfoAcrossTransports(t *testing.T) {
	needBed(t)
	for _, s := range testbed.Samples {
		t.Run(s, func(t *testing.T) {
			// The OCI layout, measured: the reference every other transport must agree with.
			want := infoJSON(t, "oci:"+bed.Layout(s)+":latest")
			if len(want.Layers) < 2 || want.UncompressedSize <= want.CompressedSize || want.CompressedSize <= 0 {
				t.Fatalf("layout: %d layers, %d compressed, %d uncompressed: not a real sample", len(want.Layers), want.CompressedSize, want.UncompressedSize)
			}
			if want.Platform != "linux/amd64" || !slices.Contains(want.Config.ExposedPorts, "8080/tcp") || len(want.Config.Entrypoint) == 0 {
				t.Fatalf("layout: platform %s, ports %v, entrypoint %v", want.Platform, want.Config.ExposedPorts, want.Config.Entrypoint)
			}
			reg := registry.Addr + "/samples/" + s
			refs := []string{
				bed.Layout(s),
				"oci-archive:" + bed.OCIArchive(s) + ":latest",
				bed.OCIArchive(s),
				"docker-archive:" + bed.DockerArchive(s),
				"docker-archive:" + bed.DockerArchive(s) + ":localhost/slimoci/" + s + ":latest",
				bed.DockerArchive(s),
				reg + ":oci",
				"docker://" + reg + ":v2s2",
				reg + "@" + want.Digest,
			}
			for _, ref := range refs {
				got := infoJSON(t, "--no-measure", ref)
				if got.ConfigDigest != want.ConfigDigest {
					t.Errorf("%s: config digest %s, layout says %s", ref, got.ConfigDigest, want.ConfigDigest)
				}
				if !slices.Equal(diffIDs(got), diffIDs(want)) {
					t.Errorf("%s: layers %v, layout says %v", ref, diffIDs(got), diffIDs(want))
				}
				if len(got.History) != len(want.History) || got.Dockerfile != want.Dockerfile {
					t.Errorf("%s: history differs from the layout's", ref)
				}
				switch got.Transport {
				case "docker-archive":
					if got.Digest != "" {
						t.Errorf("%s: a docker-archive has no manifest digest, got %s", ref, got.Digest)
					}
				case "docker":
					if strings.HasSuffix(ref, ":v2s2") {
						if got.MediaType != "application/vnd.docker.distribution.manifest.v2+json" {
							t.Errorf("%s: media type %s", ref, got.MediaType)
						}
					} else if got.Digest != want.Digest {
						t.Errorf("%s: manifest digest %s, layout says %s", ref, got.Digest, want.Digest)
					}
				default:
					if got.Digest != want.Digest {
						t.Errorf("%s: manifest digest %s, layout says %s", ref, got.Digest, want.Digest)
					}
				}
			}
			// The docker-archive stores the layers uncompressed: measuring them must give the same sizes as
			// decompressing the layout's blobs.
			arch := infoJSON(t, bed.DockerArchive(s))
			for i := range arch.Layers {
				if arch.Layers[i].UncompressedSize != want.Layers[i].UncompressedSize {
					t.Errorf("layer %d: %d bytes in the docker-archive, %d from the layout", i, arch.Layers[i].UncompressedSize, want.Layers[i].UncompressedSize)
				}
			}
		})
	}
}

func TestE2ERoundTrip(t *testing.T) {
	needBed(t)
	ctx := context.Background()
	for _, s := range testbed.Samples {
		t.Run(s, func(t *testing.T) {
			dir := t.TempDir()
			want := infoJSON(t, "--no-measure", registry.Addr+"/samples/"+s+":oci")
			layout := "oci:" + filepath.Join(dir, "layout") + ":" + s
			archive := filepath.Join(dir, s+".tar")
			name := "localhost/roundtrip/" + s + ":latest"
			back := registry.Addr + "/roundtrip/" + s + ":latest"
			for _, hop := range [][2]string{
				{registry.Addr + "/samples/" + s + ":oci", layout},
				{layout, "docker-archive:" + archive + ":" + name},
				{"docker-archive:" + archive + ":" + name, back},
			} {
				if _, errs, code := runCLI(t, "copy", hop[0], hop[1]); code != 0 {
					t.Fatalf("copy %s %s: exit %d: %s", hop[0], hop[1], code, errs)
				}
				got := infoJSON(t, "--no-measure", hop[1])
				if got.ConfigDigest != want.ConfigDigest || !slices.Equal(diffIDs(got), diffIDs(want)) {
					t.Fatalf("after copy to %s: config %s layers %v, want %s %v", hop[1], got.ConfigDigest, diffIDs(got), want.ConfigDigest, diffIDs(want))
				}
			}

			// skopeo accepts what was pushed, and its config is the original's, byte for byte.
			raw, err := testbed.Skopeo(ctx, "inspect", "--tls-verify=false", "--raw", "--config", "docker://"+back)
			if err != nil {
				t.Fatal(err)
			}
			if d := fmt.Sprintf("sha256:%x", sha256.Sum256(raw)); d != want.ConfigDigest {
				t.Fatalf("skopeo inspect --config: digest %s, want %s", d, want.ConfigDigest)
			}

			// podman loads the docker-archive as the same image.
			if _, err := testbed.Run(ctx, "podman", "load", "-q", "-i", archive); err != nil {
				t.Fatal(err)
			}
			defer testbed.Run(ctx, "podman", "rmi", "-f", name)
			id, err := testbed.Run(ctx, "podman", "image", "inspect", "--format", "{{.Id}}", name)
			if err != nil {
				t.Fatal(err)
			}
			if got := "sha256:" + strings.TrimSpace(string(id)); got != want.ConfigDigest {
				t.Fatalf("podman load: image id %s, want %s", got, want.ConfigDigest)
			}
		})
	}
}

func TestE2EDockerfile(t *testing.T) {
	needBed(t)
	for _, s := range testbed.Samples {
		t.Run(s, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "Dockerfile.fat")
			if _, errs, code := runCLI(t, "info", "--no-measure", "--dockerfile", file, registry.Addr+"/samples/"+s+":v2s2"); code != 0 {
				t.Fatalf("exit %d: %s", code, errs)
			}
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			df := string(b)
			for _, want := range []string{"FROM scratch\n", "\nRUN apt-get update && \\\n\tapt-get install -y", "\nCOPY file:", "\nENV ", "\nEXPOSE 8080\n", "\nENTRYPOINT [\"", "\nADD file:"} {
				if !strings.Contains(df, want) {
					t.Errorf("Dockerfile lacks %q:\n%s", want, df)
				}
			}
			if strings.Contains(df, "#(nop)") || strings.Contains(df, "/bin/sh -c") {
				t.Errorf("Dockerfile keeps raw history syntax:\n%s", df)
			}
		})
	}
}

func TestE2EBadInput(t *testing.T) {
	needBed(t)
	dir := t.TempDir()
	// A copy of a real layout with one byte of its largest layer changed.
	corrupt := filepath.Join(dir, "corrupt")
	if _, err := testbed.Run(context.Background(), "cp", "-r", bed.Layout("python"), corrupt); err != nil {
		t.Fatal(err)
	}
	blob := largestFile(t, filepath.Join(corrupt, "blobs", "sha256"))
	f, err := os.OpenFile(blob, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := f.Stat()
	var one [1]byte
	f.ReadAt(one[:], fi.Size()/2)
	one[0] ^= 0xff
	f.WriteAt(one[:], fi.Size()/2)
	f.Close()

	out := filepath.Join(dir, "out")
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"registry 404", []string{"info", registry.Addr + "/samples/nothing:here"}, []string{registry.Addr + "/samples/nothing:here", "MANIFEST_UNKNOWN"}},
		{"registry tag 404", []string{"info", registry.Addr + "/samples/node:nope"}, []string{"samples/node:nope", "MANIFEST_UNKNOWN"}},
		{"unreachable registry", []string{"info", "127.0.0.1:1/samples/node:oci"}, []string{"127.0.0.1:1/samples/node:oci", "connection refused"}},
		{"corrupt layer, info", []string{"info", corrupt}, []string{corrupt, "digest mismatch", filepath.Base(blob)}},
		{"corrupt layer, copy", []string{"copy", corrupt, "docker-archive:" + out + ".tar"}, []string{corrupt, "digest mismatch"}},
		{"corrupt layer, to layout", []string{"copy", corrupt, "oci:" + out}, []string{"digest mismatch"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, code := runCLI(t, tc.args...)
			if code != exitImage {
				t.Fatalf("exit %d, want %d; stdout %q stderr %q", code, exitImage, stdout, stderr)
			}
			if errorLine(stderr) == "" {
				t.Errorf("error is not one line: %q", stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("error %q does not name %q", stderr, w)
				}
			}
		})
	}
	// Nothing half-written: no output, no temporary files.
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.Name() != "corrupt" {
			t.Errorf("failed commands left %s behind", e.Name())
		}
	}
}

func largestFile(t *testing.T, dir string) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var best string
	var size int64
	for _, e := range entries {
		fi, err := e.Info()
		if err == nil && fi.Size() > size {
			best, size = filepath.Join(dir, e.Name()), fi.Size()
		}
	}
	return best
}

// rootSandbox is the preamble of a test that runs sandboxes as root: the test bed, root (else it skips,
// saying why), and the sensor, whose path it returns.
func rootSandbox(t *testing.T, why string) string {
	t.Helper()
	needBed(t)
	if os.Geteuid() != 0 {
		t.Skip(why)
	}
	return buildSensor(t)
}

// buildSensor builds the static sensor as `make build` does.
func buildSensor(t *testing.T) string {
	t.Helper()
	bin, err := testbed.BuildSensor(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// `slimoci profile` on the python sample: the probe gets its 200, the record has the interpreter and the app,
// and podman runs the same image under the seccomp profile and it answers.
func TestE2EProfile(t *testing.T) {
	needBed(t)
	if os.Geteuid() != 0 {
		t.Skip("the sandbox needs root for now")
	}
	state := filepath.Join(t.TempDir(), "state")
	sensorBin := buildSensor(t)
	out, errs, code := runCLI(t, "profile", "--sensor", sensorBin, "--state-path", state, "oci:"+bed.Layout("python")+":latest")
	if code != 0 || !strings.Contains(out, "probe GET :8080/: http 200") {
		t.Fatalf("exit %d: %s %s", code, out, errs)
	}
	b, err := os.ReadFile(filepath.Join(state, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var report struct {
		Record struct {
			Files map[string][]string
		}
	}
	if err := json.Unmarshal(b, &report); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/usr/bin/python3", "/app/app.py"} {
		if len(report.Record.Files[p]) == 0 {
			t.Errorf("%s is not in the record", p)
		}
	}
	// The interpreter as a command, the image's entrypoint and cmd overridden, no probe: it runs and exits.
	state2 := filepath.Join(t.TempDir(), "state")
	out, errs, code = runCLI(t, "profile", "--sensor", sensorBin, "--state-path", state2, "--no-http-probe",
		"--entrypoint=python3", "--cmd=-c", "--cmd=import json, os; print(json.dumps(os.environ['GREETING']))", "--env=GREETING=hi",
		"--show-clogs", "oci:"+bed.Layout("python")+":latest")
	if code != 0 || !strings.Contains(errs, `"hi"`) {
		t.Fatalf("exit %d: %s %s", code, out, errs)
	}
	b, _ = os.ReadFile(filepath.Join(state2, "report.json"))
	if !strings.Contains(string(b), "/usr/lib/python3.11/json/__init__.py") {
		t.Errorf("the command's import of json is not in the record")
	}

	// --json: stdout is the report alone, one document.
	out, errs, code = runCLI(t, "profile", "--json", "--sensor", sensorBin, "--state-path", t.TempDir(), "oci:"+bed.Layout("python")+":latest")
	var doc struct {
		Image  string
		Args   []string
		Probes []struct{ Status int }
		Record struct{ Files map[string][]string }
		Stages []struct{ Stage string }
	}
	dec := json.NewDecoder(strings.NewReader(out))
	if err := dec.Decode(&doc); code != 0 || err != nil || dec.More() || len(doc.Probes) != 1 || doc.Probes[0].Status != 200 ||
		len(doc.Record.Files["/app/app.py"]) == 0 || len(doc.Stages) != 2 {
		t.Errorf("profile --json: exit %d, %v: %.300s %s", code, err, out, errs)
	}

	// podman runs the same image under the seccomp profile, and it answers.
	podmanGet(t, "localhost/slimoci/python:latest", "--security-opt", "seccomp="+filepath.Join(state, "seccomp.json"))
}
