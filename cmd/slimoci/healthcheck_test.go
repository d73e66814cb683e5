package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slimoci/slimoci"
	"github.com/slimoci/slimoci/internal/testbed"
	"github.com/slimoci/slimoci/runner"
)

// The web sample (busybox httpd; its HEALTHCHECK runs curl, which the server never does), slimmed from a real
// registry's Docker schema 2 manifest and pushed back: the slim image is a Docker image, podman pulls it, runs
// it, and `podman healthcheck run` finds it healthy; the report has the healthcheck's runs and its use of
// curl, kept.json says why curl is kept. With --no-include-healthcheck, curl is dropped and podman finds the
// slim image unhealthy.
func TestE2EBuildHealthcheck(t *testing.T) {
	sensorBin := rootSandbox(t, "these builds use the root sandbox; the rootless one has its own test")
	ctx := context.Background()
	// skopeo 1.9 cannot read the Docker manifest out of the web sample's layout: push its docker-archive.
	if err := registry.Push(ctx, "docker-archive:"+bed.DockerArchive("web"), "samples/web:v2s2", true); err != nil {
		t.Fatal(err)
	}
	const check = "curl -fsS -o /dev/null http://127.0.0.1:8080/"
	for _, include := range []bool{true, false} {
		name := map[bool]string{true: "include", false: "no-include"}[include]
		t.Run(name, func(t *testing.T) {
			state := filepath.Join(t.TempDir(), "state")
			slim := registry.Addr + "/samples/web.slim:" + name
			// No --include-path: httpd's chdir into its symlinked document root /srv/www is recorded.
			args := []string{"build", "--sensor", sensorBin, "--state-path", state, "--push", "--tag", slim}
			if !include {
				args = append(args, "--no-include-healthcheck")
			}
			out, errs, code := runCLI(t, append(args, registry.Addr+"/samples/web:v2s2")...)
			if code != 0 {
				t.Fatalf("exit %d: %s %s", code, out, errs)
			}
			r := buildReport(t, state)
			kept := keptPaths(t, state)
			if include {
				h := r.Fat.Healthcheck
				if h == nil || h.Status != runner.Healthy || strings.Join(h.Args, " ") != check || len(h.Runs) < 2 || h.Last().ExitCode != 0 {
					t.Fatalf("the fat run's healthcheck: %+v", h)
				}
				if !slices.Contains(h.Files["/usr/bin/curl"], "exec") || !r.Verify.Healthcheck.OK() {
					t.Errorf("healthcheck files: curl %v; verify's healthcheck %+v", h.Files["/usr/bin/curl"], r.Verify.Healthcheck)
				}
				if !slices.Contains(kept["/usr/bin/curl"], slimoci.ReasonHealthcheck) {
					t.Errorf("/usr/bin/curl kept for %v", kept["/usr/bin/curl"])
				}
				if !strings.Contains(out, "healthcheck "+check+": healthy") {
					t.Errorf("summary: %s", out)
				}
			} else {
				if r.Fat.Healthcheck != nil || kept["/usr/bin/curl"] != nil {
					t.Errorf("--no-include-healthcheck: healthcheck %+v, curl kept for %v", r.Fat.Healthcheck, kept["/usr/bin/curl"])
				}
			}
			// A Docker image, so that podman sees its HEALTHCHECK (it ignores an OCI config's).
			raw, err := testbed.Skopeo(ctx, "inspect", "--tls-verify=false", "--raw", "docker://"+slim)
			if err != nil {
				t.Fatal(err)
			}
			var m struct{ MediaType string }
			if json.Unmarshal(raw, &m); m.MediaType != "application/vnd.docker.distribution.manifest.v2+json" {
				t.Errorf("slim manifest: %s", raw)
			}
			if _, err := testbed.Run(ctx, "podman", "pull", "--quiet", "--tls-verify=false", slim); err != nil {
				t.Fatal(err)
			}
			defer testbed.Run(ctx, "podman", "rmi", "-f", slim)
			ctr, _ := podmanServe(t, slim)
			status := podmanHealth(t, ctr)
			if want := map[bool]string{true: runner.Healthy, false: runner.Unhealthy}[include]; status != want {
				t.Errorf("podman finds the slim image %s, want %s", status, want)
			}
		})
	}
}

// podmanHealth runs a running container's healthcheck with `podman healthcheck run` until podman decides
// (healthy at the first pass, unhealthy after the check's retries) and returns podman's status.
func podmanHealth(t *testing.T, ctr string) string {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := testbed.Run(ctx, "podman", "healthcheck", "run", ctr)
		status, ierr := testbed.Run(ctx, "podman", "inspect", "--format", "{{.State.Health.Status}}", ctr)
		if ierr != nil {
			t.Fatal(ierr)
		}
		// podman says nothing and exits 0 when healthy, prints "unhealthy" and exits 1 otherwise.
		s := strings.TrimSpace(string(status))
		if (s == runner.Healthy) == (err == nil) && (s == runner.Healthy || s == runner.Unhealthy) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("podman healthcheck run %s: %s, %v; status %q", ctr, out, err, s)
		}
	}
}
