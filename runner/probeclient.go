package runner

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"hash"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
)

// ProbePolicy says how HTTP probes are sent and retried, and when failed ones fail the observation: mint's
// --http-probe-* options, with slimoci's stricter semantics (see Observation.ProbeFailure).
//
// A probe is sent until it succeeds, at most Attempts times, RetryWait apart. Refused connections are no
// attempt: nothing listens yet, the app is starting, and the probe is sent again every 100 ms until the app
// takes it, for at most Plan.ProbeTimeout from the first probe (all probes together). Every other outcome
// is an attempt: an answer (failed only when its status is, with FailOn4xx or FailOn5xx), or an error once
// connected (reset, timeout, TLS, a malformed answer), each bounded by ClientTimeout.
type ProbePolicy struct {
	// Attempts is how many times a probe is sent once the app takes connections (0: 5, mint's).
	Attempts int
	// RetryWait is the wait before each new attempt (0: 8 s, mint's).
	RetryWait time.Duration
	// StartWait is waited from the sandbox's start before the first probe.
	StartWait time.Duration
	// ClientTimeout bounds each attempt, the answer's body included (0: 30 s, mint's).
	ClientTimeout time.Duration
	// Concurrency is how many probes are sent at once (0: 1, in order).
	Concurrency int
	// FailOn4xx and FailOn5xx make such a status a failed attempt: retried, and a probe whose last attempt
	// got one has failed.
	FailOn4xx, FailOn5xx bool
	// MaxFailures > 0 stops probing once that many probes failed; the probes not sent are recorded as such.
	MaxFailures int
	// FailuresAllowed: failed HTTP probes do not fail the observation (--no-http-probe-exit-on-failure).
	FailuresAllowed bool
}

// The defaults of ProbePolicy, mint's.
const (
	DefaultProbeAttempts      = 5
	DefaultProbeRetryWait     = 8 * time.Second
	DefaultProbeClientTimeout = 30 * time.Second
)

// fill returns p with its defaults.
func (p ProbePolicy) fill() ProbePolicy {
	if p.Attempts <= 0 {
		p.Attempts = DefaultProbeAttempts
	}
	if p.RetryWait <= 0 {
		p.RetryWait = DefaultProbeRetryWait
	}
	if p.ClientTimeout <= 0 {
		p.ClientTimeout = DefaultProbeClientTimeout
	}
	if p.Concurrency <= 0 {
		p.Concurrency = 1
	}
	return p
}

// failsOn reports whether status is a failure under p, and which flag says so.
func (p ProbePolicy) failsOn(status int) (string, bool) {
	switch {
	case p.FailOn5xx && status >= 500 && status <= 599:
		return "--http-probe-fail-on-status-5xx", true
	case p.FailOn4xx && status >= 400 && status <= 499:
		return "--http-probe-fail-on-status-4xx", true
	}
	return "", false
}

// ProbeResult is one probe's outcome, for the record.
type ProbeResult struct {
	Port       int    `json:"port"`
	Proto      string `json:"proto,omitempty"`
	Method     string `json:"method"`
	Path       string `json:"path"`
	Status     int    `json:"status,omitempty"`
	Size       int64  `json:"size,omitempty"`
	BodySHA256 string `json:"bodySha256,omitempty"`
	// Attempts is how many times it was sent once the app took connections.
	Attempts int `json:"attempts,omitempty"`
	// Error is why it failed: no answer, or (with Status set) a status the policy fails.
	Error string `json:"error,omitempty"`
}

// OK reports whether the app answered, with a status the policy accepts (without FailOn4xx or FailOn5xx,
// any status: the app was exercised).
func (r ProbeResult) OK() bool { return r.Status != 0 && r.Error == "" }

// failedOnStatus reports whether the app answered with a status the policy fails.
func (r ProbeResult) failedOnStatus() bool { return r.Status != 0 && r.Error != "" }

// prober sends probes to an app: dial reaches the app's network (the sandbox's), done closes when the app
// exits, cwd is its working directory (FastCGI's default root).
type prober struct {
	dial   func(ctx context.Context, network, addr string) (net.Conn, error)
	done   <-chan struct{}
	cwd    string
	policy ProbePolicy
	// upBy is when waiting for the app to take connections ends.
	upBy time.Time
	// status reports each result; answered, when set, is called with each (it ends the wait for the app).
	status   *status
	answered func()
}

