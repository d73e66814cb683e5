package runner

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/xml"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"

	"golang.org/x/net/html"
)

// CrawlOptions say whether and how far the pages the HTTP probes answered are crawled (mint's
// --http-probe-crawl and --http-crawl-*).
//
// A crawl starts from every probe that succeeded over HTTP, HTTPS, HTTP/2 or h2c and asks for it: a command
// with Crawl set (crawl: true in the probe file, crawl: in --http-probe-cmd), or any GET with All. It
// follows, from the probe's own answer (not fetched again), the links of HTML pages (a, area and link
// href, the src of script, img, iframe, frame, embed, audio, video, source, track and input, img and
// source srcset, video poster, any element's data-src and data-srcset, a meta refresh's url, relative to
// the page or its <base>), redirects (a 3xx's Location, at the same depth), and the URLs of the origin's
// /robots.txt (its Sitemap and Allow lines; Disallow lines are neither followed nor obeyed: the crawl is
// the image owner's test of their own app) and /sitemap.xml (and the sitemaps they name: urlset and
// sitemapindex documents, or a list of URLs one a line). Links are followed on the probe's origin only
// (scheme, address and port), with the probe's headers and credentials, by GET; a sitemap's or
// robots.txt's URLs are the site's public ones, so their paths are followed on the probe's origin whatever
// their host. Nothing but the app's port is ever dialed.
//
// The crawl is breadth first, in rounds: each round's pages are fetched at most Concurrency at once, and
// the next round is made of their links in the order of the pages and of the links in each, so the pages
// crawled, and where the bounds cut, are the same from run to run as long as the app answers the same
// (verify's crawl of the slim image reaches the same pages as the fat one's, and is compared with it).
//
// A crawled page is not a probe: one that fails (an error, a 4xx or 5xx) is reported in the observation's
// Crawl, and in verify's comparison, but fails nothing, whatever the probe policy; it is fetched once, each
// attempt bounded by ProbePolicy.ClientTimeout, and only its first MaxCrawlBody bytes are read (its share
// of MaxCrawlKeptBytes in a large round: a link past it is not followed).
type CrawlOptions struct {
	// All crawls from every GET probe (--http-probe-crawl), not only those with Crawl set.
	All bool
	// MaxDepth bounds how far links are followed: the probed page is at depth 1, a page it links to at 2
	// (0: DefaultCrawlMaxDepth, mint's). robots.txt and sitemaps are read at depth 1, and only when
	// MaxDepth > 1.
	MaxDepth int
	// MaxPages bounds how many requests the crawl sends in all, robots.txt and sitemaps included (0:
	// DefaultCrawlMaxPages, mint's).
	MaxPages int
	// Concurrency is how many pages are fetched at once (0: DefaultCrawlConcurrency, mint's).
	Concurrency int
}

// The defaults of CrawlOptions, mint's.
const (
	DefaultCrawlMaxDepth    = 3
	DefaultCrawlMaxPages    = 1000
	DefaultCrawlConcurrency = 10
)

// What the crawler reads from the app at most: the app is not trusted, and slimoci's memory must not grow
// with what it sends.
const (
	// MaxCrawlBody is how much of a page (or robots.txt, or a sitemap) is read; the rest is not.
	MaxCrawlBody = 4 << 20
	// MaxPageLinks is how many links are taken from one page, robots.txt or sitemap.
	MaxPageLinks = 1000
)

func (o CrawlOptions) fill() CrawlOptions {
	if o.MaxDepth <= 0 {
		o.MaxDepth = DefaultCrawlMaxDepth
	}
	if o.MaxPages <= 0 {
		o.MaxPages = DefaultCrawlMaxPages
	}
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultCrawlConcurrency
	}
	return o
}

