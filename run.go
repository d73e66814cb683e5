package slimoci

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/slimoci/slimoci/internal/termsafe"
	"github.com/slimoci/slimoci/oci"
	"github.com/slimoci/slimoci/rootfs"
	"github.com/slimoci/slimoci/runner"
)

// RunOptions say how the app is run and exercised; Build and Profile share them.
type RunOptions struct {
	// Spec is the sandbox: the sensor (required), limits, mounts, network, publishing. Its command,
	// environment, user and working directory are the image's (see runner.FromConfig), not set here.
	Spec runner.Spec
	// Plan is how the app is exercised: probes, exec probes, host commands, when to stop. The ports, the
	// default GET / probe, the stop signal and the HEALTHCHECK come from the image (Config says how).
	Plan runner.Plan
	// Config says how the image's config becomes the run: docker run's overrides, the HEALTHCHECK, HTTP
	// probing.
	Config runner.ConfigOptions
	// Output, when set, receives the app's output as it runs (--show-clogs). Either way its last 64 KiB are
	// kept for the error of a run that fails.
	Output io.Writer
	// EmulationFactor multiplies the run's time bounds (runner.Plan.Scaled, runner.Spec.Scaled) when the
	// image's platform runs under emulation; 0 means DefaultEmulationFactor.
	EmulationFactor float64
}

// DefaultEmulationFactor is how much longer than a native run an emulated one is given: under qemu-user the
// python sample's first answer came 4-8 times later than natively (runner's TestE2EEmulatedAppObserved logs
// the ratio), and apps that compile at run time (java, node) are slower still; 8 makes the default probe
// timeout (60 s) 8 minutes. A bound only costs time when the app fails.
const DefaultEmulationFactor = 8

// JobOptions are what every job takes besides its own options.
type JobOptions struct {
	// StateDir gets the artifacts (report.json, the profiles, ...); default "slimoci-state".
	StateDir string
	// Report is also where report.json goes; "off" writes none, not even StateDir's.
	Report string
	// WorkDir is where the unpacked image and the sandboxes' files go while the job runs (removed at the
	// end); "" picks /dev/shm when it is a tmpfs with room, else StateDir.
	WorkDir string
	// OCI are the options for reading and writing images (registry access, platform, jobs).
	OCI *oci.Options
	// Progress, when set, receives the job's events in order; the job closes it when it returns.
	Progress chan<- Event
	// Logger gets the job's logs (default: none).
	Logger *slog.Logger
}

// ReportOff is JobOptions.Report's value that writes no report.
const ReportOff = "off"

func (j *JobOptions) fill() {
	if j.StateDir == "" {
		j.StateDir = "slimoci-state"
	}
	if j.OCI == nil {
		j.OCI = &oci.Options{}
	}
	if j.Logger == nil {
		j.Logger = slog.New(slog.DiscardHandler)
	}
	if j.OCI.Logger == nil {
		j.OCI.Logger = j.Logger
	}
}

// writeReport writes a job's report to the state directory and to Report's file; Report "off" writes
// neither. It returns where the report went ("" for nowhere), for messages.
func (j *JobOptions) writeReport(v any) (string, error) {
	if j.Report == ReportOff {
		return "", nil
	}
	where := filepath.Join(j.StateDir, "report.json")
	if err := writeJSON(where, v); err != nil {
		return "", err
	}
	if j.Report != "" {
		if err := writeJSON(j.Report, v); err != nil {
			return "", fmt.Errorf("writing the report to %s: %w", j.Report, err)
		}
		where = j.Report
	}
	return where, nil
}

// run is one prepared observation of an app: the options completed from the image.
type run struct {
	spec runner.Spec
	plan runner.Plan
	user runner.User
	out  *tail
	// workRoot is the per-user work directory the sandboxes' state directories are under.
	workRoot string
	logger   *slog.Logger
	// emulated: the image's platform runs under emulation, and the plan's bounds are scaled.
	emulated bool
}

// prepare completes the run from the unpacked image's config with cfg (o.Config, or verify's).
func (o *RunOptions) prepare(tree *rootfs.Tree, cfg runner.ConfigOptions, w *work, logger *slog.Logger) (*run, error) {
	r := &run{spec: o.Spec, plan: o.Plan, out: &tail{}, workRoot: w.private, logger: logger}
	var out io.Writer = r.out
	if o.Output != nil {
		out = io.MultiWriter(r.out, o.Output)
	}
	r.spec.Stdout, r.spec.Stderr = out, out
	if r.plan.ExecOutput == nil {
		r.plan.ExecOutput = out
	}
	var err error
	if r.user, err = runner.FromConfig(tree, cfg, &r.spec, &r.plan); err != nil {
		return nil, err
	}
	if r.spec.Emulator, err = emulator(tree); err != nil {
		return nil, err
	}
	if r.emulated = r.spec.Emulator != nil; r.emulated {
		f := o.EmulationFactor
		if f <= 0 {
			f = DefaultEmulationFactor
		}
		r.plan, r.spec = r.plan.Scaled(f), r.spec.Scaled(f)
	}
	return r, nil
}

