package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/package-url/packageurl-go"

	"github.com/slimoci/slimoci"
	"github.com/slimoci/slimoci/internal/testbed"
	"github.com/slimoci/slimoci/oci"
)

// dpkgList is dpkg-query -W on an admin directory: package (with its architecture, as packageKey) ->
// version.
func dpkgList(t *testing.T, admindir string) map[string]string {
	t.Helper()
	out, err := testbed.Run(context.Background(), "dpkg-query", "--admindir="+admindir, "-W", "-f", "${Package}:${Architecture}\t${Version}\n")
	if err != nil {
		t.Fatalf("dpkg-query: %v", err)
	}
	pkgs := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if name, version, ok := strings.Cut(l, "\t"); ok {
			pkgs[name] = version
		}
	}
	return pkgs
}

// The slim images of the four samples carry their package database, pruned: dpkg-query on the unpacked slim
// image (unpacked by umoci) lists exactly the Debian packages that own a kept file (kept.json), at the fat
// image's versions, and dpkg -S finds the owner of a kept library. syft, reading the slim image's layout,
// reports the same Debian packages and versions as slimoci's SBOM, and none of the dropped ones. Pushed, the
// slim manifest's referrers (the referrers tag schema on the test bed's docker-registry) are the two SBOMs,
// their blobs the artifacts' bytes.
func TestE2EBuildPackageDB(t *testing.T) {
	sensorBin := rootSandbox(t, "these builds use the root sandbox")
	ctx := context.Background()
	for _, s := range testbed.Samples {
		t.Run(s, func(t *testing.T) {
			dir := t.TempDir()
			state := filepath.Join(dir, "state")
			layout := filepath.Join(dir, "layout")
			tag := registry.Addr + "/samples/" + s + ".slim:pkgdb"
			out, errs, code := runCLI(t, "--json", "--insecure", "build", "--sensor", sensorBin, "--state-path", state, "--push", "--tag", tag,
				"--output", "oci:"+layout+":latest", registry.Addr+"/samples/"+s+":oci")
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errs)
			}
			var res slimoci.BuildResult
			if err := json.Unmarshal([]byte(out), &res); err != nil || res.Packages == nil {
				t.Fatalf("--json: %v: %.300s", err, out)
			}

			bundle := filepath.Join(dir, "bundle")
			if _, err := testbed.Run(ctx, "umoci", "unpack", "--rootless", "--image", layout+":latest", bundle); err != nil {
				t.Fatal(err)
			}
			slim := dpkgList(t, filepath.Join(bundle, "rootfs", "var/lib/dpkg"))
			fatTree := filepath.Join(dir, "fat")
			if _, _, code := runCLI(t, "--quiet", "unpack", "oci:"+bed.Layout(s)+":latest", fatTree); code != 0 {
				t.Fatal("unpacking the fat image")
			}
			fat := dpkgList(t, filepath.Join(fatTree, "var/lib/dpkg"))
			// What should be listed: the Debian packages owning a kept path that is not a directory.
			want := map[string]string{}
			for p, k := range keptJSON(t, state) {
				if st, err := os.Lstat(filepath.Join(bundle, "rootfs", p)); err != nil || st.IsDir() {
					continue
				}
				for _, purl := range k.Packages {
					if u, err := packageurl.FromString(purl); err == nil && u.Type == "deb" {
						key := packageKey(u)
						want[key] = fat[key]
					}
				}
			}
			if d := append(diffPackages(want, slim), diffPackages(slim, want)...); len(d) > 0 || len(slim) == 0 {
				t.Errorf("dpkg-query on the slim image, against the packages owning kept files (%d listed, %d wanted):\n%s", len(slim), len(want), strings.Join(d, "\n"))
			}
			// packages.json: every package of the fat image, listed in the slim database exactly when kept.
			var usage []slimoci.PackageUsage
			if b, err := os.ReadFile(filepath.Join(state, slimoci.PackagesFile)); err != nil || json.Unmarshal(b, &usage) != nil {
				t.Fatalf("%s: %v", slimoci.PackagesFile, err)
			}
			keptDebs := 0
			for _, u := range usage {
				if strings.HasPrefix(u.PURL, "pkg:deb/") {
					if u.Kept != (u.KeptFiles > 0) {
						t.Errorf("packages.json: %+v", u)
					}
					if u.Kept {
						keptDebs++
					}
				}
			}
			if keptDebs != len(slim) || len(usage) < len(fat) {
				t.Errorf("packages.json: %d entries, %d Debian ones kept; the slim database lists %d, the fat %d", len(usage), keptDebs, len(slim), len(fat))
			}
			if len(slim) >= len(fat) || res.Packages.Dropped == 0 {
				t.Errorf("the slim database lists %d of the fat one's %d packages (dropped %d)", len(slim), len(fat), res.Packages.Dropped)
			}
			// slimoci info on the slim image (one layer: its packages are read by default) lists the same.
			info := infoJSON(t, "oci:"+layout+":latest")
			debs := map[string]string{}
			for _, p := range info.Packages {
				if u, err := packageurl.FromString(p.PURL); err == nil && p.Type == "deb" {
					debs[packageKey(u)] = p.Version
				}
			}
			if d := append(diffPackages(debs, slim), diffPackages(slim, debs)...); len(d) > 0 {
				t.Errorf("info's packages and dpkg-query's differ:\n%s", strings.Join(d, "\n"))
			}
			owner, err := testbed.Run(ctx, "dpkg", "--admindir="+filepath.Join(bundle, "rootfs", "var/lib/dpkg"), "-S", "libc.so.6")
			if err != nil || !strings.Contains(string(owner), "libc6:amd64: ") {
				t.Errorf("dpkg -S libc.so.6: %q %v", owner, err)
			}

			// syft, an independent reader, on the slim image's layout.
			spdx, err := os.ReadFile(filepath.Join(state, "sbom.spdx.json"))
			if err != nil {
				t.Fatal(err)
			}
			cdxDoc, err := os.ReadFile(filepath.Join(state, "sbom.cdx.json"))
			if err != nil {
				t.Fatal(err)
			}
			// Both name the slim image and the source image it descends from by their digests, and list the
			// same packages.
			for name, doc := range map[string][]byte{"SPDX": spdx, "CycloneDX": cdxDoc} {
				hex := strings.TrimPrefix(res.SourceDigest, "sha256:")
				if res.SourceDigest == "" || !strings.Contains(string(doc), hex) || !strings.Contains(string(doc), strings.TrimPrefix(res.Digest, "sha256:")) {
					t.Errorf("the %s SBOM lacks the source's digest %s or the slim image's %s", name, res.SourceDigest, res.Digest)
				}
			}
			if d := diffAll(spdxPackages(t, spdx), cdxPackages(t, cdxDoc)); len(d) > 0 {
				t.Errorf("the SPDX and CycloneDX SBOMs differ:\n%s", strings.Join(d, "\n"))
			}
			syft := syftPackages(t, bed, layout)
			ours := spdxPackages(t, spdx)
			t.Logf("syft: %d deb, ours %d deb; types %v", len(syft["deb"]), len(ours["deb"]), slices.Collect(maps.Keys(syft)))
			if d := append(diffPackages(ours["deb"], syft["deb"]), diffPackages(syft["deb"], ours["deb"])...); len(d) > 0 {
				t.Errorf("syft and slimoci's SBOM differ on the slim image's Debian packages:\n%s", strings.Join(d, "\n"))
			}
			if d := diffPackages(syft["deb"], slim); len(d) > 0 {
				t.Errorf("syft reports packages the slim database does not list (dropped ones?):\n%s", strings.Join(d, "\n"))
			}

			// The referrers of the pushed slim manifest: both SBOMs, as the artifacts.
			ref, _ := oci.ParseDestination(tag)
			repo := registry.Addr + "/samples/" + s + ".slim"
			refs, err := oci.Referrers(ctx, ref, &oci.Options{Insecure: true})
			if err != nil {
				t.Fatal(err)
			}
			// Each build that pushed this slim manifest (the same digest: builds are reproducible) attached its
			// SBOMs, which name its destination: this build's are among them.
			got := map[string][]string{}
			for _, r := range refs {
				raw, err := testbed.Skopeo(ctx, "inspect", "--tls-verify=false", "--raw", "docker://"+repo+"@"+r.Digest.String())
				if err != nil {
					t.Fatal(err)
				}
				var m struct {
					Subject struct{ Digest string }
					Layers  []struct{ Digest string }
				}
				if err := json.Unmarshal(raw, &m); err != nil || len(m.Layers) != 1 || m.Subject.Digest != res.Digest {
					t.Errorf("referrer %s: %v %s", r.Digest, err, raw)
					continue
				}
				got[r.ArtifactType] = append(got[r.ArtifactType], m.Layers[0].Digest)
			}
			for mt, file := range map[string]string{oci.SPDXMediaType: "sbom.spdx.json", oci.CycloneDXMediaType: "sbom.cdx.json"} {
				b, _ := os.ReadFile(filepath.Join(state, file))
				if want := fmt.Sprintf("sha256:%x", sha256.Sum256(b)); !slices.Contains(got[mt], want) {
					t.Errorf("referrer %s: layer %s, the artifact %s is %s", mt, got[mt], file, want)
				}
			}
		})
	}
}
