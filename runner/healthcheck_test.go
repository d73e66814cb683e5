package runner

import (
	"context"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// HEALTHCHECK is translated as podman runs it.
func TestHealthcheckFromConfig(t *testing.T) {
	for _, c := range []struct {
		name string
		in   *v1.HealthConfig
		want *Healthcheck // nil: no healthcheck
	}{
		{"no config", nil, nil},
		{"empty test", &v1.HealthConfig{Test: []string{}}, nil},
		{"empty first word", &v1.HealthConfig{Test: []string{""}}, nil},
		{"NONE", &v1.HealthConfig{Test: []string{"NONE"}, Interval: time.Second}, nil},
		{"CMD alone", &v1.HealthConfig{Test: []string{"CMD"}}, nil},
		{"CMD with an empty program", &v1.HealthConfig{Test: []string{"CMD", ""}}, nil},
		{"CMD", &v1.HealthConfig{Test: []string{"CMD", "curl", "-f", "http://127.0.0.1:8080/"}},
			&Healthcheck{Args: []string{"curl", "-f", "http://127.0.0.1:8080/"}, Interval: 30 * time.Second, Timeout: 30 * time.Second, Retries: 3}},
		{"CMD-SHELL", &v1.HealthConfig{Test: []string{"CMD-SHELL", "curl -f localhost || exit 1"}},
			&Healthcheck{Args: []string{"/bin/sh", "-c", "curl -f localhost || exit 1"}, Interval: 30 * time.Second, Timeout: 30 * time.Second, Retries: 3}},
		// podman joins what follows CMD-SHELL with spaces.
		{"CMD-SHELL in words", &v1.HealthConfig{Test: []string{"CMD-SHELL", "test", "-f", "/ok"}},
			&Healthcheck{Args: []string{"/bin/sh", "-c", "test -f /ok"}, Interval: 30 * time.Second, Timeout: 30 * time.Second, Retries: 3}},
		// podman runs a test given without CMD or CMD-SHELL as it is (docker refuses it).
		{"no keyword", &v1.HealthConfig{Test: []string{"/bin/check", "--quick"}},
			&Healthcheck{Args: []string{"/bin/check", "--quick"}, Interval: 30 * time.Second, Timeout: 30 * time.Second, Retries: 3}},
		{"intervals kept", &v1.HealthConfig{Test: []string{"CMD", "true"}, Interval: 5 * time.Second, Timeout: 2 * time.Second, StartPeriod: 40 * time.Second, Retries: 7},
			&Healthcheck{Args: []string{"true"}, Interval: 5 * time.Second, Timeout: 2 * time.Second, StartPeriod: 40 * time.Second, Retries: 7}},
		{"negative values get the defaults", &v1.HealthConfig{Test: []string{"CMD", "true"}, Interval: -1, Timeout: -time.Second, StartPeriod: -time.Second, Retries: -2},
			&Healthcheck{Args: []string{"true"}, Interval: 30 * time.Second, Timeout: 30 * time.Second, Retries: 3}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := HealthcheckFromConfig(c.in)
			switch {
			case c.want == nil && got != nil:
				t.Fatalf("got %+v, want no healthcheck", got)
			case c.want == nil:
				return
			case got == nil:
				t.Fatalf("got no healthcheck, want %+v", c.want)
			}
			if !slices.Equal(got.Args, c.want.Args) || got.Interval != c.want.Interval || got.Timeout != c.want.Timeout ||
				got.StartPeriod != c.want.StartPeriod || got.Retries != c.want.Retries {
				t.Errorf("got %+v, want %+v", got, c.want)
			}
		})
	}
	// The translation does not share the config's slice.
	test := []string{"CMD", "true"}
	h := HealthcheckFromConfig(&v1.HealthConfig{Test: test})
	test[1] = "false"
	if h.Args[0] != "true" {
		t.Errorf("args follow the config's slice: %v", h.Args)
	}
}

func TestHealthcheckResult(t *testing.T) {
	var none *HealthcheckResult
	if none.OK() || none.Last() != nil {
		t.Error("a nil result is healthy or has a run")
	}
	r := &HealthcheckResult{Status: Unhealthy, Runs: []ExecResult{{ExitCode: 7}, {ExitCode: 0}}}
	if r.OK() || r.Last().ExitCode != 0 {
		t.Errorf("ok %v, last %+v", r.OK(), r.Last())
	}
	r.Status = Healthy
	if !r.OK() {
		t.Error("healthy is not OK")
	}
	obs := &Observation{Probes: []ProbeResult{{Status: 200}}, Healthcheck: &HealthcheckResult{Status: Unhealthy}}
	if ok, total := obs.ProbesOK(); ok != 1 || total != 2 {
		t.Errorf("probes ok %d of %d, want 1 of 2 (the healthcheck counts as a probe)", ok, total)
	}
	if err := (&Observation{Healthcheck: &HealthcheckResult{Status: Unhealthy}}).ProbeError(); err == nil {
		t.Error("an unhealthy check as the only probe is no failure")
	}
}