func (s *Sandbox) prober(policy ProbePolicy) *prober {
	return &prober{dial: s.Dial, done: s.done, cwd: s.spec.Cwd, policy: policy.fill(), status: s.status}
}

// fastcgiPort is PHP-FPM's port, where a probe without a protocol falls back to FastCGI (a variable for
// the tests).
var fastcgiPort = 9000

// notUpPoll is how often a refused probe is sent again while the app starts.
const notUpPoll = 100 * time.Millisecond

// wsMessage is what a WebSocket probe sends without a body (mint's).
const wsMessage = "ws.data"

// protocols lists what c is tried over on port, in order: FastCGI with a fastcgi object, c.Protocol, or
// HTTP then HTTPS, and on port 9000, as mint, FastCGI after them (PHP-FPM's port: mint's defaults, the .php
// split and index.php; HTTP first, so that an HTTP app there gets no FastCGI request).
func (c *HTTPCommand) protocols(port int) []string {
	switch {
	case c.FastCGI != nil:
		return []string{ProtoFastCGI}
	case c.Protocol != "":
		return []string{c.Protocol}
	case port == fastcgiPort:
		return []string{ProtoHTTP, ProtoHTTPS, ProtoFastCGI}
	}
	return []string{ProtoHTTP, ProtoHTTPS}
}

// probe sends c to port as p's policy says: see ProbePolicy.
func (p *prober) probe(ctx context.Context, c HTTPCommand, port int) ProbeResult {
	res := ProbeResult{Port: port, Method: c.Method, Path: c.Resource}
	for {
		refused := false
		for _, proto := range c.protocols(port) {
			a, err := p.once(ctx, c, proto, port)
			res.Proto = proto
			if err != nil {
				res.Error = err.Error()
				if errors.Is(err, syscall.ECONNREFUSED) {
					// Nothing listens yet: HTTPS would be refused too, or, if the app starts listening
					// right now, send a TLS hello to an HTTP server and exercise its error path, which a
					// plain GET would not: the observation would depend on timing.
					refused = true
					break
				}
				continue
			}
			res.Status, res.Size, res.BodySHA256, res.Error = a.status, a.size, a.sha256, ""
			if flag, failed := p.policy.failsOn(a.status); failed {
				res.Error = fmt.Sprintf("status %d, a failure with %s", a.status, flag)
			}
			break
		}
		wait := p.policy.RetryWait
		if refused {
			// Not an attempt: the app is not up yet.
			if time.Now().After(p.upBy) {
				return res
			}
			wait = notUpPoll
		} else {
			res.Attempts++
			if res.OK() {
				// A crawl starts from this answer, which the job's capture kept (see probeAll).
				return res
			}
			if res.Attempts >= p.policy.Attempts {
				return res
			}
		}
		select {
		case <-ctx.Done():
			return res
		case <-p.done:
			res.Error = "the app exited before answering: " + res.Error
			return res
		case <-time.After(wait):
		}
	}
}

// answer is what one attempt got back.
type answer struct {
	status int
	size   int64
	sha256 string
}

// once sends c to port over proto, once.
func (p *prober) once(ctx context.Context, c HTTPCommand, proto string, port int) (answer, error) {
	ctx, cancel := context.WithTimeout(ctx, p.policy.ClientTimeout)
	defer cancel()
	switch proto {
	case ProtoWS, ProtoWSS:
		return p.websocket(ctx, c, proto, port)
	case ProtoFastCGI:
		f := c.FastCGI
		if f == nil {
			// Port 9000 without a fastcgi object: mint's defaults for PHP-FPM.
			f = &FastCGI{SplitPath: []string{".php"}}
		}
		req, err := c.request(ctx, fmt.Sprintf("http://127.0.0.1:%d%s", port, c.Resource))
		if err != nil {
			return answer{}, err
		}
		return p.fastcgi(ctx, req, f, port)
	}
	scheme := proto
	switch proto {
	case ProtoHTTP2:
		scheme = "https"
	case ProtoHTTP2C:
		scheme = "http"
	}
	req, err := c.request(ctx, fmt.Sprintf("%s://127.0.0.1:%d%s", scheme, port, c.Resource))
	if err != nil {
		return answer{}, err
	}
	resp, err := (&http.Client{Transport: p.transport(proto), CheckRedirect: redirectOnOrigin}).Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	return readAnswer(resp.StatusCode, captured(ctx, resp))
}

