package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/slimoci/slimoci/sensor"
)

// Plan says how to exercise the app and when to stop it.
type Plan struct {
	// HTTP probes run in order; a command with Port 0 is sent to each of Ports.
	HTTP  []HTTPCommand
	Ports []int
	// Exec probes run in the sandbox, in order, after the HTTP probes.
	Exec [][]string
	// HostExec are the user's shell lines run on the host, in order, after the exec probes (see
	// hostExecStep): each with HostExecPorts, the app's ports, reachable on the host's loopback
	// (SLIMOCI_PORT_<port>, SLIMOCI_ADDR), in HostExecEnv (nil: slimoci's environment), for at most
	// HostExecTimeout (0: DefaultHostExecTimeout). One that fails fails the observation (ProbeError).
	HostExec        []string
	HostExecPorts   []int
	HostExecEnv     []string
	HostExecTimeout time.Duration
	// Healthcheck, when set, is the image's HEALTHCHECK, run in the sandbox as the runtime would run it
	// (an exec probe: as the app's user, recorded and merged likewise), with the image's timeout capped by
	// Spec.ExecTimeout and its interval shortened to at most HealthcheckInterval. It runs in two rounds: after
	// the HTTP probes (the app is up, as a runtime finds it once the start period is over) and, when it was
	// healthy, once more after the exec probes (the runtime's next interval: a check that behaves differently
	// the second time is seen doing so). A round runs it until it passes, or until it failed Retries times in a
	// row; in the first round failures within the start period do not count: the image's StartPeriod capped
	// at ProbeTimeout, or ProbeTimeout itself when no HTTP probe ran (the check is then what waits for the app).
	// Not at the sandbox's start: the app would still be starting, and the run would depend on timing.
	Healthcheck *Healthcheck
	// ProbeTimeout bounds how long HTTP probes wait for the app to take connections (all of them together,
	// from the first probe); Probe says how they are sent, retried and judged once it does.
	ProbeTimeout time.Duration
	Probe        ProbePolicy
	// Crawl says which probes' pages are crawled, and how far (see CrawlOptions); APISpecs are OpenAPI
	// documents fetched from the app after the probes, on each of Ports, whose operations are then probed
	// (see APISpec).
	Crawl    CrawlOptions
	APISpecs []APISpec
	// ContinueAfter is one of the After modes or a number of seconds, or several joined by & (see
	// ParseContinueAfter), done in order; the steps it does not name are added as continueSteps says: by
	// default the HTTP probes, then the exec probes, then the host commands. The HEALTHCHECK's first round
	// follows the HTTP probes, its second the last step. "" picks: probe when there are probes, app-exit
	// otherwise.
	ContinueAfter string
	// Timeout bounds the whole observation from the sandbox's start: probes, exec probes and every wait
	// (app-exit, enter, signal); it is the wait of "timeout". When it ends the app is stopped as usual. 0
	// means 10 minutes.
	Timeout time.Duration
	// StopSignal asks the app to stop (SIGTERM when nil); after StopTimeout (10 s when 0) it is killed.
	StopSignal  os.Signal
	StopTimeout time.Duration
	// Enter and Signal serve the enter and signal modes.
	Enter  io.Reader
	Signal <-chan os.Signal
	// ExecOutput receives the exec probes' output (nil discards it).
	ExecOutput io.Writer
	// Published, when set, is told the host addresses of Spec.Publish once they are bound (before the probes).
	Published func([]PublishedPort)
	// Status, when set, is told what the observation does and waits for as it goes (see Status), one call
	// at a time, from the observation's goroutines: it must return quickly (the probes wait for it).
	Status func(Status)
}

