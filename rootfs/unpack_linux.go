package rootfs

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"github.com/slimoci/slimoci/internal/throttle"
	"github.com/slimoci/slimoci/oci"
)

// Options tune Unpack. The zero value works.
type Options struct {
	// Jobs bounds the layers fetched and decompressed at once, ahead of the one being written; 0 means 2.
	Jobs int
	// Logger receives what was skipped and why; nil discards.
	Logger *slog.Logger
	// Progress, when set, is told the unpack's counts at most ten times a second while it runs, and once
	// more with the final counts before Unpack returns; never concurrently (see Progress).
	Progress func(Progress)
}

// Progress is an unpack's counts so far.
type Progress struct {
	// Read counts the layers' bytes read: as stored (compressed, as pulled: a registry's pull is lazy and
	// streams into the unpack) when every layer says what it read, as oci's do (oci.CountedLayer),
	// uncompressed otherwise. Total is what Read comes to, from the manifest, or 0 when not known.
	Read, Total int64
	// Files counts the entries written (files, directories, links, ...), Bytes the contents of the files.
	Files, Bytes int64
}

func (o *Options) fill() *Options {
	out := Options{}
	if o != nil {
		out = *o
	}
	if out.Jobs <= 0 {
		out.Jobs = 2
	}
	if out.Logger == nil {
		out.Logger = slog.New(slog.DiscardHandler)
	}
	return &out
}

// Tree is an unpacked image: the directory, the image config and the index of every path.
type Tree struct {
	Dir    string
	Config *v1.ConfigFile
	Index  *Index
	// Rootless is true when the unpack ran unprivileged: owners, device nodes and security xattrs are in the
	// index only.
	Rootless bool
	// Stats count what the unpack did.
	Stats Stats
}

// Stats count an unpack's work.
type Stats struct {
	Entries  int           `json:"entries"`
	Bytes    int64         `json:"bytes"`
	Skipped  int           `json:"skipped"`
	Duration time.Duration `json:"duration"`
}

// The buffers between decompression and extraction: memory is bounded by Jobs x chunksPerLayer x chunkSize
// (64 MiB with two jobs), whatever the layer and file sizes. gzip decoding is the slowest stage and runs on
// one core per layer; 32 MiB of lookahead lets the next layer decode while the current one is written
// (measured on the Java sample: 8 chunks 4.2 s, 128 chunks 3.4 s, peak RSS 26 -> 90 MB).
const (
	chunkSize      = 256 << 10
	chunksPerLayer = 128
)

var chunkPool = sync.Pool{New: func() any { b := make([]byte, chunkSize); return &b }}

// Unpack writes img's layers, in order, into dir (which must not exist, or be empty) exactly as a runtime
// would see them, and indexes every path on the way. Layers are fetched, decompressed and verified against
// their DiffIDs concurrently (at most Jobs at once) while an earlier one is written. Nothing an entry says can
// reach outside dir. On error the half-built tree is removed and dir is left as it was.
func Unpack(ctx context.Context, img v1.Image, dir string, o *Options) (tree *Tree, err error) {
	opts := o.fill()
	start := time.Now()
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("reading layers: %w", err)
	}
	if len(layers) != len(cf.RootFS.DiffIDs) {
		return nil, fmt.Errorf("%w: %d layers, %d DiffIDs in the config", ErrLayer, len(layers), len(cf.RootFS.DiffIDs))
	}
	created, err := prepareDir(dir)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			if cerr := clearDir(dir, created); cerr != nil {
				opts.Logger.Warn("removing the half-built tree", "dir", dir, "err", cerr)
			}
		}
	}()
	r, err := openRoot(dir)
	if err != nil {
		return nil, err
	}
	defer r.close()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c := newCounts(layers)
	stop := throttle.Start(c.progress, opts.Progress)
	defer stop()
	streams := startStreams(ctx, layers, cf.RootFS.DiffIDs, opts.Jobs, c)
	x := &extractor{root: r, ix: NewIndex(), privileged: os.Geteuid() == 0, log: opts.Logger, counts: c}
	x.ix.put(&Entry{Path: "/", Type: TypeDir, Mode: 0o755, Layer: -1})
	for i, s := range streams {
		if err := x.layer(ctx, i, s); err != nil {
			return nil, fmt.Errorf("unpacking layer %d (%s): %w", i, cf.RootFS.DiffIDs[i], err)
		}
	}
	if err := x.finish(); err != nil {
		return nil, fmt.Errorf("setting directory modes and times: %w", err)
	}
	stop()
	x.stats.Entries = x.ix.Len()
	x.stats.Duration = time.Since(start)
	return &Tree{Dir: dir, Config: cf, Index: x.ix, Rootless: !x.privileged, Stats: x.stats}, nil
}

