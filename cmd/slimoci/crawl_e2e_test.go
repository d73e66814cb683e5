package main

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slimoci/slimoci/internal/testbed"
	"github.com/slimoci/slimoci/runner"
)

// buildProbes builds the probes sample with args into a docker-archive of image, in the root sandbox; it
// returns the state path, the archive and build's output.
func buildProbes(t *testing.T, image string, args ...string) (state, archive, out string) {
	t.Helper()
	sensorBin := rootSandbox(t, "these runs use the root sandbox")
	dir := t.TempDir()
	state, archive = filepath.Join(dir, "state"), filepath.Join(dir, "slim.tar")
	args = append([]string{"build", "--sensor", sensorBin, "--state-path", state}, args...)
	out, errs, code := runCLI(t, append(args, "--output", "docker-archive:"+archive+":"+image, "oci:"+bed.Layout("probes")+":latest")...)
	if code != 0 {
		t.Fatalf("exit %d: %s %s", code, out, errs)
	}
	return state, archive, out
}

// profileProbes profiles the probes sample with args and returns its observation.
func profileProbes(t *testing.T, args ...string) *runner.Observation {
	t.Helper()
	state := filepath.Join(t.TempDir(), "profile")
	args = append([]string{"profile", "--sensor", rootSandbox(t, "these runs use the root sandbox"), "--state-path", state}, args...)
	out, errs, code := runCLI(t, append(args, "oci:"+bed.Layout("probes")+":latest")...)
	if code != 0 {
		t.Fatalf("profile: exit %d: %s %s", code, out, errs)
	}
	return profileReport(t, state)
}

// loadAndServe loads a docker-archive into podman, runs image and returns its base URL once GET / answers.
func loadAndServe(t *testing.T, archive, image string) string {
	t.Helper()
	ctx := t.Context()
	if _, err := testbed.Run(ctx, "podman", "load", "-i", archive); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { testbed.Run(ctx, "podman", "rmi", "-f", image) })
	name, _ := podmanServe(t, image)
	port, err := testbed.Run(ctx, "podman", "port", name, "8080")
	if err != nil {
		t.Fatal(err)
	}
	return "http://" + strings.TrimSpace(string(port))
}

// crawledSummary is each crawled page's kind, path and status.
func crawledSummary(c *runner.CrawlReport) []string {
	if c == nil {
		return nil
	}
	var out []string
	for _, p := range c.Pages {
		out = append(out, fmt.Sprintf("%s %s %d", p.Kind, p.Path, p.Status))
	}
	return out
}

// A crawl that reaches pages only linked from another: the probes sample's / links to /catalog (which
// shows /static/logo.svg), its robots.txt names sitemap.xml on the site's public host, which lists
// /archive. With --http-probe-crawl the build reaches each (in the fat run and verify's), keeps the module
// each page imports, and the slim image serves them under podman; without crawling, no run reaches them.
func TestE2EBuildCrawl(t *testing.T) {
	image := "localhost/slimoci-e2e/probes-crawl:latest"
	state, archive, out := buildProbes(t, image, "--http-probe-crawl")
	r := buildReport(t, state)
	// Breadth first: robots.txt, sitemap.xml and /'s link; then robots.txt's sitemap (the same
	// sitemap.xml: visited), /catalog's image, and sitemap.xml's /archive (its / visited).
	want := []string{"robots /robots.txt 200", "sitemap /sitemap.xml 200", "page /catalog 200", "page /archive 200", "page /static/logo.svg 200"}
	if got := crawledSummary(r.Fat.Crawl); !slices.Equal(got, want) {
		t.Errorf("the fat run crawled %v, want %v", got, want)
	}
	if r.Fat.Crawl != nil && r.Fat.Crawl.OtherOrigin != 1 {
		t.Errorf("%d links to other origins, want 1 (/'s link to probes.example)", r.Fat.Crawl.OtherOrigin)
	}
	if r.Verify == nil || !slices.Equal(crawledSummary(r.Verify.Crawl), want) {
		t.Errorf("verify crawled %v", crawledSummary(r.Verify.Crawl))
	}
	if !strings.Contains(out, "crawl: 5 pages, 0 failed") {
		t.Errorf("the summary says nothing of the crawl: %s", out)
	}
	kept := keptPaths(t, state)
	crawledOnly := []string{"/app/pages/catalog.py", "/app/pages/archive.py", "/app/static/logo.svg", "/app/site/sitemap.xml", "/app/site/robots.txt"}
	for _, p := range crawledOnly {
		if kept[p] == nil {
			t.Errorf("%s is not kept", p)
		}
	}

	base := loadAndServe(t, archive, image)
	client := &http.Client{Timeout: 10 * time.Second}
	for path, word := range map[string]string{"/catalog": "gadget", "/archive": "old catalogs", "/static/logo.svg": "<svg", "/sitemap.xml": "/archive"} {
		resp, err := client.Get(base + path)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), word) {
			t.Errorf("the slim image answers %s with %d %q", path, resp.StatusCode, body)
		}
	}

	// Without crawling, the same image: only / is probed, and what the crawled pages read is not in the
	// record.
	o := profileProbes(t)
	if o.Crawl != nil || len(o.Probes) != 1 {
		t.Errorf("without --http-probe-crawl: probes %v, crawl %v", probeSummary(o.Probes), crawledSummary(o.Crawl))
	}
	for _, p := range append(crawledOnly, "/app/pages/items.py", "/app/pages/orders.py", "/app/pages/search.py") {
		if ops := o.Record.Files[p]; ops != nil {
			t.Errorf("%s was used without a crawl or a spec: %v", p, ops)
		}
	}
}

