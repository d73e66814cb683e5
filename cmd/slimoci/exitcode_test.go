package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/slimoci/slimoci"
	"github.com/slimoci/slimoci/oci"
	"github.com/slimoci/slimoci/rootfs"
)

// The classifier on the errors the stages return, and the order when several kinds match.
func TestExitCode(t *testing.T) {
	_, badName := name.ParseReference("X/y:z")
	for _, tc := range []struct {
		name        string
		err         error
		interrupted bool
		want        int
	}{
		{"success", nil, false, exitOK},
		{"anything else", errors.New("writing /out: permission denied"), false, exitFailure},
		{"interrupted", fmt.Errorf("observing the app: %w", context.Canceled), false, exitInterrupted},
		{"signal, then an app killed", errors.New("the app exited: signal: killed"), true, exitInterrupted},
		{"signal wins over verify", fmt.Errorf("%w: %w", slimoci.ErrVerify, context.Canceled), false, exitInterrupted},
		{"usage", usage(errors.New("--memory \"abc\": want a size")), false, exitUsage},
		{"usage wins over the sentinel it wraps", usage(fmt.Errorf("--platform: %w", oci.ErrReference)), false, exitUsage},
		{"usage of nil is nil", usage(nil), false, exitOK},
		{"verify", fmt.Errorf("building: %w after 3 rounds: probe GET / failed", slimoci.ErrVerify), false, exitVerify},
		{"verify wins over app", fmt.Errorf("%w: %w", slimoci.ErrVerify, slimoci.ErrApp), false, exitVerify},
		{"app", fmt.Errorf("observing: %w", slimoci.ErrApp), false, exitApp},
		{"app wins over image", fmt.Errorf("%w: %w", slimoci.ErrApp, &url.Error{Op: "Get", URL: "http://127.0.0.1:8080/", Err: errors.New("refused")}), false, exitApp},
		{"oci sentinel", fmt.Errorf("reading oci:/x: %w", oci.ErrNotExist), false, exitImage},
		{"rootfs sentinel", fmt.Errorf("unpacking: %w", rootfs.ErrLayer), false, exitImage},
		{"size limit", fmt.Errorf("reading: %w", oci.ErrTooLarge), false, exitImage},
		{"registry answer", fmt.Errorf("reading x: %w", &transport.Error{StatusCode: 401}), false, exitImage},
		{"registry unreachable", fmt.Errorf("reading x: %w", &url.Error{Op: "Get", URL: "https://127.0.0.1:1/v2/", Err: errors.New("connection refused")}), false, exitImage},
		{"bad name", fmt.Errorf("--tag: %w", badName), false, exitImage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := exitCode(tc.err, tc.interrupted); got != tc.want {
				t.Errorf("exitCode(%v) = %d, want %d", tc.err, got, tc.want)
			}
		})
	}
}

