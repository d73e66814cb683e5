package oci

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sync/errgroup"

	"github.com/slimoci/slimoci/internal/atomicfile"
)

// Write delivers img to ref: a push to a registry, an image added to an OCI layout (the layout's other images
// are kept; an image with the same tag is replaced), a docker-archive that `podman load` and `docker load`
// read, or an OCI archive. File outputs appear whole or not at all: they are written under a temporary name
// beside the target and renamed when complete. Manifest and config bytes are copied as they are, so the
// manifest digest is kept (a docker-archive stores no manifest; its config digest is kept).
func Write(ctx context.Context, img v1.Image, ref Reference, o *Options) error {
	return write(ctx, imageContent{img}, ref, o)
}

func write(ctx context.Context, c content, ref Reference, o *Options) error {
	opts := o.fill()
	start := time.Now()
	p := startProgress(opts.Progress)
	var err error
	switch ref.Transport {
	case Registry:
		err = writeRegistry(ctx, c, ref, opts, p)
	case Layout:
		err = writeLayout(ctx, c, ref, opts, p)
	case OCIArchive:
		err = writeArchive(ref.Path, c, p, func(w io.Writer) error { return writeOCIArchive(ctx, w, c, ref.Tag) })
	case DockerArchive:
		img, ok := c.(imageContent)
		if !ok {
			err = errDockerIndex
			break
		}
		err = writeArchive(ref.Path, c, p, func(w io.Writer) error { return writeDockerArchive(w, img.Image, ref) })
	default:
		err = fmt.Errorf("%w %q", ErrTransport, ref.Transport)
	}
	p.finish()
	if err != nil {
		return fmt.Errorf("writing %s: %w", ref, err)
	}
	opts.Logger.Debug("wrote image", "ref", ref.String(), "took", time.Since(start))
	return nil
}

// writeArchive writes an archive file with write, atomically, counting its bytes for p.
func writeArchive(path string, c content, p *writeProgress, write func(io.Writer) error) error {
	p.total.Store(c.size())
	return atomicfile.Write(path, func(f *os.File) error { return write(countingWriter{w: f, p: p}) })
}

// WriteNamed is Write to a layout, an OCI archive or a docker-archive under each of names instead of
// ref's own tag or name: one index entry (org.opencontainers.image.ref.name) per name in a layout or an
// OCI archive, one RepoTag per name in a docker-archive, which must then be image names (name:tag). A
// registry reference names one tag: write to each.
func WriteNamed(ctx context.Context, img v1.Image, ref Reference, names []string, o *Options) error {
	return writeNamed(ctx, imageContent{img}, ref, names, o)
}

func writeNamed(ctx context.Context, c content, ref Reference, names []string, o *Options) error {
	if len(names) == 0 {
		return write(ctx, c, ref, o)
	}
	var err error
	switch ref.Transport {
	case Layout:
		for _, n := range names {
			r := ref
			r.Tag, r.Digest = n, ""
			if err := write(ctx, c, r, o); err != nil {
				return err
			}
		}
		return nil
	case OCIArchive, DockerArchive:
		p := startProgress(o.fill().Progress)
		img, ok := c.(imageContent)
		if ref.Transport == DockerArchive && !ok {
			err = errDockerIndex
			break
		}
		err = writeArchive(ref.Path, c, p, func(w io.Writer) error {
			if ref.Transport == OCIArchive {
				return writeOCIArchive(ctx, w, c, names...)
			}
			return writeDockerArchive(w, img.Image, ref, names...)
		})
		p.finish()
	default:
		err = fmt.Errorf("%w: %s takes one name", ErrReference, ref.Transport)
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", ref, err)
	}
	return nil
}

func writeRegistry(ctx context.Context, c content, ref Reference, o *Options, p *writeProgress) error {
	r, err := ref.registryRef(o.Insecure)
	if err != nil {
		return err
	}
	if _, ok := r.(name.Digest); ok {
		return fmt.Errorf("%w: push to a tag, not a digest", ErrReference)
	}
	opts := o.remote(ctx)
	if o.Progress != nil {
		ch, end := p.forward()
		defer end()
		opts = append(opts, remote.WithProgress(ch))
	}
	switch c := c.(type) {
	case indexContent:
		return remote.WriteIndex(r, c.ImageIndex, opts...)
	case imageContent:
		return remote.Write(r, c.Image, opts...)
	}
	return fmt.Errorf("%w: nothing to write", ErrFormat)
}

