package main

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/slimoci/slimoci/rootfs"
	"github.com/slimoci/slimoci/runner"
)

// crawlOf parses the observe flags as the command line does and reads the HTTP probes, the crawl and the
// API specs into an observation; then, when ports is not nil, completes it for an image exposing them.
func crawlOf(t *testing.T, ports []string, args ...string) (*observation, error) {
	t.Helper()
	f, err := observeFlagsOf(t, args...)
	if err != nil {
		return nil, err
	}
	o := &observation{}
	if o.plan.HTTP, o.plan.Probe, err = f.httpProbes(); err != nil {
		return nil, err
	}
	if err := f.parseCrawl(o); err != nil || ports == nil {
		return o, err
	}
	exposed := map[string]struct{}{}
	for _, p := range ports {
		exposed[p] = struct{}{}
	}
	tree := &rootfs.Tree{Dir: t.TempDir(), Config: &v1.ConfigFile{Config: v1.Config{Cmd: []string{"/app"}, ExposedPorts: exposed}}}
	_, err = runner.FromConfig(tree, f.configOptions(o), &o.spec, &o.plan)
	return o, err
}

func TestCrawlFlags(t *testing.T) {
	o, err := crawlOf(t, nil)
	if err != nil || o.plan.Crawl != (runner.CrawlOptions{MaxDepth: 3, MaxPages: 1000, Concurrency: 10}) || o.plan.APISpecs != nil {
		t.Fatalf("defaults: %+v %v", o.plan.Crawl, err)
	}
	o, err = crawlOf(t, nil, "--http-probe-crawl", "--http-crawl-max-depth", "0", "--http-crawl-max-page-count", "5", "--http-crawl-concurrency", "2",
		"--http-probe-apispec", "/openapi.json", "--http-probe-apispec", "/v2/swagger.yaml:/api")
	if err != nil {
		t.Fatal(err)
	}
	if want := (runner.CrawlOptions{All: true, MaxDepth: math.MaxInt, MaxPages: 5, Concurrency: 2}); o.plan.Crawl != want {
		t.Errorf("crawl %+v, want %+v (depth 0: no bound, as mint)", o.plan.Crawl, want)
	}
	if len(o.plan.APISpecs) != 2 || o.plan.APISpecs[1] != (runner.APISpec{Path: "/v2/swagger.yaml", Prefix: "/api"}) {
		t.Errorf("API specs %+v", o.plan.APISpecs)
	}

	dir := t.TempDir()
	spec := filepath.Join(dir, "api.yaml")
	os.WriteFile(spec, []byte("openapi: 3.0.3\ninfo: {title: t, version: \"1\"}\nservers: [{url: /v1}]\npaths:\n  /ping:\n    get:\n      responses: {\"200\": {description: ok}}\n"), 0o644)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"negative depth", []string{"--http-crawl-max-depth", "-1"}, "--http-crawl-max-depth -1"},
		{"no pages", []string{"--http-crawl-max-page-count", "0"}, "always bounded"},
		{"no concurrency", []string{"--http-crawl-concurrency", "0"}, "--http-crawl-concurrency 0: want at least 1"},
		{"crawl without probes", []string{"--no-http-probe", "--http-probe-crawl"}, "--no-http-probe with --http-probe-crawl"},
		{"a spec without probes", []string{"--no-http-probe", "--http-probe-apispec-file", spec}, "--no-http-probe with"},
		{"a relative spec path", []string{"--http-probe-apispec", "openapi.json"}, `--http-probe-apispec "openapi.json": resource "openapi.json" does not start with /`},
		{"a bad prefix", []string{"--http-probe-apispec-file", spec + ":v1"}, `prefix "v1" does not start with /`},
		{"a missing file", []string{"--http-probe-apispec-file", filepath.Join(dir, "nope.yaml")}, "nope.yaml"},
		{"not a spec", []string{"--http-probe-apispec-file", filepath.Join(dir)}, "--http-probe-apispec-file"},
	} {
		if _, err := crawlOf(t, nil, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v, want one line saying %q", tc.name, err, tc.want)
		}
	}
}

// A spec file's operations come after the other probes and do not replace the default GET /; a fetched
// spec needs a port.
func TestAPISpecFileProbes(t *testing.T) {
	spec := filepath.Join(t.TempDir(), "api.yaml")
	os.WriteFile(spec, []byte("openapi: 3.0.3\ninfo: {title: t, version: \"1\"}\nservers: [{url: /v1}]\npaths:\n  /ping:\n    get:\n      responses: {\"200\": {description: ok}}\n"), 0o644)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"with the default probe", []string{"--http-probe-apispec-file", spec}, "GET / GET /v1/ping"},
		{"after the user's", []string{"--http-probe-cmd", "/health", "--http-probe-apispec-file", spec + ":/api"}, "GET /health GET /api/ping"},
	} {
		o, err := crawlOf(t, []string{"8080/tcp"}, tc.args...)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		var got []string
		for _, c := range o.plan.HTTP {
			got = append(got, c.Method+" "+c.Resource)
		}
		if strings.Join(got, " ") != tc.want {
			t.Errorf("%s: probes %q, want %q", tc.name, got, tc.want)
		}
	}
	if _, err := crawlOf(t, []string{}, "--http-probe-apispec", "/openapi.json"); err == nil || !strings.Contains(err.Error(), "--http-probe-apispec /openapi.json: the image exposes no TCP port") {
		t.Errorf("a fetched spec without a port: %v", err)
	}
}

func TestCrawlSummary(t *testing.T) {
	var b bytes.Buffer
	crawlSummary(&b, &runner.Observation{})
	if b.Len() != 0 {
		t.Errorf("without a crawl: %q", b.String())
	}
	pages := []runner.CrawledPage{{Port: 80, Path: "/ok", Kind: runner.CrawlPage, Status: 200, From: "/"}}
	for i := range 7 {
		pages = append(pages, runner.CrawledPage{Port: 80, Path: "/bad\x1b[2J", Kind: runner.CrawlPage, Status: 500 + i, From: "/"})
	}
	crawlSummary(&b, &runner.Observation{Crawl: &runner.CrawlReport{Pages: pages, NotFollowed: 4, BeyondDepth: 2}})
	out := b.String()
	for _, want := range []string{"crawl: 8 pages, 7 failed", "4 links past --http-crawl-max-page-count", "2 links past --http-crawl-max-depth",
		"crawled page :80/bad", "(from /): 500", "crawled: 2 more failed"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary %q lacks %q", out, want)
		}
	}
	if strings.Contains(out, "\x1b") {
		t.Errorf("the app's path reached the terminal unescaped: %q", out)
	}
}