// prepareDir makes dir, or checks that it is an empty directory.
func prepareDir(dir string) (created bool, err error) {
	fi, err := os.Lstat(dir)
	if errors.Is(err, os.ErrNotExist) {
		if err := os.Mkdir(dir, 0o755); err != nil {
			return false, err
		}
		return true, nil
	}
	if err != nil {
		return false, err
	}
	if !fi.IsDir() {
		return false, fmt.Errorf("%w: %s exists and is not a directory", ErrTarget, dir)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false, err
	}
	if len(entries) > 0 {
		return false, fmt.Errorf("%w: %s is not empty", ErrTarget, dir)
	}
	return false, nil
}

// clearDir removes what an unpack wrote: dir itself when the unpack made it, its contents otherwise.
func clearDir(dir string, created bool) error {
	parent, base := filepath.Dir(dir), filepath.Base(dir)
	pfd, err := unix.Open(parent, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	if created {
		return removeAt(pfd, base)
	}
	fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), dir)
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := removeAt(fd, n); err != nil {
			return err
		}
	}
	return nil
}

// layerStream carries one layer's uncompressed bytes from its decoder to the extractor, in pooled chunks.
type layerStream struct {
	ch   chan *[]byte
	err  error // set before ch is closed
	cur  *[]byte
	off  int
	done bool
}

func (s *layerStream) Read(p []byte) (int, error) {
	for s.cur == nil || s.off == len(*s.cur) {
		if s.cur != nil {
			b := (*s.cur)[:cap(*s.cur)]
			chunkPool.Put(&b)
			s.cur = nil
		}
		if s.done {
			return 0, s.finalErr()
		}
		b, ok := <-s.ch
		if !ok {
			s.done = true
			return 0, s.finalErr()
		}
		s.cur, s.off = b, 0
	}
	n := copy(p, (*s.cur)[s.off:])
	s.off += n
	return n, nil
}

func (s *layerStream) finalErr() error {
	if s.err != nil {
		return s.err
	}
	return io.EOF
}

// counts are an unpack's progress counters: the decoders add to read, the extractor to files and bytes;
// throttle reads them for the hook.
type counts struct {
	read, files, bytes atomic.Int64
	total              int64
	// stored: every layer counts its blob's bytes as stored (oci.CountedLayer); otherwise read counts
	// the uncompressed tars.
	stored bool
}

func newCounts(layers []v1.Layer) *counts {
	var total int64
	unknown := false
	for _, l := range layers {
		cl, ok := l.(oci.CountedLayer)
		if !ok {
			return &counts{}
		}
		n := cl.StoredSize()
		unknown = unknown || n <= 0
		total += n
	}
	if unknown {
		total = 0
	}
	return &counts{stored: true, total: total}
}

func (c *counts) progress() Progress {
	return Progress{Read: c.read.Load(), Total: c.total, Files: c.files.Load(), Bytes: c.bytes.Load()}
}