// Observation is what one observed run of an app gave.
type Observation struct {
	Probes []ProbeResult `json:"probes"`
	// ProbeFailure, when set, is why the HTTP probes fail the observation under Plan.Probe: a probe whose
	// last attempt got a status failed by FailOn4xx or FailOn5xx (stricter than mint, where only no
	// successful call fails), or MaxFailures failed probes. ProbeError returns it.
	ProbeFailure string `json:"probeFailure,omitempty"`
	// ProbeFailuresAllowed is Plan.Probe.FailuresAllowed: ProbeError does not count the HTTP probes.
	ProbeFailuresAllowed bool         `json:"probeFailuresAllowed,omitempty"`
	Execs                []ExecResult `json:"execProbes,omitempty"`
	// HostExecs are the host commands' results (Plan.HostExec); HostExecPorts where they found the app's
	// ports.
	HostExecs     []HostExecResult `json:"hostExec,omitempty"`
	HostExecPorts []PublishedPort  `json:"hostExecPorts,omitempty"`
	// Healthcheck is the image's HEALTHCHECK's runs and status when Plan.Healthcheck was set.
	Healthcheck *HealthcheckResult `json:"healthcheck,omitempty"`
	// Record is the sensor's record of the app and the exec probes, minus the files that are not the
	// image's (see NotImage).
	Record *sensor.Record `json:"record"`
	// NotImage are recorded paths that are not the image's: the runtime's /etc/hosts, /etc/hostname and
	// /etc/resolv.conf, and what is under --mount destinations.
	NotImage []string `json:"notImage,omitempty"`
	// Written are the paths the app created or changed (from the overlay's upper directory; rootless, the
	// copy's entries that differ from the tree), at most MaxWritten of them; WrittenDropped > 0 says there were more.
	Written        []string `json:"written,omitempty"`
	WrittenDropped int      `json:"writtenDropped,omitempty"`
	// ContinuedAfter says what ended the observation: the --continue-after value (probe, exec, host-exec,
	// app-exit, enter, signal, a duration, several joined by &), or timeout when the observation's time ran
	// out while it waited.
	ContinuedAfter string `json:"continuedAfter"`
	// AppExited is true when the app exited by itself before it was asked to stop; Killed when it ignored
	// the stop signal and was killed.
	AppExited bool          `json:"appExited"`
	Killed    bool          `json:"killed"`
	ExitCode  int           `json:"exitCode"`
	Duration  time.Duration `json:"durationNs"`
	// FirstAnswer is the time from the sandbox's start to the first HTTP answer (what make bench-sensor
	// compares with podman).
	FirstAnswer time.Duration `json:"firstAnswerNs,omitempty"`
	// Crawl is what the crawl from the probed pages did (Plan.Crawl), when one ran; its pages are no probes.
	Crawl *CrawlReport `json:"crawl,omitempty"`
	// Rootless is true when the sandbox ran unprivileged: in a user namespace with one id mapped, the app as
	// root inside it, on a copy of the tree.
	Rootless bool `json:"rootless"`
	// LimitsHit names the sandbox limits the app ran into (then Observe also returns ErrLimit).
	LimitsHit []string `json:"limitsHit,omitempty"`
	// Published are the host addresses Spec.Publish relayed to the app's ports.
	Published []PublishedPort `json:"published,omitempty"`
}

// ProbesOK counts the probes that succeeded and the probes run (HTTP, exec, host commands, the HEALTHCHECK).
func (o *Observation) ProbesOK() (ok, total int) {
	for _, p := range o.Probes {
		if p.OK() {
			ok++
		}
	}
	for _, e := range o.Execs {
		if e.OK() {
			ok++
		}
	}
	for _, h := range o.HostExecs {
		if h.OK() {
			ok++
		}
	}
	total = len(o.Probes) + len(o.Execs) + len(o.HostExecs)
	if o.Healthcheck != nil {
		total++
		if o.Healthcheck.OK() {
			ok++
		}
	}
	return ok, total
}

// ProbeError fails an observation whose probes all failed (none run is no failure): a slim image made from
// it would be useless; one whose HTTP probes fail under the probe policy (ProbeFailure); and one with a
// failed host command.
func (o *Observation) ProbeError() error {
	if o.ProbeFailure != "" {
		return errors.New(o.ProbeFailure)
	}
	if err := o.hostExecError(); err != nil {
		return err
	}
	ok, total := o.ProbesOK()
	if o.ProbeFailuresAllowed {
		for _, p := range o.Probes {
			total--
			if p.OK() {
				ok--
			}
		}
	}
	switch {
	case total == 0 || ok > 0:
		return nil
	case o.AppExited:
		return fmt.Errorf("every probe failed: the app exited with code %d before answering (see report.json; --show-clogs shows its output)", o.ExitCode)
	}
	return errors.New("every probe failed: the app was not exercised, a slim image made from this run would be useless")
}