// CrawlReport is what a crawl did.
type CrawlReport struct {
	// Pages are the requests the crawl sent, in the order of its rounds.
	Pages []CrawledPage `json:"pages"`
	// NotFollowed counts the links of the origin not followed because MaxPages was reached; BeyondDepth
	// those not followed because of MaxDepth; OtherOrigin the links to other origins, never followed.
	NotFollowed int `json:"notFollowed,omitempty"`
	BeyondDepth int `json:"beyondDepth,omitempty"`
	OtherOrigin int `json:"otherOrigin,omitempty"`
}

// The kinds of a crawled page.
const (
	CrawlPage    = "page"
	CrawlRobots  = "robots"
	CrawlSitemap = "sitemap"
)

// CrawledPage is one request of a crawl.
type CrawledPage struct {
	Port  int    `json:"port"`
	Proto string `json:"proto"`
	// Path is the path and query asked for.
	Path string `json:"path"`
	// Kind is CrawlPage, CrawlRobots or CrawlSitemap: how its answer was read.
	Kind  string `json:"kind"`
	Depth int    `json:"depth"`
	// From is the path of the page (or robots.txt, or sitemap) that linked to it, or redirected to it.
	From       string `json:"from,omitempty"`
	Status     int    `json:"status,omitempty"`
	Size       int64  `json:"size,omitempty"`
	BodySHA256 string `json:"bodySha256,omitempty"`
	// Truncated: the answer was longer than MaxCrawlBody (Size and the hash are of what was read), or had
	// more than MaxPageLinks links.
	Truncated bool `json:"truncated,omitempty"`
	// Error is why it got no answer.
	Error string `json:"error,omitempty"`
}

// OK reports whether the page answered with a 2xx or 3xx.
func (p CrawledPage) OK() bool { return p.Error == "" && p.Status >= 200 && p.Status < 400 }

// crawls reports whether a probe of c answered over proto is crawled from under o.
func (o CrawlOptions) crawls(c HTTPCommand, proto string) bool {
	switch proto {
	case ProtoHTTP, ProtoHTTPS, ProtoHTTP2, ProtoHTTP2C:
		return c.Crawl || o.All && c.Method == http.MethodGet
	}
	return false
}

// capture keeps the start of an HTTP answer's body, and what is needed to read it, for the crawler and the
// API spec: a probe's once tees its answer into the capture its context carries (see captured). One
// capture serves one job, whose attempts are sequential: each answer replaces the last.
type capture struct {
	limit  int
	body   []byte
	over   bool
	status int
	ctype  string
	// location is a 3xx's Location, as it came.
	location string
	// url is the answer's URL, after the redirects the client followed: the base of relative links.
	url *url.URL
}

type captureKey struct{}

func withCapture(ctx context.Context, c *capture) context.Context {
	return context.WithValue(ctx, captureKey{}, c)
}

// captured is resp's body, teed into the capture ctx carries, if any.
func captured(ctx context.Context, resp *http.Response) io.Reader {
	c, _ := ctx.Value(captureKey{}).(*capture)
	if c == nil {
		return resp.Body
	}
	*c = capture{limit: c.limit, body: c.body[:0], status: resp.StatusCode, ctype: resp.Header.Get("Content-Type"),
		location: resp.Header.Get("Location"), url: resp.Request.URL}
	return io.TeeReader(resp.Body, c)
}

// Write keeps what fits under the limit and notes the rest.
func (c *capture) Write(b []byte) (int, error) {
	n, room := len(b), c.limit-len(c.body)
	if n > room {
		c.over = true
		b = b[:max(room, 0)]
	}
	if need := len(c.body) + len(b); need > cap(c.body) {
		// Doubling, and never past the limit: append's slower growth of large slices would allocate
		// several times what is kept.
		grown := make([]byte, len(c.body), min(max(need, 2*cap(c.body), 512), max(c.limit, need)))
		copy(grown, c.body)
		c.body = grown
	}
	c.body = append(c.body, b...)
	return n, nil
}

// crawlStart is a probe to crawl from: its command, port and answer.
type crawlStart struct {
	c     HTTPCommand
	port  int
	proto string
	cap   *capture
}

