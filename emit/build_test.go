package emit

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

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

// Verify catches a broken slim image and repairs it: the python sample's build loses /app/app.py (the
// app's own source) on purpose; the slim run fails its probe, its record shows /app/app.py looked up and
// missing, it is added back, and the second image answers as the fat one.
func TestE2EBuildVerifyRepairs(t *testing.T) {
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
	src, err := oci.Open(ctx, oci.Reference{Transport: oci.Layout, Path: bed.Layout("python"), Tag: "latest"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	work := t.TempDir()
	tree, err := rootfs.Unpack(ctx, src.Image, filepath.Join(work, "rootfs"), nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := tree.Config.Config
	spec := runner.Spec{Args: append(cfg.Entrypoint, cfg.Cmd...), Env: cfg.Env, Cwd: cfg.WorkingDir, Sensor: sensorBin, AllSyscalls: true}
	plan := runner.Plan{HTTP: []runner.HTTPCommand{{Method: "GET", Resource: "/"}}, Ports: []int{8080}, ProbeTimeout: 20 * time.Second}
	runs := 0
	res, err := Build(ctx, BuildOptions{
		Tree: tree,
		Observe: func(ctx context.Context, dir string) (*runner.Observation, error) {
			runs++
			return runner.Observe(ctx, dir, spec, plan, &runner.Options{StateDir: filepath.Join(work, "sandbox", string(rune('a'+runs))), WorkRoot: filepath.Dir(work)})
		},
		Closure:  rootfs.ClosureOptions{Certs: true, Workdir: cfg.WorkingDir},
		Image:    ImageOptions{Source: "python", Dir: work},
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
	_, err = Build(ctx, BuildOptions{
		Tree: tree,
		Observe: func(ctx context.Context, dir string) (*runner.Observation, error) {
			runs++
			return runner.Observe(ctx, dir, spec, plan, &runner.Options{StateDir: filepath.Join(work, "sandbox", string(rune('a'+runs))), WorkRoot: filepath.Dir(work)})
		},
		Image: ImageOptions{Source: "python", Dir: work}, Verify: true, Rounds: 1,
		Sabotage: func(keep map[string][]string) { delete(keep, "/app/app.py") },
	})
	if err == nil || !errors.Is(err, ErrVerify) {
		t.Errorf("one round: %v", err)
	}
}
