package runner

// A FastCGI client, the responder role only: enough to probe PHP-FPM or any FastCGI server directly
// (FastCGI 1.0, fastcgi-archives.github.io/FastCGI_Specification.html). Written here rather than taken
// from a library because none fits a probe: yookoala/gofast, the most used, is shaped as an http.Handler
// for proxying (its answer only comes out through an http.ResponseWriter, its protocol errors as text on
// the stderr stream, not as errors) and brings in the deprecated golang.org/x/tools/godoc module;
// cboxdk/fcgx cannot dial through the caller's dialer (the sandbox's network namespace) and holds the
// whole answer in memory; tomasen/fcgi_client has not changed since 2018 and takes no context; caddy's
// client is inside caddy. The protocol is small: this file is its client side, tested against Go's own
// FastCGI server (net/http/fcgi).

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/textproto"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

// FastCGI record types and values (the specification's section 8).
const (
	fcgiVersion      = 1
	fcgiBeginRequest = 1
	fcgiEndRequest   = 3
	fcgiParams       = 4
	fcgiStdin        = 5
	fcgiStdout       = 6
	fcgiStderr       = 7
	fcgiResponder    = 1
	// fcgiRequestID is the one request a connection carries (the connection is closed after it).
	fcgiRequestID = 1
	// fcgiMaxContent is the most a record carries: a multiple of 8, so that no padding is needed.
	fcgiMaxContent = 65528
	// fcgiMaxHeader bounds the CGI header the server sends: the app's answer is never held beyond it.
	fcgiMaxHeader = 1 << 20
)

// fcgiProtocolStatus names END_REQUEST's protocol statuses other than REQUEST_COMPLETE.
var fcgiProtocolStatus = map[byte]string{1: "it cannot multiplex connections", 2: "it is overloaded", 3: "it does not know the responder role"}

// fastcgi sends req to the FastCGI server on port as f says and reads its answer: the CGI response on the
// server's stdout (its Status header, 200 without one, 302 with only a Location), the body hashed as it
// streams; what the server writes on stderr is dropped.
func (p *prober) fastcgi(ctx context.Context, req *http.Request, f *FastCGI, port int) (a answer, err error) {
	if req.Body != nil {
		defer req.Body.Close()
	}
	dctx := ctx
	if f.DialTimeout > 0 {
		var cancel context.CancelFunc
		dctx, cancel = context.WithTimeout(ctx, f.DialTimeout)
		defer cancel()
	}
	conn, err := p.dial(dctx, "tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return answer{}, err
	}
	defer conn.Close()
	// The end of ctx (the client timeout) unblocks every read and write.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	params := fastcgiParams(req, f, p.cwd, port, conn.LocalAddr())
	werr := make(chan error, 1)
	go func() {
		// Written while the answer is read: a server may answer before it has read all of stdin.
		werr <- writeFastCGIRequest(&deadlineWriter{conn, f.WriteTimeout}, params, req.Body)
	}()
	out := &stdoutStream{r: bufio.NewReader(&deadlineReader{conn, f.ReadTimeout})}
	a, err = readCGIResponse(out)
	if err == nil && !out.ended {
		err = errors.New("the FastCGI server closed the connection before ending the request")
	}
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", ctx.Err(), err)
		}
		select {
		case w := <-werr:
			if w != nil {
				err = fmt.Errorf("%w (sending the request: %w)", err, w)
			}
		default:
		}
		return answer{}, fmt.Errorf("fastcgi: %w", err)
	}
	return a, nil
}

