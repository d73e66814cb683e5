package oci

import (
	"archive/tar"
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Transport says where an image lives. The names are skopeo's, so that references users already write work.
type Transport string

// The transports slimoci reads and writes.
const (
	Registry      Transport = "docker"
	Layout        Transport = "oci"
	DockerArchive Transport = "docker-archive"
	OCIArchive    Transport = "oci-archive"
)

// unsupported are skopeo/podman transports a user may well type; they get a clearer error than "unknown".
var unsupported = []string{"dir", "containers-storage", "docker-daemon", "ostree", "sif", "tarball", "oci-dir"}

// Reference is a parsed image reference: a transport and what it needs to find the image.
type Reference struct {
	Transport Transport
	// Name is the registry reference (registry/repo:tag or @digest) for Registry, and the docker reference
	// inside the archive (name:tag) for DockerArchive, if given.
	Name string
	// Path is the layout directory or the archive file.
	Path string
	// Tag is the image's tag inside an OCI layout or OCI archive (its org.opencontainers.image.ref.name).
	Tag string
	// Digest picks an image in an OCI layout by manifest digest.
	Digest string
}

// String renders the reference in the syntax ParseReference reads.
func (r Reference) String() string {
	switch r.Transport {
	case Registry:
		return "docker://" + r.Name
	case Layout, OCIArchive:
		s := string(r.Transport) + ":" + r.Path
		if r.Digest != "" {
			return s + "@" + r.Digest
		}
		if r.Tag != "" {
			return s + ":" + r.Tag
		}
		return s
	case DockerArchive:
		if r.Name != "" {
			return "docker-archive:" + r.Path + ":" + r.Name
		}
		return "docker-archive:" + r.Path
	}
	return string(r.Transport) + ":" + r.Path
}

// registryRef parses the registry reference; insecure allows plain HTTP.
func (r Reference) registryRef(insecure bool) (name.Reference, error) {
	var opts []name.Option
	if insecure {
		opts = append(opts, name.Insecure)
	}
	ref, err := name.ParseReference(r.Name, opts...)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %v", ErrReference, r.Name, err)
	}
	return ref, nil
}

// ParseReference reads an image reference as crane, skopeo and podman users write them:
//
//	registry.example/repo:tag, registry.example/repo@sha256:..., docker://registry.example/repo:tag
//	oci:DIR[:tag|@sha256:...]
//	docker-archive:FILE[:name:tag]
//	oci-archive:FILE[:tag]
//
// A plain path to an existing directory is read as an OCI layout, and a plain path to an existing file as a
// docker-archive or an OCI archive after a look at its entries. A plain string that looks like a path
// (it starts with /, ./ or ../, or ends in .tar) but does not exist is an error, not a registry reference.
func ParseReference(s string) (Reference, error) {
	if s == "" {
		return Reference{}, fmt.Errorf("%w: empty image reference", ErrReference)
	}
	if rest, ok := strings.CutPrefix(s, "docker://"); ok {
		return parseRegistry(s, rest)
	}
	if i := strings.Index(s, "://"); i > 0 && isScheme(s[:i]) {
		return Reference{}, fmt.Errorf("%w %q in %q (use docker://, oci:, docker-archive: or oci-archive:)", ErrTransport, s[:i]+"://", s)
	}
	if prefix, rest, ok := strings.Cut(s, ":"); ok {
		switch Transport(prefix) {
		case Layout:
			path, tag, digest := splitLayoutRef(rest)
			if path == "" {
				return Reference{}, fmt.Errorf("%w %q: no layout directory", ErrReference, s)
			}
			return Reference{Transport: Layout, Path: path, Tag: tag, Digest: digest}, nil
		case OCIArchive:
			path, tag, _ := strings.Cut(rest, ":")
			if path == "" {
				return Reference{}, fmt.Errorf("%w %q: no archive file", ErrReference, s)
			}
			return Reference{Transport: OCIArchive, Path: path, Tag: tag}, nil
		case DockerArchive:
			path, ref, _ := strings.Cut(rest, ":")
			if path == "" {
				return Reference{}, fmt.Errorf("%w %q: no archive file", ErrReference, s)
			}
			if ref != "" {
				if _, err := name.NewTag(ref); err != nil {
					return Reference{}, fmt.Errorf("%w %q: the name inside a docker-archive must be name:tag: %v", ErrReference, s, err)
				}
			}
			return Reference{Transport: DockerArchive, Path: path, Name: ref}, nil
		}
		if slices.Contains(unsupported, prefix) {
			return Reference{}, fmt.Errorf("%w %q in %q: slimoci reads docker://, oci:, docker-archive: and oci-archive:", ErrTransport, prefix+":", s)
		}
	}
	if fi, err := os.Stat(s); err == nil {
		return detectPath(s, fi)
	}
	if looksLikePath(s) {
		return Reference{}, fmt.Errorf("%s: %w", s, ErrNotExist)
	}
	return parseRegistry(s, s)
}