// The healthcheck in a real sandbox, on the web sample (busybox httpd, with curl): its interval is
// shortened, its rounds end at the first pass or after Retries failures in a row (failures in the start
// period not counted), its timeout holds, and what it uses is in its files and in the record.
func TestE2EObserveHealthcheck(t *testing.T) {
	tree := unpackedTree(t, "web")
	sensorBin := buildSensor(t)
	cfg := tree.Config.Config
	image := HealthcheckFromConfig(cfg.Healthcheck)
	if image == nil || image.Args[0] != "curl" {
		t.Fatalf("the web sample's HEALTHCHECK is %+v", cfg.Healthcheck)
	}
	// counter fails until it has run n times before.
	counter := func(n int) []string {
		return []string{"/bin/sh", "-c", `n=$(cat /tmp/hc 2>/dev/null || echo 0); echo $((n+1)) >/tmp/hc; [ "$n" -ge ` + strconv.Itoa(n) + ` ]`}
	}
	for _, c := range []struct {
		name   string
		hc     Healthcheck
		status string
		codes  []int
		errs   string
	}{
		{"the image's", *image, Healthy, []int{0, 0}, ""},
		{"passes on the third run", Healthcheck{Args: counter(2), Interval: 30 * time.Second, Timeout: 5 * time.Second, Retries: 5}, Healthy, []int{1, 1, 0, 0}, ""},
		{"unhealthy after its retries", Healthcheck{Args: []string{"/bin/sh", "-c", "exit 3"}, Interval: 30 * time.Second, Timeout: 5 * time.Second, Retries: 2}, Unhealthy, []int{3, 3}, ""},
		{"failures in the start period do not count", Healthcheck{Args: counter(2), Interval: 30 * time.Second, Timeout: 5 * time.Second, StartPeriod: 20 * time.Second, Retries: 1}, Healthy, []int{1, 1, 0, 0}, ""},
		{"its timeout", Healthcheck{Args: []string{"sleep", "30"}, Interval: 30 * time.Second, Timeout: time.Second, Retries: 1}, Unhealthy, nil, "timed out after 1s"},
	} {
		t.Run(c.name, func(t *testing.T) {
			state := filepath.Join(t.TempDir(), "sandbox")
			var out syncBuffer
			start := time.Now()
			hc := c.hc
			obs, err := Observe(context.Background(), tree.Dir, Spec{
				Args: append(append([]string(nil), cfg.Entrypoint...), cfg.Cmd...), Env: cfg.Env, Cwd: cfg.WorkingDir,
				Stdout: &out, Stderr: &out, Sensor: sensorBin,
			}, Plan{HTTP: []HTTPCommand{{Method: "GET", Resource: "/"}}, Ports: []int{8080}, ProbeTimeout: 30 * time.Second, Healthcheck: &hc},
				&Options{StateDir: state, WorkRoot: filepath.Dir(filepath.Dir(state))})
			if err != nil {
				t.Fatalf("%v\n%s", err, out.String())
			}
			took := time.Since(start)
			h := obs.Healthcheck
			if h == nil {
				t.Fatal("no healthcheck result")
			}
			var codes []int
			for _, r := range h.Runs {
				codes = append(codes, r.ExitCode)
			}
			if h.Status != c.status || (c.codes != nil && !slices.Equal(codes, c.codes)) {
				t.Errorf("status %s, exit codes %v; want %s, %v\n%s", h.Status, codes, c.status, c.codes, out.String())
			}
			if c.errs != "" && (len(h.Runs) != 1 || !strings.Contains(h.Runs[0].Error, c.errs)) {
				t.Errorf("runs %+v, want one with %q", h.Runs, c.errs)
			}
			// The image's 30 s interval, shortened: the runs are a second apart at most (plus the runs themselves).
			if gaps := time.Duration(max(len(h.Runs)-1, 0)) * HealthcheckInterval; took > gaps+15*time.Second {
				t.Errorf("the observation took %s for %d runs", took, len(h.Runs))
			}
			if c.name == "the image's" {
				for _, p := range []string{"/usr/bin/curl"} {
					if !slices.Contains(h.Files[p], "exec") || !slices.Contains(obs.Record.Files[p], "exec") {
						t.Errorf("%s: in the healthcheck's files as %v, in the record as %v", p, h.Files[p], obs.Record.Files[p])
					}
				}
				for p := range h.Files {
					if strings.HasPrefix(p, "/dev/.slimoci") || p == "/etc/hosts" {
						t.Errorf("the healthcheck's files hold %s, which is not the image's", p)
					}
				}
			}
		})
	}
}
