package runner

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// site is a small web site for the crawler: what it serves, and what it was asked for.
type site struct {
	mu    sync.Mutex
	asked []string
	pages map[string]string
}

func (s *site) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.asked = append(s.asked, r.URL.RequestURI())
	s.mu.Unlock()
	body, ok := s.pages[r.URL.RequestURI()]
	switch {
	case !ok:
		http.NotFound(w, r)
	case strings.HasPrefix(body, "redirect:"):
		http.Redirect(w, r, strings.TrimPrefix(body, "redirect:"), http.StatusFound)
	case strings.HasPrefix(body, "<?xml"), strings.HasSuffix(r.URL.Path, ".xml"):
		w.Header().Set("Content-Type", "application/xml")
		fmt.Fprint(w, body)
	case strings.HasSuffix(r.URL.Path, ".txt"):
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprint(w, body)
	default:
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, body)
	}
}

func (s *site) requested() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(slices.Values(s.asked))
}

// crawlSite probes / of srv (with cmd's fields) and crawls from it under o, as probeAll does.
func crawlSite(t *testing.T, srv *httptest.Server, o CrawlOptions, cmd HTTPCommand) (*CrawlReport, []ProbeResult) {
	t.Helper()
	p := testProber(ProbePolicy{Attempts: 1})
	if cmd.Resource == "" {
		cmd.Resource = "/"
	}
	jobs := []probeJob{{c: mustCmd(t, cmd), port: portOf(t, srv.URL)}}
	o.capture(jobs)
	results, _ := p.run(t.Context(), jobs, time.Now())
	return p.crawlFrom(t.Context(), o, jobs, results), results
}

func pagesOf(r *CrawlReport) []string {
	var out []string
	for _, p := range r.Pages {
		out = append(out, fmt.Sprintf("%s %s %d d%d <%s", p.Kind, p.Path, p.Status, p.Depth, p.From))
	}
	return out
}

