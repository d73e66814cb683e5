package oci

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// An OCI layout and an OCI archive are the same thing, one in a directory and one in a tar file. Both are read
// through blobStore, so that they get the same checks: every manifest, config and layer is verified against
// its digest and size. (go-containerregistry's layout package reads only directories and trusts blob files.)

// refNameAnnotation is how an OCI layout names its images (oci:DIR:TAG).
const refNameAnnotation = "org.opencontainers.image.ref.name"

type blobStore interface {
	// open returns a top-level file (index.json, oci-layout) or a blob (blobs/ALG/HEX) with its size.
	open(name string) (io.ReadCloser, int64, error)
	// where names the store in errors.
	where() string
	Close() error
}

func blobName(h v1.Hash) string { return path.Join("blobs", h.Algorithm, h.Hex) }

type dirStore struct{ root string }

// open opens a file of the layout. The layout is untrusted: a blob may be a FIFO, whose open would wait for
// a writer without O_NONBLOCK, or a device; neither is read.
func (d dirStore) open(name string) (io.ReadCloser, int64, error) {
	f, err := os.OpenFile(filepath.Join(d.root, filepath.FromSlash(name)), os.O_RDONLY|openFlags, 0)
	if err != nil {
		return nil, 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, 0, fmt.Errorf("%w: %s is not a regular file", ErrFormat, name)
	}
	return f, fi.Size(), nil
}

func (d dirStore) where() string { return d.root }
func (d dirStore) Close() error  { return nil }

// tarStore serves the entries of an uncompressed tar file in place: one pass over the headers records where
// each entry's data starts, and blobs are then read through section readers, with no temporary copy.
type tarStore struct {
	f       *os.File
	name    string
	entries map[string]tarEntry
}

type tarEntry struct{ off, size int64 }

// offsetReader counts the bytes archive/tar has consumed; it seeks to skip entry data, so indexing a large
// archive reads only its headers.
type offsetReader struct {
	f   *os.File
	off int64
}

func (o *offsetReader) Read(p []byte) (int, error) {
	n, err := o.f.Read(p)
	o.off += int64(n)
	return n, err
}

func (o *offsetReader) Seek(offset int64, whence int) (int64, error) {
	n, err := o.f.Seek(offset, whence)
	if err == nil {
		o.off = n
	}
	return n, err
}

func openTarStore(file string) (*tarStore, error) {
	f, err := os.Open(file)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: %w", file, ErrNotExist)
		}
		return nil, fmt.Errorf("opening %s: %w", file, err)
	}
	s := &tarStore{f: f, name: file, entries: map[string]tarEntry{}}
	or := &offsetReader{f: f}
	tr := tar.NewReader(or)
	for n := 0; ; n++ {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			f.Close()
			if n == 0 {
				return nil, fmt.Errorf("%s: %w: not a tar archive (%v)", file, ErrFormat, err)
			}
			return nil, fmt.Errorf("%s: %w: reading tar entry %d: %v", file, ErrFormat, n, err)
		}
		if h.Typeflag == tar.TypeReg {
			s.entries[path.Clean(strings.TrimPrefix(h.Name, "./"))] = tarEntry{off: or.off, size: h.Size}
		}
	}
	return s, nil
}

func (s *tarStore) open(name string) (io.ReadCloser, int64, error) {
	e, ok := s.entries[name]
	if !ok {
		return nil, 0, fmt.Errorf("%s: %w", name, fs.ErrNotExist)
	}
	return io.NopCloser(io.NewSectionReader(s.f, e.off, e.size)), e.size, nil
}

func (s *tarStore) where() string { return s.name }
func (s *tarStore) Close() error  { return s.f.Close() }

// readSmall reads a whole small file or blob from the store, failing with a *LimitError before reading
// one over limit (or, if it grows, at the limit).
func readSmall(s blobStore, name string, limit int64) ([]byte, error) {
	rc, size, err := s.open(name)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	if size > limit {
		return nil, &LimitError{Size: size, Limit: limit}
	}
	return readAtMost(rc, limit)
}

// readBlob reads a small blob (a manifest, an index, a config) and verifies it against its descriptor.
func readBlob(s blobStore, d v1.Descriptor, what string) ([]byte, error) {
	limit := int64(maxManifest)
	if what == "config" {
		limit = maxConfig
	}
	if d.Size > limit {
		return nil, fmt.Errorf("reading %s %s: %w", what, d.Digest, &LimitError{Size: d.Size, Limit: limit})
	}
	b, err := readSmall(s, blobName(d.Digest), limit)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s %s: blob missing: %w", what, d.Digest, ErrNotExist)
		}
		return nil, fmt.Errorf("reading %s %s: %w", what, d.Digest, err)
	}
	if err := verifyBytes(b, d.Digest, what+" "+d.Digest.String()); err != nil {
		return nil, err
	}
	if d.Size != 0 && int64(len(b)) != d.Size {
		return nil, fmt.Errorf("%w: %s %s is %d bytes, its descriptor says %d", ErrDigest, what, d.Digest, len(b), d.Size)
	}
	return b, nil
}