func parseRegistry(orig, s string) (Reference, error) {
	if _, err := name.ParseReference(s); err != nil {
		return Reference{}, fmt.Errorf("%w %q: %v", ErrReference, orig, err)
	}
	return Reference{Transport: Registry, Name: s}, nil
}

// splitLayoutRef splits "DIR[:tag|@digest]". The directory may not hold ':' (as in skopeo).
func splitLayoutRef(s string) (path, tag, digest string) {
	if p, d, ok := strings.Cut(s, "@"); ok && strings.Contains(d, ":") {
		return p, "", d
	}
	path, tag, _ = strings.Cut(s, ":")
	return path, tag, ""
}

func isScheme(s string) bool {
	for i, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return false
		}
	}
	return s != ""
}

func looksLikePath(s string) bool {
	return filepath.IsAbs(s) || strings.HasPrefix(s, "./") || strings.HasPrefix(s, "../") ||
		strings.HasPrefix(s, "~") || strings.HasSuffix(s, ".tar") || strings.HasSuffix(s, ".tar.gz")
}

// detectPath tells an OCI layout directory from a docker-archive or an OCI archive file.
func detectPath(path string, fi os.FileInfo) (Reference, error) {
	if fi.IsDir() {
		for _, f := range []string{"index.json", "oci-layout"} {
			if _, err := os.Stat(filepath.Join(path, f)); err == nil {
				return Reference{Transport: Layout, Path: path}, nil
			}
		}
		return Reference{}, fmt.Errorf("%s: %w: a directory without index.json or oci-layout is not an OCI layout", path, ErrFormat)
	}
	f, err := os.Open(path)
	if err != nil {
		return Reference{}, fmt.Errorf("opening %s: %w", path, err)
	}
	defer f.Close()
	kind, err := sniffArchive(f)
	if err != nil {
		return Reference{}, fmt.Errorf("%s: %w", path, err)
	}
	return Reference{Transport: kind, Path: path}, nil
}

// sniffArchive reads tar headers (skipping contents) until it knows the archive's kind. An archive holding
// both an OCI index and a docker manifest.json (docker save since Docker 25) is read as an OCI archive,
// which keeps manifest digests.
func sniffArchive(r io.Reader) (Transport, error) {
	tr := tar.NewReader(bufio.NewReader(r))
	var sawManifest, sawIndex, sawLayout bool
	for n := 0; ; n++ {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if n == 0 {
				return "", fmt.Errorf("%w: not a tar archive (%v)", ErrFormat, err)
			}
			return "", fmt.Errorf("%w: reading tar entry %d: %v", ErrFormat, n, err)
		}
		switch strings.TrimPrefix(h.Name, "./") {
		case "manifest.json":
			sawManifest = true
		case "index.json":
			sawIndex = true
		case "oci-layout":
			sawLayout = true
		}
		if sawIndex && sawLayout {
			return OCIArchive, nil
		}
	}
	if sawManifest {
		return DockerArchive, nil
	}
	return "", fmt.Errorf("%w: a tar archive with neither manifest.json (docker-archive) nor index.json and oci-layout (OCI archive)", ErrFormat)
}

// hashOf parses a digest string, with the reference in the error.
func hashOf(ref Reference, s string) (v1.Hash, error) {
	h, err := v1.NewHash(s)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("%w %q: digest %q: %v", ErrReference, ref.String(), s, err)
	}
	return h, nil
}

// ParseDestination reads a reference to write to. It takes the same syntax as ParseReference; a plain path
// that does not exist yet must name its format, since nothing tells which one to create.
func ParseDestination(s string) (Reference, error) {
	ref, err := ParseReference(s)
	if errors.Is(err, ErrNotExist) {
		return Reference{}, fmt.Errorf("%w: %s does not exist; name the format to create: oci:%s, docker-archive:%s or oci-archive:%s", ErrReference, s, s, s, s)
	}
	return ref, err
}
