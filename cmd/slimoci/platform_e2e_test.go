package main

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/slimoci/slimoci"
	"github.com/slimoci/slimoci/internal/testbed"
)

// `slimoci build --platform all --push` of the python sample's amd64+arm64 index: an index of two slim
// manifests, each one layer, with its platform, each verified (arm64 under qemu-user), annotated with the
// source index's digest; podman runs each platform of the slim tag (arm64 under qemu) and GET / gives the
// fat image's body for that platform; the arm64 image holds no x86-64 ELF file and nothing of the emulator.
func TestE2EBuildAllPlatforms(t *testing.T) {
	sensorBin := rootSandbox(t, "these builds use the root sandbox; the rootless one has its own test")
	ctx := context.Background()
	fat := registry.Addr + "/samples/python-multi:latest"
	if err := registry.PushIndex(ctx, "oci:"+bed.Layout(testbed.MultiPlatform)+":latest", "samples/python-multi:latest"); err != nil {
		t.Fatal(err)
	}
	rawFat, err := testbed.Skopeo(ctx, "inspect", "--tls-verify=false", "--raw", "docker://"+fat)
	if err != nil {
		t.Fatal(err)
	}
	fatIndex := fmt.Sprintf("sha256:%x", sha256.Sum256(rawFat))

	// Refused before anything is pulled: an index into a docker-archive, several platforms for info.
	dir := t.TempDir()
	archive := filepath.Join(dir, "multi.tar")
	_, errs, code := runCLI(t, "build", "--platform", "all", "--sensor", sensorBin, "--state-path", filepath.Join(dir, "refused"), "--output", "docker-archive:"+archive, fat)
	if code != 3 || !strings.Contains(errorLine(errs), "a docker-archive holds images of one platform") {
		t.Errorf("an index into a docker-archive: exit %d, %q", code, errorLine(errs))
	}
	if _, err := os.Stat(archive); err == nil {
		t.Error("the refused docker-archive was written")
	}
	if _, errs, code := runCLI(t, "info", "--platform", "all", fat); code != 2 || !strings.Contains(errorLine(errs), "only build slims several platforms") {
		t.Errorf("info --platform all: exit %d, %q", code, errorLine(errs))
	}

	// Without --platform: the host's platform, and the summary names the one not slimmed.
	out, errs, code := runCLI(t, "build", "--json", "--no-verify", "--sensor", sensorBin, "--state-path", filepath.Join(dir, "one"), "--output", "oci:"+filepath.Join(dir, "one-image"), fat)
	var one slimoci.BuildResult
	if code != 0 || json.Unmarshal([]byte(out), &one) != nil {
		t.Fatalf("exit %d: %s %s", code, out, errs)
	}
	if one.Platform != "linux/amd64" || strings.Join(one.OtherPlatforms, ",") != "linux/arm64/v8" || len(one.Manifests) != 0 {
		t.Errorf("a build of the index without --platform: platform %q, others %v", one.Platform, one.OtherPlatforms)
	}

	state := filepath.Join(t.TempDir(), "state")
	slim := registry.Addr + "/samples/python-multi.slim:all"
	out, errs, code = runCLI(t, "build", "--json", "--platform", "all", "--sensor", sensorBin, "--state-path", state, "--push", "--tag", slim, fat)
	if code != 0 {
		t.Fatalf("exit %d: %s %s", code, out, errs)
	}
	var res slimoci.BuildResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("stdout is not the JSON document: %v: %s", err, out)
	}
	if len(res.Manifests) != 2 || res.SourceDigest != fatIndex || !res.Verified {
		t.Fatalf("want two verified manifests of source %s: %s", fatIndex, out)
	}
	byPlatform := map[string]*slimoci.BuildResult{}
	for _, m := range res.Manifests {
		byPlatform[strings.SplitN(m.Platform, "/", 3)[1]] = m
		if !m.Verified || m.VerifyRounds < 1 || m.Seconds <= 0 {
			t.Errorf("%s: verified %v in %d round(s), %.1f s", m.Platform, m.Verified, m.VerifyRounds, m.Seconds)
		}
		// Each platform's artifacts are in its own directory.
		if _, err := os.Stat(filepath.Join(state, slimoci.PlatformDir(mustPlatform(t, m.Platform)), "seccomp.json")); err != nil {
			t.Errorf("%s: %v", m.Platform, err)
		}
	}
	if a, b := byPlatform["amd64"], byPlatform["arm64"]; a == nil || b == nil || a.Emulated || !b.Emulated {
		t.Fatalf("want amd64 native and arm64 emulated: %s", out)
	}
	// The arm64 profiles are arm64's: its seccomp architecture and syscall names (and, for the emulated run, the
	// recording host's rule), and AppArmor rules for its own library directory.
	armDir := filepath.Join(state, slimoci.PlatformDir(mustPlatform(t, byPlatform["arm64"].Platform)))
	seccomp, err := os.ReadFile(filepath.Join(armDir, "seccomp.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(seccomp), "SCMP_ARCH_AARCH64") {
		t.Errorf("the arm64 seccomp profile names no SCMP_ARCH_AARCH64: %.300s", seccomp)
	}
	apparmor, err := os.ReadFile(filepath.Join(armDir, "apparmor.profile"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(apparmor), "/usr/lib/aarch64-linux-gnu/") || strings.Contains(string(apparmor), "x86_64-linux-gnu") {
		t.Errorf("the arm64 AppArmor profile is not arm64's:\n%.2000s", apparmor)
	}

	// The pushed index: its digest is the document's, two OCI manifests with their platforms, one layer each.
	rawSlim, err := testbed.Skopeo(ctx, "inspect", "--tls-verify=false", "--raw", "docker://"+slim)
	if err != nil {
		t.Fatal(err)
	}
	if d := fmt.Sprintf("sha256:%x", sha256.Sum256(rawSlim)); d != res.Digest {
		t.Errorf("pushed index %s, --json's %s", d, res.Digest)
	}
	idx, err := v1.ParseIndexManifest(strings.NewReader(string(rawSlim)))
	if err != nil {
		t.Fatal(err)
	}
	if !idx.MediaType.IsIndex() || len(idx.Manifests) != 2 || idx.Annotations["org.opencontainers.image.base.digest"] != fatIndex {
		t.Errorf("slim index: %s", rawSlim)
	}
	for _, d := range idx.Manifests {
		if d.Platform == nil || byPlatform[d.Platform.Architecture] == nil || byPlatform[d.Platform.Architecture].Digest != d.Digest.String() {
			t.Errorf("index entry %+v is none of the manifests built", d)
			continue
		}
		raw, err := testbed.Skopeo(ctx, "inspect", "--tls-verify=false", "--raw", "docker://"+registry.Addr+"/samples/python-multi.slim@"+d.Digest.String())
		if err != nil {
			t.Fatal(err)
		}
		m, err := v1.ParseManifest(strings.NewReader(string(raw)))
		if err != nil || len(m.Layers) != 1 {
			t.Errorf("%s: %v %s", d.Platform, err, raw)
		}
	}

	// Each platform of the slim tag answers as that platform of the fat one does, under podman.
	for _, arch := range []string{"amd64", "arm64"} {
		flags := []string{"--platform", "linux/" + arch, "--tls-verify=false"}
		want := podmanGet(t, fat, flags...)
		got := podmanGet(t, slim, flags...)
		if got != want {
			t.Errorf("linux/%s: the slim image's GET / body hashes to %s, the fat one's to %s", arch, got, want)
		}
	}
	testbed.Run(ctx, "podman", "rmi", "-f", fat, slim)

	// Nothing of the host's in the arm64 image: every ELF file is an aarch64 one, and no emulator file.
	ref, err := name.ParseReference(slim, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(ref, remote.WithPlatform(v1.Platform{OS: "linux", Architecture: "arm64"}), remote.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	elfs, foreign := scanELF(t, img, elf.EM_AARCH64)
	if elfs < 10 || len(foreign) > 0 {
		t.Errorf("the arm64 slim image has %d ELF files; of another machine, or the emulator's: %v", elfs, foreign)
	}
}

func mustPlatform(t *testing.T, s string) v1.Platform {
	t.Helper()
	p, err := v1.ParsePlatform(s)
	if err != nil {
		t.Fatal(err)
	}
	return *p
}

// scanELF reads the image's one layer and counts its ELF files; foreign lists those of a machine other than
// want, and any path of qemu's.
func scanELF(t *testing.T, img v1.Image, want elf.Machine) (elfs int, foreign []string) {
	t.Helper()
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers: %d %v", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(h.Name, "qemu") || strings.Contains(h.Name, "binfmt") {
			foreign = append(foreign, h.Name)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		head := make([]byte, 20)
		if n, _ := io.ReadFull(tr, head); n < 20 || string(head[:4]) != elf.ELFMAG {
			continue
		}
		elfs++
		var bo binary.ByteOrder = binary.LittleEndian
		if elf.Data(head[elf.EI_DATA]) == elf.ELFDATA2MSB {
			bo = binary.BigEndian
		}
		if m := elf.Machine(bo.Uint16(head[18:20])); m != want {
			foreign = append(foreign, h.Name+" ("+m.String()+")")
		}
	}
	return elfs, foreign
}