func writeDockerArchive(w io.Writer, img v1.Image, ref Reference, names ...string) error {
	if len(names) > 0 {
		refs := map[name.Reference]v1.Image{}
		for _, n := range names {
			t, err := name.NewTag(n)
			if err != nil {
				return fmt.Errorf("%w: %v", ErrReference, err)
			}
			refs[t] = img
		}
		return tarball.MultiRefWrite(refs, w)
	}
	var r name.Reference
	if ref.Name != "" {
		t, err := name.NewTag(ref.Name)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrReference, err)
		}
		r = t
	} else {
		// An untagged image: tarball writes RepoTags only for tags, so any digest reference will do.
		cfg, err := img.ConfigName()
		if err != nil {
			return err
		}
		d, err := name.NewDigest("untagged@" + cfg.String())
		if err != nil {
			return err
		}
		r = d
	}
	return tarball.Write(r, img, w)
}

// blobSink receives the blobs of an image, then the index.
type blobSink interface {
	has(h v1.Hash, size int64) bool
	put(h v1.Hash, size int64, r io.Reader) error
}

// putImage writes img's layers, config and manifest into s and returns the manifest's descriptor. Layers go
// concurrently when the sink allows it (jobs > 1). p, when not nil, counts the blobs' bytes, and those of
// the blobs s has already.
func putImage(ctx context.Context, s blobSink, img v1.Image, jobs int, p *writeProgress) (v1.Descriptor, error) {
	layers, err := img.Layers()
	if err != nil {
		return v1.Descriptor{}, err
	}
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(jobs)
	seen := map[v1.Hash]bool{}
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return v1.Descriptor{}, err
		}
		if seen[d] {
			continue
		}
		seen[d] = true
		g.Go(func() error {
			if err := ctx.Err(); err != nil {
				return err
			}
			size, err := l.Size()
			if err != nil {
				return err
			}
			if s.has(d, size) {
				p.add(size)
				return nil
			}
			rc, err := l.Compressed()
			if err != nil {
				return fmt.Errorf("layer %s: %w", d, err)
			}
			defer rc.Close()
			if err := s.put(d, size, p.reader(rc)); err != nil {
				return fmt.Errorf("layer %s: %w", d, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return v1.Descriptor{}, err
	}
	cfg, err := img.RawConfigFile()
	if err != nil {
		return v1.Descriptor{}, err
	}
	cfgName, err := img.ConfigName()
	if err != nil {
		return v1.Descriptor{}, err
	}
	if err := putBytes(s, cfgName, cfg, p); err != nil {
		return v1.Descriptor{}, fmt.Errorf("config: %w", err)
	}
	return putManifest(s, img, "manifest", p)
}

// manifested is what an image and an index share: a manifest, its digest and its media type.
type manifested interface {
	RawManifest() ([]byte, error)
	Digest() (v1.Hash, error)
	MediaType() (types.MediaType, error)
}

// putManifest writes m's manifest into s (what names it in errors) and returns its descriptor.
func putManifest(s blobSink, m manifested, what string, p *writeProgress) (v1.Descriptor, error) {
	raw, err := m.RawManifest()
	if err != nil {
		return v1.Descriptor{}, err
	}
	digest, err := m.Digest()
	if err != nil {
		return v1.Descriptor{}, err
	}
	mt, err := m.MediaType()
	if err != nil {
		return v1.Descriptor{}, err
	}
	if err := putBytes(s, digest, raw, p); err != nil {
		return v1.Descriptor{}, fmt.Errorf("%s: %w", what, err)
	}
	return v1.Descriptor{MediaType: mt, Size: int64(len(raw)), Digest: digest}, nil
}

func putBytes(s blobSink, h v1.Hash, b []byte, p *writeProgress) error {
	defer p.add(int64(len(b)))
	if s.has(h, int64(len(b))) {
		return nil
	}
	return s.put(h, int64(len(b)), bytes.NewReader(b))
}

// dirSink writes blobs into a layout directory, each under a temporary name renamed when complete and checked.
type dirSink struct{ root string }

func (d dirSink) path(h v1.Hash) string { return filepath.Join(d.root, "blobs", h.Algorithm, h.Hex) }

func (d dirSink) has(h v1.Hash, size int64) bool {
	fi, err := os.Stat(d.path(h))
	return err == nil && fi.Mode().IsRegular() && fi.Size() == size
}

func (d dirSink) put(h v1.Hash, size int64, r io.Reader) (err error) {
	dir := filepath.Dir(d.path(h))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+h.Hex+".tmp-")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	vr, err := newDigestReader(io.NopCloser(r), h, size, "blob "+h.String())
	if err != nil {
		return err
	}
	if _, err = io.Copy(f, vr); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Chmod(f.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(f.Name(), d.path(h))
}

const ociLayoutFile = `{"imageLayoutVersion":"1.0.0"}`

func writeLayout(ctx context.Context, c content, ref Reference, o *Options, p *writeProgress) (err error) {
	target := ref.Path
	var im *v1.IndexManifest
	fi, serr := os.Stat(ref.Path)
	switch {
	case serr == nil && !fi.IsDir():
		return fmt.Errorf("%w: %s exists and is not a directory", ErrFormat, ref.Path)
	case serr == nil:
		im, err = readIndexJSON(dirStore{root: ref.Path})
		if err != nil {
			entries, rerr := os.ReadDir(ref.Path)
			if rerr != nil || len(entries) > 0 {
				return fmt.Errorf("%s is not an empty directory or an OCI layout: %w", ref.Path, err)
			}
			im = nil
		}
	case errors.Is(serr, fs.ErrNotExist):
		// A new layout is built under a temporary name and renamed into place when complete.
		parent := filepath.Dir(ref.Path)
		if pfi, perr := os.Stat(parent); perr != nil || !pfi.IsDir() {
			return fmt.Errorf("%w: directory %s", ErrNotExist, parent)
		}
		tmp, terr := os.MkdirTemp(parent, "."+filepath.Base(ref.Path)+".tmp-")
		if terr != nil {
			return terr
		}
		defer func() {
			if err != nil {
				os.RemoveAll(tmp)
			}
		}()
		target = tmp
	default:
		return serr
	}
	if im == nil {
		im = &v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}
	}
	p.total.Store(c.size())
	desc, err := c.put(ctx, dirSink{root: target}, o.Jobs, p)
	if err != nil {
		return err
	}
	addToIndex(im, desc, ref.Tag)
	b, err := json.Marshal(im)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteBytes(filepath.Join(target, "oci-layout"), []byte(ociLayoutFile)); err != nil {
		return err
	}
	if err := atomicfile.WriteBytes(filepath.Join(target, "index.json"), b); err != nil {
		return err
	}
	if target != ref.Path {
		return os.Rename(target, ref.Path)
	}
	return nil
}

// addToIndex adds desc under tag, replacing an image that had the tag before.
func addToIndex(im *v1.IndexManifest, desc v1.Descriptor, tag string) {
	kept := im.Manifests[:0]
	for _, d := range im.Manifests {
		if tag != "" && d.Annotations[refNameAnnotation] == tag {
			continue
		}
		if tag == "" && d.Digest == desc.Digest && d.Annotations[refNameAnnotation] == "" {
			continue
		}
		kept = append(kept, d)
	}
	if tag != "" {
		desc.Annotations = map[string]string{refNameAnnotation: tag}
	}
	im.Manifests = append(kept, desc)
}

// tarSink appends blobs to an OCI archive being written.
type tarSink struct {
	mu      sync.Mutex
	tw      *tar.Writer
	written map[v1.Hash]bool
}

func (t *tarSink) has(h v1.Hash, _ int64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.written[h]
}

func (t *tarSink) put(h v1.Hash, size int64, r io.Reader) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.tw.WriteHeader(fileHeader("blobs/"+h.Algorithm+"/"+h.Hex, size)); err != nil {
		return err
	}
	vr, err := newDigestReader(io.NopCloser(r), h, size, "blob "+h.String())
	if err != nil {
		return err
	}
	if _, err := io.Copy(t.tw, vr); err != nil {
		return err
	}
	t.written[h] = true
	return nil
}

