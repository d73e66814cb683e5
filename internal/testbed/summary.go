package testbed

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
)

// Summary is what tests read of `slimoci build --json`'s document: the source, the slim image's digest and
// where it went.
type Summary struct {
	Image        string   `json:"image"`
	Digest       string   `json:"digest"`
	Destinations []string `json:"destinations"`
	Verified     bool     `json:"verified"`
}

// CheckPushed parses a build's JSON summary and checks that it names one destination, docker://slim,
// verified, and that the registry holds slim at the summary's digest (skopeo inspect, with creds USER:PASS
// when the registry wants them).
func CheckPushed(ctx context.Context, summary []byte, slim, creds string) (Summary, error) {
	var s Summary
	if err := json.Unmarshal(summary, &s); err != nil {
		return s, fmt.Errorf("the summary is not JSON: %w\n%s", err, summary)
	}
	if !s.Verified || len(s.Destinations) != 1 || s.Destinations[0] != "docker://"+slim || !strings.HasPrefix(s.Digest, "sha256:") {
		return s, fmt.Errorf("summary: verified %v, destinations %v, digest %q: want docker://%s, verified", s.Verified, s.Destinations, s.Digest, slim)
	}
	args := []string{"inspect", "--tls-verify=false", "--format", "{{.Digest}}"}
	if creds != "" {
		args = append(args, "--creds", creds)
	}
	out, err := Skopeo(ctx, append(args, "docker://"+slim)...)
	if err != nil {
		return s, fmt.Errorf("the slim image is not in the registry: %w", err)
	}
	if got := strings.TrimSpace(string(out)); got != s.Digest {
		return s, fmt.Errorf("the registry's %s is %s, the summary says %s", slim, got, s.Digest)
	}
	return s, nil
}
