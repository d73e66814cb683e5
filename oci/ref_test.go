package oci

import (
	"archive/tar"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeTar(t *testing.T, path string, names ...string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: 2, Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte("{}"))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestParseReference(t *testing.T) {
	dir := t.TempDir()
	layout := filepath.Join(dir, "layout")
	os.Mkdir(layout, 0o755)
	os.WriteFile(filepath.Join(layout, "index.json"), []byte("{}"), 0o644)
	notLayout := filepath.Join(dir, "empty")
	os.Mkdir(notLayout, 0o755)
	dockerTar := filepath.Join(dir, "docker.tar")
	writeTar(t, dockerTar, "abc.json", "manifest.json")
	ociTar := filepath.Join(dir, "oci.tar")
	writeTar(t, ociTar, "oci-layout", "blobs/sha256/x", "index.json")
	bothTar := filepath.Join(dir, "both.tar")
	writeTar(t, bothTar, "manifest.json", "oci-layout", "index.json")
	otherTar := filepath.Join(dir, "other.tar")
	writeTar(t, otherTar, "etc/passwd")
	text := filepath.Join(dir, "notes.txt")
	os.WriteFile(text, []byte(strings.Repeat("not a tar archive\n", 100)), 0o644)

	for _, tc := range []struct {
		in      string
		want    Reference
		wantErr error
		errHas  string
	}{
		{in: "registry.example/repo:tag", want: Reference{Transport: Registry, Name: "registry.example/repo:tag"}},
		{in: "docker://registry.example/repo:tag", want: Reference{Transport: Registry, Name: "registry.example/repo:tag"}},
		{in: "127.0.0.1:5000/samples/node:oci", want: Reference{Transport: Registry, Name: "127.0.0.1:5000/samples/node:oci"}},
		{in: "localhost:5000/x@sha256:" + strings.Repeat("a", 64), want: Reference{Transport: Registry, Name: "localhost:5000/x@sha256:" + strings.Repeat("a", 64)}},
		{in: "debian", want: Reference{Transport: Registry, Name: "debian"}},
		{in: "oci:/some/dir", want: Reference{Transport: Layout, Path: "/some/dir"}},
		{in: "oci:/some/dir:v1", want: Reference{Transport: Layout, Path: "/some/dir", Tag: "v1"}},
		{in: "oci:dir@sha256:" + strings.Repeat("b", 64), want: Reference{Transport: Layout, Path: "dir", Digest: "sha256:" + strings.Repeat("b", 64)}},
		{in: "docker-archive:/x/img.tar", want: Reference{Transport: DockerArchive, Path: "/x/img.tar"}},
		{in: "docker-archive:/x/img.tar:localhost/app:1.0", want: Reference{Transport: DockerArchive, Path: "/x/img.tar", Name: "localhost/app:1.0"}},
		{in: "oci-archive:/x/img.tar", want: Reference{Transport: OCIArchive, Path: "/x/img.tar"}},
		{in: "oci-archive:/x/img.tar:v2", want: Reference{Transport: OCIArchive, Path: "/x/img.tar", Tag: "v2"}},
		{in: layout, want: Reference{Transport: Layout, Path: layout}},
		{in: dockerTar, want: Reference{Transport: DockerArchive, Path: dockerTar}},
		{in: ociTar, want: Reference{Transport: OCIArchive, Path: ociTar}},
		{in: bothTar, want: Reference{Transport: OCIArchive, Path: bothTar}},
		// Errors name the input and the problem.
		{in: "", wantErr: ErrReference, errHas: "empty"},
		{in: "ftp://host/x", wantErr: ErrTransport, errHas: `"ftp://"`},
		{in: "containers-storage:localhost/x", wantErr: ErrTransport, errHas: "containers-storage:"},
		{in: "dir:/tmp/x", wantErr: ErrTransport, errHas: "dir:"},
		{in: "/no/such/dir", wantErr: ErrNotExist, errHas: "/no/such/dir"},
		{in: "./missing.tar", wantErr: ErrNotExist, errHas: "./missing.tar"},
		{in: notLayout, wantErr: ErrFormat, errHas: "not an OCI layout"},
		{in: text, wantErr: ErrFormat, errHas: "not a tar archive"},
		{in: otherTar, wantErr: ErrFormat, errHas: "neither manifest.json"},
		{in: "UPPER/Case:tag", wantErr: ErrReference, errHas: "UPPER/Case:tag"},
		{in: "oci:", wantErr: ErrReference, errHas: "no layout directory"},
		{in: "docker-archive:x.tar:bad name", wantErr: ErrReference, errHas: "name:tag"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseReference(tc.in)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("error %v, want %v", err, tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.errHas) {
					t.Fatalf("error %q does not mention %q", err, tc.errHas)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			// String renders what ParseReference reads back.
			if again, err := ParseReference(got.String()); err != nil || again != got {
				t.Fatalf("round trip of %q: %+v, %v", got.String(), again, err)
			}
		})
	}
}

func TestParseDestination(t *testing.T) {
	if _, err := ParseDestination("./new-output.tar"); !errors.Is(err, ErrReference) || !strings.Contains(err.Error(), "docker-archive:./new-output.tar") {
		t.Fatalf("a new plain path must name its format: %v", err)
	}
	if ref, err := ParseDestination("oci-archive:./new.tar"); err != nil || ref.Transport != OCIArchive {
		t.Fatalf("%+v %v", ref, err)
	}
}
