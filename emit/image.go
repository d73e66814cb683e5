package emit

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/slimoci/slimoci/internal/throttle"
	"github.com/slimoci/slimoci/oci"
	"github.com/slimoci/slimoci/rootfs"
)

// GzipLevel is the gzip level of slim layers: klauspost's level 3 compresses several times faster than
// level 6 for a few percent more bytes. Changing it changes every slim image's digest.
const GzipLevel = 3

// ImageOptions say how the slim image is written.
type ImageOptions struct {
	// Compression is "gzip" (default) or "zstd".
	Compression string
	// Epoch, when set (SOURCE_DATE_EPOCH), clamps every mtime and dates the history entry; otherwise the
	// entry is dated as the source image's config. Either way the same input gives the same digest.
	Epoch *time.Time
	// Source and SourceDigest name the fat image (history entry and manifest annotations).
	Source, SourceDigest string
	// Dir is where the layer is written (a work directory; the file stays until the image is written).
	Dir string
	// Docker writes Docker schema 2 media types (manifest, config, gzip layer) instead of OCI ones, and no
	// manifest annotations (schema 2 has none; the history entry still names the source). podman reads
	// HEALTHCHECK only from a Docker config: an OCI image's is ignored (measured with podman 4.3), so a
	// Docker image with a healthcheck must stay Docker (see DockerFormat). It needs gzip.
	Docker bool
	// Edits change the source's config, in order (build: the observation's overrides --image-overrides
	// keeps, then the --new-* and --remove-* flags); none keeps it as it is.
	Edits []ConfigEdits
	// Replace gives kept regular files other content than the tree's (the pruned package database): each is
	// written with the index's header (mode, owners, xattrs, mtime clamped as the others) but the new size
	// and content. A hardlinked file replaced leaves its link group: its content is no longer the others'.
	// A path that is not a kept regular file is an error.
	Replace map[string][]byte
	// Progress, when set, is told the entries and file bytes written to the layer so far, of those kept,
	// at most ten times a second and once more with the final counts before SlimImage returns; never
	// concurrently.
	Progress func(LayerProgress)
}

// LayerProgress is how far the slim layer's writing is.
type LayerProgress struct {
	// Files counts the entries written of TotalFiles kept; Bytes the file contents written (a hardlink's
	// once), of TotalBytes.
	Files, TotalFiles int64
	Bytes, TotalBytes int64
}

// DockerFormat says whether a slim image should be written with Docker media types (ImageOptions.Docker):
// when the source's manifest is Docker schema 2 and its config has a HEALTHCHECK, which podman would not
// see in an OCI image. Other images are written as OCI, Docker sources too: an OCI layout holding a Docker
// manifest is readable by go-containerregistry but not by skopeo 1.9 or podman 4.3 ("no descriptor found"),
// so the Docker format is kept only where it carries something. zstd layers need OCI: then it is false.
func DockerFormat(src types.MediaType, cfg *v1.ConfigFile, compression string) bool {
	return src == types.DockerManifestSchema2 && cfg != nil && cfg.Config.Healthcheck != nil && compression != "zstd"
}

// LayerStats describe the slim layer.
type LayerStats struct {
	Entries      int   `json:"entries"`
	Bytes        int64 `json:"bytes"`
	Compressed   int64 `json:"compressedBytes"`
	Hardlinks    int   `json:"hardlinks"`
	Uncompressed int64 `json:"uncompressedBytes"`
}

// SlimImage writes one layer holding keep's paths of tree, with the image's own owners, modes, xattrs and
// times from the index (so also when the tree was unpacked rootless) and the contents from the tree, in path
// order, PAX headers; and returns an OCI image with the source's config (its rootfs and history adjusted
// to the one layer, and o.Edits applied).
func SlimImage(tree *rootfs.Tree, keep map[string][]string, o ImageOptions) (v1.Image, *LayerStats, error) {
	if err := checkReplace(tree, keep, o.Replace); err != nil {
		return nil, nil, err
	}
	f, err := os.CreateTemp(o.Dir, "layer-*")
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	l := &fileLayer{path: f.Name(), mediaType: types.OCILayer}
	if o.Docker {
		l.mediaType = types.DockerLayer
	}
	compressed := &hashWriter{w: f, h: sha256.New()}
	var zw io.WriteCloser
	switch o.Compression {
	case "", "gzip":
		zw, err = gzip.NewWriterLevel(compressed, GzipLevel)
	case "zstd":
		if o.Docker {
			return nil, nil, fmt.Errorf("zstd layers need an OCI image, not Docker schema 2")
		}
		l.mediaType = types.OCILayerZStd
		zw, err = zstd.NewWriter(compressed, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedDefault))
	default:
		err = fmt.Errorf("compression %q: want gzip or zstd", o.Compression)
	}
	if err != nil {
		return nil, nil, err
	}
	raw := &hashWriter{w: zw, h: sha256.New()}
	c := &layerCounts{}
	if o.Progress != nil {
		c.totalFiles, c.totalBytes = keptTotals(tree, keep, o.Replace)
	}
	stop := throttle.Start(c.progress, o.Progress)
	stats, err := writeLayer(raw, tree, keep, o.Replace, o.Epoch, c)
	stop()
	if err != nil {
		return nil, nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, nil, err
	}
	stats.Uncompressed, stats.Compressed = raw.n, compressed.n
	l.diffID = v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(raw.h.Sum(nil))}
	l.digest = v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(compressed.h.Sum(nil))}
	l.size = compressed.n
	full, err := partial.CompressedToLayer(l)
	if err != nil {
		return nil, nil, err
	}
	layer := &countedLayer{Layer: full, file: l}
	img, err := slimConfig(tree.Config, layer, l.diffID, stats, o)
	return img, stats, err
}

