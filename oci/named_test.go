package oci

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
)

// WriteNamed gives a layout, an OCI archive and a docker-archive every name, each readable by it.
func TestWriteNamed(t *testing.T) {
	img := randomImage(t)
	dir := t.TempDir()
	names := []string{"localhost/app:slim", "v2"}
	for _, c := range []struct {
		dest  string
		reads []string
	}{
		{"oci:" + filepath.Join(dir, "layout"), []string{"oci:" + filepath.Join(dir, "layout") + ":localhost/app:slim", "oci:" + filepath.Join(dir, "layout") + ":v2"}},
		{"oci-archive:" + filepath.Join(dir, "img.oci"), []string{"oci-archive:" + filepath.Join(dir, "img.oci") + ":localhost/app:slim", "oci-archive:" + filepath.Join(dir, "img.oci") + ":v2"}},
		{"docker-archive:" + filepath.Join(dir, "img.tar"), []string{"docker-archive:" + filepath.Join(dir, "img.tar") + ":localhost/app:slim", "docker-archive:" + filepath.Join(dir, "img.tar") + ":index.docker.io/library/v2:latest"}},
	} {
		ref, err := ParseDestination(c.dest)
		if err != nil {
			t.Fatal(err)
		}
		if err := WriteNamed(context.Background(), img, ref, names, nil); err != nil {
			t.Fatalf("%s: %v", c.dest, err)
		}
		for _, r := range c.reads {
			checkSame(t, img, mustParse(t, r))
		}
	}
	if err := WriteNamed(context.Background(), img, mustParse(t, "127.0.0.1:1/a/b:c"), names, nil); !errors.Is(err, ErrReference) {
		t.Errorf("a registry with names: %v", err)
	}
	bad, _ := ParseDestination("docker-archive:" + filepath.Join(dir, "bad.tar"))
	if err := WriteNamed(context.Background(), img, bad, []string{"UPPER:x"}, nil); !errors.Is(err, ErrReference) {
		t.Errorf("a docker-archive with a bad name: %v", err)
	}
}
