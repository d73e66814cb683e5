package runner

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"image/png"
	"io"
	"net"
	"net/http"
	"net/http/fcgi"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// Each protocol's client against an in-process server speaking it: the probe reaches the server, the
// server sees the protocol, the credentials and the body, and the result is the server's answer.

// testProber dials the host's loopback, as the sandbox's Dial does inside.
func testProber(policy ProbePolicy) *prober {
	return &prober{dial: (&net.Dialer{}).DialContext, done: make(chan struct{}), cwd: "/app", policy: policy.fill(), upBy: time.Now().Add(5 * time.Second)}
}

func portOf(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(strings.TrimPrefix(strings.TrimPrefix(addr, "http://"), "https://"))
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return n
}

func sha(s string) string { return fmt.Sprintf("%x", sha256.Sum256([]byte(s))) }

// mustCmd is a probe-file entry checked as ReadHTTPCommandFile checks it.
func mustCmd(t *testing.T, c HTTPCommand) HTTPCommand {
	t.Helper()
	if err := c.check(); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestProbeHTTPProtocols(t *testing.T) {
	// One handler for every HTTP server: it answers what it saw.
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, _ := r.BasicAuth()
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s %s user=%s pass=%s x=%s body=%s", r.Proto, r.Method, r.URL.RequestURI(), user, pass, r.Header.Get("X-Probe"), b)
	})
	tls1 := httptest.NewTLSServer(handler) // HTTP/1.1 only: httptest enables HTTP/2 only when asked
	defer tls1.Close()
	tls2 := httptest.NewUnstartedServer(handler)
	tls2.EnableHTTP2 = true
	tls2.StartTLS()
	defer tls2.Close()
	plain := httptest.NewServer(handler)
	defer plain.Close()
	h2c := httptest.NewUnstartedServer(handler)
	h2c.Config.Protocols = new(http.Protocols)
	h2c.Config.Protocols.SetHTTP1(true)
	h2c.Config.Protocols.SetUnencryptedHTTP2(true)
	h2c.Start()
	defer h2c.Close()

	c := HTTPCommand{Method: "POST", Resource: "/p?q=1", Headers: []string{"X-Probe: yes"}, Body: "hello", Username: "alice", Password: "s3cret"}
	for _, tc := range []struct {
		proto, addr, want string
	}{
		{"http", plain.URL, "HTTP/1.1 POST /p?q=1 user=alice pass=s3cret x=yes body=hello"},
		{"https", tls1.URL, "HTTP/1.1 POST /p?q=1 user=alice pass=s3cret x=yes body=hello"},
		{"http2", tls2.URL, "HTTP/2.0 POST /p?q=1 user=alice pass=s3cret x=yes body=hello"},
		{"http2c", h2c.URL, "HTTP/2.0 POST /p?q=1 user=alice pass=s3cret x=yes body=hello"},
	} {
		t.Run(tc.proto, func(t *testing.T) {
			c := c
			c.Protocol = tc.proto
			r := testProber(ProbePolicy{}).probe(t.Context(), mustCmd(t, c), portOf(t, tc.addr))
			if !r.OK() || r.Status != 200 || r.Proto != tc.proto || r.BodySHA256 != sha(tc.want) || r.Size != int64(len(tc.want)) || r.Attempts != 1 {
				t.Errorf("%+v, want 200 with %q", r, tc.want)
			}
		})
	}
	// http2 insists on HTTP/2: a server without it fails the probe rather than answering over HTTP/1.1.
	t.Run("http2 without h2", func(t *testing.T) {
		r := testProber(ProbePolicy{Attempts: 1}).probe(t.Context(), mustCmd(t, HTTPCommand{Protocol: "http2"}), portOf(t, tls1.URL))
		if r.OK() || r.Status != 0 || r.Error == "" {
			t.Errorf("%+v", r)
		}
	})
	// No protocol: HTTP, then HTTPS when HTTP gets no answer. Go's HTTPS server answers plain HTTP with a
	// 400 (an answer: no HTTPS then); this one, as many, drops the connection.
	t.Run("http then https", func(t *testing.T) {
		raw, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		go http.Serve(hiddenTLS{tls.NewListener(raw, tls1.TLS)}, handler)
		r := testProber(ProbePolicy{}).probe(t.Context(), mustCmd(t, HTTPCommand{}), portOf(t, raw.Addr().String()))
		if !r.OK() || r.Proto != "https" || r.BodySHA256 != sha("HTTP/1.1 GET / user= pass= x= body=") {
			t.Errorf("%+v", r)
		}
	})
}