// crawlItem is a request the crawl is to send.
type crawlItem struct {
	o     *crawlOrigin
	path  string
	kind  string
	depth int
	from  string
}

// crawlOrigin is a scheme, address and port crawled, with the request template of the first probe that
// started a crawl there (its headers and credentials).
type crawlOrigin struct {
	base  *url.URL // scheme://127.0.0.1:port
	proto string
	port  int
	c     HTTPCommand
}

// crawler is one crawl's state; the rounds are sequential, so only fetch runs concurrently.
type crawler struct {
	p       *prober
	opts    CrawlOptions
	visited map[string]bool
	report  *CrawlReport
	queued  int
}

// crawl crawls from starts as opts says (see CrawlOptions); nil when none is to be crawled from.
func (p *prober) crawl(ctx context.Context, opts CrawlOptions, starts []crawlStart) *CrawlReport {
	if len(starts) == 0 {
		return nil
	}
	cr := &crawler{p: p, opts: opts.fill(), visited: map[string]bool{}, report: &CrawlReport{Pages: []CrawledPage{}}}
	origins := map[string]*crawlOrigin{}
	var next, site []crawlItem
	for _, s := range starts {
		base := &url.URL{Scheme: schemeOf(s.proto), Host: fmt.Sprintf("127.0.0.1:%d", s.port)}
		key := s.proto + " " + base.Host
		o := origins[key]
		if o == nil {
			o = &crawlOrigin{base: base, proto: s.proto, port: s.port, c: HTTPCommand{Method: http.MethodGet, Headers: s.c.Headers, Username: s.c.Username, Password: s.c.Password}}
			origins[key] = o
			if cr.opts.MaxDepth > 1 {
				site = append(site, crawlItem{o: o, path: "/robots.txt", kind: CrawlRobots, depth: 1}, crawlItem{o: o, path: "/sitemap.xml", kind: CrawlSitemap, depth: 1})
			}
		}
		// The probed page is not fetched again: its answer is the capture. Its path counts as visited.
		start := crawlItem{o: o, path: s.c.Resource, kind: CrawlPage, depth: 1}
		cr.visited[cr.key(start)] = true
		if s.cap.url != nil && sameOrigin(s.cap.url, base) {
			// After the client's redirects, the page's own path is visited too.
			cr.visited[cr.key(crawlItem{o: o, path: s.cap.url.RequestURI()})] = true
		}
		links, _ := cr.follow(start, s.cap)
		next = append(next, links...)
	}
	var round []crawlItem
	for _, it := range append(site, next...) {
		round = cr.enqueue(round, it)
	}
	for len(round) > 0 && ctx.Err() == nil && !p.exited() {
		pages := make([]CrawledPage, len(round))
		// A round's captures are all held until its links are read: together they keep at most
		// MaxCrawlKeptBytes, each page its share when the round is large.
		limit := min(MaxCrawlBody, MaxCrawlKeptBytes/len(round))
		caps := make([]*capture, len(round))
		sem := make(chan struct{}, cr.opts.Concurrency)
		var wg sync.WaitGroup
		for i, it := range round {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				pages[i], caps[i] = p.fetchPage(ctx, it, limit)
			})
		}
		wg.Wait()
		var links []crawlItem
		for i, it := range round {
			if ctx.Err() != nil {
				// Cut short: what was not answered is not recorded.
				break
			}
			cr.report.Pages = append(cr.report.Pages, pages[i])
			if pages[i].Error == "" {
				found, more := cr.follow(it, caps[i])
				cr.report.Pages[len(cr.report.Pages)-1].Truncated = caps[i].over || more
				links = append(links, found...)
			}
		}
		round = nil
		for _, it := range links {
			round = cr.enqueue(round, it)
		}
		p.status.say("crawl: %d pages fetched, %d more to fetch", len(cr.report.Pages), len(round))
	}
	return cr.report
}