// slimConfig is the source's config with one layer: every original history entry marked empty (they made
// layers that are gone) and one for the slimoci build; o.Edits change its run config.
func slimConfig(src *v1.ConfigFile, layer v1.Layer, diffID v1.Hash, stats *LayerStats, o ImageOptions) (v1.Image, error) {
	cfg := src.DeepCopy()
	cfg.RootFS = v1.RootFS{Type: "layers", DiffIDs: []v1.Hash{diffID}}
	for i := range o.Edits {
		o.Edits[i].Apply(&cfg.Config)
	}
	for i := range cfg.History {
		cfg.History[i].EmptyLayer = true
	}
	created := cfg.Created
	if o.Epoch != nil {
		created = v1.Time{Time: *o.Epoch}
	}
	source := o.Source
	if o.SourceDigest != "" {
		source += "@" + o.SourceDigest
	}
	cfg.History = append(cfg.History, v1.History{
		Created:   created,
		CreatedBy: "slimoci build " + source,
		Comment:   fmt.Sprintf("slimoci: %d entries kept, %d bytes", stats.Entries, stats.Bytes),
	})
	mt, err := layer.MediaType()
	if err != nil {
		return nil, err
	}
	img, err := mutate.Append(empty.Image, mutate.Addendum{Layer: layer, MediaType: mt})
	if err != nil {
		return nil, err
	}
	manifestType, configType := types.OCIManifestSchema1, types.OCIConfigJSON
	if o.Docker {
		manifestType, configType = types.DockerManifestSchema2, types.DockerConfigJSON
	}
	img = mutate.MediaType(img, manifestType)
	img = mutate.ConfigMediaType(img, configType)
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		return nil, err
	}
	if o.Docker {
		return img, nil
	}
	ann := map[string]string{"org.opencontainers.image.base.name": o.Source}
	if o.SourceDigest != "" {
		ann["org.opencontainers.image.base.digest"] = o.SourceDigest
	}
	return mutate.Annotations(img, ann).(v1.Image), nil
}

// layerCounts are the slim layer's progress counters: writeLayer adds, throttle reads.
type layerCounts struct {
	files, bytes           atomic.Int64
	totalFiles, totalBytes int64
}

func (c *layerCounts) progress() LayerProgress {
	return LayerProgress{Files: c.files.Load(), TotalFiles: c.totalFiles, Bytes: c.bytes.Load(), TotalBytes: c.totalBytes}
}

// checkReplace fails unless every path replace names is a kept regular file of tree.
func checkReplace(tree *rootfs.Tree, keep map[string][]string, replace map[string][]byte) error {
	for _, p := range slices.Sorted(maps.Keys(replace)) {
		e, ok := tree.Index.Lookup(p)
		switch {
		case !ok || e.Path != p:
			return fmt.Errorf("replacing %s: not in the image", p)
		case !kept(e, keep):
			return fmt.Errorf("replacing %s: not kept", p)
		case e.Type != rootfs.TypeFile:
			return fmt.Errorf("replacing %s: a %s, not a regular file", p, e.Type)
		}
	}
	return nil
}

// keptTotals counts what writeLayer will write: the kept entries, and the bytes of their files, each
// hardlinked file once (a replaced one on its own).
func keptTotals(tree *rootfs.Tree, keep map[string][]string, replace map[string][]byte) (files, bytes int64) {
	groups := map[string]bool{}
	tree.Index.Walk(func(e *rootfs.Entry) error {
		if !kept(e, keep) {
			return nil
		}
		files++
		if b, ok := replace[e.Path]; ok {
			bytes += int64(len(b))
		} else if e.Type == rootfs.TypeFile && (e.HardlinkGroup == "" || !groups[e.HardlinkGroup]) {
			groups[e.HardlinkGroup] = true
			bytes += e.Size
		}
		return nil
	})
	return files, bytes
}

// kept reports whether writeLayer writes e.
func kept(e *rootfs.Entry, keep map[string][]string) bool {
	return e.Path != "/" && keep[e.Path] != nil
}

