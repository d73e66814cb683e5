package slimoci

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slimoci/slimoci/emit"
	"github.com/slimoci/slimoci/internal/testbed"
	"github.com/slimoci/slimoci/oci"
	"github.com/slimoci/slimoci/rootfs"
	"github.com/slimoci/slimoci/runner"
)

// libcontainer re-executes this test binary as the container's init.
func init() {
	if len(os.Args) > 1 && os.Args[1] == runner.InitArg {
		runner.Init()
	}
}

// sampleTree unpacks the test bed's sample into a work directory and builds the sensor, for a build in the
// root sandbox; it returns the tree, the sensor and the work directory.
func sampleTree(t *testing.T, sample string) (*rootfs.Tree, string, string) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: end-to-end tests need the test bed")
	}
	bed, reason := testbed.Find()
	if bed == nil {
		t.Skip(reason)
	}
	if os.Geteuid() != 0 {
		t.Skip("the test runs the root sandbox (the rootless build has its own test in cmd/slimoci)")
	}
	ctx := context.Background()
	sensorBin, err := testbed.BuildSensor(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	src, err := oci.Open(ctx, oci.Reference{Transport: oci.Layout, Path: bed.Layout(sample), Tag: "latest"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	work := t.TempDir()
	tree, err := rootfs.Unpack(ctx, src.Image, filepath.Join(work, "rootfs"), nil)
	if err != nil {
		t.Fatal(err)
	}
	return tree, sensorBin, work
}

// Verify catches a broken slim image and repairs it: the python sample's build loses /app/app.py (the
// app's own source) on purpose; the slim run fails its probe, its record shows /app/app.py looked up and
// missing, it is added back, and the second image answers as the fat one.
func TestE2EBuildVerifyRepairs(t *testing.T) {
	ctx := context.Background()
	tree, sensorBin, work := sampleTree(t, "python")
	cfg := tree.Config.Config
	spec := runner.Spec{Args: append(cfg.Entrypoint, cfg.Cmd...), Env: cfg.Env, Cwd: cfg.WorkingDir, Sensor: sensorBin, AllSyscalls: true}
	plan := runner.Plan{HTTP: []runner.HTTPCommand{{Method: "GET", Resource: "/"}}, Ports: []int{8080}, ProbeTimeout: 20 * time.Second}
	runs := 0
	res, err := runPipeline(ctx, pipelineOptions{
		Tree: tree,
		Observe: func(ctx context.Context, dir string, _ int) (*runner.Observation, error) {
			runs++
			return runner.Observe(ctx, dir, spec, plan, &runner.Options{StateDir: filepath.Join(work, "sandbox", string(rune('a'+runs))), WorkRoot: filepath.Dir(work)})
		},
		Closure:  rootfs.ClosureOptions{Certs: true, Workdir: cfg.WorkingDir},
		Image:    emit.ImageOptions{Source: "python", Dir: work},
		Verify:   true,
		Sabotage: func(keep map[string][]string) { delete(keep, "/app/app.py") },
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Rounds != 2 || !slices.Contains(res.Added, "/app/app.py") || runs != 3 {
		t.Errorf("rounds %d, added %v, runs %d", res.Rounds, res.Added, runs)
	}
	if diff := Compare(res.Fat, res.Slim); len(diff) > 0 || res.Slim.Probes[0].Status != 200 {
		t.Errorf("after the repair: %v", diff)
	}
	if !slices.Contains(res.Closure.Keep["/app/app.py"], rootfs.ReasonVerify) {
		t.Errorf("/app/app.py kept for %v", res.Closure.Keep["/app/app.py"])
	}

	// With a single round allowed, the same sabotage fails the build, saying why.
	_, err = runPipeline(ctx, pipelineOptions{
		Tree: tree,
		Observe: func(ctx context.Context, dir string, _ int) (*runner.Observation, error) {
			runs++
			return runner.Observe(ctx, dir, spec, plan, &runner.Options{StateDir: filepath.Join(work, "sandbox", string(rune('a'+runs))), WorkRoot: filepath.Dir(work)})
		},
		Image: emit.ImageOptions{Source: "python", Dir: work}, Verify: true, Rounds: 1,
		Sabotage: func(keep map[string][]string) { delete(keep, "/app/app.py") },
	})
	if err == nil || !errors.Is(err, ErrVerify) {
		t.Errorf("one round: %v", err)
	}
}

// Verify runs the image's HEALTHCHECK too. The web sample's build loses libcurl, then curl itself (what its
// HEALTHCHECK runs; the server never runs curl) on purpose: the slim image is unhealthy where the fat one was
// healthy, and verify adds each back from what the slim run looked for and missed (the loader's library
// search; the sensor's PATH search for the probe's program). With one round, the build fails saying why.
func TestE2EBuildVerifyHealthcheck(t *testing.T) {
	ctx := context.Background()
	tree, sensorBin, work := sampleTree(t, "web")
	cfg := tree.Config.Config
	spec := runner.Spec{Args: append(cfg.Entrypoint, cfg.Cmd...), Env: cfg.Env, Cwd: cfg.WorkingDir, Sensor: sensorBin, AllSyscalls: true}
	plan := runner.Plan{HTTP: []runner.HTTPCommand{{Method: "GET", Resource: "/"}}, Ports: []int{8080}, ProbeTimeout: 20 * time.Second,
		Healthcheck: runner.HealthcheckFromConfig(cfg.Healthcheck)}
	runs := 0
	build := func(lose string, rounds int) (*pipelineResult, error) {
		return runPipeline(ctx, pipelineOptions{
			Tree: tree,
			Observe: func(ctx context.Context, dir string, _ int) (*runner.Observation, error) {
				runs++
				return runner.Observe(ctx, dir, spec, plan, &runner.Options{StateDir: filepath.Join(work, "sandbox", fmt.Sprint(runs)), WorkRoot: filepath.Dir(work)})
			},
			// Nothing included by hand: httpd's chdir into its symlinked document root is recorded.
			Closure:  rootfs.ClosureOptions{Certs: true},
			Image:    emit.ImageOptions{Source: "web", Dir: work},
			Verify:   true,
			Rounds:   rounds,
			Sabotage: func(keep map[string][]string) { delete(keep, lose) },
		})
	}
	for _, lose := range []string{"/usr/lib/x86_64-linux-gnu/libcurl.so.4.8.0", "/usr/bin/curl"} {
		runs = 0
		res, err := build(lose, 3)
		if err != nil {
			t.Fatalf("losing %s: %v", lose, err)
		}
		if !res.Fat.Healthcheck.OK() || !slices.Contains(res.Closure.Keep["/usr/bin/curl"], ReasonHealthcheck) {
			t.Errorf("fat healthcheck %+v; curl kept for %v", res.Fat.Healthcheck, res.Closure.Keep["/usr/bin/curl"])
		}
		if res.Rounds != 2 || len(res.Added) == 0 || res.Closure.Keep[lose] == nil || runs != 3 {
			t.Errorf("losing %s: rounds %d, added %v, kept for %v, runs %d", lose, res.Rounds, res.Added, res.Closure.Keep[lose], runs)
		}
		if diff := Compare(res.Fat, res.Slim); len(diff) > 0 || !res.Slim.Healthcheck.OK() {
			t.Errorf("losing %s, after the repair: %v, slim healthcheck %+v", lose, diff, res.Slim.Healthcheck)
		}
	}
	_, err := build("/usr/bin/curl", 1)
	if !errors.Is(err, ErrVerify) || !strings.Contains(err.Error(), "healthcheck curl -fsS -o /dev/null http://127.0.0.1:8080/: unhealthy (exit 127), the fat image was healthy") {
		t.Errorf("without curl, one round: %v", err)
	}
}

// A real pull: the python sample from the test bed's registry (the real docker-registry), built through
// the library and pushed back. The events come in order, each stage started then finished, the unpack's
// bytes growing to the manifest's compressed size, the push's bytes reported; the channel is closed at the
// end; the result's digest is the pushed manifest's.
func TestE2EBuildProgressFromRegistry(t *testing.T) {
	_, sensorBin, _ := sampleTree(t, "python")
	bed, _ := testbed.Find()
	reg, err := testbed.StartRegistry()
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Stop()
	ctx := context.Background()
	if err := reg.Push(ctx, "oci:"+bed.Layout("python")+":latest", "samples/python:progress", false); err != nil {
		t.Fatal(err)
	}
	src := reg.Addr + "/samples/python:progress"
	dest, err := oci.ParseDestination(reg.Addr + "/samples/python.slim:progress")
	if err != nil {
		t.Fatal(err)
	}
	events := make(chan Event)
	var got []Event
	done := make(chan struct{})
	go func() {
		defer close(done)
		for e := range events {
			got = append(got, e)
		}
	}()
	res, err := Build(ctx, src, &BuildOptions{
		JobOptions: JobOptions{StateDir: t.TempDir(), OCI: &oci.Options{Insecure: true}, Progress: events},
		Run: RunOptions{
			Spec:   runner.Spec{Sensor: sensorBin, AllSyscalls: true},
			Plan:   runner.Plan{ProbeTimeout: 30 * time.Second},
			Config: runner.ConfigOptions{HTTPProbe: true},
		},
		Keep:         rootfs.ClosureOptions{Certs: true},
		Destinations: []Destination{{Reference: dest}},
	})
	if err != nil {
		t.Fatal(err)
	}
	<-done // closed by Build

	srcImg, err := oci.Open(ctx, oci.Reference{Transport: oci.Registry, Name: src}, &oci.Options{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	defer srcImg.Close()
	m, _ := srcImg.Image.Manifest()
	var compressed int64
	for _, l := range m.Layers {
		compressed += l.Size
	}
	var order []Stage
	open := map[Stage]bool{}
	var read, pushed int64
	for _, e := range got {
		switch e.Kind {
		case Started:
			if open[e.Stage] {
				t.Errorf("%s started twice without finishing", e.Stage)
			}
			open[e.Stage] = true
			if len(order) == 0 || order[len(order)-1] != e.Stage {
				order = append(order, e.Stage)
			}
		case Finished:
			if !open[e.Stage] {
				t.Errorf("%s finished without starting", e.Stage)
			}
			open[e.Stage] = false
		case Progressed:
			if !open[e.Stage] {
				t.Errorf("%s progressed outside its start and finish: %+v", e.Stage, e)
			}
			switch e.Stage {
			case StageUnpack:
				if e.Complete < read || e.Total != compressed || e.Complete > e.Total {
					t.Errorf("unpack progress %+v after %d read, want a total of %d", e, read, compressed)
				}
				read = e.Complete
			case StagePush:
				pushed = max(pushed, e.Complete)
			}
		}
	}
	want := []Stage{StageUnpack, StageObserve, StageClosure, StageEmit, StageVerify, StagePush}
	if !slices.Equal(order, want) || read != compressed || pushed == 0 {
		t.Errorf("stages %v (want %v), %d of %d bytes read, %d pushed", order, want, read, compressed, pushed)
	}
	raw, err := testbed.Skopeo(ctx, "inspect", "--tls-verify=false", "--raw", "docker://"+dest.Name)
	if err != nil {
		t.Fatal(err)
	}
	if d := fmt.Sprintf("sha256:%x", sha256.Sum256(raw)); d != res.Digest {
		t.Errorf("pushed %s, the result says %s", d, res.Digest)
	}
}