// startStreams starts the decoders, in layer order, at most jobs at a time. Acquiring in order means the
// layer being extracted always has its decoder running, so the pipeline cannot deadlock.
func startStreams(ctx context.Context, layers []v1.Layer, diffIDs []v1.Hash, jobs int, c *counts) []*layerStream {
	streams := make([]*layerStream, len(layers))
	for i := range streams {
		streams[i] = &layerStream{ch: make(chan *[]byte, chunksPerLayer)}
	}
	sem := make(chan struct{}, jobs)
	go func() {
		for i, l := range layers {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				for _, s := range streams[i:] {
					s.err = ctx.Err()
					close(s.ch)
				}
				return
			}
			go func() {
				defer func() { <-sem }()
				s := streams[i]
				s.err = produce(ctx, l, diffIDs[i], s.ch, c)
				close(s.ch)
			}()
		}
	}()
	return streams
}

// produce decodes one layer into ch, checking its DiffID (unless the layer checks it itself, as the oci
// package's layers do: hashing twice would cost a core), and counts what it read into c.
func produce(ctx context.Context, l v1.Layer, diffID v1.Hash, ch chan<- *[]byte, c *counts) error {
	var rc io.ReadCloser
	var err error
	if cl, ok := l.(oci.CountedLayer); ok && c.stored {
		rc, err = cl.UncompressedCounted(&c.read)
	} else if rc, err = l.Uncompressed(); err == nil {
		rc = oci.CountReads(rc, &c.read)
	}
	if err != nil {
		return err
	}
	defer rc.Close()
	var r io.Reader = rc
	var h hash.Hash
	if _, ok := l.(oci.DiffIDVerifier); !ok {
		h = sha256.New()
		r = io.TeeReader(rc, h)
	}
	for {
		bp := chunkPool.Get().(*[]byte)
		n, err := io.ReadFull(r, *bp)
		if n > 0 {
			b := (*bp)[:n]
			select {
			case ch <- &b:
			case <-ctx.Done():
				return ctx.Err()
			}
		} else {
			chunkPool.Put(bp)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return err
		}
	}
	if h != nil {
		if got := fmt.Sprintf("sha256:%x", h.Sum(nil)); got != diffID.String() {
			return fmt.Errorf("%w: uncompressed content hashes to %s", oci.ErrDigest, got)
		}
	}
	return nil
}

// extractor applies tar entries to the root, keeping the index.
type extractor struct {
	root       *root
	ix         *Index
	privileged bool
	log        *slog.Logger
	stats      Stats
	counts     *counts
	buf        []byte
	warned     map[string]bool
}

func (x *extractor) layer(ctx context.Context, layer int, s *layerStream) error {
	tr := tar.NewReader(s)
	for n := 0; ; n++ {
		if n%256 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			// The decoder's own error (digest, truncation) explains a broken tar best.
			if _, derr := io.Copy(io.Discard, s); derr != nil {
				return derr
			}
			return fmt.Errorf("%w: reading tar entry %d: %v", ErrLayer, n, err)
		}
		if err := x.entry(layer, hdr, tr); err != nil {
			return fmt.Errorf("%s: %w", hdr.Name, err)
		}
		x.counts.files.Add(1)
	}
	// Whatever follows the tar's end is read too, so the layer's digests are checked.
	if _, err := io.Copy(io.Discard, s); err != nil {
		return err
	}
	return nil
}

const (
	whiteoutPrefix = ".wh."
	opaqueMarker   = ".wh..wh..opq"
)

