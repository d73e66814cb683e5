package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kong"

	"github.com/slimoci/slimoci/runner"
)

// observeFlagsOf parses the observe flags as the command line does (kong, with their defaults).
func observeFlagsOf(t *testing.T, args ...string) (*ObserveFlags, error) {
	t.Helper()
	var cli struct{ ObserveFlags }
	p, err := kong.New(&cli)
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Parse(args)
	return &cli.ObserveFlags, err
}

// probesOf parses the observe flags and reads the HTTP probes and their policy.
func probesOf(t *testing.T, args ...string) ([]runner.HTTPCommand, runner.ProbePolicy, error) {
	t.Helper()
	f, err := observeFlagsOf(t, args...)
	if err != nil {
		return nil, runner.ProbePolicy{}, err
	}
	return f.httpProbes()
}

func TestProbeFlags(t *testing.T) {
	cmds, policy, err := probesOf(t)
	if err != nil || len(cmds) != 0 {
		t.Fatalf("%v %v", cmds, err)
	}
	// The defaults: mint's 5 attempts 8 s apart, its 30 s client timeout (runner's default for 0), one probe
	// at a time, failed only when every probe failed.
	if want := (runner.ProbePolicy{Attempts: 5, RetryWait: 8 * time.Second, Concurrency: 1}); policy != want {
		t.Errorf("defaults %+v, want %+v", policy, want)
	}

	dir := t.TempDir()
	file := filepath.Join(dir, "probes.json")
	os.WriteFile(file, []byte(`{"commands":[{"resource":"/private","username":"admin","password":"secret"}]}`), 0o644)
	cmds, policy, err = probesOf(t, "--http-probe-cmd", "crawl:http2:GET:/a", "--http-probe-cmd-upload", "generate.image.png:/up",
		"--http-probe-cmd-file", file, "--http-probe-cmd", "ws:/chat",
		"--http-probe-retry-count", "3", "--http-probe-retry-wait", "2", "--http-probe-start-wait", "1500ms", "--http-probe-client-timeout", "10",
		"--http-probe-concurrency", "4", "--http-probe-fail-on-status-5xx", "--http-probe-fail-on-status-4xx",
		"--http-probe-exit-on-failure-count", "2", "--http-probe-exit-on-failure=false")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range cmds {
		got = append(got, c.Protocol+" "+c.Method+" "+c.Resource+" "+c.Username)
	}
	// mint's order: the commands, the uploads, the file's.
	if want := []string{"http2 GET /a ", "ws GET /chat ", " POST /up ", " GET /private admin"}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("commands %q, want %q", got, want)
	}
	if !cmds[0].Crawl || !cmds[2].BodyIsForm || cmds[2].BodyGenerate != runner.GenerateImagePNG || cmds[3].Password != "secret" {
		t.Errorf("commands %+v", cmds)
	}
	want := runner.ProbePolicy{Attempts: 3, RetryWait: 2 * time.Second, StartWait: 1500 * time.Millisecond, ClientTimeout: 10 * time.Second,
		Concurrency: 4, FailOn4xx: true, FailOn5xx: true, MaxFailures: 2, FailuresAllowed: true}
	if policy != want {
		t.Errorf("policy %+v, want %+v", policy, want)
	}
	// mint's negative values as words of their own, as its command lines have them.
	for arg, attempts := range map[string]int{"-1": 5, "0": 1, "1": 1, "7": 7} {
		if _, p, err := probesOf(t, "--http-probe-retry-count", arg); err != nil || p.Attempts != attempts {
			t.Errorf("--http-probe-retry-count %s: %d attempts, %v; want %d", arg, p.Attempts, err, attempts)
		}
	}
	if _, p, err := probesOf(t, "--no-http-probe-exit-on-failure"); err != nil || !p.FailuresAllowed {
		t.Errorf("--no-http-probe-exit-on-failure: %+v %v", p, err)
	}

	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"commands":[{"resource":"/","usrname":"u"}]}`), 0o644)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--http-probe-retry-count", "-2"}, "--http-probe-retry-count -2: want -1"},
		{[]string{"--http-probe-concurrency", "0"}, "--http-probe-concurrency 0: want at least 1"},
		{[]string{"--http-probe-exit-on-failure-count", "-1"}, "--http-probe-exit-on-failure-count -1"},
		{[]string{"--http-probe-retry-count=many"}, `"many": want a whole number`},
		{[]string{"--http-probe-retry-count"}, "expected int value"},
		{[]string{"--http-probe-retry-wait", "soon"}, `"soon": want whole seconds (8) or a duration (500ms)`},
		{[]string{"--http-probe-start-wait", "-3"}, `"-3" is negative`},
		{[]string{"--http-probe-client-timeout", "-1s"}, `"-1s" is negative`},
		{[]string{"--no-http-probe", "--http-probe-cmd", "/"}, "--no-http-probe with --http-probe-cmd"},
		{[]string{"--no-http-probe", "--http-probe-cmd-upload", "/up"}, "probes given with probing off"},
		{[]string{"--no-http-probe", "--http-probe-cmd-file", file}, "probes given with probing off"},
		{[]string{"--http-probe-cmd", "ftp:GET:/"}, `protocol "ftp" is not one of`},
		{[]string{"--http-probe-cmd-upload", "/nonexistent/file:/up"}, "no such file"},
		{[]string{"--http-probe-cmd-file", bad}, `bad.json: commands[0]: unknown field "usrname"`},
	} {
		if _, _, err := probesOf(t, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.args, err, tc.want)
		}
	}
}