// fastcgiParams computes the request's CGI parameters (RFC 3875, as web servers send PHP-FPM): the script
// from the path (Index for a directory, split after SplitPath), under Root, then Env and Params over them.
func fastcgiParams(req *http.Request, f *FastCGI, cwd string, port int, local net.Addr) map[string]string {
	root := f.Root
	if root == "" {
		root = cwd
	}
	if root == "" {
		root = "/"
	}
	index := f.Index
	if index == "" {
		index = "index.php"
	}
	docURI := req.URL.Path
	if strings.HasSuffix(docURI, "/") {
		docURI += index
	}
	script, info := splitScript(docURI, f.SplitPath)
	remotePort := "0"
	if t, ok := local.(*net.TCPAddr); ok {
		remotePort = strconv.Itoa(t.Port)
	}
	m := map[string]string{
		"GATEWAY_INTERFACE": "CGI/1.1",
		"SERVER_SOFTWARE":   "slimoci",
		"SERVER_PROTOCOL":   "HTTP/1.1",
		"SERVER_NAME":       "127.0.0.1",
		"SERVER_ADDR":       "127.0.0.1",
		"SERVER_PORT":       strconv.Itoa(port),
		"REMOTE_ADDR":       "127.0.0.1",
		"REMOTE_PORT":       remotePort,
		"REQUEST_SCHEME":    "http",
		"REQUEST_METHOD":    req.Method,
		"REQUEST_URI":       req.URL.RequestURI(),
		"QUERY_STRING":      req.URL.RawQuery,
		"DOCUMENT_ROOT":     root,
		"DOCUMENT_URI":      docURI,
		"SCRIPT_NAME":       script,
		"SCRIPT_FILENAME":   path.Join(root, script),
		"PATH_INFO":         info,
		"HTTP_HOST":         req.URL.Host,
	}
	if info != "" {
		m["PATH_TRANSLATED"] = path.Join(root, info)
	}
	if req.ContentLength > 0 {
		m["CONTENT_LENGTH"] = strconv.FormatInt(req.ContentLength, 10)
	}
	for name, values := range req.Header {
		switch name {
		case "Content-Type":
			m["CONTENT_TYPE"] = strings.Join(values, ", ")
		case "Content-Length", "Proxy":
			// The length is the request's own; Proxy is httpoxy's way in (CVE-2016-5385), never passed.
		default:
			m["HTTP_"+strings.ToUpper(strings.ReplaceAll(name, "-", "_"))] = strings.Join(values, ", ")
		}
	}
	for _, extra := range []map[string]string{f.Env, f.Params} {
		for k, v := range extra {
			m[k] = v
		}
	}
	return m
}

// splitScript splits p after the first of exts (case-insensitive) that ends one of its elements: the
// script, and the rest (PATH_INFO). Without a match the whole path is the script.
func splitScript(p string, exts []string) (script, info string) {
	lower, best := strings.ToLower(p), -1
	for _, ext := range exts {
		ext = strings.ToLower(ext)
		for from := 0; ; {
			i := strings.Index(lower[from:], ext)
			if i < 0 {
				break
			}
			end := from + i + len(ext)
			if end == len(lower) || lower[end] == '/' {
				if best < 0 || end < best {
					best = end
				}
				break
			}
			from = end
		}
	}
	if best < 0 {
		return p, ""
	}
	return p[:best], p[best:]
}

// writeFastCGIRequest writes a responder request: BEGIN_REQUEST (the connection not kept), the params
// stream, and body as the stdin stream, each stream ended by an empty record.
func writeFastCGIRequest(w io.Writer, params map[string]string, body io.Reader) error {
	bw := bufio.NewWriter(w)
	begin := []byte{0, fcgiResponder, 0, 0, 0, 0, 0, 0}
	if err := writeRecord(bw, fcgiBeginRequest, begin); err != nil {
		return err
	}
	names := make([]string, 0, len(params))
	for k := range params {
		names = append(names, k)
	}
	// In order: the same request is the same bytes, run after run.
	sort.Strings(names)
	var pairs []byte
	for _, k := range names {
		pairs = appendLength(pairs, len(k))
		pairs = appendLength(pairs, len(params[k]))
		pairs = append(append(pairs, k...), params[k]...)
	}
	if err := writeStream(bw, fcgiParams, strings.NewReader(string(pairs))); err != nil {
		return err
	}
	if body == nil {
		body = strings.NewReader("")
	}
	if err := writeStream(bw, fcgiStdin, body); err != nil {
		return err
	}
	return bw.Flush()
}

// appendLength appends a name-value pair's length: one byte under 128, else four with the high bit set.
func appendLength(b []byte, n int) []byte {
	if n < 128 {
		return append(b, byte(n))
	}
	return binary.BigEndian.AppendUint32(b, uint32(n)|1<<31)
}

// writeStream writes r as records of type typ, then the empty record that ends the stream.
func writeStream(w *bufio.Writer, typ byte, r io.Reader) error {
	buf := make([]byte, fcgiMaxContent)
	for {
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			if werr := writeRecord(w, typ, buf[:n]); werr != nil {
				return werr
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return writeRecord(w, typ, nil)
		}
		if err != nil {
			return err
		}
	}
}

// writeRecord writes one record of request fcgiRequestID, padded to a multiple of 8 bytes.
func writeRecord(w *bufio.Writer, typ byte, content []byte) error {
	pad := -len(content) & 7
	hdr := []byte{fcgiVersion, typ, 0, fcgiRequestID, byte(len(content) >> 8), byte(len(content)), byte(pad), 0}
	w.Write(hdr)
	w.Write(content)
	_, err := w.Write(make([]byte, pad))
	if w.Buffered() > fcgiMaxContent {
		err = errors.Join(err, w.Flush())
	}
	return err
}

