package oci

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// digestReader passes a blob through and, at EOF, fails with ErrDigest unless the bytes hash to want (and,
// when size >= 0, number exactly size). what names the blob in the error.
type digestReader struct {
	r    io.Reader
	c    io.Closer
	h    *asyncHash
	want v1.Hash
	size int64
	n    int64
	what string
	err  error
}

func newDigestReader(rc io.ReadCloser, want v1.Hash, size int64, what string) (io.ReadCloser, error) {
	if want.Algorithm != "sha256" {
		rc.Close()
		return nil, fmt.Errorf("%w: %s: digest algorithm %q is not supported", ErrDigest, what, want.Algorithm)
	}
	return &digestReader{r: rc, c: rc, h: newAsyncHash(), want: want, size: size, what: what}, nil
}

func (d *digestReader) Read(p []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	n, err := d.r.Read(p)
	d.h.Write(p[:n])
	d.n += int64(n)
	if d.size >= 0 && d.n > d.size {
		d.err = fmt.Errorf("%w: %s: more than the %d bytes its descriptor says", ErrDigest, d.what, d.size)
		return n, d.err
	}
	if errors.Is(err, io.EOF) {
		if d.size >= 0 && d.n != d.size {
			d.err = fmt.Errorf("%w: %s: %d bytes, its descriptor says %d (truncated?)", ErrDigest, d.what, d.n, d.size)
			return n, d.err
		}
		got := v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", d.h.sum())}
		if got != d.want {
			d.err = fmt.Errorf("%w: %s: content hashes to %s", ErrDigest, d.what, got)
			return n, d.err
		}
	}
	if err != nil {
		d.err = err
	}
	return n, err
}

func (d *digestReader) Close() error {
	d.h.stop()
	return d.c.Close()
}

// asyncHash computes a SHA-256 on a goroutine of its own: the reader that feeds it (a decompressor, on the
// critical path of an unpack) only copies the bytes. Measured on the Java sample's unpack: hashing was an
// eighth of the CPU time, all of it on the decoding goroutines.
type asyncHash struct {
	ch      chan *[]byte
	done    chan []byte
	stopped bool
	result  []byte
}

const hashChunk = 64 << 10

var hashBufs = sync.Pool{New: func() any { b := make([]byte, hashChunk); return &b }}

func newAsyncHash() *asyncHash {
	a := &asyncHash{ch: make(chan *[]byte, 16), done: make(chan []byte, 1)}
	go func() {
		h := sha256.New()
		for bp := range a.ch {
			h.Write(*bp)
			*bp = (*bp)[:cap(*bp)]
			hashBufs.Put(bp)
		}
		a.done <- h.Sum(nil)
	}()
	return a
}

func (a *asyncHash) Write(p []byte) {
	for len(p) > 0 {
		bp := hashBufs.Get().(*[]byte)
		n := copy(*bp, p)
		*bp = (*bp)[:n]
		a.ch <- bp
		p = p[n:]
	}
}

// sum waits for the hash of everything written.
func (a *asyncHash) sum() []byte {
	a.stop()
	if a.result == nil {
		a.result = <-a.done
	}
	return a.result
}

// stop ends the goroutine; the hash is still collected by sum.
func (a *asyncHash) stop() {
	if !a.stopped {
		a.stopped = true
		close(a.ch)
	}
}

// verifyBytes checks a small blob read whole.
func verifyBytes(b []byte, want v1.Hash, what string) error {
	rc, err := newDigestReader(io.NopCloser(bytes.NewReader(b)), want, int64(len(b)), what)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, rc)
	return err
}

// Decompress returns the uncompressed stream of a layer blob, telling gzip, zstd and plain tar apart by their
// first bytes rather than trusting the media type. It uses klauspost's decoders, several times faster than the
// standard library's. At EOF the rest of the compressed stream is drained, so that a digest check wrapped around
// rc sees every byte; Close closes rc.
func Decompress(rc io.ReadCloser) (io.ReadCloser, error) {
	br := bufio.NewReaderSize(rc, 64<<10)
	magic, err := br.Peek(4)
	if err != nil && !errors.Is(err, io.EOF) {
		rc.Close()
		return nil, err
	}
	switch {
	case len(magic) >= 2 && magic[0] == 0x1f && magic[1] == 0x8b:
		zr, err := gzip.NewReader(br)
		if err != nil {
			rc.Close()
			return nil, fmt.Errorf("reading gzip header: %w", err)
		}
		return &decompressed{r: zr, src: br, closers: []io.Closer{zr, rc}}, nil
	case bytes.Equal(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(false))
		if err != nil {
			rc.Close()
			return nil, fmt.Errorf("reading zstd header: %w", err)
		}
		return &decompressed{r: zr, src: br, closers: []io.Closer{closerFunc(func() error { zr.Close(); return nil }), rc}}, nil
	}
	return &decompressed{r: br, src: br, closers: []io.Closer{rc}}, nil
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

type decompressed struct {
	r       io.Reader
	src     io.Reader
	closers []io.Closer
}

func (d *decompressed) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	if err != nil && d.src != d.r {
		// Trailing bytes after the compressed stream are read too: the blob digest covers them. When the
		// decoder fails, the rest of the blob is read as well: a blob that does not match its digest is
		// reported as such, rather than as whatever the decoder tripped on.
		if _, derr := io.Copy(io.Discard, d.src); derr != nil && (errors.Is(err, io.EOF) || errors.Is(derr, ErrDigest)) {
			return n, derr
		}
		if !errors.Is(err, io.EOF) {
			return n, fmt.Errorf("corrupt compressed stream: %w", err)
		}
	}
	return n, err
}