// hiddenTLS hands http.Serve its TLS connections as plain net.Conns, so that it does not answer plain HTTP
// on them with a 400: a failed handshake just closes the connection.
type hiddenTLS struct{ net.Listener }

type hiddenConn struct{ net.Conn }

func (l hiddenTLS) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	return hiddenConn{c}, err
}

func TestProbeBodies(t *testing.T) {
	type seen struct {
		ctype, field, file string
		content            []byte
		length             int64
	}
	got := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := seen{ctype: r.Header.Get("Content-Type"), length: r.ContentLength}
		if strings.HasPrefix(s.ctype, "multipart/form-data") {
			f, h, err := r.FormFile(r.URL.Query().Get("field"))
			if err != nil {
				http.Error(w, err.Error(), 400)
				return
			}
			s.field, s.file = r.URL.Query().Get("field"), h.Filename
			s.content, _ = io.ReadAll(f)
		} else {
			s.content, _ = io.ReadAll(r.Body)
		}
		got <- s
	}))
	defer srv.Close()
	dir := t.TempDir()
	file := filepath.Join(dir, "report.csv")
	os.WriteFile(file, []byte("a,b\n1,2\n"), 0o644)
	for _, tc := range []struct {
		name string
		c    HTTPCommand
		want seen
	}{
		{"body_file", HTTPCommand{Resource: "/", Method: "PUT", BodyFile: file}, seen{content: []byte("a,b\n1,2\n")}},
		{"generate.text", HTTPCommand{Resource: "/", Method: "POST", BodyGenerate: GenerateText}, seen{content: []byte("text data")}},
		{"generate.text.json", HTTPCommand{Resource: "/", Method: "POST", BodyGenerate: GenerateTextJSON}, seen{content: []byte(`{"data": "text"}`)}},
		{"form of a file", HTTPCommand{Resource: "/?field=file", Method: "POST", BodyFile: file, BodyIsForm: true},
			seen{field: "file", file: "report.csv", content: []byte("a,b\n1,2\n")}},
		{"form named", HTTPCommand{Resource: "/?field=doc", Method: "POST", Body: "inline", BodyIsForm: true, FormFieldName: "doc", FormFileName: "x.txt"},
			seen{field: "doc", file: "x.txt", content: []byte("inline")}},
		{"form generated", HTTPCommand{Resource: "/?field=file", Method: "POST", BodyGenerate: GenerateText, BodyIsForm: true},
			seen{field: "file", file: "file.data", content: []byte("text data")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := testProber(ProbePolicy{}).probe(t.Context(), mustCmd(t, tc.c), portOf(t, srv.URL))
			if !r.OK() {
				t.Fatalf("%+v", r)
			}
			s := <-got
			if s.field != tc.want.field || s.file != tc.want.file || !bytes.Equal(s.content, tc.want.content) || s.length <= 0 {
				t.Errorf("the server saw %+v (%q), want %+v", s, s.content, tc.want)
			}
		})
	}
	// The generated images are images of their type.
	for kind, magic := range map[string]string{GenerateImage: "\x89PNG", GenerateImagePNG: "\x89PNG", GenerateImageJPEG: "\xff\xd8\xff", GenerateImageGIF: "GIF8"} {
		b, err := generate(kind)
		if err != nil || !bytes.HasPrefix(b, []byte(magic)) {
			t.Errorf("%s: %q %v", kind, b[:min(8, len(b))], err)
		}
	}
	b, _ := generate(GenerateImagePNG)
	if img, err := png.Decode(bytes.NewReader(b)); err != nil || img.Bounds().Dx() != 10 {
		t.Errorf("png: %v", err)
	}
}

