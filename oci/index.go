package oci

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// errDockerIndex: a docker-archive (docker save's format) has no place for an index.
var errDockerIndex = fmt.Errorf("%w: a docker-archive holds images of one platform, not an index: write a multi-platform image to an OCI layout or OCI archive, or pick one platform with --platform", ErrFormat)

// HoldsIndex tells whether ref can hold a multi-platform index: every destination can but a docker-archive,
// which is the error.
func HoldsIndex(ref Reference) error {
	if ref.Transport == DockerArchive {
		return fmt.Errorf("%s: %w", ref, errDockerIndex)
	}
	return nil
}

// content is what a write delivers: one image, or an index and the images it lists.
type content interface {
	// put writes the blobs and the manifest into s and returns the manifest's descriptor.
	put(ctx context.Context, s blobSink, jobs int, p *writeProgress) (v1.Descriptor, error)
	// size is the bytes put writes, for progress.
	size() int64
}

type imageContent struct{ v1.Image }

func (c imageContent) put(ctx context.Context, s blobSink, jobs int, p *writeProgress) (v1.Descriptor, error) {
	return putImage(ctx, s, c.Image, jobs, p)
}

func (c imageContent) size() int64 { return blobsSize(c.Image) }

type indexContent struct{ v1.ImageIndex }

// put writes each image the index lists (only images: a slim index nests none), then the index's manifest.
func (c indexContent) put(ctx context.Context, s blobSink, jobs int, p *writeProgress) (v1.Descriptor, error) {
	imgs, err := indexImages(c.ImageIndex)
	if err != nil {
		return v1.Descriptor{}, err
	}
	for _, img := range imgs {
		if _, err := putImage(ctx, s, img, jobs, p); err != nil {
			return v1.Descriptor{}, err
		}
	}
	return putManifest(s, c.ImageIndex, "index", p)
}

func (c indexContent) size() int64 {
	imgs, err := indexImages(c.ImageIndex)
	if err != nil {
		return 0
	}
	var total int64
	for _, img := range imgs {
		total += blobsSize(img)
	}
	if raw, err := c.RawManifest(); err == nil {
		total += int64(len(raw))
	}
	return total
}

func indexImages(idx v1.ImageIndex) ([]v1.Image, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	imgs := make([]v1.Image, 0, len(im.Manifests))
	for _, d := range im.Manifests {
		if !d.MediaType.IsImage() {
			return nil, fmt.Errorf("%w %q for %s: only images are written in an index", ErrMediaType, d.MediaType, d.Digest)
		}
		img, err := idx.Image(d.Digest)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", d.Digest, err)
		}
		imgs = append(imgs, img)
	}
	return imgs, nil
}

// WriteIndex delivers a multi-platform index and its images to ref, as WriteNamed delivers one image: a push
// of the images and then the index (the tag names the index), an index added to an OCI layout (under each
// of names, or ref's tag), or an OCI archive. A docker-archive cannot hold an index: that is an ErrFormat.
func WriteIndex(ctx context.Context, idx v1.ImageIndex, ref Reference, names []string, o *Options) error {
	return writeNamed(ctx, indexContent{idx}, ref, names, o)
}

// PlatformImage is one platform's image for NewIndex.
type PlatformImage struct {
	Platform v1.Platform
	Image    v1.Image
}

// NewIndex is an OCI image index of the images, each listed with its platform, in the order given, with the
// annotations (the index's own, such as the source index's digest). The images must be OCI or Docker
// manifests of distinct platforms.
func NewIndex(imgs []PlatformImage, annotations map[string]string) (v1.ImageIndex, error) {
	if len(imgs) == 0 {
		return nil, errors.New("an index of no images")
	}
	var adds []mutate.IndexAddendum
	var seen []string
	for _, pi := range imgs {
		if s := pi.Platform.String(); slices.Contains(seen, s) {
			return nil, fmt.Errorf("two images for platform %s", s)
		} else {
			seen = append(seen, s)
		}
		d, err := partial.Descriptor(pi.Image)
		if err != nil {
			return nil, fmt.Errorf("the %s image's descriptor: %w", pi.Platform, err)
		}
		p := pi.Platform
		d.Platform = &p
		adds = append(adds, mutate.IndexAddendum{Add: pi.Image, Descriptor: *d})
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	idx = mutate.AppendManifests(idx, adds...)
	if len(annotations) > 0 {
		idx = mutate.Annotations(idx, annotations).(v1.ImageIndex)
	}
	return idx, nil
}

// IndexPlatforms are the platforms of a multi-platform source, as ListPlatforms finds them.
type IndexPlatforms struct {
	// Index is the index's digest; nil when ref names a single image (then Platforms holds its platform,
	// when its config names one).
	Index     *v1.Hash
	Platforms []v1.Platform
}

// ListPlatforms reads which platforms ref offers: the manifests of its index (attestations and other
// non-images left out), or the platform of the single image it names. Only manifests are read, no layer.
func ListPlatforms(ctx context.Context, ref Reference, o *Options) (*IndexPlatforms, error) {
	opts := o.fill()
	ip, err := listPlatforms(ctx, ref, opts)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", ref, err)
	}
	return ip, nil
}