// observe runs the app over treeDir, with its state in stateDir.
func (r *run) observe(ctx context.Context, treeDir, stateDir string) (*runner.Observation, error) {
	obs, err := runner.Observe(ctx, treeDir, r.spec, r.plan, &runner.Options{StateDir: stateDir, WorkRoot: r.workRoot, Logger: r.logger})
	if err != nil && obs == nil {
		if ctx.Err() == nil && strings.TrimSpace(r.out.String()) != "" {
			return nil, appError{fmt.Errorf("%w (the app said: %s)", err, termsafe.String(lastLine(r.out.String())))}
		}
		return nil, err
	}
	// With a limit hit or a full record, the observation comes with the error: the caller reports both.
	return obs, err
}

// work is an image opened and unpacked into a work directory of its own.
type work struct {
	src *oci.Source
	dir string
	// private is the per-user directory dir is in: the sandboxes' WorkRoot.
	private string
	tree    *rootfs.Tree
}

// close removes the work directory and closes the source.
func (w *work) close() {
	if w.dir != "" {
		rootfs.RemoveTree(w.dir)
	}
	w.src.Close()
}

// openAndUnpack opens image and unpacks it into a new work directory under j.WorkDir (see workParent). The
// caller closes the result, whatever happens after.
func openAndUnpack(ctx context.Context, image string, j *JobOptions, p *progress) (_ *work, err error) {
	ref, err := oci.ParseReference(image)
	if err != nil {
		return nil, err
	}
	// Rootless (slimoci in a container, a CI runner): a sandbox this process cannot make fails now, in one
	// line saying which relaxation is missing, before anything is pulled.
	if os.Geteuid() != 0 {
		if err := runner.Preflight(); err != nil {
			return nil, err
		}
	}
	src, err := oci.Open(ctx, ref, j.OCI)
	if err != nil {
		return nil, err
	}
	w := &work{src: src}
	defer func() {
		if err != nil {
			w.close()
		}
	}()
	if err := os.MkdirAll(j.StateDir, 0o755); err != nil {
		return nil, fmt.Errorf("making the state directory: %w", err)
	}
	parent := j.WorkDir
	if parent == "" {
		parent = workParent(src, j.StateDir, j.Logger)
	}
	// Work directories go in a directory of this user's that no one else can enter (/dev/shm/slimoci-UID):
	// in /dev/shm, anyone could otherwise plant what the clean-up of a killed run's directory would follow.
	if w.private, err = runner.PrivateDir(parent); err != nil {
		return nil, fmt.Errorf("%w (--work-dir names another place)", err)
	}
	removed, err := runner.CleanStale(w.private)
	for _, p := range removed {
		j.Logger.Warn("removed the work directory of a slimoci that was killed", "path", p)
	}
	if err != nil {
		j.Logger.Warn("could not remove what a killed slimoci left", "err", err)
	}
	if w.dir, err = os.MkdirTemp(w.private, runner.WorkPattern()); err != nil {
		return nil, err
	}
	// The run's directory is as private as its parent (a sandbox's root gets search only: see
	// runner.Options.WorkRoot).
	if err := os.Chmod(w.dir, runner.PrivateDirMode); err != nil {
		return nil, err
	}
	// The tree in a directory of its own that only slimoci may enter: a sandbox's root may search the run's
	// directory to reach its state directory, never the tree, whose setuid files are the image's.
	fat := filepath.Join(w.dir, "fat")
	if err := os.Mkdir(fat, 0o700); err != nil {
		return nil, err
	}
	ropts := &rootfs.Options{Logger: j.Logger}
	if p != nil && p.ch != nil {
		ropts.Progress = func(u rootfs.Progress) {
			p.send(Event{Stage: StageUnpack, Kind: Progressed, Complete: u.Read, Total: u.Total, Unit: "bytes", Files: u.Files})
		}
	}
	if w.tree, err = rootfs.Unpack(ctx, src.Image, filepath.Join(fat, "rootfs"), ropts); err != nil {
		return nil, fmt.Errorf("unpacking %s: %w", src.Ref, err)
	}
	return w, nil
}

// shm is the tmpfs workParent prefers.
const shm = "/dev/shm"

// workParent picks where the unpacked trees and the sandboxes' files go: /dev/shm when it is a tmpfs with
// room for them (the fat tree and a verify tree, each taken as 4x the compressed layers, plus 256 MiB), since
// creating tens of thousands of files there is several times faster than on a disk (node's unpack: 2.1 s on
// tmpfs, 10-12 s on this machine's ext4, as slow with tar); otherwise the state directory.
func workParent(src *oci.Source, stateDir string, logger *slog.Logger) string {
	var st unix.Statfs_t
	if err := unix.Statfs(shm, &st); err != nil || st.Type != unix.TMPFS_MAGIC || unix.Access(shm, unix.W_OK) != nil {
		return stateDir
	}
	m, err := src.Image.Manifest()
	if err != nil {
		return stateDir
	}
	var compressed int64
	for _, l := range m.Layers {
		compressed += l.Size
	}
	if need := 2*4*compressed + 256<<20; int64(st.Bavail)*st.Bsize < need {
		logger.Debug("work directory on the state path: /dev/shm is too small", "need", need)
		return stateDir
	}
	return shm
}

// tail keeps the last 64 KiB an app wrote, for error messages.
type tail struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > 64<<10 {
		t.buf = t.buf[len(t.buf)-64<<10:]
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
