package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/slimoci/slimoci"
	"github.com/slimoci/slimoci/internal/testbed"
)

// The web sample's curl, which busybox httpd never runs (only its HEALTHCHECK does, left out here with
// --no-include-healthcheck), made to survive the slimming three ways and run under podman in the slim
// image: `podman run --entrypoint /usr/bin/curl` fetches the sample's page from the slim image's own files.
//   - none: the baseline; curl is dropped and podman cannot start it.
//   - include-bin: --include-bin /usr/bin/curl keeps it with its ELF closure (libcurl and what it needs).
//   - report: an earlier `slimoci profile` of the same image, whose HEALTHCHECK ran curl, is given to
//     --include-paths-creport-file; its record keeps curl.
//
// keptPaths reads a build's kept.json: each kept path with why.
func keptPaths(t *testing.T, state string) map[string][]string {
	t.Helper()
	kept := map[string][]string{}
	for p, k := range keptJSON(t, state) {
		kept[p] = k.Reasons
	}
	return kept
}

// keptJSON reads a build's kept.json: each kept path with why and the packages owning it.
func keptJSON(t *testing.T, state string) map[string]slimoci.KeptPath {
	t.Helper()
	var kept map[string]slimoci.KeptPath
	b, err := os.ReadFile(filepath.Join(state, "kept.json"))
	if err == nil {
		err = json.Unmarshal(b, &kept)
	}
	if err != nil {
		t.Fatalf("kept.json: %v", err)
	}
	return kept
}

func TestE2EBuildKeepUnobserved(t *testing.T) {
	sensorBin := rootSandbox(t, "these builds use the root sandbox")
	ctx := context.Background()
	src := "oci:" + bed.Layout("web") + ":latest"

	profileState := filepath.Join(t.TempDir(), "profile")
	out, errs, code := runCLI(t, "profile", "--sensor", sensorBin, "--state-path", profileState, src)
	if code != 0 {
		t.Fatalf("profile: exit %d: %s %s", code, out, errs)
	}
	profileReport := filepath.Join(profileState, "report.json")
	var rec struct {
		Record struct{ Files map[string][]string }
	}
	if b, err := os.ReadFile(profileReport); err != nil || json.Unmarshal(b, &rec) != nil || !slices.Contains(rec.Record.Files["/usr/bin/curl"], "exec") {
		t.Fatalf("the profile's record of curl: %v %v", rec.Record.Files["/usr/bin/curl"], err)
	}

	for _, tc := range []struct {
		name string
		args []string
		why  string // curl's reason in kept.json; "" when it must be dropped
	}{
		{"none", nil, ""},
		{"include-bin", []string{"--include-bin", "/usr/bin/curl"}, "include-bin:/usr/bin/curl"},
		{"report", []string{"--include-paths-creport-file", profileReport}, "report:" + profileReport},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			state := filepath.Join(dir, "state")
			archive := filepath.Join(dir, "slim.tar")
			image := "localhost/slimoci-e2e/web-keep-" + tc.name + ":latest"
			args := append([]string{"build", "--sensor", sensorBin, "--state-path", state, "--no-include-healthcheck",
				"--output", "docker-archive:" + archive + ":" + image}, tc.args...)
			out, errs, code := runCLI(t, append(args, src)...)
			if code != 0 {
				t.Fatalf("exit %d: %s %s", code, out, errs)
			}
			kept := keptPaths(t, state)
			// libcurl.so.4 (a symlink, kept as the link on the way) and libcurl.so.4.8.0 (the library, kept for curl).
			libcurl, needed := "", false
			for p, why := range kept {
				if strings.HasPrefix(filepath.Base(p), "libcurl.so") {
					libcurl = p
					needed = needed || slices.ContainsFunc(why, func(s string) bool { return s == "elf-needed:/usr/bin/curl" || strings.HasPrefix(s, "report:") })
				}
			}
			if tc.why == "" {
				if kept["/usr/bin/curl"] != nil || libcurl != "" {
					t.Errorf("curl kept for %v, %s for %v", kept["/usr/bin/curl"], libcurl, kept[libcurl])
				}
			} else {
				if !slices.Contains(kept["/usr/bin/curl"], tc.why) {
					t.Errorf("/usr/bin/curl kept for %v, want %q", kept["/usr/bin/curl"], tc.why)
				}
				if !needed {
					t.Errorf("libcurl not kept for curl: %s kept for %v", libcurl, kept[libcurl])
				}
			}
			if _, err := testbed.Run(ctx, "podman", "load", "-i", archive); err != nil {
				t.Fatal(err)
			}
			defer testbed.Run(ctx, "podman", "rmi", "-f", image)
			page, err := testbed.Run(ctx, "podman", "run", "--rm", "--entrypoint", "/usr/bin/curl", image, "-fsS", "file:///app/www/index.html")
			if tc.why == "" {
				// runc: exec: "/usr/bin/curl": stat /usr/bin/curl: no such file or directory
				if err == nil || !strings.Contains(err.Error(), "no such file") {
					t.Fatalf("curl in the image slimmed without keeping it: %v: %s", err, page)
				}
				return
			}
			want, _ := os.ReadFile("../../testdata/samples/web/www/index.html")
			if err != nil || string(page) != string(want) {
				t.Fatalf("curl in the slim image: %v\n%s", err, page)
			}
		})
	}
}