// An OpenAPI file whose operations are all probed: the probes sample's API (GET /api/items/{id}, POST
// /api/orders with a JSON body, GET /api/search?q=), each handled by a module only it imports, described
// by a Swagger 2 YAML file whose base path (/v1) PREFIX replaces with the app's /api. Every operation
// answers 2xx in the fat run and in verify's, the modules are kept, and the slim image answers each
// under podman. The app's own OpenAPI 3 JSON document, fetched with --http-probe-apispec, gives the same
// probes.
func TestE2EBuildAPISpec(t *testing.T) {
	image := "localhost/slimoci-e2e/probes-api:latest"
	spec, err := filepath.Abs("../../testdata/samples/probes/swagger.yaml")
	if err != nil {
		t.Fatal(err)
	}
	state, archive, _ := buildProbes(t, image, "--http-probe-apispec-file", spec+":/api", "--http-probe-fail-on-status-4xx")
	r := buildReport(t, state)
	want := []string{"GET / 200 x1", "GET /api/items/1 200 x1", "GET /api/search?q=gad 200 x1", "POST /api/orders 201 x1"}
	if got := probeSummary(r.Fat.Probes); !slices.Equal(got, want) {
		t.Errorf("the fat run's probes %v, want %v", got, want)
	}
	if r.Verify == nil || !slices.Equal(probeSummary(r.Verify.Probes), want) {
		t.Errorf("verify's probes: %+v", r.Verify)
	}
	kept := keptPaths(t, state)
	for _, p := range []string{"/app/pages/items.py", "/app/pages/orders.py", "/app/pages/search.py"} {
		if kept[p] == nil {
			t.Errorf("%s is not kept", p)
		}
	}

	base := loadAndServe(t, archive, image)
	client := &http.Client{Timeout: 10 * time.Second}
	for _, tc := range []struct {
		method, path, body string
		status             int
		answer             string
	}{
		{"GET", "/api/items/1", "", 200, `{"id":1,"name":"item 1"}`},
		{"GET", "/api/search?q=gad", "", 200, `["gadget"]`},
		{"POST", "/api/orders", `{"item":"widget","quantity":1}`, 201, `{"item":"widget","quantity":1,"status":"placed"}`},
	} {
		req, _ := http.NewRequest(tc.method, base+tc.path, strings.NewReader(tc.body))
		if tc.body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Errorf("%s %s: %v", tc.method, tc.path, err)
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || strings.TrimSpace(string(body)) != tc.answer {
			t.Errorf("the slim image answers %s %s with %d %q, want %d %q", tc.method, tc.path, resp.StatusCode, body, tc.status, tc.answer)
		}
	}

	// The document the app serves: fetched after the probes, a probe of its own, then each operation.
	o := profileProbes(t, "--http-probe-apispec", "/openapi.json")
	want = []string{"GET / 200 x1", "GET /openapi.json 200 x1", "GET /api/items/1 200 x1", "GET /api/search?q=gad 200 x1", "POST /api/orders 201 x1"}
	if got := probeSummary(o.Probes); !slices.Equal(got, want) {
		t.Errorf("with the app's document: %v, want %v", got, want)
	}
	for _, p := range []string{"/app/pages/items.py", "/app/pages/orders.py", "/app/pages/search.py", "/app/openapi.json"} {
		if o.Record.Files[p] == nil {
			t.Errorf("%s is not in the record", p)
		}
	}
}