// writeLayer writes the tar stream of keep's entries, replace's content for those it names, counting them
// into c.
func writeLayer(w io.Writer, tree *rootfs.Tree, keep map[string][]string, replace map[string][]byte, epoch *time.Time, c *layerCounts) (*LayerStats, error) {
	tw := tar.NewWriter(w)
	stats := &LayerStats{}
	firstOfGroup := map[string]string{}
	err := tree.Index.Walk(func(e *rootfs.Entry) error {
		if !kept(e, keep) {
			return nil
		}
		name := strings.TrimPrefix(e.Path, "/")
		var replaced []byte
		mtime := e.ModTime
		if epoch != nil && mtime.After(*epoch) {
			mtime = *epoch
		}
		h := &tar.Header{
			Name: name, Mode: e.Mode, Uid: e.UID, Gid: e.GID, ModTime: mtime.UTC().Truncate(time.Second),
			Format: tar.FormatPAX,
		}
		for k, v := range e.Xattrs {
			if h.PAXRecords == nil {
				h.PAXRecords = map[string]string{}
			}
			h.PAXRecords["SCHILY.xattr."+k] = v
		}
		switch e.Type {
		case rootfs.TypeDir:
			h.Typeflag, h.Name = tar.TypeDir, name+"/"
		case rootfs.TypeSymlink:
			h.Typeflag, h.Linkname = tar.TypeSymlink, e.Linkname
		case rootfs.TypeFifo:
			h.Typeflag = tar.TypeFifo
		case rootfs.TypeChar, rootfs.TypeBlock:
			h.Typeflag, h.Devmajor, h.Devminor = tar.TypeChar, e.Devmajor, e.Devminor
			if e.Type == rootfs.TypeBlock {
				h.Typeflag = tar.TypeBlock
			}
		case rootfs.TypeFile:
			h.Typeflag, h.Size = tar.TypeReg, e.Size
			if b, ok := replace[e.Path]; ok {
				h.Size, replaced = int64(len(b)), b
			} else if e.HardlinkGroup != "" {
				if first, ok := firstOfGroup[e.HardlinkGroup]; ok {
					h.Typeflag, h.Linkname, h.Size = tar.TypeLink, first, 0
					stats.Hardlinks++
				} else {
					firstOfGroup[e.HardlinkGroup] = name
				}
			}
		default:
			return fmt.Errorf("%s: unknown entry type %q", e.Path, e.Type)
		}
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("writing %s: %w", e.Path, err)
		}
		stats.Entries++
		c.files.Add(1)
		if h.Typeflag != tar.TypeReg || h.Size == 0 {
			return nil
		}
		if replaced != nil {
			n, err := tw.Write(replaced)
			stats.Bytes += int64(n)
			c.bytes.Add(int64(n))
			if err != nil {
				return fmt.Errorf("writing %s: %w", e.Path, err)
			}
			return nil
		}
		f, err := tree.Open(e.Path)
		if err != nil {
			return err
		}
		defer f.Close()
		n, err := io.CopyN(tw, f, h.Size)
		stats.Bytes += n
		c.bytes.Add(n)
		if err != nil {
			return fmt.Errorf("reading %s from the tree: %w (it changed since the unpack?)", e.Path, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return stats, tw.Close()
}

type hashWriter struct {
	w io.Writer
	h hash.Hash
	n int64
}

func (h *hashWriter) Write(p []byte) (int, error) {
	n, err := h.w.Write(p)
	h.h.Write(p[:n])
	h.n += int64(n)
	return n, err
}

// fileLayer is a compressed layer written to a file, with its digests known.
type fileLayer struct {
	path           string
	digest, diffID v1.Hash
	size           int64
	mediaType      types.MediaType
}

func (l *fileLayer) Digest() (v1.Hash, error)            { return l.digest, nil }
func (l *fileLayer) DiffID() (v1.Hash, error)            { return l.diffID, nil }
func (l *fileLayer) Size() (int64, error)                { return l.size, nil }
func (l *fileLayer) MediaType() (types.MediaType, error) { return l.mediaType, nil }
func (l *fileLayer) Compressed() (io.ReadCloser, error)  { return os.Open(l.path) }

// countedLayer is the slim layer as go-containerregistry completes it, which also says how much of its file
// a read of its tar consumed (oci.CountedLayer): verify's unpack of the slim image reports progress against
// the layer's size, as the fat image's does.
type countedLayer struct {
	v1.Layer
	file *fileLayer
}

var _ oci.CountedLayer = (*countedLayer)(nil)

func (l *countedLayer) UncompressedCounted(read *atomic.Int64) (io.ReadCloser, error) {
	f, err := os.Open(l.file.path)
	if err != nil {
		return nil, err
	}
	return oci.Decompress(oci.CountReads(f, read))
}

func (l *countedLayer) StoredSize() int64 { return l.file.size }
