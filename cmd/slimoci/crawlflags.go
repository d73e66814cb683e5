package main

import (
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/slimoci/slimoci/internal/termsafe"
	"github.com/slimoci/slimoci/runner"
)

// CrawlFlags are mint's crawling and API spec options (see runner.CrawlOptions and runner.APISpec).
//
// Crawling is off by default, unlike mint's: a crawl follows every link it finds, and a link may change
// the app's state (log out, delete, reset), making what is observed depend on what the pages happen to
// link to; it also makes the observation longer. The probes a user gives are what the slim image is
// made for; a crawl is asked for.
type CrawlFlags struct {
	HTTPProbeCrawl        bool     `help:"Crawl from every GET probe (the default GET / included): follow the links of its HTML pages, redirects, and the origin's robots.txt and sitemap.xml, on the same origin only, so that the pages they lead to are kept. Off by default (mint's is on): a link may change the app's state (logout, delete). A probe's crawl: true (or crawl: in --http-probe-cmd) crawls from it alone. A crawled page that fails is reported, not a failed probe." negatable:""`
	HTTPCrawlMaxDepth     number   `help:"How deep a crawl goes: 1 is the probed page, 2 the pages it links to, ... (0: no bound but the page count's, as mint)." default:"3" placeholder:"N"`
	HTTPCrawlMaxPageCount number   `help:"The most requests a crawl sends, robots.txt and sitemaps included." default:"1000" placeholder:"N"`
	HTTPCrawlConcurrency  number   `help:"How many pages a crawl fetches at once." default:"10" placeholder:"N"`
	HTTPProbeAPISpec      []string `name:"http-probe-apispec" help:"Fetch an OpenAPI 3 or Swagger 2 document (JSON or YAML) from the app at PATH on each probed port after the probes, and probe each of its operations there, with parameters and bodies made from its examples and schemas; PREFIX replaces the document's base path (/ drops it). A document that cannot be read fails the observation as a failed probe (repeatable)." sep:"none" placeholder:"PATH[:PREFIX]"`
	HTTPProbeAPISpecFile  []string `name:"http-probe-apispec-file" help:"Probe each operation of an OpenAPI 3 or Swagger 2 file (JSON or YAML; its $refs may name files beside it) on every probed port, after the other probes; PREFIX replaces its base path (repeatable)." sep:"none" placeholder:"FILE[:PREFIX]"`
}

// parseCrawl reads the crawl and API spec flags into o: the crawl's options, the documents to fetch, and
// the operations of the files, added to the probes once the image's ports are known (see forConfig).
func (f *ObserveFlags) parseCrawl(o *observation) error {
	c := &f.CrawlFlags
	switch {
	case c.HTTPCrawlMaxDepth < 0:
		return fmt.Errorf("--http-crawl-max-depth %d: want 0 (no bound) or more", c.HTTPCrawlMaxDepth)
	case c.HTTPCrawlMaxPageCount < 1:
		return fmt.Errorf("--http-crawl-max-page-count %d: want at least 1 (slimoci's crawl is always bounded, where mint's 0 is not)", c.HTTPCrawlMaxPageCount)
	case c.HTTPCrawlConcurrency < 1:
		return fmt.Errorf("--http-crawl-concurrency %d: want at least 1", c.HTTPCrawlConcurrency)
	}
	if !f.HTTPProbe {
		if c.HTTPProbeCrawl || len(c.HTTPProbeAPISpec) > 0 || len(c.HTTPProbeAPISpecFile) > 0 {
			return errors.New("--no-http-probe with --http-probe-crawl, --http-probe-apispec or --http-probe-apispec-file: they need the HTTP probes (drop one)")
		}
		return nil
	}
	o.plan.Crawl = runner.CrawlOptions{All: c.HTTPProbeCrawl, MaxDepth: int(c.HTTPCrawlMaxDepth), MaxPages: int(c.HTTPCrawlMaxPageCount), Concurrency: int(c.HTTPCrawlConcurrency)}
	if c.HTTPCrawlMaxDepth == 0 {
		o.plan.Crawl.MaxDepth = math.MaxInt
	}
	for _, s := range c.HTTPProbeAPISpec {
		spec, err := runner.ParseAPISpec(s)
		if err != nil {
			return err
		}
		o.plan.APISpecs = append(o.plan.APISpecs, spec)
	}
	for _, s := range c.HTTPProbeAPISpecFile {
		cmds, err := runner.ReadAPISpecFile(s)
		if err != nil {
			return err
		}
		o.specProbes = append(o.specProbes, cmds...)
	}
	return nil
}

// crawlSummary prints what the crawl did, in one line, and the pages that failed (at most
// maxFailedPages of them; the report has them all).
func crawlSummary(w io.Writer, obs *runner.Observation) {
	c := obs.Crawl
	if c == nil {
		return
	}
	var failed []runner.CrawledPage
	for _, p := range c.Pages {
		if !p.OK() {
			failed = append(failed, p)
		}
	}
	line := fmt.Sprintf("crawl: %d pages, %d failed (crawled pages are no probes: report.json has each)", len(c.Pages), len(failed))
	if c.NotFollowed > 0 {
		line += fmt.Sprintf("; %d links past --http-crawl-max-page-count", c.NotFollowed)
	}
	if c.BeyondDepth > 0 {
		line += fmt.Sprintf("; %d links past --http-crawl-max-depth", c.BeyondDepth)
	}
	fmt.Fprintln(w, line)
	for i, p := range failed {
		if i == maxFailedPages {
			fmt.Fprintf(w, "crawled: %d more failed\n", len(failed)-i)
			break
		}
		// The path and the error are the app's: escaped for the terminal.
		fmt.Fprintln(w, termsafe.String(fmt.Sprintf("crawled %s :%d%s (from %s): %s", p.Kind, p.Port, p.Path, p.From, p.Outcome())))
	}
}

const maxFailedPages = 5