// redirectOnOrigin follows a probe's redirects on the app's own origin only (and 10 at most, as net/http): a
// redirect elsewhere is the answer. The app is untrusted: it must not make slimoci dial or resolve a host of
// its choosing (with --network host, the sensor's relay would reach it from the host's network).
func redirectOnOrigin(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 || !sameOrigin(req.URL, via[0].URL) {
		return http.ErrUseLastResponse
	}
	return nil
}

// readAnswer hashes the answer's body as it streams: what the app sends is never held.
func readAnswer(status int, body io.Reader) (answer, error) {
	h := sha256.New()
	n, err := io.Copy(h, body)
	if err != nil {
		return answer{}, fmt.Errorf("reading the answer (status %d): %w", status, err)
	}
	return answer{status: status, size: n, sha256: hexSum(h)}, nil
}

func hexSum(h hash.Hash) string { return fmt.Sprintf("%x", h.Sum(nil)) }

// transport is an HTTP client's transport into the app's network for proto, one connection per request.
// Certificates are not verified: an app's own certificate is most often self-signed, and the probe is
// there to exercise the app, not to trust it.
func (p *prober) transport(proto string) *http.Transport {
	t := &http.Transport{DialContext: p.dial, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true}
	switch proto {
	case ProtoHTTP2:
		t.Protocols = new(http.Protocols)
		t.Protocols.SetHTTP2(true)
	case ProtoHTTP2C:
		t.Protocols = new(http.Protocols)
		t.Protocols.SetUnencryptedHTTP2(true)
	}
	return t
}