// Main's exit codes for a bad command line and for images that cannot be read, each with --json: the error
// is one line on stderr and stdout stays empty.
func TestExitCodesFromMain(t *testing.T) {
	good, _ := sampleLayout(t)
	srv := httptest.NewServer(ggcrregistry.New())
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	if _, errs, code := runCLI(t, "copy", good, host+"/a/b:v1"); code != 0 {
		t.Fatalf("copy to the registry: exit %d: %s", code, errs)
	}
	missing := filepath.Join(t.TempDir(), "nope")
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"unknown flag", []string{"info", "--frobnicate", good}, exitUsage, "--frobnicate"},
		{"bad enum", []string{"profile", "--network", "bridge", good}, exitUsage, "bridge"},
		{"bad number", []string{"--jobs", "many", "info", good}, exitUsage, "--jobs"},
		{"bad platform", []string{"--platform", "linux", "info", good}, exitUsage, `platform "linux"`},
		{"bad flag value", []string{"profile", "--memory=abc", good}, exitUsage, `--memory "abc"`},
		{"flag naming an image wrongly", []string{"build", "--tag", "X/y:z", good}, exitUsage, "not an image name"},
		{"missing argument", []string{"copy", good}, exitUsage, "DESTINATION"},
		{"missing layout", []string{"info", "oci:" + missing}, exitImage, missing},
		{"missing archive", []string{"unpack", "docker-archive:" + missing + ".tar", filepath.Join(t.TempDir(), "d")}, exitImage, "no such file"},
		{"missing tag in a layout", []string{"info", "oci:" + good + ":nope"}, exitImage, "nope"},
		{"missing tag in a registry", []string{"info", host + "/a/b:nope"}, exitImage, "MANIFEST_UNKNOWN"},
		{"missing repository, copy", []string{"copy", host + "/no/such:v1", "oci:" + missing}, exitImage, "no/such"},
		{"image argument that does not parse", []string{"info", "ftp://x/y"}, exitImage, "unknown transport"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, code := runCLI(t, append([]string{"--json"}, tc.args...)...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d: %s", code, tc.code, stderr)
			}
			if stdout != "" {
				t.Errorf("a failed command wrote on stdout: %q", stdout)
			}
			if !strings.HasPrefix(stderr, "slimoci: ") || strings.Count(strings.TrimRight(stderr, "\n"), "\n") != 0 || !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr %q: want one line naming %q", stderr, tc.want)
			}
		})
	}
}

// The test bed's registry (a real docker-registry process): a tag it does not hold is an image error.
func TestE2EExitCodeRegistryTag(t *testing.T) {
	needBed(t)
	ref := registry.Addr + "/samples/python:no-such-tag"
	for _, args := range [][]string{
		{"info", ref},
		{"copy", ref, "oci:" + filepath.Join(t.TempDir(), "out")},
		{"unpack", ref, filepath.Join(t.TempDir(), "rootfs")},
	} {
		stdout, stderr, code := runCLI(t, append([]string{"--json"}, args...)...)
		if code != exitImage || stdout != "" || !strings.Contains(stderr, "MANIFEST_UNKNOWN") {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want %d, nothing on stdout, the registry's answer", args[0], code, stdout, stderr, exitImage)
		}
	}
}

// oneDocument decodes stdout as exactly one JSON document into v, refusing fields v does not name, and
// fails the test when anything but white space follows it.
func oneDocument(t *testing.T, stdout string, v any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("stdout is not the document: %v\n%s", err, stdout)
	}
	if tok, err := dec.Token(); err != io.EOF {
		t.Fatalf("stdout holds more than one JSON document: next %v %v", tok, err)
	}
}

var lowerCamel = regexp.MustCompile(`^[a-z][a-zA-Z0-9]*$`)

// badKeys walks a decoded JSON value and returns every object key that is not lowerCamel, except in the
// objects at the paths in data, whose keys are data (labels, xattrs, module paths). An array's elements are
// at path + "[]".
func badKeys(v any, path string, data ...string) []string {
	var bad []string
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if !slices.Contains(data, path) && !lowerCamel.MatchString(k) {
				bad = append(bad, path+"."+k)
			}
			bad = append(bad, badKeys(e, path+"."+k, data...)...)
		}
	case []any:
		for _, e := range v {
			bad = append(bad, badKeys(e, path+"[]", data...)...)
		}
	}
	sort.Strings(bad)
	return slices.Compact(bad)
}

// keysOf returns the keys of the object at key in m, sorted.
func keysOf(t *testing.T, m map[string]any, key string) []string {
	t.Helper()
	o, ok := m[key].(map[string]any)
	if !ok {
		t.Fatalf("%s is not an object: %v", key, m[key])
	}
	return slices.Sorted(func(yield func(string) bool) {
		for k := range o {
			if !yield(k) {
				return
			}
		}
	})
}

