package runner

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"syscall"
	"time"
)

// HTTPCommand is one HTTP probe, in docker-slim's --http-probe-cmd-file format.
type HTTPCommand struct {
	// Protocol is "http", "https", or "" for HTTP then HTTPS.
	Protocol string `json:"protocol,omitempty"`
	Method   string `json:"method,omitempty"`
	Resource string `json:"resource,omitempty"`
	// Port 0 means every exposed TCP port.
	Port int `json:"port,omitempty"`
	// Headers are "Name: value" lines.
	Headers []string `json:"headers,omitempty"`
	Body    string   `json:"body,omitempty"`
}

// ParseHTTPCommand reads docker-slim's --http-probe-cmd syntax: [PROTO:][METHOD:]/PATH, such as "/health",
// "POST:/api" or "https:GET:/".
func ParseHTTPCommand(s string) (HTTPCommand, error) {
	c := HTTPCommand{Method: "GET"}
	rest := s
	if p, r, ok := strings.Cut(rest, ":"); ok && (strings.EqualFold(p, "http") || strings.EqualFold(p, "https")) {
		c.Protocol, rest = strings.ToLower(p), r
	}
	if m, r, ok := strings.Cut(rest, ":"); ok && !strings.HasPrefix(m, "/") {
		c.Method, rest = strings.ToUpper(m), r
	}
	c.Resource = rest
	if err := c.check(); err != nil {
		return HTTPCommand{}, fmt.Errorf("http probe %q: %w (want [http|https:][METHOD:]/path)", s, err)
	}
	return c, nil
}

func (c *HTTPCommand) check() error {
	if c.Method == "" {
		c.Method = "GET"
	}
	if c.Resource == "" {
		c.Resource = "/"
	}
	switch {
	case c.Protocol != "" && c.Protocol != "http" && c.Protocol != "https":
		return fmt.Errorf("protocol %q is not http or https", c.Protocol)
	case !strings.HasPrefix(c.Resource, "/"):
		return fmt.Errorf("resource %q does not start with /", c.Resource)
	case strings.ContainsAny(c.Method, " /:\t"):
		return fmt.Errorf("method %q is not an HTTP method", c.Method)
	case c.Port < 0 || c.Port > 65535:
		return fmt.Errorf("port %d is out of range", c.Port)
	}
	for _, h := range c.Headers {
		if name, _, ok := strings.Cut(h, ":"); !ok || strings.TrimSpace(name) == "" {
			return fmt.Errorf("header %q is not \"Name: value\"", h)
		}
	}
	return nil
}

// ReadHTTPCommandFile reads docker-slim's probe file: {"commands":[{"protocol","method","resource","port",
// "headers","body"}]}. Other fields docker-slim knows (crawling, fastcgi) are refused, not ignored.
func ReadHTTPCommandFile(path string) ([]HTTPCommand, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f struct {
		Commands []HTTPCommand `json:"commands"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(f.Commands) == 0 {
		return nil, fmt.Errorf("%s: no commands", path)
	}
	for i := range f.Commands {
		f.Commands[i].Method = strings.ToUpper(f.Commands[i].Method)
		f.Commands[i].Protocol = strings.ToLower(f.Commands[i].Protocol)
		if err := f.Commands[i].check(); err != nil {
			return nil, fmt.Errorf("%s: command %d: %w", path, i+1, err)
		}
	}
	return f.Commands, nil
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
	Error      string `json:"error,omitempty"`
}

// OK reports whether the app answered (any HTTP status counts: the app was exercised).
func (r ProbeResult) OK() bool { return r.Status != 0 }

// HTTPProbe sends METHOD path to port inside the sandbox, over HTTP then HTTPS (self-signed certificates
// accepted), again and again while the app starts, until one answers or ctx ends.
func HTTPProbe(ctx context.Context, s *Sandbox, port int, method, path string) ProbeResult {
	return ProbeHTTP(ctx, s, HTTPCommand{Method: method, Resource: path, Port: port})
}

// ProbeHTTP sends c (its Port set) to the app, retrying while the app starts until it answers or ctx ends.
func ProbeHTTP(ctx context.Context, s *Sandbox, c HTTPCommand) ProbeResult {
	res := ProbeResult{Port: c.Port, Method: c.Method, Path: c.Resource}
	transport := &http.Transport{DialContext: s.Dial, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true}
	client := &http.Client{Transport: transport, Timeout: 5 * time.Second}
	protos := []string{"http", "https"}
	if c.Protocol != "" {
		protos = []string{c.Protocol}
	}
	for {
		for _, proto := range protos {
			req, err := http.NewRequestWithContext(ctx, c.Method, fmt.Sprintf("%s://127.0.0.1:%d%s", proto, c.Port, c.Resource), strings.NewReader(c.Body))
			if err != nil {
				res.Error = err.Error()
				return res
			}
			if c.Body == "" {
				req.Body, req.ContentLength = nil, 0
			}
			for _, h := range c.Headers {
				name, value, _ := strings.Cut(h, ":")
				req.Header.Add(strings.TrimSpace(name), strings.TrimSpace(value))
			}
			resp, err := client.Do(req)
			if err != nil {
				res.Error = err.Error()
				if errors.Is(err, syscall.ECONNREFUSED) {
					// Nothing listens yet: HTTPS would be refused too, or, if the app starts listening
					// right now, send a TLS hello to an HTTP server and exercise its error path, which a
					// plain GET would not: the observation would depend on timing.
					break
				}
				continue
			}
			h := sha256.New()
			n, _ := io.Copy(h, resp.Body)
			resp.Body.Close()
			res.Proto, res.Status, res.Size, res.BodySHA256, res.Error = proto, resp.StatusCode, n, fmt.Sprintf("%x", h.Sum(nil)), ""
			return res
		}
		select {
		case <-ctx.Done():
			return res
		case <-s.done:
			res.Error = "the app exited before answering: " + res.Error
			return res
		case <-time.After(100 * time.Millisecond):
		}
	}
}