func TestProbeWebSocket(t *testing.T) {
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if user, _, _ := r.BasicAuth(); user != "alice" {
			http.Error(w, "who are you", http.StatusUnauthorized)
			return
		}
		conn, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer conn.CloseNow()
		typ, msg, err := conn.Read(r.Context())
		if err != nil {
			return
		}
		conn.Write(r.Context(), typ, append([]byte("echo:"+r.URL.Path+":"), msg...))
		conn.Close(websocket.StatusNormalClosure, "")
	})
	plain := httptest.NewServer(handler)
	defer plain.Close()
	secure := httptest.NewTLSServer(handler)
	defer secure.Close()
	for _, tc := range []struct {
		proto, addr, body, want string
	}{
		{"ws", plain.URL, "", "echo:/chat:ws.data"},
		{"ws", plain.URL, "hello", "echo:/chat:hello"},
		{"wss", secure.URL, "hi", "echo:/chat:hi"},
	} {
		t.Run(tc.proto+" "+tc.body, func(t *testing.T) {
			c := mustCmd(t, HTTPCommand{Protocol: tc.proto, Resource: "/chat", Body: tc.body, Username: "alice"})
			r := testProber(ProbePolicy{}).probe(t.Context(), c, portOf(t, tc.addr))
			if !r.OK() || r.Status != 101 || r.Proto != tc.proto || r.BodySHA256 != sha(tc.want) {
				t.Errorf("%+v, want 101 and the reply %q", r, tc.want)
			}
		})
	}
	// A refused handshake is the app's answer, of its status, as over HTTP.
	r := testProber(ProbePolicy{}).probe(t.Context(), mustCmd(t, HTTPCommand{Protocol: "ws", Resource: "/chat"}), portOf(t, plain.URL))
	if !r.OK() || r.Status != 401 {
		t.Errorf("without credentials: %+v", r)
	}
}

func TestProbeFastCGI(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	// Go's own FastCGI server: it rebuilds the HTTP request from the parameters, and hands the rest over.
	go fcgi.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		env := fcgi.ProcessEnv(r)
		user, pass, _ := r.BasicAuth()
		b, _ := io.ReadAll(r.Body)
		if r.URL.Path == "/missing.php" {
			w.Header().Set("Status", "404 Not Found")
			w.WriteHeader(404)
			io.WriteString(w, "File not found.")
			return
		}
		if r.URL.Path == "/old" {
			http.Redirect(w, r, "/new", http.StatusMovedPermanently)
			return
		}
		// ProcessEnv leaves out what the request was made of (SCRIPT_NAME, PATH_INFO): PATH_TRANSLATED is
		// PATH_INFO under the root.
		fmt.Fprintf(w, "%s %s script=%s uri=%s info=%s root=%s user=%s pass=%s body=%s A=%s B=%s big=%d",
			r.Method, r.URL.RequestURI(), env["SCRIPT_FILENAME"], env["DOCUMENT_URI"], env["PATH_TRANSLATED"], env["DOCUMENT_ROOT"], user, pass, b, env["A"], env["B"], len(env["BIG"]))
	}))
	port := portOf(t, ln.Addr().String())
	big := strings.Repeat("x", 70000) // over one record: the params stream spans records
	f := &FastCGI{Root: "/var/www/html", SplitPath: []string{".php"}, Env: map[string]string{"A": "env", "B": "env"}, Params: map[string]string{"B": "param", "BIG": big}}
	bigBody := strings.Repeat("b", 200000)
	for _, tc := range []struct {
		name string
		c    HTTPCommand
		want string
	}{
		{"index and split", HTTPCommand{Resource: "/", FastCGI: f},
			"GET / script=/var/www/html/index.php uri=/index.php info= root=/var/www/html user= pass= body= A=env B=param big=70000"},
		{"path info and credentials", HTTPCommand{Method: "POST", Resource: "/app.PHP/users/1?x=2", Body: "hello", Username: "bob", Password: "pw", FastCGI: f},
			"POST /app.PHP/users/1?x=2 script=/var/www/html/app.PHP uri=/app.PHP/users/1 info=/var/www/html/users/1 root=/var/www/html user=bob pass=pw body=hello A=env B=param big=70000"},
		{"default root is the workdir", HTTPCommand{Resource: "/x.php", FastCGI: &FastCGI{Index: "main.php"}},
			"GET /x.php script=/app/x.php uri=/x.php info= root=/app user= pass= body= A= B= big=0"},
		{"a big body", HTTPCommand{Method: "PUT", Resource: "/u", Body: bigBody, FastCGI: &FastCGI{}},
			"PUT /u script=/app/u uri=/u info= root=/app user= pass= body=" + bigBody + " A= B= big=0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := testProber(ProbePolicy{}).probe(t.Context(), mustCmd(t, tc.c), port)
			if !r.OK() || r.Status != 200 || r.Proto != "fastcgi" || r.BodySHA256 != sha(tc.want) {
				t.Errorf("%+v, want 200 with %.200q", r, tc.want)
			}
		})
	}
	r := testProber(ProbePolicy{}).probe(t.Context(), mustCmd(t, HTTPCommand{Resource: "/missing.php", FastCGI: &FastCGI{}}), port)
	if r.Status != 404 || r.BodySHA256 != sha("File not found.") {
		t.Errorf("a Status header: %+v", r)
	}
	r = testProber(ProbePolicy{}).probe(t.Context(), mustCmd(t, HTTPCommand{Resource: "/old", FastCGI: &FastCGI{}}), port)
	if r.Status != 301 {
		t.Errorf("a redirect: %+v", r)
	}

	// On port 9000 (mint's FastCGI port) a probe without a protocol falls back to FastCGI once HTTP and
	// HTTPS get nothing, with mint's defaults; elsewhere it does not.
	old := fastcgiPort
	fastcgiPort = port
	defer func() { fastcgiPort = old }()
	r = testProber(ProbePolicy{Attempts: 1}).probe(t.Context(), mustCmd(t, HTTPCommand{Resource: "/index.php/a"}), port)
	if !r.OK() || r.Proto != "fastcgi" || r.BodySHA256 != sha("GET /index.php/a script=/app/index.php uri=/index.php/a info=/app/a root=/app user= pass= body= A= B= big=0") {
		t.Errorf("the port-9000 fallback: %+v", r)
	}
	if got := (&HTTPCommand{}).protocols(port + 1); strings.Join(got, ",") != "http,https" {
		t.Errorf("another port: %v", got)
	}
}