// exited reports whether the app is gone.
func (p *prober) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (cr *crawler) key(it crawlItem) string {
	return it.o.proto + " " + it.o.base.Host + it.path
}

// enqueue adds it to round unless it was visited or goes beyond the bounds.
func (cr *crawler) enqueue(round []crawlItem, it crawlItem) []crawlItem {
	switch k := cr.key(it); {
	case cr.visited[k]:
	case it.depth > cr.opts.MaxDepth:
		cr.report.BeyondDepth++
	case cr.queued >= cr.opts.MaxPages:
		cr.report.NotFollowed++
	default:
		cr.visited[k] = true
		cr.queued++
		round = append(round, it)
	}
	return round
}

// follow reads the answer to it and returns what it leads to, at most MaxPageLinks (more says there were
// more): a redirect's target at its depth, an HTML page's links one deeper, robots.txt's and a sitemap's
// URLs. Links to other origins are counted and dropped.
func (cr *crawler) follow(it crawlItem, c *capture) (out []crawlItem, more bool) {
	if c == nil || c.url == nil {
		return nil, false
	}
	add := func(kind string, depth int, u *url.URL, anyHost bool) {
		if u.Scheme != "http" && u.Scheme != "https" {
			// mailto:, javascript:, data: and the like name no page.
			return
		}
		if !anyHost && !sameOrigin(u, it.o.base) {
			cr.report.OtherOrigin++
			return
		}
		// An opaque URL (http:@evil.example/x) has no path: its RequestURI names an authority, which glued
		// to the origin would make slimoci dial a host of the app's choosing.
		path := u.RequestURI()
		if u.Opaque != "" || !strings.HasPrefix(path, "/") {
			cr.report.OtherOrigin++
			return
		}
		out = append(out, crawlItem{o: it.o, path: path, kind: kind, depth: depth, from: it.path})
	}
	if c.status >= 300 && c.status < 400 && c.location != "" {
		// The crawler's own fetches stop at each redirect: its target is crawled as the same page.
		if u, err := c.url.Parse(c.location); err == nil {
			add(it.kind, it.depth, u, false)
		}
		return out, false
	}
	if c.status < 200 || c.status >= 300 {
		return nil, false
	}
	base := c.url
	switch it.kind {
	case CrawlPage:
		if !isHTML(c.ctype, c.body) {
			return nil, false
		}
		href, links := htmlLinks(bytes.NewReader(c.body), MaxPageLinks+1)
		if href != "" {
			if b, err := base.Parse(href); err == nil {
				base = b
			}
		}
		for _, l := range links {
			if u, err := base.Parse(l); err == nil {
				add(CrawlPage, it.depth+1, u, false)
			}
		}
	case CrawlRobots, CrawlSitemap:
		read := robotsURLs
		if it.kind == CrawlSitemap {
			read = sitemapURLs
		}
		pages, sitemaps := read(bytes.NewReader(c.body), MaxPageLinks+1)
		for _, s := range sitemaps {
			if u, err := base.Parse(s); err == nil {
				add(CrawlSitemap, it.depth, u, true)
			}
		}
		for _, s := range pages {
			if u, err := base.Parse(s); err == nil {
				add(CrawlPage, it.depth+1, u, true)
			}
		}
	}
	if len(out) > MaxPageLinks {
		// The parsers return one past the bound: the page had more.
		return out[:MaxPageLinks], true
	}
	return out, false
}