func listPlatforms(ctx context.Context, ref Reference, o *Options) (*IndexPlatforms, error) {
	if ref.Transport == Registry {
		r, err := ref.registryRef(o.Insecure)
		if err != nil {
			return nil, err
		}
		desc, err := remote.Get(r, o.remote(ctx)...)
		if err != nil {
			return nil, err
		}
		if desc.MediaType.IsIndex() {
			im, err := v1.ParseIndexManifest(bytes.NewReader(desc.Manifest))
			if err != nil {
				return nil, fmt.Errorf("%w: index: %v", ErrFormat, err)
			}
			h := desc.Digest
			return &IndexPlatforms{Index: &h, Platforms: platformsOf(im.Manifests)}, nil
		}
	} else if ref.Transport == Layout || ref.Transport == OCIArchive {
		ip, err := storePlatforms(ref, o)
		if err != nil || ip != nil {
			return ip, err
		}
	}
	// A single image: its config says its platform.
	opened := *o
	opened.Platform = nil
	src, err := open(ctx, ref, &opened)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	if src.IndexDigest != nil {
		return nil, fmt.Errorf("%w: nested index", ErrFormat)
	}
	cf, err := src.Image.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	ip := &IndexPlatforms{}
	if p := cf.Platform(); p != nil && p.OS != "" && p.Architecture != "" {
		ip.Platforms = []v1.Platform{*p}
	}
	return ip, nil
}

// storePlatforms lists the index a layout or OCI archive reference names; nil, nil when it names an image.
func storePlatforms(ref Reference, o *Options) (*IndexPlatforms, error) {
	var s blobStore
	if ref.Transport == Layout {
		ds, err := layoutStore(ref.Path)
		if err != nil {
			return nil, err
		}
		s = ds
	} else {
		ts, err := openTarStore(ref.Path)
		if err != nil {
			return nil, unwrapPath(err, ref.Path)
		}
		defer ts.Close()
		s = ts
	}
	im, err := readIndexJSON(s)
	if err != nil {
		return nil, err
	}
	d, err := pickDescriptor(im, ref, HostPlatform(), false)
	if err != nil {
		// Several untagged images: index.json is the multi-platform index (pickDescriptor chose none for
		// want, which is not an error here).
		if errors.Is(err, ErrPlatform) && tagList(im) == "none" {
			return &IndexPlatforms{Platforms: platformsOf(im.Manifests)}, nil
		}
		return nil, err
	}
	if !d.MediaType.IsIndex() {
		if tagList(im) == "none" && ref.Tag == "" && ref.Digest == "" && len(im.Manifests) > 1 {
			return &IndexPlatforms{Platforms: platformsOf(im.Manifests)}, nil
		}
		return nil, nil
	}
	b, err := readBlob(s, d, "index")
	if err != nil {
		return nil, err
	}
	nested, err := parseIndex(b, "index "+d.Digest.String())
	if err != nil {
		return nil, err
	}
	h := d.Digest
	return &IndexPlatforms{Index: &h, Platforms: platformsOf(nested.Manifests)}, nil
}

// platformsOf lists the platforms of an index's image manifests, as ChoosePlatform would choose among them.
func platformsOf(ds []v1.Descriptor) []v1.Platform {
	var out []v1.Platform
	for _, d := range ds {
		if d.Platform == nil || d.Platform.OS == "unknown" || d.Platform.OS == "" || d.Platform.Architecture == "" {
			continue
		}
		if !d.MediaType.IsImage() && !d.MediaType.IsIndex() && d.MediaType != "" {
			continue
		}
		if !slices.ContainsFunc(out, func(p v1.Platform) bool { return p.Equals(*d.Platform) }) {
			out = append(out, *d.Platform)
		}
	}
	return out
}

// PlatformMatches tells whether have satisfies want, as a runtime choosing from an index decides (see
// ChoosePlatform).
func PlatformMatches(have, want v1.Platform) bool { return platformMatches(&have, want) }