// entry applies one tar entry. The name is cleaned as a runtime does: relative to the root, ".." cannot climb
// above it.
func (x *extractor) entry(layer int, hdr *tar.Header, r io.Reader) error {
	if strings.ContainsRune(hdr.Name, 0) {
		return fmt.Errorf("%w: name holds a NUL byte", ErrLayer)
	}
	p := path.Clean("/" + hdr.Name)
	dir, base := path.Split(p)
	// The index names every entry by its real path: symlinks on the way to it are resolved, in the tree, as
	// the kernel resolves them on disk.
	dir, err := x.ix.Resolve(dir, true)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrLayer, err)
	}
	p = path.Join(dir, base)
	if base == opaqueMarker {
		return x.opaque(layer, dir)
	}
	if name, ok := strings.CutPrefix(base, whiteoutPrefix); ok {
		return x.whiteout(layer, dir, name)
	}
	e := &Entry{
		Path: p, Mode: hdr.Mode & 0o7777, UID: hdr.Uid, GID: hdr.Gid, ModTime: hdr.ModTime, Layer: layer,
		Xattrs: xattrs(hdr),
	}
	if p == "/" {
		e.Type = TypeDir
		return x.rootDir(e)
	}
	pfd, err := x.root.dir(rel(dir), func(made string) {
		x.ix.put(&Entry{Path: "/" + made, Type: TypeDir, Mode: 0o755, Layer: -1})
	})
	if err != nil {
		return fmt.Errorf("opening parent directory %s: %w", dir, err)
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		e.Type = TypeDir
		err = x.mkdir(pfd, base, e)
	case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse:
		e.Type, e.Size = TypeFile, hdr.Size
		sparse := isSparse(hdr)
		if sparse && hdr.Size > maxSparse {
			// archive/tar hands out a sparse file's holes as zeros to read: a few bytes of layer could
			// otherwise keep the unpack reading (and the disk filling) for hours.
			return fmt.Errorf("%w: sparse file of %d bytes, more than the %d slimoci expands", ErrLayer, hdr.Size, int64(maxSparse))
		}
		err = x.file(pfd, base, e, r, sparse)
	case tar.TypeSymlink:
		e.Type, e.Linkname = TypeSymlink, hdr.Linkname
		err = x.symlink(pfd, base, e)
	case tar.TypeLink:
		return x.hardlink(pfd, base, p, hdr.Linkname, layer)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		e.Type = map[byte]Type{tar.TypeChar: TypeChar, tar.TypeBlock: TypeBlock, tar.TypeFifo: TypeFifo}[hdr.Typeflag]
		e.Devmajor, e.Devminor = hdr.Devmajor, hdr.Devminor
		err = x.node(pfd, base, e)
	default:
		x.skip("unsupported tar entry type", "path", p, "type", string(hdr.Typeflag))
		return nil
	}
	if err != nil {
		return err
	}
	x.ix.put(e)
	return nil
}

func rel(abs string) string { return strings.TrimPrefix(abs, "/") }

func xattrs(hdr *tar.Header) map[string]string {
	var out map[string]string
	for k, v := range hdr.PAXRecords {
		if name, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
			if out == nil {
				out = map[string]string{}
			}
			out[name] = v
		}
	}
	return out
}

// skip logs something the unpack could not do; each kind of reason is logged at warn level once.
func (x *extractor) skip(reason string, args ...any) {
	x.stats.Skipped++
	if x.warned == nil {
		x.warned = map[string]bool{}
	}
	level := slog.LevelDebug
	if !x.warned[reason] {
		x.warned[reason] = true
		level = slog.LevelWarn
	}
	x.log.Log(context.Background(), level, reason, args...)
}

// kept logs, at debug level, what the index keeps for an entry and the disk does not, where that is
// routine and loses nothing: an unprivileged unpack cannot make device nodes or set security xattrs, nor
// can anyone set xattrs on symlinks, and the slim image is written from the index (Tree.Rootless).
func (x *extractor) kept(reason string, args ...any) {
	x.stats.Skipped++
	x.log.Debug(reason, args...)
}

// replace clears name in pfd for a new entry, and forgets cached directories that went with it.
func (x *extractor) replace(pfd int, p, base string) error {
	exists, isDir, err := isDirAt(pfd, base)
	if err != nil || !exists {
		return err
	}
	if isDir && x.root.cachePath != "" && under("/"+x.root.cachePath, p) {
		x.root.invalidate()
	}
	return removeAt(pfd, base)
}