// --json on info, unpack, copy and version: one JSON document on stdout and nothing else, every key
// lowerCamel, and the values those of the image and of what was written.
func TestJSONDocuments(t *testing.T) {
	dir, img := sampleLayout(t)
	digest, _ := img.Digest()
	config, _ := img.ConfigName()
	cf, _ := img.ConfigFile()
	m, _ := img.Manifest()
	raw, _ := img.RawManifest()
	mediaType, _ := img.MediaType()
	var diffIDs []string
	for _, d := range cf.RootFS.DiffIDs {
		diffIDs = append(diffIDs, d.String())
	}
	run := func(t *testing.T, args ...string) string {
		t.Helper()
		stdout, stderr, code := runCLI(t, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, stderr)
		}
		return stdout
	}

	t.Run("info", func(t *testing.T) {
		var doc map[string]any
		oneDocument(t, run(t, "info", "--json", "oci:"+dir+":v1"), &doc)
		if bad := badKeys(doc, "", ".config.labels"); len(bad) > 0 {
			t.Errorf("keys that are not lowerCamel: %v", bad)
		}
		for _, k := range []string{"reference", "transport", "digest", "mediaType", "configDigest", "platform", "compressedSize", "uncompressedSize", "layers", "config", "history", "dockerfile"} {
			if _, ok := doc[k]; !ok {
				t.Errorf("no %q in %v", k, doc)
			}
		}
		if doc["digest"] != digest.String() || doc["configDigest"] != config.String() {
			t.Errorf("digests %v %v, want %s %s", doc["digest"], doc["configDigest"], digest, config)
		}
		cfg := doc["config"].(map[string]any)
		if got := keysOf(t, cfg, "healthcheck"); !slices.Equal(got, []string{"test"}) {
			t.Errorf("healthcheck keys %v, want [test]", got)
		}
	})

	t.Run("unpack", func(t *testing.T) {
		target := filepath.Join(t.TempDir(), "rootfs")
		stdout := run(t, "unpack", "--json", dir, target)
		var doc struct {
			Image, Dir, Digest, ConfigDigest string
			DiffIDs                          []string
			Rootless                         bool
			Stats                            struct{ Entries, Bytes, Skipped, Duration int64 }
			Index                            struct {
				Entries []map[string]any
				Removed []map[string]any
			}
		}
		oneDocument(t, stdout, &doc)
		var tree any
		json.Unmarshal([]byte(stdout), &tree)
		if bad := badKeys(tree, "", ".index.entries[].xattrs", ".index.removed[].entry.xattrs"); len(bad) > 0 {
			t.Errorf("keys that are not lowerCamel: %v", bad)
		}
		if doc.Image != "oci:"+dir || doc.Dir != target || doc.Digest != digest.String() || doc.ConfigDigest != config.String() || !slices.Equal(doc.DiffIDs, diffIDs) {
			t.Errorf("image %q dir %q digest %q config %q diffIDs %v; want %q %q %s %s %v", doc.Image, doc.Dir, doc.Digest, doc.ConfigDigest, doc.DiffIDs,
				"oci:"+dir, target, digest, config, diffIDs)
		}
		if doc.Stats.Entries != int64(len(doc.Index.Entries)) || doc.Stats.Entries < 2 || doc.Stats.Bytes <= 0 || doc.Stats.Duration <= 0 {
			t.Errorf("stats %+v for %d index entries", doc.Stats, len(doc.Index.Entries))
		}
		if doc.Rootless != (os.Geteuid() != 0) {
			t.Errorf("rootless %v as uid %d", doc.Rootless, os.Geteuid())
		}
	})

	t.Run("copy", func(t *testing.T) {
		srv := httptest.NewServer(ggcrregistry.New())
		defer srv.Close()
		dst := strings.TrimPrefix(srv.URL, "http://") + "/a/b:v1"
		type copyDoc struct {
			Source, Destination, Digest, MediaType, ConfigDigest string
			Layers                                               int
			Bytes                                                int64
		}
		var doc copyDoc
		oneDocument(t, run(t, "copy", "--json", "oci:"+dir+":v1", dst), &doc)
		bytes := int64(len(raw)) + m.Config.Size
		for _, l := range m.Layers {
			bytes += l.Size
		}
		want := copyDoc{Source: "oci:" + dir + ":v1", Destination: "docker://" + dst, Digest: digest.String(), MediaType: string(mediaType),
			ConfigDigest: config.String(), Layers: 2, Bytes: bytes}
		if doc != want {
			t.Errorf("copy to a registry:\n got %+v\nwant %+v", doc, want)
		}
		// The registry holds that manifest: info on it says the same digest.
		if info := infoJSON(t, "--no-measure", dst); info.Digest != doc.Digest {
			t.Errorf("the registry's image is %s, copy said %s", info.Digest, doc.Digest)
		}
		// A docker-archive stores no manifest: no digest, the config's kept.
		archive := filepath.Join(t.TempDir(), "img.tar")
		var fields map[string]any
		oneDocument(t, run(t, "copy", "--json", dst, "docker-archive:"+archive+":localhost/a/b:v1"), &fields)
		if _, ok := fields["digest"]; ok || fields["configDigest"] != config.String() || fields["destination"] != "docker-archive:"+archive+":localhost/a/b:v1" {
			t.Errorf("copy to a docker-archive: %v", fields)
		}
		// --quiet: no summary.
		if out := run(t, "--quiet", "copy", dst, "oci:"+filepath.Join(t.TempDir(), "q")); out != "" {
			t.Errorf("copy --quiet printed %q", out)
		}
	})

	t.Run("version", func(t *testing.T) {
		var doc struct {
			Version, Go, Platform string
			Libraries             map[string]string
		}
		oneDocument(t, run(t, "--json", "version"), &doc)
		if doc.Version != version || "go"+doc.Go != runtime.Version() || doc.Platform != runtime.GOOS+"/"+runtime.GOARCH {
			t.Errorf("version %+v", doc)
		}
		if v := doc.Libraries["github.com/alecthomas/kong"]; !strings.HasPrefix(v, "v1.") {
			t.Errorf("kong's version %q in %v", v, doc.Libraries)
		}
		for l := range doc.Libraries {
			if !slices.Contains(libraries, l) {
				t.Errorf("library %s is not one of %v", l, libraries)
			}
		}
	})
}