func readIndexJSON(s blobStore) (*v1.IndexManifest, error) {
	b, err := readSmall(s, "index.json", maxManifest)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: no index.json", ErrFormat)
		}
		return nil, fmt.Errorf("reading index.json: %w", err)
	}
	return parseIndex(b, "index.json")
}

func parseIndex(b []byte, what string) (*v1.IndexManifest, error) {
	var im v1.IndexManifest
	if err := json.Unmarshal(b, &im); err != nil {
		return nil, fmt.Errorf("%w: %s is not a valid image index: %v", ErrFormat, what, err)
	}
	if im.SchemaVersion != 2 {
		return nil, fmt.Errorf("%w: %s has schemaVersion %d, want 2", ErrFormat, what, im.SchemaVersion)
	}
	if im.MediaType != "" && !im.MediaType.IsIndex() {
		return nil, fmt.Errorf("%w %q in %s", ErrMediaType, im.MediaType, what)
	}
	return &im, nil
}

// pickDescriptor finds the image a layout reference names: by digest, by tag, or the only one there is.
func pickDescriptor(im *v1.IndexManifest, ref Reference, want v1.Platform, explicit bool) (v1.Descriptor, error) {
	switch {
	case ref.Digest != "":
		h, err := hashOf(ref, ref.Digest)
		if err != nil {
			return v1.Descriptor{}, err
		}
		for _, d := range im.Manifests {
			if d.Digest == h {
				return d, nil
			}
		}
		return v1.Descriptor{}, fmt.Errorf("%w: no manifest %s in index.json", ErrNotFound, h)
	case ref.Tag != "":
		for _, d := range im.Manifests {
			if d.Annotations[refNameAnnotation] == ref.Tag {
				return d, nil
			}
		}
		return v1.Descriptor{}, fmt.Errorf("%w: no tag %q in index.json (tags: %s)", ErrNotFound, ref.Tag, tagList(im))
	}
	if len(im.Manifests) == 1 {
		return im.Manifests[0], nil
	}
	if len(im.Manifests) == 0 {
		return v1.Descriptor{}, fmt.Errorf("%w: index.json lists no images", ErrNotFound)
	}
	// Several untagged images with platforms: index.json is itself a multi-platform index.
	if tagList(im) == "none" {
		return ChoosePlatform(im.Manifests, want)
	}
	return v1.Descriptor{}, fmt.Errorf("%w: index.json lists %d images; name one with :TAG (tags: %s)", ErrNotFound, len(im.Manifests), tagList(im))
}

func tagList(im *v1.IndexManifest) string {
	var tags []string
	for _, d := range im.Manifests {
		if t := d.Annotations[refNameAnnotation]; t != "" {
			tags = append(tags, t)
		}
	}
	if len(tags) == 0 {
		return "none"
	}
	return strings.Join(tags, ", ")
}

// resolveInStore follows a descriptor through nested indexes to one image, choosing by platform.
func resolveInStore(s blobStore, d v1.Descriptor, want v1.Platform) (v1.Image, *v1.Hash, error) {
	var indexDigest *v1.Hash
	for depth := 0; ; depth++ {
		if depth > 4 {
			return nil, nil, fmt.Errorf("%w: indexes nested more than 4 deep", ErrFormat)
		}
		switch {
		case d.MediaType.IsIndex():
			b, err := readBlob(s, d, "index")
			if err != nil {
				return nil, nil, err
			}
			im, err := parseIndex(b, "index "+d.Digest.String())
			if err != nil {
				return nil, nil, err
			}
			if indexDigest == nil {
				h := d.Digest
				indexDigest = &h
			}
			if d, err = ChoosePlatform(im.Manifests, want); err != nil {
				return nil, nil, err
			}
		case d.MediaType.IsImage():
			img, err := newStoreImage(s, d)
			return img, indexDigest, err
		default:
			return nil, nil, fmt.Errorf("%w %q for %s", ErrMediaType, d.MediaType, d.Digest)
		}
	}
}

// storeImage is the smallest core go-containerregistry's partial package completes into a v1.Image.
type storeImage struct {
	s        blobStore
	desc     v1.Descriptor
	raw      []byte
	manifest *v1.Manifest

	configOnce sync.Once
	config     *v1.ConfigFile
	configErr  error
}

var _ partial.CompressedImageCore = (*storeImage)(nil)