func (x *extractor) rootDir(e *Entry) error {
	old, _ := x.ix.Lookup("/")
	e.Layer = max(e.Layer, old.Layer)
	x.ix.entries["/"] = e
	fd, err := x.root.openat2("", unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return x.ownAndXattrs(fd, e)
}

func (x *extractor) mkdir(pfd int, base string, e *Entry) error {
	exists, isDir, err := isDirAt(pfd, base)
	if err != nil {
		return err
	}
	if exists && !isDir {
		if err := x.replace(pfd, e.Path, base); err != nil {
			return err
		}
	}
	if !isDir {
		// Writable by the unpack until finish() gives every directory its mode.
		if err := unix.Mkdirat(pfd, base, 0o700); err != nil {
			return err
		}
	}
	fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return x.ownAndXattrs(fd, e)
}

// ownAndXattrs gives fd the entry's owner and xattrs where the process may; the index keeps them regardless.
func (x *extractor) ownAndXattrs(fd int, e *Entry) error {
	if x.privileged {
		if err := unix.Fchown(fd, e.UID, e.GID); err != nil {
			x.skip("cannot set owner", "path", e.Path, "uid", e.UID, "gid", e.GID, "err", err)
		}
	}
	for _, k := range sortedKeys(e.Xattrs) {
		err := unix.Fsetxattr(fd, k, []byte(e.Xattrs[k]), 0)
		switch {
		case err == nil:
		case !x.privileged && errors.Is(err, unix.EPERM) && privilegedXattr(k):
			x.kept("xattr recorded in the index only", "path", e.Path, "xattr", k, "reason", "an unprivileged unpack cannot set it")
		default:
			x.skip("cannot set xattr", "path", e.Path, "xattr", k, "err", err)
		}
	}
	return nil
}

// privilegedXattr reports whether only a privileged process may set xattr k (security.capability,
// trusted.*, ...: those of the user namespace are refused to others).
func privilegedXattr(k string) bool {
	return strings.HasPrefix(k, "security.") || strings.HasPrefix(k, "trusted.")
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// umask is the process's: it decides which new files need a chmod.
var umask = func() uint32 {
	m := unix.Umask(0o022)
	unix.Umask(m)
	return uint32(m)
}()

// maxSparse bounds the logical size of a sparse file in a layer.
const maxSparse = 1 << 30

func isSparse(hdr *tar.Header) bool {
	if hdr.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

func (x *extractor) file(pfd int, base string, e *Entry, r io.Reader, sparse bool) error {
	flags := unix.O_WRONLY | unix.O_CREAT | unix.O_EXCL | unix.O_NOFOLLOW | unix.O_CLOEXEC
	// Created with its permission bits (the descriptor is writable whatever they say), so that a chmod is
	// needed only for setuid, setgid, sticky or bits the umask takes away.
	perm := uint32(e.Mode & 0o777)
	fd, err := unix.Openat(pfd, base, flags, perm)
	if errors.Is(err, unix.EEXIST) {
		if err := x.replace(pfd, e.Path, base); err != nil {
			return err
		}
		fd, err = unix.Openat(pfd, base, flags, perm)
	}
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), e.Path)
	defer f.Close()
	if x.buf == nil {
		x.buf = make([]byte, 256<<10)
	}
	var n int64
	if sparse {
		n, err = copySparse(f, r, x.buf, e.Size)
	} else {
		n, err = io.CopyBuffer(fileWriter{f}, r, x.buf)
	}
	if err != nil {
		return err
	}
	x.stats.Bytes += n
	x.counts.bytes.Add(n)
	// A new file of root's is root's already: directories are 0700 without setgid until finish().
	chowned := x.privileged && (e.UID != 0 || e.GID != 0)
	if chowned || len(e.Xattrs) > 0 {
		if err := x.ownAndXattrs(fd, e); err != nil {
			return err
		}
	}
	// After chown, which clears setuid and setgid.
	if chowned || e.Mode&0o7000 != 0 || perm&umask != 0 {
		if err := unix.Fchmod(fd, uint32(e.Mode)); err != nil {
			return err
		}
	}
	return setTimes(pfd, base, e.ModTime)
}

// copySparse writes a sparse entry, leaving its runs of zeros as holes: a sparse entry can declare a huge
// size with little data, and archive/tar expands the holes into zeros.
func copySparse(f *os.File, r io.Reader, buf []byte, size int64) (int64, error) {
	var n int64
	for {
		m, err := io.ReadFull(r, buf)
		if m > 0 {
			chunk := buf[:m]
			if allZero(chunk) {
				if _, serr := f.Seek(int64(m), io.SeekCurrent); serr != nil {
					return n, serr
				}
			} else if _, werr := f.Write(chunk); werr != nil {
				return n, werr
			}
			n += int64(m)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return n, err
		}
	}
	return n, f.Truncate(size)
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// fileWriter hides os.File's ReadFrom, which would look for copy_file_range on a reader that is never a file.
type fileWriter struct{ f *os.File }

func (w fileWriter) Write(p []byte) (int, error) { return w.f.Write(p) }

func setTimes(pfd int, base string, mtime time.Time) error {
	ts := unix.NsecToTimespec(mtime.UnixNano())
	return unix.UtimesNanoAt(pfd, base, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW)
}

func (x *extractor) symlink(pfd int, base string, e *Entry) error {
	if err := x.replace(pfd, e.Path, base); err != nil {
		return err
	}
	if err := unix.Symlinkat(e.Linkname, pfd, base); err != nil {
		return err
	}
	if x.privileged {
		if err := unix.Fchownat(pfd, base, e.UID, e.GID, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			x.skip("cannot set owner", "path", e.Path, "err", err)
		}
	}
	if len(e.Xattrs) > 0 {
		x.kept("xattrs on symlinks are kept in the index only", "path", e.Path)
	}
	return setTimes(pfd, base, e.ModTime)
}

// hardlink links p to target, both inside the root. The target is resolved in the root and its last
// component is not followed: a hardlink to a symlink links the symlink, as tar does.
func (x *extractor) hardlink(pfd int, base, p, linkname string, layer int) error {
	target, err := x.ix.Resolve(linkname, false)
	if err != nil {
		return fmt.Errorf("%w: hardlink to %s: %v", ErrLayer, linkname, err)
	}
	te, ok := x.ix.Lookup(target)
	if !ok {
		return fmt.Errorf("%w: hardlink to %s, which no layer wrote", ErrLayer, target)
	}
	if te.Type == TypeDir {
		return fmt.Errorf("%w: hardlink to directory %s", ErrLayer, target)
	}
	if target == p {
		return nil
	}
	tfd, err := x.root.openat2(rel(target), unix.O_PATH|unix.O_NOFOLLOW)
	if err != nil {
		return fmt.Errorf("opening hardlink target %s: %w", target, err)
	}
	defer unix.Close(tfd)
	if err := x.replace(pfd, p, base); err != nil {
		return err
	}
	if err := unix.Linkat(tfd, "", pfd, base, unix.AT_EMPTY_PATH); err != nil {
		// AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH; the descriptor's /proc name does not.
		if err := unix.Linkat(unix.AT_FDCWD, procPath(tfd), pfd, base, unix.AT_SYMLINK_FOLLOW); err != nil {
			return fmt.Errorf("linking to %s: %w", target, err)
		}
	}
	group := te.HardlinkGroup
	if group == "" {
		group = te.Path
		te.HardlinkGroup = group
	}
	e := *te
	e.Path, e.Layer, e.HardlinkGroup = p, layer, group
	x.ix.put(&e)
	return nil
}

func (x *extractor) node(pfd int, base string, e *Entry) error {
	if err := x.replace(pfd, e.Path, base); err != nil {
		return err
	}
	mode := uint32(e.Mode & 0o777)
	switch e.Type {
	case TypeFifo:
		mode |= unix.S_IFIFO
	case TypeChar:
		mode |= unix.S_IFCHR
	case TypeBlock:
		mode |= unix.S_IFBLK
	}
	dev := int(unix.Mkdev(uint32(e.Devmajor), uint32(e.Devminor)))
	if e.Type != TypeFifo && !x.privileged {
		e.NotOnDisk = "an unprivileged unpack cannot create device nodes"
		x.kept("device node recorded in the index only", "path", e.Path, "reason", e.NotOnDisk)
		return nil
	}
	if err := unix.Mknodat(pfd, base, mode, dev); err != nil {
		if errors.Is(err, unix.EPERM) {
			e.NotOnDisk = "creating the device node was not permitted"
			x.skip("device node recorded in the index only", "path", e.Path, "reason", e.NotOnDisk)
			return nil
		}
		return err
	}
	if x.privileged {
		if err := unix.Fchownat(pfd, base, e.UID, e.GID, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			x.skip("cannot set owner", "path", e.Path, "err", err)
		}
	}
	if err := unix.Fchmodat(pfd, base, uint32(e.Mode), 0); err != nil {
		return err
	}
	return setTimes(pfd, base, e.ModTime)
}

// whiteout deletes dir/name, which lower layers wrote.
func (x *extractor) whiteout(layer int, dir, name string) error {
	if name == "" || name == "." || name == ".." || strings.Contains(name, "/") {
		return fmt.Errorf("%w: whiteout of %q", ErrLayer, name)
	}
	target := path.Join(dir, name)
	if _, ok := x.ix.Lookup(target); !ok {
		return nil
	}
	dfd, err := x.root.openat2(rel(dir), unix.O_PATH|unix.O_DIRECTORY)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return nil
	}
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	if x.root.cachePath != "" && under("/"+x.root.cachePath, target) {
		x.root.invalidate()
	}
	if err := removeAt(dfd, name); err != nil {
		return err
	}
	x.ix.remove(target, layer, "whiteout")
	return nil
}

// opaque deletes everything lower layers wrote under dir; what this layer wrote stays.
func (x *extractor) opaque(layer int, dir string) error {
	e, ok := x.ix.Lookup(dir)
	if !ok || e.Type != TypeDir {
		return nil
	}
	dfd, err := x.root.openat2(rel(dir), unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	return x.pruneLower(layer, dfd, dir)
}

func (x *extractor) pruneLower(layer, dfd int, dir string) error {
	for _, name := range x.ix.Children(dir) {
		p := path.Join(dir, name)
		c, _ := x.ix.Lookup(p)
		if c.Layer == layer {
			if c.Type == TypeDir {
				cfd, err := unix.Openat(dfd, name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
				if err != nil {
					return err
				}
				err = x.pruneLower(layer, cfd, p)
				unix.Close(cfd)
				if err != nil {
					return err
				}
			}
			continue
		}
		if x.root.cachePath != "" && under("/"+x.root.cachePath, p) {
			x.root.invalidate()
		}
		if err := removeAt(dfd, name); err != nil {
			return err
		}
		x.ix.remove(p, layer, "opaque")
	}
	return nil
}

// finish gives every directory its mode and time, deepest first, once nothing more is written into them.
func (x *extractor) finish() error {
	x.root.invalidate()
	var dirs []*Entry
	x.ix.Walk(func(e *Entry) error {
		if e.Type == TypeDir {
			dirs = append(dirs, e)
		}
		return nil
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		e := dirs[i]
		fd, err := x.root.openat2(rel(e.Path), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW)
		if err != nil {
			return fmt.Errorf("%s: %w", e.Path, err)
		}
		err = unix.Fchmod(fd, uint32(e.Mode))
		if err == nil && !e.ModTime.IsZero() {
			ts := unix.NsecToTimespec(e.ModTime.UnixNano())
			err = unix.UtimesNanoAt(unix.AT_FDCWD, procPath(fd), []unix.Timespec{ts, ts}, 0)
		}
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("%s: %w", e.Path, err)
		}
	}
	return nil
}