// fetchPage sends it once, without following redirects (a 3xx's Location is a link, see follow), and reads
// at most limit bytes of the answer, hashing what it read.
func (p *prober) fetchPage(ctx context.Context, it crawlItem, limit int) (CrawledPage, *capture) {
	page := CrawledPage{Port: it.o.port, Proto: it.o.proto, Path: it.path, Kind: it.kind, Depth: it.depth, From: it.from}
	ctx, cancel := context.WithTimeout(ctx, p.policy.ClientTimeout)
	defer cancel()
	c := it.o.c
	c.Resource = it.path
	// The URL is built from the origin's host and it.path's parts, never glued as strings: whatever the
	// path holds, the host dialed is the origin's.
	ref, err := url.ParseRequestURI(it.path)
	if err != nil {
		page.Error = fmt.Sprintf("path %q: %v", it.path, err)
		return page, nil
	}
	u := (&url.URL{Scheme: it.o.base.Scheme, Host: it.o.base.Host, Path: ref.Path, RawPath: ref.RawPath, RawQuery: ref.RawQuery}).String()
	req, err := c.request(ctx, u)
	if err != nil {
		page.Error = err.Error()
		return page, nil
	}
	client := &http.Client{Transport: p.transport(it.o.proto), CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		page.Error = err.Error()
		return page, nil
	}
	defer resp.Body.Close()
	kept := &capture{limit: limit}
	// One byte past the bound says the answer was longer; the capture keeps limit.
	if _, err := io.Copy(io.Discard, io.LimitReader(captured(withCapture(ctx, kept), resp), int64(limit)+1)); err != nil {
		page.Error = fmt.Sprintf("reading the answer (status %d): %v", resp.StatusCode, err)
		return page, nil
	}
	sum := sha256.Sum256(kept.body)
	page.Status, page.Size, page.BodySHA256 = resp.StatusCode, int64(len(kept.body)), fmt.Sprintf("%x", sum)
	return page, kept
}

func schemeOf(proto string) string {
	if proto == ProtoHTTPS || proto == ProtoHTTP2 {
		return "https"
	}
	return "http"
}

// sameOrigin compares u's scheme, host and port with base's (127.0.0.1:port), a missing port being the
// scheme's.
func sameOrigin(u, base *url.URL) bool {
	if !strings.EqualFold(u.Scheme, base.Scheme) {
		return false
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[strings.ToLower(u.Scheme)]
	}
	return strings.EqualFold(u.Hostname(), base.Hostname()) && port == base.Port()
}

// isHTML reports whether an answer is an HTML page: by its Content-Type, or by its content without one.
func isHTML(ctype string, body []byte) bool {
	if ctype == "" {
		ctype = http.DetectContentType(body)
	}
	mt, _, err := mime.ParseMediaType(ctype)
	return err == nil && (mt == "text/html" || mt == "application/xhtml+xml")
}

// htmlLinks returns the first <base href> of an HTML document and its links as written, in document order,
// at most max of them.
func htmlLinks(r io.Reader, max int) (base string, links []string) {
	z := html.NewTokenizer(r)
	for len(links) < max {
		tt := z.Next()
		if tt == html.ErrorToken {
			break
		}
		if tt != html.StartTagToken && tt != html.SelfClosingTagToken {
			continue
		}
		name, hasAttr := z.TagName()
		attrs := map[string]string{}
		for hasAttr {
			var k, v []byte
			k, v, hasAttr = z.TagAttr()
			if _, dup := attrs[string(k)]; !dup {
				// The first of a repeated attribute is the one a browser takes.
				attrs[string(k)] = string(v)
			}
		}
		tag := string(name)
		add := func(v string) {
			if v = strings.TrimSpace(v); v != "" && len(links) < max {
				links = append(links, v)
			}
		}
		switch tag {
		case "base":
			if base == "" {
				base = strings.TrimSpace(attrs["href"])
			}
		case "a", "area":
			add(attrs["href"])
		case "link":
			// These name an origin to connect to, not a resource.
			if rel := strings.Fields(strings.ToLower(attrs["rel"])); !slices.Contains(rel, "dns-prefetch") && !slices.Contains(rel, "preconnect") {
				add(attrs["href"])
			}
		case "script", "img", "iframe", "frame", "embed", "audio", "video", "source", "track", "input":
			add(attrs["src"])
		case "meta":
			if strings.EqualFold(attrs["http-equiv"], "refresh") {
				add(refreshURL(attrs["content"]))
			}
		}
		switch tag {
		case "img", "source":
			for _, u := range srcsetURLs(attrs["srcset"]) {
				add(u)
			}
		case "video":
			add(attrs["poster"])
		}
		add(attrs["data-src"])
		for _, u := range srcsetURLs(attrs["data-srcset"]) {
			add(u)
		}
	}
	return base, links
}