func (d *decompressed) Close() error {
	var first error
	for _, c := range d.closers {
		if err := c.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// verifiedImage makes every layer's Uncompressed stream check itself against the config's DiffID, and
// decompresses with klauspost. Compressed streams are verified by their source: go-containerregistry's remote
// package checks registry blobs, and blobStore checks layout and archive blobs.
type verifiedImage struct {
	v1.Image
	// fromArchive: the layers come from a docker-archive, where they are usually stored uncompressed; their
	// Compressed stream would be made by compressing, so Uncompressed reads what is stored.
	fromArchive bool
}

func (i *verifiedImage) wrap(l v1.Layer) v1.Layer {
	return &verifiedLayer{Layer: l, fromArchive: i.fromArchive}
}

func (i *verifiedImage) Layers() ([]v1.Layer, error) {
	ls, err := i.Image.Layers()
	if err != nil {
		return nil, err
	}
	out := make([]v1.Layer, len(ls))
	for n, l := range ls {
		out[n] = i.wrap(l)
	}
	return out, nil
}

func (i *verifiedImage) LayerByDigest(h v1.Hash) (v1.Layer, error) {
	l, err := i.Image.LayerByDigest(h)
	if err != nil {
		return nil, err
	}
	return i.wrap(l), nil
}

func (i *verifiedImage) LayerByDiffID(h v1.Hash) (v1.Layer, error) {
	l, err := i.Image.LayerByDiffID(h)
	if err != nil {
		return nil, err
	}
	return i.wrap(l), nil
}

type verifiedLayer struct {
	v1.Layer
	fromArchive bool
}

// Uncompressed streams the layer's tar, failing at EOF with ErrDigest unless it matches the DiffID.
func (l *verifiedLayer) Uncompressed() (io.ReadCloser, error) { return l.UncompressedCounted(nil) }

// UncompressedCounted implements CountedLayer.
func (l *verifiedLayer) UncompressedCounted(read *atomic.Int64) (io.ReadCloser, error) {
	diffID, err := l.Layer.DiffID()
	if err != nil {
		return nil, err
	}
	var rc io.ReadCloser
	if l.fromArchive {
		if rc, err = l.Layer.Uncompressed(); err == nil {
			rc = CountReads(rc, read)
		}
	} else {
		var c io.ReadCloser
		if c, err = l.Layer.Compressed(); err == nil {
			rc, err = Decompress(CountReads(c, read))
		}
	}
	if err != nil {
		return nil, err
	}
	return newDigestReader(rc, diffID, -1, "layer "+diffID.String()+" (uncompressed)")
}

// StoredSize implements CountedLayer: the manifest's size of the blob; 0 for a docker-archive's layer, whose
// compressed size go-containerregistry would compute by compressing it (UncompressedCounted counts what the
// archive stores, often the uncompressed tar).
func (l *verifiedLayer) StoredSize() int64 {
	if l.fromArchive {
		return 0
	}
	n, err := l.Layer.Size()
	if err != nil {
		return 0
	}
	return n
}

// CountedLayer is a layer that says how much of its blob a read of its tar has consumed, for progress: the
// layers of images this package opens, whose blobs are pulled lazily as the tar is read.
type CountedLayer interface {
	// UncompressedCounted is Uncompressed, adding to read (when not nil) the bytes of the blob read as
	// stored (compressed, as pulled) as they stream.
	UncompressedCounted(read *atomic.Int64) (io.ReadCloser, error)
	// StoredSize is what UncompressedCounted counts once the tar is read whole, when known without reading
	// (a registry's or a layout's manifest says it); 0 otherwise.
	StoredSize() int64
}

var _ CountedLayer = (*verifiedLayer)(nil)

// CountReads passes rc through, adding the bytes read to n (nil: rc itself). An atomic add per read (reads
// are tens of KiB) costs nothing next to decompressing them.
func CountReads(rc io.ReadCloser, n *atomic.Int64) io.ReadCloser {
	if n == nil {
		return rc
	}
	return &countingReader{rc: rc, n: n}
}

type countingReader struct {
	rc io.ReadCloser
	n  *atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.rc.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func (c *countingReader) Close() error { return c.rc.Close() }

// DiffIDVerifier is implemented by the layers of images this package opens: their Uncompressed stream fails at
// EOF with ErrDigest unless it matches the DiffID, so consumers need not hash it again.
type DiffIDVerifier interface {
	VerifiesDiffID()
}

// VerifiesDiffID implements DiffIDVerifier.
func (l *verifiedLayer) VerifiesDiffID() {}
