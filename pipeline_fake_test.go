package slimoci

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/slimoci/slimoci/emit"
	"github.com/slimoci/slimoci/rootfs"
	"github.com/slimoci/slimoci/runner"
	"github.com/slimoci/slimoci/sensor"
)

// appImage is a small image whose "app" needs /app/app.py and /app/lib.py, and holds /app/junk it never uses.
func appImage(t *testing.T) v1.Image {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct{ name, body string }{{"app/", ""}, {"app/app.py", "import lib\n"}, {"app/lib.py", "x = 1\n"}, {"app/junk", strings.Repeat("j", 4096)}} {
		h := &tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.body)), Typeflag: tar.TypeReg}
		if strings.HasSuffix(f.name, "/") {
			h.Typeflag, h.Mode = tar.TypeDir, 0o755
		}
		tw.WriteHeader(h)
		tw.Write([]byte(f.body))
	}
	tw.Close()
	b := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// fakeApp observes a tree as the real app would behave: it opens /app/app.py and /app/lib.py; its probe
// answers 200 when both are there, 500 (with the missing one recorded as looked up and missing) otherwise.
func fakeApp(runs *int) func(ctx context.Context, dir string, round int) (*runner.Observation, error) {
	return func(ctx context.Context, dir string, round int) (*runner.Observation, error) {
		*runs++
		rec := &sensor.Record{Files: map[string][]string{}, Syscalls: map[string]int{"openat": 2}}
		status := 200
		for _, p := range []string{"/app/app.py", "/app/lib.py"} {
			if _, err := os.Lstat(filepath.Join(dir, p)); err != nil {
				rec.Files[p] = []string{"open", "missing"}
				status = 500
				continue
			}
			rec.Files[p] = []string{"open"}
		}
		return &runner.Observation{Record: rec, Probes: []runner.ProbeResult{{Method: "GET", Port: 8080, Path: "/", Status: status}}}, nil
	}
}

// The verify/repair loop with a fake observer: a closure that loses a file the app needs gives a slim
// image that fails its probe; what its run missed is added back and the second image passes. With one
// round allowed it fails with ErrVerify; a fat run that answers no probe fails with ErrApp.
func TestPipelineVerifyRepairs(t *testing.T) {
	ctx := context.Background()
	work := t.TempDir()
	tree, err := rootfs.Unpack(ctx, appImage(t), filepath.Join(work, "fat"), nil)
	if err != nil {
		t.Fatal(err)
	}
	runs := 0
	opts := func(rounds int) pipelineOptions {
		return pipelineOptions{
			Tree: tree, Observe: fakeApp(&runs), Image: emit.ImageOptions{Source: "app", Dir: work},
			Verify: true, Rounds: rounds, Sabotage: func(keep map[string][]string) { delete(keep, "/app/lib.py") },
		}
	}
	res, err := runPipeline(ctx, opts(3))
	if err != nil {
		t.Fatal(err)
	}
	if res.Rounds != 2 || !slices.Equal(res.Added, []string{"/app/lib.py"}) || runs != 3 {
		t.Errorf("rounds %d, added %v, runs %d", res.Rounds, res.Added, runs)
	}
	if !slices.Contains(res.Closure.Keep["/app/lib.py"], rootfs.ReasonVerify) || res.Closure.Keep["/app/junk"] != nil {
		t.Errorf("kept %v", res.Closure.Keep)
	}
	if res.Slim == nil || res.Slim.Probes[0].Status != 200 {
		t.Errorf("the last slim run: %+v", res.Slim)
	}

	runs = 0
	if _, err = runPipeline(ctx, opts(1)); !errors.Is(err, ErrVerify) || errors.Is(err, ErrApp) ||
		!strings.Contains(err.Error(), "probe GET :8080/: 500, the fat image gave 200") {
		t.Errorf("one round: %v", err)
	}

	// Without verify, one image and one run.
	runs = 0
	o := opts(3)
	o.Verify = false
	if res, err := runPipeline(ctx, o); err != nil || runs != 1 || res.Slim != nil || res.Image == nil {
		t.Errorf("no verify: %v, %d runs", err, runs)
	}

	// A fat run whose probes all fail is the app's failure, before anything is built.
	o = opts(3)
	o.Observe = func(ctx context.Context, dir string, round int) (*runner.Observation, error) {
		return &runner.Observation{Record: &sensor.Record{}, Probes: []runner.ProbeResult{{Method: "GET", Port: 8080, Path: "/", Error: "connection refused"}}}, nil
	}
	if res, err := runPipeline(ctx, o); !errors.Is(err, ErrApp) || res == nil || res.Fat == nil || res.Image != nil {
		t.Errorf("every probe failing: %v", err)
	}
}

// The stages' events arrive in order, each started one finished, the verify rounds numbered.
func TestPipelineProgress(t *testing.T) {
	ctx := context.Background()
	work := t.TempDir()
	tree, err := rootfs.Unpack(ctx, appImage(t), filepath.Join(work, "fat"), nil)
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan Event, 64)
	runs := 0
	_, err = runPipeline(ctx, pipelineOptions{
		Tree: tree, Observe: fakeApp(&runs), Image: emit.ImageOptions{Source: "app", Dir: work}, Verify: true,
		Sabotage: func(keep map[string][]string) { delete(keep, "/app/lib.py") }, progress: &progress{ctx: ctx, ch: ch},
	})
	close(ch)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	var emitted *Event
	for e := range ch {
		if e.Kind == Progressed {
			// The layer's counts, the last one complete.
			if e.Stage == StageEmit {
				emitted = &e
			}
			continue
		}
		got = append(got, string(e.Stage)+":"+string(e.Kind)+":"+string(rune('0'+e.Round)))
	}
	if emitted == nil || emitted.TotalFiles == 0 || emitted.Files != emitted.TotalFiles || emitted.Complete != emitted.Total || emitted.Unit != "bytes" {
		t.Errorf("the last emit progress: %+v", emitted)
	}
	want := []string{"observe:start:0", "observe:done:0",
		"closure:start:1", "closure:done:1", "emit:start:1", "emit:done:1", "verify:start:1", "verify:done:1",
		"closure:start:2", "closure:done:2", "emit:start:2", "emit:done:2", "verify:start:2", "verify:done:2"}
	if !slices.Equal(got, want) {
		t.Errorf("events\n got %v\nwant %v", got, want)
	}
}
