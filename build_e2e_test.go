package slimoci

import (
	"context"
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