// A FastCGI server that breaks the protocol gets an error, not an answer.
func TestProbeFastCGIBroken(t *testing.T) {
	for name, reply := range map[string]string{
		"not FastCGI":    "HTTP/1.1 200 OK\r\n\r\n",
		"closed early":   "\x01\x06\x00\x01\x00\x10\x00\x00Status: 200\r\n\r\nab",
		"overloaded":     "\x01\x03\x00\x01\x00\x08\x00\x00\x00\x00\x00\x00\x02\x00\x00\x00",
		"no CGI headers": "\x01\x06\x00\x01\x00\x02\x00\x06hi\x00\x00\x00\x00\x00\x00\x01\x03\x00\x01\x00\x08\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
	} {
		t.Run(name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				io.WriteString(c, reply)
				c.Close()
			}()
			r := testProber(ProbePolicy{Attempts: 1}).probe(t.Context(), mustCmd(t, HTTPCommand{Resource: "/", FastCGI: &FastCGI{}}), portOf(t, ln.Addr().String()))
			if r.Status != 0 || !strings.HasPrefix(r.Error, "fastcgi: ") {
				t.Errorf("%+v", r)
			}
		})
	}
}

func TestProbePolicy(t *testing.T) {
	// The server answers the first ?fails= requests of each path with 500, then 200 (or ?status=), after
	// ?sleep=.
	var mu sync.Mutex
	calls := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls[r.URL.Path]++
		c := calls[r.URL.Path]
		mu.Unlock()
		fails, _ := strconv.Atoi(r.URL.Query().Get("fails"))
		if d, _ := time.ParseDuration(r.URL.Query().Get("sleep")); d > 0 {
			time.Sleep(d)
		}
		switch {
		case c <= fails:
			w.WriteHeader(500)
		case r.URL.Query().Get("status") != "":
			s, _ := strconv.Atoi(r.URL.Query().Get("status"))
			w.WriteHeader(s)
		}
	}))
	defer srv.Close()
	port := portOf(t, srv.URL)
	cmd := func(res string) HTTPCommand { return mustCmd(t, HTTPCommand{Resource: res}) }
	fast := ProbePolicy{RetryWait: 10 * time.Millisecond}

	t.Run("any status is an answer by default", func(t *testing.T) {
		r := testProber(fast).probe(t.Context(), cmd("/a?fails=2"), port)
		if !r.OK() || r.Status != 500 || r.Attempts != 1 {
			t.Errorf("%+v", r)
		}
	})
	t.Run("a 5xx is retried with FailOn5xx", func(t *testing.T) {
		p := fast
		p.FailOn5xx = true
		r := testProber(p).probe(t.Context(), cmd("/b?fails=2"), port)
		if !r.OK() || r.Status != 200 || r.Attempts != 3 {
			t.Errorf("%+v", r)
		}
	})
	t.Run("the last attempt's 5xx fails the probe", func(t *testing.T) {
		p := fast
		p.FailOn5xx, p.Attempts = true, 2
		r := testProber(p).probe(t.Context(), cmd("/c?fails=5"), port)
		if r.OK() || r.Status != 500 || r.Attempts != 2 || !strings.Contains(r.Error, "status 500, a failure with --http-probe-fail-on-status-5xx") {
			t.Errorf("%+v", r)
		}
		if v := probeVerdict(p, []ProbeResult{{Status: 200}, r}); !strings.Contains(v, "probe GET :"+strconv.Itoa(port)+"/c?fails=5: status 500") || !strings.Contains(v, "2 attempts") {
			t.Errorf("verdict %q", v)
		}
		if v := probeVerdict(ProbePolicy{FailOn5xx: true, FailuresAllowed: true}, []ProbeResult{r}); v != "" {
			t.Errorf("allowed failures: verdict %q", v)
		}
	})
	t.Run("4xx only with FailOn4xx", func(t *testing.T) {
		p := fast
		p.FailOn5xx, p.Attempts = true, 2
		if r := testProber(p).probe(t.Context(), cmd("/d?status=404"), port); !r.OK() || r.Attempts != 1 {
			t.Errorf("404 with only 5xx failing: %+v", r)
		}
		p.FailOn4xx = true
		if r := testProber(p).probe(t.Context(), cmd("/e?status=404"), port); r.OK() || r.Attempts != 2 || !strings.Contains(r.Error, "4xx") {
			t.Errorf("404 with 4xx failing: %+v", r)
		}
	})
	t.Run("the client timeout bounds each attempt", func(t *testing.T) {
		p := fast
		p.ClientTimeout, p.Attempts = 100*time.Millisecond, 2
		start := time.Now()
		r := testProber(p).probe(t.Context(), mustCmd(t, HTTPCommand{Protocol: "http", Resource: "/f?sleep=1s"}), port)
		if r.OK() || r.Attempts != 2 || !strings.Contains(r.Error, "deadline exceeded") || time.Since(start) > 900*time.Millisecond {
			t.Errorf("%+v after %v", r, time.Since(start))
		}
	})
	t.Run("refused connections are waited out, not attempts", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		p := testProber(fast)
		p.upBy = time.Now().Add(300 * time.Millisecond)
		start := time.Now()
		r := p.probe(t.Context(), cmd("/"), portOf(t, addr))
		if r.OK() || r.Attempts != 0 || !strings.Contains(r.Error, "connection refused") || time.Since(start) < 250*time.Millisecond {
			t.Errorf("nothing listens: %+v after %v", r, time.Since(start))
		}
		// The app comes up while the probe waits.
		go func() {
			time.Sleep(300 * time.Millisecond)
			if ln, err := net.Listen("tcp", addr); err == nil {
				go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
				t.Cleanup(func() { ln.Close() })
			}
		}()
		p.upBy = time.Now().Add(5 * time.Second)
		if r := p.probe(t.Context(), cmd("/"), portOf(t, addr)); !r.OK() || r.Attempts != 1 {
			t.Errorf("the app came up: %+v", r)
		}
	})
	t.Run("the app exits", func(t *testing.T) {
		p := testProber(fast)
		done := make(chan struct{})
		close(done)
		p.done = done
		r := p.probe(t.Context(), cmd("/g?fails=9"), 1)
		if r.OK() || !strings.HasPrefix(r.Error, "the app exited before answering: ") {
			t.Errorf("%+v", r)
		}
	})
	t.Run("MaxFailures stops probing", func(t *testing.T) {
		p := fast
		p.FailOn5xx, p.Attempts, p.MaxFailures = true, 1, 2
		jobs := []probeJob{{c: cmd("/h1?fails=9"), port: port}, {c: cmd("/h2"), port: port}, {c: cmd("/h3?fails=9"), port: port}, {c: cmd("/h4"), port: port}, {c: cmd("/h5"), port: port}}
		res, first := testProber(p).run(t.Context(), jobs, time.Now())
		var got []string
		for _, r := range res {
			got = append(got, fmt.Sprintf("%s %d %s", r.Path, r.Status, r.Error))
		}
		want := []string{
			"/h1?fails=9 500 status 500, a failure with --http-probe-fail-on-status-5xx", "/h2 200 ",
			"/h3?fails=9 500 status 500, a failure with --http-probe-fail-on-status-5xx",
			"/h4 0 not sent: 2 probes failed (--http-probe-exit-on-failure-count 2)", "/h5 0 not sent: 2 probes failed (--http-probe-exit-on-failure-count 2)",
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") || first <= 0 {
			t.Errorf("got\n%s\nwant\n%s (first answer %v)", strings.Join(got, "\n"), strings.Join(want, "\n"), first)
		}
		if v := probeVerdict(p, res); !strings.HasPrefix(v, "4 HTTP probes failed (--http-probe-exit-on-failure-count 2); the first, GET :") {
			t.Errorf("verdict %q", v)
		}
	})
	t.Run("concurrency", func(t *testing.T) {
		// A server of its own: the timed-out requests above may still be in the first one's handlers.
		var inFlight, maxInFlight atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n := inFlight.Add(1)
			defer inFlight.Add(-1)
			for old := maxInFlight.Load(); n > old && !maxInFlight.CompareAndSwap(old, n); old = maxInFlight.Load() {
			}
			time.Sleep(150 * time.Millisecond)
		}))
		defer srv.Close()
		port := portOf(t, srv.URL)
		for _, n := range []int{1, 3} {
			maxInFlight.Store(0)
			p := fast
			p.Concurrency = n
			var jobs []probeJob
			for i := range 6 {
				jobs = append(jobs, probeJob{c: cmd(fmt.Sprintf("/c%d-%d", n, i)), port: port})
			}
			res, _ := testProber(p).run(t.Context(), jobs, time.Now())
			for i, r := range res {
				if !r.OK() || r.Path != jobs[i].c.Resource {
					t.Errorf("concurrency %d: result %d is %+v", n, i, r)
				}
			}
			if got := maxInFlight.Load(); got != int32(n) {
				t.Errorf("concurrency %d: %d requests at once", n, got)
			}
		}
	})
}

