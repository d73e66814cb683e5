package main

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/alecthomas/kong"

	"github.com/slimoci/slimoci/runner"
)

// ProbeFlags are mint's HTTP probe options beyond the probe commands themselves: uploads, retries, and the
// failure policy (see runner.ProbePolicy for how they combine with --probe-timeout).
type ProbeFlags struct {
	HTTPProbeCmdUpload          []string `help:"An HTTP probe that POSTs a multipart form with one file: a host FILE, or generate.text, generate.text.json, generate.image (PNG), generate.image.png, .jpeg or .gif; generate.text when empty (repeatable; sent after --http-probe-cmd)." sep:"none" placeholder:"[[[[[PROTO:]FORM_FILE_NAME:]FORM_FIELD_NAME:]FILE_OR_GENERATE_TYPE:]/PATH"`
	HTTPProbeRetryCount         number   `help:"How many times each HTTP probe is sent once the app takes connections, until it succeeds (-1: the default 5, as mint; 0: once)." default:"5" placeholder:"N"`
	HTTPProbeRetryWait          seconds  `help:"Seconds between two attempts of an HTTP probe (or a duration: 500ms)." default:"8" placeholder:"SECONDS"`
	HTTPProbeStartWait          seconds  `help:"Seconds from the app's start to the first HTTP probe (or a duration)." default:"0" placeholder:"SECONDS"`
	HTTPProbeClientTimeout      seconds  `help:"Seconds one attempt of an HTTP probe may take, its answer included (or a duration; 0: 30 s, as mint)." default:"0" placeholder:"SECONDS"`
	HTTPProbeConcurrency        int      `help:"How many HTTP probes are sent at once (1: one after the other, in order, as mint sends its commands whatever its default of 5 says)." default:"1" placeholder:"N"`
	HTTPProbeFailOnStatus5xx    bool     `name:"http-probe-fail-on-status-5xx" help:"A 5xx answer is a failed attempt: retried, and a probe whose last attempt gets one fails the observation (stricter than mint, which fails only when no call succeeded)."`
	HTTPProbeFailOnStatus4xx    bool     `name:"http-probe-fail-on-status-4xx" help:"A 4xx answer is a failed attempt, as --http-probe-fail-on-status-5xx."`
	HTTPProbeExitOnFailure      bool     `help:"Fail when every probe failed (--no-http-probe-exit-on-failure: failed HTTP probes never fail the observation; what they did not reach is not kept)." default:"true" negatable:""`
	HTTPProbeExitOnFailureCount number   `help:"Stop probing once N HTTP probes failed, and fail (0: never stop)." default:"0" placeholder:"N"`
}

// seconds is a flag value in mint's whole seconds ("8"), or a Go duration ("500ms").
type seconds time.Duration

// Decode reads "8" or "500ms".
func (s *seconds) Decode(ctx *kong.DecodeContext) error {
	v, err := popNumber(ctx, "seconds")
	if err != nil {
		return err
	}
	d, err := parseSeconds(v)
	if err != nil {
		return err
	}
	*s = seconds(d)
	return nil
}

// number is an int flag that also takes a negative value as its own word, as mint's flags do
// (--http-probe-retry-count -1): kong would take "-1" for a short flag.
type number int

// Decode reads an integer.
func (n *number) Decode(ctx *kong.DecodeContext) error {
	v, err := popNumber(ctx, "int")
	if err != nil {
		return err
	}
	i, err := strconv.Atoi(v)
	if err != nil {
		return fmt.Errorf("%q: want a whole number", v)
	}
	*n = number(i)
	return nil
}

// popNumber pops a flag's value, taking a word that starts with a minus and a digit ("-1", "-2s") as one.
func popNumber(ctx *kong.DecodeContext, what string) (string, error) {
	if t := ctx.Scan.Peek(); t.Type == kong.UntypedToken && len(t.String()) > 1 && t.String()[0] == '-' && t.String()[1] >= '0' && t.String()[1] <= '9' {
		ctx.Scan.Pop()
		return t.String(), nil
	}
	var v string
	err := ctx.Scan.PopValueInto(what, &v)
	return v, err
}

// parseSeconds reads whole seconds or a Go duration, never negative.
func parseSeconds(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if n, aerr := strconv.Atoi(v); aerr == nil {
		d, err = time.Duration(n)*time.Second, nil
	}
	switch {
	case err != nil:
		return 0, fmt.Errorf("%q: want whole seconds (8) or a duration (500ms)", v)
	case d < 0:
		return 0, fmt.Errorf("%q is negative", v)
	}
	return d, nil
}

// httpProbes reads the HTTP probe flags: the commands, in mint's order (--http-probe-cmd, then
// --http-probe-cmd-upload, then --http-probe-cmd-file's), and the policy they are sent under.
func (f *ObserveFlags) httpProbes() ([]runner.HTTPCommand, runner.ProbePolicy, error) {
	p := &f.ProbeFlags
	retries, maxFailures := int(p.HTTPProbeRetryCount), int(p.HTTPProbeExitOnFailureCount)
	policy := runner.ProbePolicy{
		Attempts: retries, RetryWait: time.Duration(p.HTTPProbeRetryWait), StartWait: time.Duration(p.HTTPProbeStartWait),
		ClientTimeout: time.Duration(p.HTTPProbeClientTimeout), Concurrency: p.HTTPProbeConcurrency,
		FailOn4xx: p.HTTPProbeFailOnStatus4xx, FailOn5xx: p.HTTPProbeFailOnStatus5xx,
		MaxFailures: maxFailures, FailuresAllowed: !p.HTTPProbeExitOnFailure,
	}
	switch retries {
	case -1:
		// mint's usage says -1 disables retries; mint itself then sends its default 5.
		policy.Attempts = runner.DefaultProbeAttempts
	case 0:
		// mint sends nothing at all; a probe given is meant to be sent.
		policy.Attempts = 1
	}
	switch {
	case retries < -1:
		return nil, policy, fmt.Errorf("--http-probe-retry-count %d: want -1 (the default 5), 0 (once) or more", retries)
	case p.HTTPProbeConcurrency < 1:
		return nil, policy, fmt.Errorf("--http-probe-concurrency %d: want at least 1", p.HTTPProbeConcurrency)
	case maxFailures < 0:
		return nil, policy, fmt.Errorf("--http-probe-exit-on-failure-count %d: want 0 (never stop) or more", maxFailures)
	}
	if !f.HTTPProbe {
		if len(f.HTTPProbeCmd) > 0 || len(p.HTTPProbeCmdUpload) > 0 || f.HTTPProbeCmdFile != "" {
			return nil, policy, errors.New("--no-http-probe with --http-probe-cmd, --http-probe-cmd-upload or --http-probe-cmd-file: probes given with probing off (drop one)")
		}
		return nil, policy, nil
	}
	var cmds []runner.HTTPCommand
	for _, s := range f.HTTPProbeCmd {
		c, err := runner.ParseHTTPCommand(s)
		if err != nil {
			return nil, policy, err
		}
		cmds = append(cmds, c)
	}
	for _, s := range p.HTTPProbeCmdUpload {
		c, err := runner.ParseHTTPUpload(s)
		if err != nil {
			return nil, policy, err
		}
		cmds = append(cmds, c)
	}
	if f.HTTPProbeCmdFile != "" {
		file, err := runner.ReadHTTPCommandFile(f.HTTPProbeCmdFile)
		if err != nil {
			return nil, policy, err
		}
		cmds = append(cmds, file...)
	}
	return cmds, policy, nil
}