// refreshURL is the URL of a meta refresh's content, "5; url=/next" (or "5, /next", or "5; url='/next'").
func refreshURL(content string) string {
	_, rest, ok := strings.Cut(content, ";")
	if !ok {
		_, rest, ok = strings.Cut(content, ",")
	}
	if !ok {
		return ""
	}
	rest = strings.TrimSpace(rest)
	if len(rest) >= 3 && strings.EqualFold(rest[:3], "url") {
		rest = strings.TrimSpace(rest[3:])
		if !strings.HasPrefix(rest, "=") {
			return ""
		}
		rest = strings.TrimSpace(rest[1:])
	}
	return strings.Trim(rest, `'"`)
}

// srcsetURLs are the URLs of a srcset attribute, "a.png 1x, b.png 2x": each candidate's URL up to its
// white space, a trailing comma ending a candidate without descriptors, as the HTML standard parses it (a
// URL may hold commas: "f_auto,w_100/a.png 100w").
func srcsetURLs(s string) []string {
	var out []string
	isSpace := func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' }
	for i := 0; i < len(s); {
		for i < len(s) && (isSpace(s[i]) || s[i] == ',') {
			i++
		}
		j := i
		for j < len(s) && !isSpace(s[j]) {
			j++
		}
		if j == i {
			break
		}
		u := s[i:j]
		i = j
		if strings.HasSuffix(u, ",") {
			out = append(out, strings.TrimRight(u, ","))
			continue
		}
		out = append(out, u)
		// The descriptors, up to the comma that ends the candidate (one in parentheses does not).
		depth := 0
		for ; i < len(s); i++ {
			switch s[i] {
			case '(':
				depth++
			case ')':
				depth--
			case ',':
				if depth <= 0 {
					goto next
				}
			}
		}
	next:
	}
	return out
}

// robotsURLs reads robots.txt: the paths of its Allow lines without wildcards (* or $), and its Sitemap
// URLs, at most max of each.
func robotsURLs(r io.Reader, max int) (pages, sitemaps []string) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for sc.Scan() && (len(pages) < max || len(sitemaps) < max) {
		line, _, _ := strings.Cut(sc.Text(), "#")
		field, value, ok := strings.Cut(line, ":")
		value = strings.TrimSpace(value)
		if !ok || value == "" {
			continue
		}
		switch strings.ToLower(strings.TrimSpace(field)) {
		case "sitemap":
			if len(sitemaps) < max {
				sitemaps = append(sitemaps, value)
			}
		case "allow":
			if strings.HasPrefix(value, "/") && !strings.ContainsAny(value, "*$") && len(pages) < max {
				pages = append(pages, value)
			}
		}
	}
	return pages, sitemaps
}