// stdoutStream reads the stdout stream of the server's answer, dropping stderr records, up to END_REQUEST.
type stdoutStream struct {
	r *bufio.Reader
	// left is what remains of the current stdout record's content, pad its padding.
	left, pad int
	// ended is set by END_REQUEST; err is set when its protocol status is not REQUEST_COMPLETE.
	ended bool
	err   error
}

func (s *stdoutStream) Read(p []byte) (int, error) {
	for s.left == 0 {
		if s.pad > 0 {
			if _, err := s.r.Discard(s.pad); err != nil {
				return 0, unexpected(err)
			}
			s.pad = 0
		}
		if s.ended {
			if s.err != nil {
				return 0, s.err
			}
			return 0, io.EOF
		}
		if err := s.next(); err != nil {
			return 0, err
		}
	}
	n, err := s.r.Read(p[:min(len(p), s.left)])
	s.left -= n
	return n, unexpected(err)
}

// next reads records up to the next stdout content or the end of the request.
func (s *stdoutStream) next() error {
	var h [8]byte
	if _, err := io.ReadFull(s.r, h[:]); err != nil {
		return unexpected(err)
	}
	if h[0] != fcgiVersion {
		return fmt.Errorf("the answer is not FastCGI (a record of version %d)", h[0])
	}
	typ, id, n, pad := h[1], binary.BigEndian.Uint16(h[2:4]), int(binary.BigEndian.Uint16(h[4:6])), int(h[6])
	switch {
	case id != fcgiRequestID:
		// A management record (request 0) or another request's: not ours.
	case typ == fcgiStdout:
		s.left, s.pad = n, pad
		return nil
	case typ == fcgiEndRequest:
		if n < 8 {
			return errors.New("a short END_REQUEST record")
		}
		var body [8]byte
		if _, err := io.ReadFull(s.r, body[:]); err != nil {
			return unexpected(err)
		}
		s.ended, s.pad = true, n-8+pad
		if status := body[4]; status != 0 {
			s.err = fmt.Errorf("the FastCGI server refused the request: %s", orCode(fcgiProtocolStatus[status], status))
		}
		return nil
	}
	// stderr and whatever else: dropped.
	_, err := s.r.Discard(n + pad)
	return unexpected(err)
}

func orCode(s string, code byte) string {
	if s == "" {
		return fmt.Sprintf("protocol status %d", code)
	}
	return s
}

// unexpected makes the end of the connection inside a record an error of its own.
func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// readCGIResponse reads a CGI response (RFC 3875 section 6): its header, at most fcgiMaxHeader bytes, then
// the body, hashed.
func readCGIResponse(r io.Reader) (answer, error) {
	lim := &limitReader{r: r, n: fcgiMaxHeader}
	br := bufio.NewReader(lim)
	hdr, err := textproto.NewReader(br).ReadMIMEHeader()
	if err != nil {
		if errors.Is(err, errHeaderLimit) {
			return answer{}, fmt.Errorf("the CGI header is over %d bytes", fcgiMaxHeader)
		}
		return answer{}, fmt.Errorf("reading the CGI header: %w", err)
	}
	lim.n = math.MaxInt64
	status := http.StatusOK
	switch s := hdr.Get("Status"); {
	case s != "":
		code, _, _ := strings.Cut(strings.TrimSpace(s), " ")
		if status, err = strconv.Atoi(code); err != nil || status < 100 || status > 999 {
			return answer{}, fmt.Errorf("the CGI header's Status %q is not a status", s)
		}
	case hdr.Get("Location") != "":
		status = http.StatusFound
	}
	h := sha256.New()
	n, err := io.Copy(h, br)
	if err != nil {
		return answer{}, fmt.Errorf("reading the answer (status %d): %w", status, err)
	}
	return answer{status: status, size: n, sha256: hexSum(h)}, nil
}

var errHeaderLimit = errors.New("header limit")

// limitReader fails once more than n bytes were read.
type limitReader struct {
	r io.Reader
	n int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, errHeaderLimit
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

// deadlineReader and deadlineWriter give each read and write of conn its timeout (none when 0): FastCGI's
// read_timeout and write_timeout, as mint's.
type deadlineReader struct {
	c net.Conn
	d time.Duration
}

func (r *deadlineReader) Read(p []byte) (int, error) {
	if r.d > 0 {
		r.c.SetReadDeadline(time.Now().Add(r.d))
	}
	return r.c.Read(p)
}

type deadlineWriter struct {
	c net.Conn
	d time.Duration
}

func (w *deadlineWriter) Write(p []byte) (int, error) {
	if w.d > 0 {
		w.c.SetWriteDeadline(time.Now().Add(w.d))
	}
	return w.c.Write(p)
}
