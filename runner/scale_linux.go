package runner

import "time"

// Scaled is the plan with every time bound multiplied by f, the defaults filled in first: the observation's
// Timeout, ProbeTimeout, StopTimeout, HostExecTimeout and the probes' ClientTimeout. An app run under
// emulation (qemu-user) starts and answers several times slower than a native one; its plan is scaled so
// that it is judged as the native run would be. Waits the user names in seconds (--continue-after N) and
// the image's HEALTHCHECK timings are not scaled. f <= 1 returns the plan as it is.
func (p Plan) Scaled(f float64) Plan {
	if f <= 1 {
		return p
	}
	scale := func(d *time.Duration, def time.Duration) {
		if *d <= 0 {
			*d = def
		}
		*d = time.Duration(float64(*d) * f)
	}
	if p.Timeout <= 0 {
		p.Timeout = 10 * time.Minute
	}
	scale(&p.Timeout, 0)
	if p.ProbeTimeout > 0 {
		scale(&p.ProbeTimeout, 0)
	}
	scale(&p.StopTimeout, 10*time.Second)
	scale(&p.HostExecTimeout, DefaultHostExecTimeout)
	scale(&p.Probe.ClientTimeout, DefaultProbeClientTimeout)
	return p
}

// Scaled is the spec with its exec probes' bound multiplied by f (see Plan.Scaled).
func (s Spec) Scaled(f float64) Spec {
	if f <= 1 {
		return s
	}
	if s.ExecTimeout <= 0 {
		s.ExecTimeout = DefaultExecTimeout
	}
	s.ExecTimeout = time.Duration(float64(s.ExecTimeout) * f)
	return s
}