// sitemapURLs reads a sitemap: a urlset's page URLs and a sitemapindex's sitemap URLs (their <loc>), or,
// for a text sitemap, one URL a line; at most max of each. XML is read as encoding/xml reads it: no
// external entity is fetched.
func sitemapURLs(r io.Reader, max int) (pages, sitemaps []string) {
	br := bufio.NewReader(r)
	head, _ := br.Peek(512)
	head = bytes.TrimLeft(bytes.TrimPrefix(head, []byte("\xef\xbb\xbf")), " \t\r\n")
	if len(head) > 0 && head[0] != '<' {
		sc := bufio.NewScanner(br)
		sc.Buffer(make([]byte, 0, 4096), 64<<10)
		for sc.Scan() && len(pages) < max {
			if l := strings.TrimSpace(strings.TrimPrefix(sc.Text(), "\ufeff")); l != "" {
				pages = append(pages, l)
			}
		}
		return pages, nil
	}
	d := xml.NewDecoder(br)
	var stack []string
	var loc strings.Builder
	for len(pages) < max || len(sitemaps) < max {
		tok, err := d.Token()
		if err != nil {
			break
		}
		switch t := tok.(type) {
		case xml.StartElement:
			stack = append(stack, t.Name.Local)
			loc.Reset()
		case xml.CharData:
			if len(stack) > 0 && stack[len(stack)-1] == "loc" && loc.Len() < 8192 {
				loc.Write(t)
			}
		case xml.EndElement:
			if len(stack) >= 2 && stack[len(stack)-1] == "loc" {
				v := strings.TrimSpace(loc.String())
				switch parent := stack[len(stack)-2]; {
				case v == "":
				case parent == "url" && len(pages) < max:
					pages = append(pages, v)
				case parent == "sitemap" && len(sitemaps) < max:
					sitemaps = append(sitemaps, v)
				}
			}
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
		}
	}
	return pages, sitemaps
}

// CrawlDiff lists how slim's crawl differs from fat's: a page the fat image's crawl reached that the slim
// one's did not, or that answered another status.
func CrawlDiff(fat, slim *Observation) []string {
	if fat.Crawl == nil {
		return nil
	}
	got := map[string]CrawledPage{}
	if slim.Crawl != nil {
		for _, p := range slim.Crawl.Pages {
			got[fmt.Sprintf("%s %d %s", p.Proto, p.Port, p.Path)] = p
		}
	}
	var out []string
	for _, p := range fat.Crawl.Pages {
		s, ok := got[fmt.Sprintf("%s %d %s", p.Proto, p.Port, p.Path)]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("crawled page :%d%s was not reached, the fat image's crawl got %s", p.Port, p.Path, p.Outcome()))
		case s.Status != p.Status:
			out = append(out, fmt.Sprintf("crawled page :%d%s: %s, the fat image gave %s", p.Port, p.Path, s.Outcome(), p.Outcome()))
		}
	}
	return out
}

// Outcome is the page's status, or its error.
func (p CrawledPage) Outcome() string {
	if p.Status == 0 {
		return p.Error
	}
	return fmt.Sprint(p.Status)
}

// MaxCrawlKeptBytes bounds what the crawl holds of the app's answers at once: the probes to crawl from keep
// it, all together, then each round's pages (their captures are held until the round's links are read):
// each keeps MaxCrawlBody, or its share of this when there are many (64 KiB each at 1000).
const MaxCrawlKeptBytes = 64 << 20

// capture gives the jobs a crawl may start from a capture of their answer.
func (o CrawlOptions) capture(jobs []probeJob) {
	var starts []*probeJob
	for i := range jobs {
		// The protocol is known once answered: every one that might be crawled keeps its answer.
		proto := jobs[i].c.Protocol
		if proto == "" && jobs[i].c.FastCGI == nil {
			proto = ProtoHTTP
		}
		if o.crawls(jobs[i].c, proto) {
			starts = append(starts, &jobs[i])
		}
	}
	for _, j := range starts {
		j.cap = &capture{limit: min(MaxCrawlBody, MaxCrawlKeptBytes/len(starts))}
	}
}

// crawlFrom crawls from the jobs that succeeded and are to be crawled from under o (results are the jobs'
// first, in order).
func (p *prober) crawlFrom(ctx context.Context, o CrawlOptions, jobs []probeJob, results []ProbeResult) *CrawlReport {
	var starts []crawlStart
	for i, j := range jobs {
		if r := results[i]; j.cap != nil && r.OK() && o.crawls(j.c, r.Proto) {
			starts = append(starts, crawlStart{c: j.c, port: j.port, proto: r.Proto, cap: j.cap})
		}
	}
	return p.crawl(ctx, o, starts)
}