// Real builds and profiles of the python sample that fail of the app or of verify: the app answering none of
// its probes (GET /nope answers 404, a failure with --http-probe-fail-on-status-4xx) or not starting at all
// exits 4; a slim image without the app's script (--exclude-path wins over what the app used, and one round
// leaves verify no repair) exits 5. With --json, build's stdout stays empty; profile's holds the observation of
// the app that failed, one document.
func TestE2EExitCodeAppAndVerify(t *testing.T) {
	sensorBin := rootSandbox(t, "build and profile run the root sandbox")
	src := "oci:" + bed.Layout("python") + ":latest"
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"every probe fails", []string{"build", "--http-probe-cmd", "/nope", "--http-probe-fail-on-status-4xx", "--http-probe-retry-count", "1"},
			exitApp, "probe GET :8080/nope: status 404"},
		{"the app does not start", []string{"profile", "--entrypoint", "/nonexistent"}, exitApp, "exited with code 127"},
		{"verify fails", []string{"build", "--exclude-path", "/app/app.py", "--verify-rounds", "1"}, exitVerify, "the slim image does not work as the fat one"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--json", tc.args[0], "--sensor", sensorBin, "--state-path", filepath.Join(t.TempDir(), "state")}, tc.args[1:]...)
			stdout, stderr, code := runCLI(t, append(args, src)...)
			if code != tc.code || !strings.Contains(errorLine(stderr), tc.want) {
				t.Fatalf("exit %d, stderr %q; want %d and one line saying %q", code, stderr, tc.code, tc.want)
			}
			if tc.args[0] == "build" && stdout != "" {
				t.Errorf("a failed build wrote on stdout: %.200q", stdout)
			}
			if tc.args[0] == "profile" {
				var doc map[string]any
				oneDocument(t, stdout, &doc)
			}
		})
	}
}