func TestProbeError(t *testing.T) {
	ok, failed := ProbeResult{Status: 200}, ProbeResult{Error: "connection refused"}
	for _, tc := range []struct {
		o    Observation
		want string
	}{
		{Observation{Probes: []ProbeResult{ok, failed}}, ""},
		{Observation{Probes: []ProbeResult{failed}}, "every probe failed"},
		{Observation{Probes: []ProbeResult{failed}, ProbeFailuresAllowed: true}, ""},
		{Observation{Probes: []ProbeResult{failed}, ProbeFailuresAllowed: true, Execs: []ExecResult{{ExitCode: 1}}}, "every probe failed"},
		{Observation{Probes: []ProbeResult{ok}, ProbeFailure: "probe GET :80/: status 500"}, "probe GET :80/: status 500"},
	} {
		err := tc.o.ProbeError()
		if (err == nil) != (tc.want == "") || err != nil && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.o, err, tc.want)
		}
	}
}

// A redirect is followed on the app's own origin only: one to another host is the answer, and that host is
// never dialed.
func TestProbeRedirectsStayOnOrigin(t *testing.T) {
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the other origin was dialed: %s", r.URL)
	}))
	defer other.Close()
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/here":
			http.Redirect(w, r, "/there", http.StatusFound)
		case "/there":
			fmt.Fprint(w, "there")
		case "/away":
			http.Redirect(w, r, other.URL+"/x", http.StatusFound)
		}
	}))
	defer app.Close()
	p := testProber(ProbePolicy{Attempts: 1})
	if r := p.probe(t.Context(), mustCmd(t, HTTPCommand{Protocol: "http", Method: "GET", Resource: "/here"}), portOf(t, app.URL)); r.Status != 200 || r.BodySHA256 != sha("there") {
		t.Errorf("a redirect on the origin: %+v", r)
	}
	if r := p.probe(t.Context(), mustCmd(t, HTTPCommand{Protocol: "http", Method: "GET", Resource: "/away"}), portOf(t, app.URL)); r.Status != http.StatusFound {
		t.Errorf("a redirect to another origin: %+v, want its 302 as the answer", r)
	}
}

// A WebSocket probe's handshake follows redirects on the app's origin only, as HTTP probes do.
func TestProbeWebSocketRedirectsStayOnOrigin(t *testing.T) {
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the other origin was dialed: %s", r.URL)
	}))
	defer other.Close()
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/chat", http.StatusFound)
	}))
	defer app.Close()
	r := testProber(ProbePolicy{Attempts: 1}).probe(t.Context(), mustCmd(t, HTTPCommand{Protocol: "ws", Resource: "/chat"}), portOf(t, app.URL))
	if r.Status != http.StatusFound {
		t.Errorf("a handshake redirected to another origin: %+v, want its 302 as the answer", r)
	}
}