// The crawler against a site: relative links, a <base>, srcset, data-src, a meta refresh, a redirect,
// robots.txt naming a sitemap index on the site's public host, links to other origins and schemes, a
// fragment, a preconnect, and pages deeper than the bound. What the server was asked for is what the
// report says, in the rounds' order; nothing else was asked for.
func TestCrawl(t *testing.T) {
	s := &site{}
	srv := httptest.NewServer(s)
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	s.pages = map[string]string{
		"/": `<!doctype html><html><head><link rel="preconnect" href="/preconnected"><link rel="stylesheet" href="/style.css">
			<script src="app.js"></script></head><body>
			<a href="a">a</a> <a href="/b#part">b</a> <a href="/b">b again</a>
			<a href="https://other.example/x">elsewhere</a> <a href="mailto:me@example.com">mail</a>
			<a href="https://` + host + `/https">same host, other scheme</a> <a href="//` + host + `/schemeless">here</a>
			<img srcset="/img/1x.png 1x, /img/f_auto,w_2/2x.png 2x" src="/img/plain.png"> <div data-src="/lazy"></div>
			<a href="/redirect">moved</a> <a href="javascript:void(0)">js</a></body></html>`,
		"/a":                 "<a href=/a/deep>deeper</a>",
		"/a/deep":            "<a href=/a/deeper>too deep</a>",
		"/a/deeper":          "never asked for",
		"/b":                 `<base href="/docs/"><a href="page">relative to the base</a><meta http-equiv="Refresh" content="0; url='/refreshed'">`,
		"/docs/page":         "docs",
		"/refreshed":         "refreshed",
		"/redirect":          "redirect:/target?x=1",
		"/target?x=1":        "the target",
		"/schemeless":        "ok",
		"/robots.txt":        "User-agent: *\nDisallow: /secret\nAllow: /allowed # a comment\nAllow: /wild*\nSitemap: https://public.example/maps/index.xml\n",
		"/maps/index.xml":    `<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><sitemap><loc>https://public.example/maps/pages.xml</loc></sitemap></sitemapindex>`,
		"/maps/pages.xml":    `<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url><loc> https://public.example/from-sitemap?id=1 </loc></url><url><loc>/a</loc></url></urlset>`,
		"/from-sitemap?id=1": "listed",
		"/allowed":           "allowed",
	}
	r, results := crawlSite(t, srv, CrawlOptions{}, HTTPCommand{Crawl: true})
	if len(results) != 1 || !results[0].OK() {
		t.Fatalf("the probe: %+v", results)
	}
	want := []string{
		// Round 1: robots.txt and sitemap.xml, then the probed page's links in order.
		"robots /robots.txt 200 d1 <", "sitemap /sitemap.xml 404 d1 <",
		"page /style.css 404 d2 </", "page /app.js 404 d2 </", "page /a 200 d2 </", "page /b 200 d2 </",
		"page /schemeless 200 d2 </", "page /img/plain.png 404 d2 </", "page /img/1x.png 404 d2 </",
		"page /img/f_auto,w_2/2x.png 404 d2 </", "page /lazy 404 d2 </", "page /redirect 302 d2 </",
		// Round 2: robots.txt's sitemap (its path, on this origin) and Allow line; the pages' links.
		"sitemap /maps/index.xml 200 d1 </robots.txt", "page /allowed 200 d2 </robots.txt", "page /a/deep 200 d3 </a",
		"page /docs/page 200 d3 </b", "page /refreshed 200 d3 </b", "page /target?x=1 200 d2 </redirect",
		"sitemap /maps/pages.xml 200 d1 </maps/index.xml",
		"page /from-sitemap?id=1 200 d2 </maps/pages.xml",
	}
	if got := pagesOf(r); !slices.Equal(got, want) {
		t.Errorf("crawled\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	var asked []string
	for _, p := range r.Pages {
		asked = append(asked, p.Path)
	}
	asked = append(asked, "/") // the probe
	if got := s.requested(); !slices.Equal(got, slices.Sorted(slices.Values(asked))) {
		t.Errorf("the server was asked for %v, the report says %v", got, asked)
	}
	// other.example, https on the HTTP port; mailto: and javascript: are no pages at all.
	if r.OtherOrigin != 2 || r.BeyondDepth != 1 || r.NotFollowed != 0 {
		t.Errorf("other origins %d (want 2), beyond the depth %d (want 1: /a/deeper), not followed %d", r.OtherOrigin, r.BeyondDepth, r.NotFollowed)
	}
	if again, _ := crawlSite(t, srv, CrawlOptions{}, HTTPCommand{Crawl: true}); !slices.Equal(pagesOf(again), pagesOf(r)) {
		t.Errorf("a second crawl differs:\n%s", strings.Join(pagesOf(again), "\n"))
	}
}

// The bounds: pages, depth (1 is the probed page alone: no robots.txt either), and who is crawled from.
func TestCrawlBounds(t *testing.T) {
	s := &site{pages: map[string]string{"/": "<a href=/1>1</a><a href=/2>2</a><a href=/3>3</a>", "/1": "<a href=/4>4</a>", "/2": "", "/3": ""}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	r, _ := crawlSite(t, srv, CrawlOptions{MaxPages: 3}, HTTPCommand{Crawl: true})
	if got, want := pagesOf(r), []string{"robots /robots.txt 404 d1 <", "sitemap /sitemap.xml 404 d1 <", "page /1 200 d2 </"}; !slices.Equal(got, want) || r.NotFollowed != 3 {
		t.Errorf("with 3 pages: %v (not followed %d), want %v and 3 not followed (/2, /3, then /1's /4)", got, r.NotFollowed, want)
	}
	r, _ = crawlSite(t, srv, CrawlOptions{MaxDepth: 1}, HTTPCommand{Crawl: true})
	if len(r.Pages) != 0 || r.BeyondDepth != 3 {
		t.Errorf("with depth 1: %v, beyond %d", pagesOf(r), r.BeyondDepth)
	}
	r, _ = crawlSite(t, srv, CrawlOptions{MaxDepth: 2, Concurrency: 1}, HTTPCommand{Crawl: true})
	if got := pagesOf(r); len(got) != 5 || r.BeyondDepth != 1 {
		t.Errorf("with depth 2: %v, beyond %d", got, r.BeyondDepth)
	}
	for _, tc := range []struct {
		name string
		o    CrawlOptions
		c    HTTPCommand
		want bool
	}{
		{"crawl set", CrawlOptions{}, HTTPCommand{Crawl: true}, true},
		{"not asked", CrawlOptions{}, HTTPCommand{}, false},
		{"every GET", CrawlOptions{All: true}, HTTPCommand{}, true},
		{"every GET, not a POST", CrawlOptions{All: true}, HTTPCommand{Method: "POST"}, false},
		{"a POST asking", CrawlOptions{}, HTTPCommand{Method: "POST", Crawl: true}, true},
	} {
		r, _ := crawlSite(t, srv, tc.o, tc.c)
		if (r != nil) != tc.want {
			t.Errorf("%s: crawled %v, want %v", tc.name, r != nil, tc.want)
		}
	}
}

// The app is not trusted: only MaxCrawlBody of a page is read, only MaxPageLinks links are taken from it,
// and the credentials and headers of the probe go with the crawl's requests (to its origin only).
func TestCrawlUntrusted(t *testing.T) {
	var mu sync.Mutex
	auth := map[string]string{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, pw, _ := r.BasicAuth()
		mu.Lock()
		auth[r.URL.Path] = u + ":" + pw + " " + r.Header.Get("X-Probe")
		mu.Unlock()
		w.Header().Set("Content-Type", "text/html")
		switch r.URL.Path {
		case "/":
			for i := range MaxPageLinks + 5 {
				fmt.Fprintf(w, "<a href=/l%d>", i)
			}
		case "/start":
			fmt.Fprint(w, "<a href=/big>")
		case "/big":
			fmt.Fprint(w, "<a href=/in-bound>")
			w.Write([]byte(strings.Repeat(" ", MaxCrawlBody)))
			fmt.Fprint(w, "<a href=/past-bound>")
		}
	}))
	defer srv.Close()
	r, _ := crawlSite(t, srv, CrawlOptions{MaxDepth: 2, MaxPages: 5000}, HTTPCommand{Crawl: true, Username: "u", Password: "p", Headers: []string{"X-Probe: yes"}})
	if n := len(r.Pages); n != MaxPageLinks+2 {
		t.Errorf("%d requests crawling from a page of %d links, want %d and robots.txt and sitemap.xml", n, MaxPageLinks+5, MaxPageLinks)
	}
	mu.Lock()
	if got := auth["/l0"]; got != "u:p yes" {
		t.Errorf("a crawled page was asked for with %q, want the probe's credentials and header", got)
	}
	mu.Unlock()

	r, _ = crawlSite(t, srv, CrawlOptions{}, HTTPCommand{Resource: "/start", Crawl: true})
	var big *CrawledPage
	var paths []string
	for i, p := range r.Pages {
		paths = append(paths, p.Path)
		if p.Path == "/big" {
			big = &r.Pages[i]
		}
	}
	if big == nil || !big.Truncated || big.Size != MaxCrawlBody {
		t.Errorf("the big page: %+v, want it truncated at %d bytes", big, MaxCrawlBody)
	}
	if !slices.Contains(paths, "/in-bound") || slices.Contains(paths, "/past-bound") {
		t.Errorf("crawled %v: want the link before the bound and not the one past it", paths)
	}
}

func TestSrcsetURLs(t *testing.T) {
	for in, want := range map[string][]string{
		"a.png":                               {"a.png"},
		"a.png 1x, b.png 2x":                  {"a.png", "b.png"},
		" a.png 100w,b.png 200w ":             {"a.png", "b.png"},
		"a.png,b.png 2x":                      {"a.png,b.png"}, // a comma inside a URL is the URL's
		"f_auto,w_100/a.png 100w, c.png 2x":   {"f_auto,w_100/a.png", "c.png"},
		"a.png (max-width: 1px, x) 1x, b.png": {"a.png", "b.png"},
		"":                                    nil,
		" , ,":                                nil,
	} {
		if got := srcsetURLs(in); !slices.Equal(got, want) {
			t.Errorf("srcset %q: %q, want %q", in, got, want)
		}
	}
}

func TestRefreshURL(t *testing.T) {
	for in, want := range map[string]string{
		"0; url=/next":     "/next",
		"5;URL='/quoted'":  "/quoted",
		"3, /comma":        "/comma",
		"0; url = /spaced": "/spaced",
		"10":               "",
		"0; urn=/x":        "urn=/x",
	} {
		if got := refreshURL(in); got != want {
			t.Errorf("refresh %q: %q, want %q", in, got, want)
		}
	}
}

func TestRobotsAndSitemaps(t *testing.T) {
	pages, sitemaps := robotsURLs(strings.NewReader("# comment\nUser-agent: *\nallow: /a\nAllow: relative\nAllow: /b$\nDisallow: /c\nSITEMAP: /s.xml\nSitemap:\n"), 10)
	if !slices.Equal(pages, []string{"/a"}) || !slices.Equal(sitemaps, []string{"/s.xml"}) {
		t.Errorf("robots.txt: pages %q, sitemaps %q", pages, sitemaps)
	}
	pages, _ = robotsURLs(strings.NewReader("Allow: /1\nAllow: /2\nAllow: /3\n"), 2)
	if len(pages) != 2 {
		t.Errorf("robots.txt bounded at 2: %q", pages)
	}
	for _, tc := range []struct {
		name, in        string
		pages, sitemaps []string
	}{
		{"urlset", `<?xml version="1.0" encoding="UTF-8"?><urlset><url><loc>http://h/1</loc><lastmod>2024</lastmod></url><url><loc>
			http://h/2&amp;x </loc></url></urlset>`, []string{"http://h/1", "http://h/2&x"}, nil},
		{"index", `<sitemapindex><sitemap><loc>/s1.xml</loc></sitemap><sitemap><loc>/s2.xml</loc></sitemap></sitemapindex>`, nil, []string{"/s1.xml", "/s2.xml"}},
		{"a loc elsewhere", `<urlset><url><image><loc>/img.png</loc></image><loc>/p</loc></url></urlset>`, []string{"/p"}, nil},
		{"text", "\ufeffhttp://h/a\n\n  /b  \n", []string{"http://h/a", "/b"}, nil},
		{"broken XML keeps what came before", `<urlset><url><loc>/ok</loc></url><url><loc>/x</url>`, []string{"/ok"}, nil},
		{"an entity is not expanded", `<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><urlset><url><loc>&e;</loc></url></urlset>`, nil, nil},
		{"empty", "", nil, nil},
	} {
		pages, sitemaps := sitemapURLs(strings.NewReader(tc.in), 10)
		if !slices.Equal(pages, tc.pages) || !slices.Equal(sitemaps, tc.sitemaps) {
			t.Errorf("%s: pages %q, sitemaps %q; want %q, %q", tc.name, pages, sitemaps, tc.pages, tc.sitemaps)
		}
	}
}

func TestHTMLLinks(t *testing.T) {
	base, links := htmlLinks(strings.NewReader(`<base href=" /root/ "><base href="/second/">
		<a href="x" href="dup">a</a><area href="/area"><link rel="dns-prefetch" href="//cdn"><link rel="icon" href="/favicon.ico">
		<iframe src="/frame"></iframe><video src="/v.mp4" poster="/poster.jpg"><track src="/t.vtt"></video>
		<source srcset="/s1.webp 1x, /s2.webp 2x"><input type="image" src="/button.png"><p data-srcset="/d1 1x">
		<script>document.write('<a href="/in-script">')</script><!-- <a href="/commented"> -->
		<a>no href</a><a href="  ">blank</a>`), 100)
	want := []string{"x", "/area", "/favicon.ico", "/frame", "/v.mp4", "/poster.jpg", "/t.vtt", "/s1.webp", "/s2.webp", "/button.png", "/d1"}
	if base != "/root/" || !slices.Equal(links, want) {
		t.Errorf("base %q, links %q; want /root/, %q", base, links, want)
	}
	if _, links := htmlLinks(strings.NewReader(strings.Repeat("<a href=/x>", 10)), 3); len(links) != 3 {
		t.Errorf("bounded at 3: %d links", len(links))
	}
}

// Verify compares the slim image's crawl with the fat one's, page by page.
func TestCrawlDiff(t *testing.T) {
	page := func(path string, status int) CrawledPage {
		return CrawledPage{Port: 80, Proto: ProtoHTTP, Path: path, Status: status}
	}
	fat := &Observation{Crawl: &CrawlReport{Pages: []CrawledPage{page("/a", 200), page("/b", 404), page("/c", 200)}}}
	slim := &Observation{Crawl: &CrawlReport{Pages: []CrawledPage{page("/b", 404), page("/a", 500), page("/extra", 200)}}}
	want := []string{"crawled page :80/a: 500, the fat image gave 200", "crawled page :80/c was not reached, the fat image's crawl got 200"}
	if got := CrawlDiff(fat, slim); !slices.Equal(got, want) {
		t.Errorf("diff %q, want %q", got, want)
	}
	if got := CrawlDiff(&Observation{}, slim); got != nil {
		t.Errorf("no crawl in the fat run: %q", got)
	}
	if got := CrawlDiff(fat, &Observation{}); len(got) != 3 {
		t.Errorf("no crawl in the slim run: %q", got)
	}
}

func TestCrawlRefused(t *testing.T) {
	for _, s := range []string{"crawl:ws:/chat", "crawl:wss:/chat"} {
		if _, err := ParseHTTPCommand(s); err == nil || !strings.Contains(err.Error(), "no pages to crawl") {
			t.Errorf("%s: %v", s, err)
		}
	}
	c := HTTPCommand{Crawl: true, FastCGI: &FastCGI{}}
	if err := c.check(); err == nil || !strings.Contains(err.Error(), "not crawled") {
		t.Errorf("a FastCGI probe with crawl: %v", err)
	}
}

// A sitemap's or robots.txt's URLs are followed whatever their host, by their path on the app's origin: an
// opaque URL (http:@host:port/x, whose "path" is an authority) must not make the crawler dial another host.
// evil stands for the host the app names; every request the app gets must be for its own host and port.
func TestCrawlOpaqueSitemapURL(t *testing.T) {
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the crawler dialed the host a sitemap named: %s %s", r.Host, r.URL)
	}))
	defer evil.Close()
	at := strings.TrimPrefix(evil.URL, "http://")
	var mu sync.Mutex
	var hosts []string
	s := &site{pages: map[string]string{
		"/":            "<p>home</p>",
		"/robots.txt":  "Sitemap: http:@" + at + "/robots-sitemap\nSitemap: /sitemap.txt\n",
		"/sitemap.xml": `<?xml version="1.0"?><urlset><url><loc>http:@` + at + `/loc</loc></url><url><loc>http://public.example/ok</loc></url></urlset>`,
		"/sitemap.txt": "http:@" + at + "/text\nhttp:%2F%2F" + at + "/escaped\n",
		"/ok":          "<p>ok</p>",
	}}
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hosts = append(hosts, r.Host)
		mu.Unlock()
		s.ServeHTTP(w, r)
	}))
	defer srv.Close()
	r, _ := crawlSite(t, srv, CrawlOptions{}, HTTPCommand{Crawl: true, Username: "u", Password: "p"})
	want := "127.0.0.1:" + fmt.Sprint(portOf(t, srv.URL))
	mu.Lock()
	for _, h := range hosts {
		if h != want {
			t.Errorf("a request for host %q, want only %q", h, want)
		}
	}
	mu.Unlock()
	for _, p := range r.Pages {
		if strings.Contains(p.Path, "@") || !strings.HasPrefix(p.Path, "/") {
			t.Errorf("crawled %q: an opaque URL's authority taken for a path", p.Path)
		}
	}
	if got := s.requested(); !slices.Contains(got, "/ok") || !slices.Contains(got, "/sitemap.txt") {
		t.Errorf("asked for %v, want the sitemaps' good URLs still followed", got)
	}
}