// request makes c's HTTP request to url: its headers, basic authentication and body.
func (c *HTTPCommand) request(ctx context.Context, url string) (*http.Request, error) {
	body, size, ctype, err := c.body()
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, c.Method, url, body)
	if err != nil {
		if body != nil {
			body.Close()
		}
		return nil, err
	}
	req.ContentLength = size
	if body == nil {
		req.Body, req.ContentLength = nil, 0
	}
	for _, h := range c.Headers {
		name, value, _ := strings.Cut(h, ":")
		req.Header.Add(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if c.Username != "" || c.Password != "" {
		req.SetBasicAuth(c.Username, c.Password)
	}
	return req, nil
}

// body opens c's body for one attempt: nil without one; a form's multipart/form-data type with it.
func (c *HTTPCommand) body() (rc io.ReadCloser, size int64, ctype string, err error) {
	var content io.ReadCloser
	switch {
	case c.BodyFile != "":
		f, err := os.Open(c.BodyFile)
		if err != nil {
			return nil, 0, "", fmt.Errorf("body_file: %w", err)
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, 0, "", fmt.Errorf("body_file: %w", err)
		}
		content, size = f, st.Size()
	case c.BodyGenerate != "":
		b, err := generate(c.BodyGenerate)
		if err != nil {
			return nil, 0, "", err
		}
		content, size = io.NopCloser(bytes.NewReader(b)), int64(len(b))
	case c.Body != "":
		content, size = io.NopCloser(strings.NewReader(c.Body)), int64(len(c.Body))
	default:
		return nil, 0, "", nil
	}
	if !c.BodyIsForm {
		return content, size, "", nil
	}
	// The form's parts around the content are made in memory; the content streams between them, and the
	// length is known, so the request is not chunked (some servers refuse chunked uploads).
	field, file := c.FormFieldName, c.FormFileName
	if field == "" {
		field = "file"
	}
	if file == "" {
		file = "file.data"
		if c.BodyFile != "" {
			file = filepath.Base(c.BodyFile)
		}
	}
	var head bytes.Buffer
	mw := multipart.NewWriter(&head)
	if _, err := mw.CreateFormFile(field, file); err != nil {
		content.Close()
		return nil, 0, "", err
	}
	n := head.Len()
	mw.Close() // the trailer: a line break and the closing boundary
	tail := append([]byte(nil), head.Bytes()[n:]...)
	head.Truncate(n)
	r := io.MultiReader(bytes.NewReader(head.Bytes()), content, bytes.NewReader(tail))
	return readCloser{r, content}, int64(head.Len()) + size + int64(len(tail)), mw.FormDataContentType(), nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

// generate makes what body_generate names, as mint: "text data", {"data": "text"}, or a 10x10 red image.
func generate(kind string) ([]byte, error) {
	switch kind {
	case GenerateText:
		return []byte("text data"), nil
	case GenerateTextJSON:
		return []byte(`{"data": "text"}`), nil
	}
	img := image.NewRGBA(image.Rect(0, 0, 10, 10))
	for x := range 10 {
		for y := range 10 {
			img.Set(x, y, color.RGBA{255, 0, 0, 255})
		}
	}
	var b bytes.Buffer
	var err error
	switch kind {
	case GenerateImage, GenerateImagePNG:
		err = png.Encode(&b, img)
	case GenerateImageJPEG:
		err = jpeg.Encode(&b, img, nil)
	case GenerateImageGIF:
		err = gif.Encode(&b, img, nil)
	default:
		return nil, fmt.Errorf("body_generate %q is not one of %s", kind, strings.Join(generateTypes, ", "))
	}
	return b.Bytes(), err
}

// websocketReplyWait bounds the wait for the app's reply to a WebSocket probe's message (mint's).
const websocketReplyWait = 5 * time.Second

// websocket opens a WebSocket to port (its handshake with c's headers and credentials), sends c's body as
// one message (text when it is UTF-8, else binary) and reads one message back if the app sends one within
// websocketReplyWait. A handshake the app answers without switching protocols is an answer of that
// status, as over HTTP; the status of a switch is 101, and the size and hash are the reply's.
func (p *prober) websocket(ctx context.Context, c HTTPCommand, proto string, port int) (answer, error) {
	req, err := c.request(ctx, "http://127.0.0.1/")
	if err != nil {
		return answer{}, err
	}
	msg := []byte(wsMessage)
	if req.Body != nil {
		msg, err = io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return answer{}, err
		}
	}
	conn, resp, err := websocket.Dial(ctx, fmt.Sprintf("%s://127.0.0.1:%d%s", proto, port, c.Resource), &websocket.DialOptions{
		HTTPClient: &http.Client{Transport: p.transport(proto), CheckRedirect: redirectOnOrigin},
		HTTPHeader: req.Header,
	})
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			return readAnswer(resp.StatusCode, resp.Body)
		}
		return answer{}, err
	}
	defer conn.CloseNow()
	typ := websocket.MessageText
	if !utf8.Valid(msg) {
		typ = websocket.MessageBinary
	}
	if err := conn.Write(ctx, typ, msg); err != nil {
		return answer{}, fmt.Errorf("websocket: sending the message: %w", err)
	}
	a := answer{status: http.StatusSwitchingProtocols, sha256: hexSum(sha256.New())}
	rctx, cancel := context.WithTimeout(ctx, websocketReplyWait)
	defer cancel()
	conn.SetReadLimit(-1)
	if _, r, err := conn.Reader(rctx); err == nil {
		h := sha256.New()
		n, err := io.Copy(h, r)
		if err != nil {
			return answer{}, fmt.Errorf("websocket: reading the reply: %w", err)
		}
		a.size, a.sha256 = n, hexSum(h)
		conn.Close(websocket.StatusNormalClosure, "")
	}
	// No reply in time, or the app closed: the handshake and the message exercised it.
	return a, nil
}

// probeJob is one probe of the plan: a command and the port it goes to; cap, when set, keeps the start of
// its answer (for a crawl, or an API spec).
type probeJob struct {
	c    HTTPCommand
	port int
	cap  *capture
}