func newStoreImage(s blobStore, d v1.Descriptor) (v1.Image, error) {
	raw, err := readBlob(s, d, "manifest")
	if err != nil {
		return nil, err
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("%w: manifest %s: %v", ErrFormat, d.Digest, err)
	}
	if err := checkManifest(m, d.Digest); err != nil {
		return nil, err
	}
	if m.MediaType != "" && m.MediaType != d.MediaType {
		return nil, fmt.Errorf("%w: manifest %s says media type %q, its descriptor %q", ErrMediaType, d.Digest, m.MediaType, d.MediaType)
	}
	return partial.CompressedToImage(&storeImage{s: s, desc: d, raw: raw, manifest: m})
}

// checkManifest rejects manifests slimoci could not unpack faithfully, or whose config it would not read.
func checkManifest(m *v1.Manifest, digest v1.Hash) error {
	if m.SchemaVersion != 2 {
		return fmt.Errorf("%w: manifest %s has schemaVersion %d, want 2", ErrFormat, digest, m.SchemaVersion)
	}
	for i, l := range m.Layers {
		if !knownLayer(l.MediaType) {
			return fmt.Errorf("%w %q for layer %d (%s) of manifest %s", ErrMediaType, l.MediaType, i, l.Digest, digest)
		}
		if l.Size < 0 {
			return fmt.Errorf("%w: layer %d (%s) of manifest %s has size %d", ErrFormat, i, l.Digest, digest, l.Size)
		}
	}
	if m.Config.Data == nil {
		if err := checkConfigSize(m.Config.Size, "config "+m.Config.Digest.String()); err != nil {
			return err
		}
	}
	switch m.Config.MediaType {
	case types.OCIConfigJSON, types.DockerConfigJSON, "":
	default:
		return fmt.Errorf("%w %q for the config of manifest %s", ErrMediaType, m.Config.MediaType, digest)
	}
	return nil
}

func (i *storeImage) RawManifest() ([]byte, error)        { return i.raw, nil }
func (i *storeImage) MediaType() (types.MediaType, error) { return i.desc.MediaType, nil }
func (i *storeImage) RawConfigFile() ([]byte, error) {
	return readBlob(i.s, i.manifest.Config, "config")
}

// configFile parses the config once; layers take their DiffIDs from it.
func (i *storeImage) configFile() (*v1.ConfigFile, error) {
	i.configOnce.Do(func() {
		raw, err := i.RawConfigFile()
		if err != nil {
			i.configErr = err
			return
		}
		if i.config, err = v1.ParseConfigFile(bytes.NewReader(raw)); err != nil {
			i.configErr = fmt.Errorf("%w: config %s: %v", ErrFormat, i.manifest.Config.Digest, err)
		}
	})
	return i.config, i.configErr
}

func (i *storeImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	for n, l := range i.manifest.Layers {
		if l.Digest == h {
			return &storeLayer{s: i.s, desc: l, image: i, index: n}, nil
		}
	}
	if i.manifest.Config.Digest == h {
		return &storeLayer{s: i.s, desc: i.manifest.Config}, nil
	}
	return nil, fmt.Errorf("%w: blob %s is not in manifest %s", ErrNotFound, h, i.desc.Digest)
}

type storeLayer struct {
	s     blobStore
	desc  v1.Descriptor
	image *storeImage
	index int
}

// DiffID comes from the config. Without it, go-containerregistry's partial package would decompress the whole
// layer to compute it.
func (l *storeLayer) DiffID() (v1.Hash, error) {
	if l.image == nil {
		return v1.Hash{}, fmt.Errorf("%w: blob %s is not a layer", ErrNotFound, l.desc.Digest)
	}
	cf, err := l.image.configFile()
	if err != nil {
		return v1.Hash{}, err
	}
	if l.index >= len(cf.RootFS.DiffIDs) {
		return v1.Hash{}, fmt.Errorf("%w: layer %d (%s) has no DiffID in the config", ErrFormat, l.index, l.desc.Digest)
	}
	return cf.RootFS.DiffIDs[l.index], nil
}

var _ partial.CompressedLayer = (*storeLayer)(nil)

func (l *storeLayer) Digest() (v1.Hash, error)            { return l.desc.Digest, nil }
func (l *storeLayer) Size() (int64, error)                { return l.desc.Size, nil }
func (l *storeLayer) MediaType() (types.MediaType, error) { return l.desc.MediaType, nil }
func (l *storeLayer) Descriptor() (*v1.Descriptor, error) { d := l.desc; return &d, nil }

// Compressed streams the blob as stored, verified against its digest and size at EOF.
func (l *storeLayer) Compressed() (io.ReadCloser, error) {
	rc, _, err := l.s.open(blobName(l.desc.Digest))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("layer %s: blob missing in %s: %w", l.desc.Digest, l.s.where(), ErrNotExist)
		}
		return nil, fmt.Errorf("opening layer %s: %w", l.desc.Digest, err)
	}
	return newDigestReader(rc, l.desc.Digest, l.desc.Size, "layer "+l.desc.Digest.String())
}