// Observe runs spec over tree in a sandbox with the sensor, exercises it with plan's probes, waits as plan
// says, stops it, and returns what was seen. The sandbox is gone when it returns, whatever happened; when
// ctx ends (Ctrl-C) the app is killed and ctx's error returned. When the app hit a limit (ErrLimit) or
// filled the record (ErrRecordLimit), the observation is returned with the error, for the report.
func Observe(ctx context.Context, tree string, spec Spec, plan Plan, o *Options) (*Observation, error) {
	if spec.Sensor == "" {
		return nil, errors.New("observing needs the sensor")
	}
	if plan.Timeout <= 0 {
		plan.Timeout = 10 * time.Minute
	}
	if plan.StopTimeout <= 0 {
		plan.StopTimeout = 10 * time.Second
	}
	if plan.StopSignal == nil {
		plan.StopSignal = syscall.SIGTERM
	}
	mode := plan.ContinueAfter
	if mode == "" {
		mode = AfterAppExit
		if len(plan.Exec) > 0 || plan.Healthcheck != nil || (len(plan.HTTP) > 0 && len(plan.Ports) > 0) || len(plan.HostExec) > 0 {
			mode = AfterProbe
		}
	}
	modes, err := continueModes(mode)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	s, err := Start(ctx, tree, spec, o)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	s.status = newStatus(plan.Status)
	if s.rootless {
		s.status.say("sandbox started (rootless: in a user namespace, on a copy of the tree)")
	} else {
		s.status.say("sandbox started")
	}
	obs := &Observation{ContinuedAfter: continuedAfter(modes)}
	if len(spec.Publish) > 0 {
		pub, stop, err := s.publish(ctx, spec.Publish)
		if err != nil {
			return nil, err
		}
		defer stop()
		obs.Published = pub
		if plan.Published != nil {
			plan.Published(pub)
		}
	}
	var recs []*sensor.Record
	// octx ends with the observation's time (the app is then stopped as usual), ctx with the caller's.
	octx, ocancel := context.WithTimeout(ctx, plan.Timeout)
	defer ocancel()

	steps := continueSteps(modes)
	last := 0
	for i, st := range steps {
		if isStep(st) {
			last = i
		}
	}
	var healthRecs []*sensor.Record
	for i, st := range steps {
		switch st {
		case AfterProbe:
			obs.Probes, obs.FirstAnswer, obs.Crawl = s.probeAll(octx, plan, start)
			obs.ProbeFailure, obs.ProbeFailuresAllowed = probeVerdict(plan.Probe, obs.Probes), plan.Probe.FailuresAllowed
			if hc := plan.Healthcheck; hc != nil {
				obs.Healthcheck = &HealthcheckResult{Healthcheck: *hc, Status: Unhealthy}
				grace := min(hc.StartPeriod, plan.ProbeTimeout)
				if len(obs.Probes) == 0 {
					grace = plan.ProbeTimeout
				}
				healthRecs = s.healthRound(octx, obs.Healthcheck, grace, plan.ExecOutput)
			}
		case AfterExec:
			for _, args := range plan.Exec {
				if octx.Err() != nil || s.Exited() {
					break
				}
				done := s.status.wait("for the exec probe " + strings.Join(args, " "))
				res, rec := s.Exec(octx, args, plan.ExecOutput)
				done()
				s.status.say("%s", res)
				obs.Execs = append(obs.Execs, res)
				if rec != nil {
					recs = append(recs, rec)
				}
			}
		case AfterHostExec:
			stop, err := s.hostExecStep(octx, plan, obs)
			defer stop()
			if err != nil {
				return nil, err
			}
		default:
			if s.waitFor(octx, st, plan) {
				obs.ContinuedAfter = AfterTimeout
			}
		}
		if i == last && obs.Healthcheck.OK() {
			done := s.status.wait("for the HEALTHCHECK's next interval")
			select {
			case <-octx.Done():
			case <-s.done:
			case <-time.After(min(plan.Healthcheck.Interval, HealthcheckInterval)):
			}
			done()
			healthRecs = append(healthRecs, s.healthRound(octx, obs.Healthcheck, 0, plan.ExecOutput)...)
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	obs.AppExited = s.Exited()
	done := func() {}
	if !obs.AppExited {
		done = s.status.wait(fmt.Sprintf("for the app to stop (%s, killed after %s)", signalName(plan.StopSignal), plan.StopTimeout))
	}
	code, killed, err := s.Stop(plan.StopSignal, plan.StopTimeout)
	done()
	if err != nil {
		return nil, fmt.Errorf("stopping the app: %w", err)
	}
	obs.ExitCode, obs.Killed = code, killed
	switch {
	case obs.AppExited:
		s.status.say("the app had exited by itself, with %d", code)
	case killed:
		s.status.say("the app ignored %s and was killed", signalName(plan.StopSignal))
	default:
		s.status.say("the app stopped, with %d", code)
	}
	obs.Duration = time.Since(start)
	obs.LimitsHit = s.hits()
	rec, recErr := s.Record()
	err = errors.Join(limitError(obs.LimitsHit), recErr)
	if rec == nil {
		return nil, err
	}
	for _, r := range append(recs, healthRecs...) {
		merge(rec, r)
	}
	obs.Record = rec
	obs.NotImage = s.notImage(rec)
	if obs.Healthcheck != nil {
		used := &sensor.Record{Files: map[string][]string{}}
		for _, r := range healthRecs {
			merge(used, r)
		}
		s.notImage(used)
		obs.Healthcheck.Files = used.Files
	}
	obs.Rootless = s.rootless
	obs.Written, obs.WrittenDropped = s.written()
	return obs, err
}

// healthRound runs r's healthcheck until it passes, or until it failed Retries times in a row once grace
// (from the round's start) is over, the app exited or ctx ended; r gets the runs and the status. It returns
// the runs' records.
func (s *Sandbox) healthRound(ctx context.Context, r *HealthcheckResult, grace time.Duration, out io.Writer) []*sensor.Record {
	interval := min(r.Interval, HealthcheckInterval)
	timeout := min(r.Timeout, s.execTimeout())
	start := time.Now()
	var recs []*sensor.Record
	for failed := 0; ctx.Err() == nil && !s.Exited(); {
		done := s.status.wait("for the HEALTHCHECK " + strings.Join(r.Args, " "))
		res, rec := s.exec(ctx, r.Args, out, timeout, "the HEALTHCHECK's timeout, at most --exec-timeout")
		done()
		s.status.say("HEALTHCHECK run %d: %s", len(r.Runs)+1, strings.TrimPrefix(res.String(), "exec "))
		r.Runs = append(r.Runs, res)
		if rec != nil {
			recs = append(recs, rec)
		}
		if res.OK() {
			r.Status = Healthy
			return recs
		}
		r.Status = Unhealthy
		if time.Since(start) >= grace {
			failed++
		}
		if failed >= r.Retries {
			break
		}
		done = s.status.wait(fmt.Sprintf("%s for the HEALTHCHECK's next run", interval))
		select {
		case <-ctx.Done():
		case <-s.done:
		case <-time.After(interval):
		}
		done()
	}
	return recs
}

// merge adds r's files, execs and syscalls to rec.
func merge(rec, r *sensor.Record) {
	for p, ops := range r.Files {
		for _, op := range ops {
			if !slices.Contains(rec.Files[p], op) {
				rec.Files[p] = append(rec.Files[p], op)
				sort.Strings(rec.Files[p])
			}
		}
	}
	rec.Execs = append(rec.Execs, r.Execs...)
	for n, c := range r.Syscalls {
		if rec.Syscalls == nil {
			rec.Syscalls = map[string]int{}
		}
		rec.Syscalls[n] += c
	}
}

// notImage removes from rec the paths that are not the image's (the runtime's etc files, what is under
// mounts) and returns them.
func (s *Sandbox) notImage(rec *sensor.Record) []string {
	outside := []string{"/etc/hosts", "/etc/hostname", "/etc/resolv.conf", sensorDir}
	for _, m := range s.spec.Mounts {
		outside = append(outside, m.Destination)
	}
	var out []string
	for p := range rec.Files {
		for _, o := range outside {
			if p == o || strings.HasPrefix(p, o+"/") {
				out = append(out, p)
				delete(rec.Files, p)
				break
			}
		}
	}
	sort.Strings(out)
	return out
}

// written lists what the app created or changed: the overlay's upper directory; rootless, the entries of
// the copy that are not in the tree or differ from it in type, size, mode or mtime.
func (s *Sandbox) written() (out []string, dropped int) {
	dir := s.upper
	if s.rootless {
		dir = s.merged
	}
	if dir == "" {
		return nil, 0
	}
	size := 0
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || p == dir {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		if s.rootless && !changed(p, filepath.Join(s.tree, rel)) {
			return nil
		}
		name := "/" + filepath.ToSlash(rel)
		if slices.Contains(s.mountpoints, name) {
			// A mount point the runtime made; what is under it is the mount's.
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if len(out) >= MaxWritten || size+len(name) > MaxWrittenBytes {
			// The app writes what it likes: slimoci's memory and time must not grow with it.
			dropped++
			return filepath.SkipAll
		}
		size += len(name)
		out = append(out, name)
		return nil
	})
	return out, dropped
}

// The bounds of Observation.Written.
const (
	MaxWritten      = 100_000
	MaxWrittenBytes = 16 << 20
)

// changed compares an entry of the rootless copy with the tree's.
func changed(copied, orig string) bool {
	a, err := os.Lstat(copied)
	if err != nil {
		return false
	}
	b, err := os.Lstat(orig)
	if err != nil {
		return true
	}
	if a.IsDir() && b.IsDir() {
		return a.Mode() != b.Mode()
	}
	return a.Mode() != b.Mode() || a.Size() != b.Size() || !a.ModTime().Equal(b.ModTime())
}