// A round's captures are held until its links are read: a site of many pages of MaxCrawlBody each must not
// make the crawl hold (nor allocate) pages x MaxCrawlBody, only about MaxCrawlKeptBytes.
func TestCrawlRoundMemory(t *testing.T) {
	const n = 64 // 256 MiB of answers in one round
	page := []byte("<html>" + strings.Repeat(" ", MaxCrawlBody))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		if r.URL.Path == "/" {
			for i := range n {
				fmt.Fprintf(w, "<a href=/p%d>", i)
			}
			return
		}
		w.Write(page)
	}))
	defer srv.Close()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	r, _ := crawlSite(t, srv, CrawlOptions{MaxDepth: 2}, HTTPCommand{Crawl: true})
	runtime.ReadMemStats(&after)
	if len(r.Pages) != n+2 {
		t.Fatalf("%d pages crawled, want %d and robots.txt and sitemap.xml", len(r.Pages), n)
	}
	for _, p := range r.Pages[2:] {
		if !p.Truncated || p.Size != int64(MaxCrawlKeptBytes/(n+2)) {
			t.Errorf("%s: %d bytes kept (truncated %v), want its share of the round, %d", p.Path, p.Size, p.Truncated, MaxCrawlKeptBytes/(n+2))
			break
		}
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("crawling %d pages of %d MiB allocated %d MiB", n, MaxCrawlBody>>20, alloc>>20)
	// What the round keeps (MaxCrawlKeptBytes, grown by doubling) and the HTML tokenizer's buffer, which
	// grows while it reads a page's long text (about 4x what it reads, garbage once the page is read):
	// proportional to the round's budget, where holding every page would be n x MaxCrawlBody and more.
	if limit := uint64(8 * MaxCrawlKeptBytes); alloc > limit {
		t.Errorf("crawling %d pages of %d MiB allocated %d MiB, want under %d MiB", n, MaxCrawlBody>>20, alloc>>20, limit>>20)
	}
}
