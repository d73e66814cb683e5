package main

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/slimoci/slimoci/internal/testbed"
)

// A web server told to serve a document root through a symlink (busybox httpd -h /srv/www, /srv/www ->
// /app/www) enters it with chdir: the sensor records it, the closure keeps the link and the directory, and
// the slim image serves under podman what the fat one serves. (Before the sensor saw chdir, the slim server
// exited at start with "can't change directory to '/srv/www'".)
func TestE2EBuildSymlinkedDocroot(t *testing.T) {
	sensorBin := rootSandbox(t, "this build uses the root sandbox")
	ctx := context.Background()
	dir := t.TempDir()
	archive := filepath.Join(dir, "slim.tar")
	image := "localhost/slimoci-e2e/web-slim:latest"
	state := filepath.Join(dir, "state")
	out, errs, code := runCLI(t, "build", "--sensor", sensorBin, "--state-path", state,
		"--output", "docker-archive:"+archive+":"+image, "oci:"+bed.Layout("web")+":latest")
	if code != 0 {
		t.Fatalf("exit %d: %s %s", code, out, errs)
	}
	r := buildReport(t, state)
	if len(r.Fat.Probes) == 0 || r.Fat.Probes[0].Status != 200 {
		t.Fatalf("the fat server's probes: %+v", r.Fat.Probes)
	}
	kept := keptPaths(t, state)
	if why := kept["/srv/www"]; !slices.ContainsFunc(why, func(s string) bool { return strings.HasPrefix(s, "observed:") && strings.Contains(s, "chdir") }) {
		t.Errorf("/srv/www kept for %v, want observed with chdir", why)
	}
	if why := kept["/app/www"]; !slices.Contains(why, "link-target:/srv/www") {
		t.Errorf("/app/www kept for %v, want link-target:/srv/www", why)
	}
	if _, err := testbed.Run(ctx, "podman", "load", "-i", archive); err != nil {
		t.Fatal(err)
	}
	defer testbed.Run(ctx, "podman", "rmi", "-f", image)
	if got := podmanGet(t, image); got != r.Fat.Probes[0].BodySHA256 {
		t.Errorf("the slim server's GET / body hashes to %s, the fat one's to %s", got, r.Fat.Probes[0].BodySHA256)
	}
}
