package oci

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Media types of the SBOM artifacts slimoci attaches to the images it pushes: each is both the artifact's
// artifactType and its one layer's mediaType, as syft, trivy and oras attach them.
const (
	SPDXMediaType      = "application/spdx+json"
	CycloneDXMediaType = "application/vnd.cyclonedx+json"
)

// emptyJSON is the OCI 1.1 empty descriptor's content: the config of an artifact that has none.
var emptyJSON = []byte("{}")

// PushReferrer attaches content to the image desc describes as an OCI 1.1 referrer: an image manifest with
// artifactType set, the empty config (application/vnd.oci.empty.v1+json, "{}"), one layer (content, with
// mediaType) and desc as its subject, pushed by digest to subject's repository. subject is a registry
// reference: only its repository is used; desc is the subject manifest's descriptor (its media type, digest
// and size). annotations go on the artifact manifest, where referrer listings show them. It returns the
// artifact manifest's descriptor as listings show it (with artifactType and annotations).
//
// On a registry with the referrers API (distribution-spec 1.1) the registry lists the artifact itself. On one
// without it (Debian's docker-registry, distribution 2.8) go-containerregistry keeps the referrers tag schema
// on the push: the index tagged sha256-<subject hex> gets the artifact added, unless it is there already, so
// pushing the same artifact twice lists it once. The manifest is PUT every time (remote.Put, not
// remote.Write, which skips a manifest the registry holds already): a push that stored the manifest but
// failed before the tag was updated is repaired by pushing again.
//
// Pushes of referrers to one subject must not run concurrently on a registry without the referrers API: the
// tag's index is read, changed and written back without a conditional request (a TODO in
// go-containerregistry's remote.commitSubjectReferrers), so one push could drop the other's entry.
func PushReferrer(ctx context.Context, subject Reference, desc v1.Descriptor, artifactType, mediaType string,
	content []byte, annotations map[string]string, o *Options) (v1.Descriptor, error) {
	opts := o.fill()
	out, err := pushReferrer(ctx, subject, desc, artifactType, mediaType, content, annotations, opts)
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("attaching %s to %s@%s: %w", artifactType, subject, desc.Digest, err)
	}
	opts.Logger.Debug("attached referrer", "subject", desc.Digest.String(), "artifactType", artifactType, "digest", out.Digest.String())
	return out, nil
}

func pushReferrer(ctx context.Context, subject Reference, desc v1.Descriptor, artifactType, mediaType string,
	content []byte, annotations map[string]string, o *Options) (v1.Descriptor, error) {
	repo, err := repository(subject, o)
	if err != nil {
		return v1.Descriptor{}, err
	}
	if artifactType == "" || mediaType == "" {
		return v1.Descriptor{}, fmt.Errorf("%w: an artifact needs an artifact type and a media type", ErrMediaType)
	}
	if desc.Digest == (v1.Hash{}) || desc.MediaType == "" || desc.Size <= 0 {
		return v1.Descriptor{}, fmt.Errorf("%w: the subject descriptor needs a media type, a digest and a size", ErrReference)
	}
	config := static.NewLayer(emptyJSON, types.OCIEmptyJSON)
	layer := static.NewLayer(content, types.MediaType(mediaType))
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  artifactType,
		Config:        descriptorOf(config),
		Layers:        []v1.Descriptor{descriptorOf(layer)},
		Annotations:   annotations,
		// The subject names the manifest and nothing else: a platform or annotations copied from an index
		// entry would make the same attachment a different artifact.
		Subject: &v1.Descriptor{MediaType: desc.MediaType, Digest: desc.Digest, Size: desc.Size},
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return v1.Descriptor{}, err
	}
	digest, size, err := v1.SHA256(bytes.NewReader(raw))
	if err != nil {
		return v1.Descriptor{}, err
	}
	ropts := o.remote(ctx)
	for _, l := range []v1.Layer{config, layer} {
		if err := remote.WriteLayer(repo, l, ropts...); err != nil {
			return v1.Descriptor{}, fmt.Errorf("uploading blob: %w", err)
		}
	}
	if err := remote.Put(repo.Digest(digest.String()), rawManifest(raw), ropts...); err != nil {
		return v1.Descriptor{}, fmt.Errorf("putting manifest %s: %w", digest, err)
	}
	return v1.Descriptor{
		MediaType: types.OCIManifestSchema1, Digest: digest, Size: size, ArtifactType: artifactType, Annotations: annotations,
	}, nil
}

// descriptorOf describes a static layer, whose digest and size cannot fail.
func descriptorOf(l v1.Layer) v1.Descriptor {
	d, _ := l.Digest()
	s, _ := l.Size()
	mt, _ := l.MediaType()
	return v1.Descriptor{MediaType: mt, Digest: d, Size: s}
}

// rawManifest is a manifest to PUT as it is; its media type is the Content-Type.
type rawManifest []byte

func (r rawManifest) RawManifest() ([]byte, error)        { return r, nil }
func (r rawManifest) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }

// Referrers lists the manifests that name ref's manifest as their subject, sorted by artifact type, then
// digest. ref is a registry reference; a tag is resolved to the manifest it names (an index, for a
// multi-platform tag: use AtDigest for one of its images). The referrers API is asked first, and the
// referrers tag schema read when the registry has no such API (go-containerregistry's remote.Referrers); a
// subject without referrers gives an empty list.
func Referrers(ctx context.Context, ref Reference, o *Options) ([]v1.Descriptor, error) {
	opts := o.fill()
	list, err := referrers(ctx, ref, opts)
	if err != nil {
		return nil, fmt.Errorf("listing referrers of %s: %w", ref, err)
	}
	return list, nil
}

func referrers(ctx context.Context, ref Reference, o *Options) ([]v1.Descriptor, error) {
	if _, err := repository(ref, o); err != nil {
		return nil, err
	}
	r, err := ref.registryRef(o.Insecure)
	if err != nil {
		return nil, err
	}
	ropts := o.remote(ctx)
	d, ok := r.(name.Digest)
	if !ok {
		desc, err := remote.Head(r, ropts...)
		if err != nil {
			return nil, err
		}
		d = r.Context().Digest(desc.Digest.String())
	}
	idx, err := remote.Referrers(d, ropts...)
	if err != nil {
		return nil, err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	list := slices.Clone(im.Manifests)
	slices.SortFunc(list, func(a, b v1.Descriptor) int {
		return cmp.Or(cmp.Compare(a.ArtifactType, b.ArtifactType), cmp.Compare(a.Digest.String(), b.Digest.String()))
	})
	return list, nil
}

// AtDigest is the registry reference to the manifest h in r's repository (what an Open of a tag found in
// Source.Digest, for example).
func (r Reference) AtDigest(h v1.Hash) (Reference, error) {
	if r.Transport != Registry {
		return Reference{}, fmt.Errorf("%w %q: not a registry reference", ErrReference, r.String())
	}
	n, err := r.registryRef(false)
	if err != nil {
		return Reference{}, err
	}
	return Reference{Transport: Registry, Name: n.Context().Digest(h.String()).String()}, nil
}

// repository is the registry repository ref names; other transports are refused.
func repository(ref Reference, o *Options) (name.Repository, error) {
	if ref.Transport != Registry {
		return name.Repository{}, fmt.Errorf("%w %q: referrers are pushed to and listed from registries", ErrReference, ref.String())
	}
	r, err := ref.registryRef(o.Insecure)
	if err != nil {
		return name.Repository{}, err
	}
	return r.Context(), nil
}
