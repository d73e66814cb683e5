package runner

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"time"
)

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
	res := ProbeResult{Port: port, Method: method, Path: path}
	transport := &http.Transport{DialContext: s.Dial, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true}
	client := &http.Client{Transport: transport, Timeout: 5 * time.Second}
	for {
		for _, proto := range []string{"http", "https"} {
			req, err := http.NewRequestWithContext(ctx, method, fmt.Sprintf("%s://127.0.0.1:%d%s", proto, port, path), nil)
			if err != nil {
				res.Error = err.Error()
				return res
			}
			resp, err := client.Do(req)
			if err != nil {
				res.Error = err.Error()
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
		case <-time.After(250 * time.Millisecond):
		}
	}
}
