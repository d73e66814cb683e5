package runner

import (
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Healthcheck is the image's HEALTHCHECK as the sandbox runs it: an exec probe the image itself declares.
type Healthcheck struct {
	// Args is what the runtime executes (see HealthcheckFromConfig).
	Args []string `json:"args"`
	// Interval, Timeout, StartPeriod and Retries are the image's, Docker's defaults filled in (30 s, 30 s,
	// 0, 3). Observe shortens the interval and caps the timeout: see Plan.Healthcheck.
	Interval    time.Duration `json:"intervalNs"`
	Timeout     time.Duration `json:"timeoutNs"`
	StartPeriod time.Duration `json:"startPeriodNs"`
	Retries     int           `json:"retries"`
}

// Docker's HEALTHCHECK defaults, which podman shares.
const (
	DefaultHealthInterval = 30 * time.Second
	DefaultHealthTimeout  = 30 * time.Second
	DefaultHealthRetries  = 3
)

// HealthcheckInterval is the longest Observe waits between two runs of the healthcheck: the image's interval
// shortened (a runtime waits 30 s by default, an observation should not).
const HealthcheckInterval = time.Second

// Health statuses, as the runtimes name them.
const (
	Healthy   = "healthy"
	Unhealthy = "unhealthy"
)

// HealthcheckFromConfig translates an image config's HEALTHCHECK as podman runs it (libpod's
// runHealthCheck): ["CMD", args...] runs args; ["CMD-SHELL", cmd] runs /bin/sh -c cmd (the image's SHELL is
// not used, by podman either); any other first word runs Test as it is. No config, an empty Test, ["NONE"]
// and a CMD with nothing to run mean no healthcheck: nil. Durations and retries that are zero or negative
// get Docker's defaults.
func HealthcheckFromConfig(hc *v1.HealthConfig) *Healthcheck {
	if hc == nil || len(hc.Test) == 0 {
		return nil
	}
	var args []string
	switch hc.Test[0] {
	case "", "NONE":
		return nil
	case "CMD":
		args = hc.Test[1:]
	case "CMD-SHELL":
		args = []string{"/bin/sh", "-c", strings.Join(hc.Test[1:], " ")}
	default:
		args = hc.Test
	}
	if len(args) == 0 || args[0] == "" {
		return nil
	}
	h := &Healthcheck{
		Args: append([]string(nil), args...), Interval: hc.Interval, Timeout: hc.Timeout,
		StartPeriod: max(hc.StartPeriod, 0), Retries: hc.Retries,
	}
	if h.Interval <= 0 {
		h.Interval = DefaultHealthInterval
	}
	if h.Timeout <= 0 {
		h.Timeout = DefaultHealthTimeout
	}
	if h.Retries <= 0 {
		h.Retries = DefaultHealthRetries
	}
	return h
}

// HealthcheckResult is what running the healthcheck gave, for the record.
type HealthcheckResult struct {
	Healthcheck
	// Status is Healthy when the last round of runs ended with one that passed, Unhealthy otherwise.
	Status string `json:"status"`
	// Runs are every run, in order, with their exit codes.
	Runs []ExecResult `json:"runs"`
	// Files are the image's paths the runs used, with their ops (they are in the observation's record too).
	Files map[string][]string `json:"files,omitempty"`
}

// OK reports whether the image was healthy.
func (r *HealthcheckResult) OK() bool { return r != nil && r.Status == Healthy }

// Last is the last run, or nil.
func (r *HealthcheckResult) Last() *ExecResult {
	if r == nil || len(r.Runs) == 0 {
		return nil
	}
	return &r.Runs[len(r.Runs)-1]
}