// probeAll sends plan's HTTP probes (a command with Port 0 to each of plan.Ports) under plan.Probe, at most
// its Concurrency at once, then the operations of plan.APISpecs (see apiSpecProbes), then crawls from the
// probes plan.Crawl names. The results are in the commands' order, each command's ports in order; probes
// not sent because MaxFailures stopped probing are recorded with that reason. firstAnswer is the time from
// start to the first successful answer.
func (s *Sandbox) probeAll(ctx context.Context, plan Plan, start time.Time) (results []ProbeResult, firstAnswer time.Duration, crawl *CrawlReport) {
	var jobs []probeJob
	for _, c := range plan.HTTP {
		ports := []int{c.Port}
		if c.Port == 0 {
			ports = plan.Ports
		}
		for _, port := range ports {
			jobs = append(jobs, probeJob{c: c, port: port})
		}
	}
	if len(jobs) == 0 {
		return nil, 0, nil
	}
	plan.Crawl.capture(jobs)
	p := s.prober(plan.Probe)
	p.answered = s.status.wait("for the app on " + portList(jobPorts(jobs)))
	defer p.answered()
	if d := p.policy.StartWait - time.Since(start); d > 0 {
		select {
		case <-ctx.Done():
		case <-p.done:
		case <-time.After(d):
		}
	}
	p.upBy = time.Now().Add(plan.ProbeTimeout)
	results, firstAnswer = p.run(ctx, jobs, start)
	results = append(results, p.apiSpecProbes(ctx, plan, results, start)...)
	return results, firstAnswer, p.crawlFrom(ctx, plan.Crawl, jobs, results)
}

// jobPorts are the ports jobs probe, in order, once each.
func jobPorts(jobs []probeJob) []int {
	var ports []int
	for _, j := range jobs {
		if !slices.Contains(ports, j.port) {
			ports = append(ports, j.port)
		}
	}
	return ports
}

// run sends jobs (see probeAll).
func (p *prober) run(ctx context.Context, jobs []probeJob, start time.Time) ([]ProbeResult, time.Duration) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make([]ProbeResult, len(jobs))
	var mu sync.Mutex
	var failed int
	var first time.Duration
	stopped := fmt.Sprintf("%d probes failed (--http-probe-exit-on-failure-count %d)", p.policy.MaxFailures, p.policy.MaxFailures)
	sem := make(chan struct{}, p.policy.Concurrency)
	var wg sync.WaitGroup
	for i, j := range jobs {
		results[i] = ProbeResult{Port: j.port, Method: j.c.Method, Path: j.c.Resource, Error: "not sent: " + stopped}
		select {
		case <-ctx.Done():
			continue
		case sem <- struct{}{}:
		}
		if ctx.Err() != nil {
			<-sem
			continue
		}
		wg.Go(func() {
			defer func() { <-sem }()
			ctx := ctx
			if j.cap != nil {
				ctx = withCapture(ctx, j.cap)
			}
			r := p.probe(ctx, j.c, j.port)
			mu.Lock()
			defer func() {
				if p.answered != nil {
					p.answered()
				}
				p.status.probe(results[i])
				mu.Unlock()
			}()
			switch {
			case r.OK():
				if d := time.Since(start); first == 0 || d < first {
					first = d
				}
			case p.policy.MaxFailures > 0 && failed >= p.policy.MaxFailures:
				// Cut short by the failures of others.
				r.Error = "stopped: " + stopped
			case p.policy.MaxFailures > 0:
				if failed++; failed >= p.policy.MaxFailures {
					cancel()
				}
			}
			results[i] = r
		})
	}
	wg.Wait()
	return results, first
}

// probeVerdict says why results fail the observation under policy, or "": a probe that got a status the
// policy fails, or MaxFailures probes failed. Every probe failing is Observation.ProbeError's.
func probeVerdict(policy ProbePolicy, results []ProbeResult) string {
	if policy.FailuresAllowed {
		return ""
	}
	var failed []ProbeResult
	for _, r := range results {
		if !r.OK() {
			failed = append(failed, r)
		}
	}
	if policy.MaxFailures > 0 && len(failed) >= policy.MaxFailures {
		f := failed[0]
		return fmt.Sprintf("%d HTTP probes failed (--http-probe-exit-on-failure-count %d); the first, %s :%d%s: %s",
			len(failed), policy.MaxFailures, f.Method, f.Port, f.Path, f.Error)
	}
	for _, f := range failed {
		if f.failedOnStatus() {
			return fmt.Sprintf("probe %s :%d%s: %s (%s)", f.Method, f.Port, f.Path, f.Error, plural(f.Attempts, "attempt"))
		}
	}
	return ""
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}