// fileHeader is a tar header for archive bookkeeping: fixed owner and time, so the same image gives the
// same archive.
func fileHeader(name string, size int64) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o644, ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
}

func dirHeader(name string) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755, ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
}

// writeOCIArchive writes an OCI layout holding img as a tar stream. Blobs are written one after another (a
// tar is sequential); index.json comes last.
func writeOCIArchive(ctx context.Context, w io.Writer, c content, tags ...string) error {
	tw := tar.NewWriter(w)
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(dirHeader(d)); err != nil {
			return err
		}
	}
	if err := tw.WriteHeader(fileHeader("oci-layout", int64(len(ociLayoutFile)))); err != nil {
		return err
	}
	if _, err := io.WriteString(tw, ociLayoutFile); err != nil {
		return err
	}
	desc, err := c.put(ctx, &tarSink{tw: tw, written: map[v1.Hash]bool{}}, 1, nil)
	if err != nil {
		return err
	}
	im := &v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}
	if len(tags) == 0 {
		tags = []string{""}
	}
	for _, tag := range tags {
		addToIndex(im, desc, tag)
	}
	b, err := json.Marshal(im)
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(fileHeader("index.json", int64(len(b)))); err != nil {
		return err
	}
	if _, err := tw.Write(b); err != nil {
		return err
	}
	return tw.Close()
}
