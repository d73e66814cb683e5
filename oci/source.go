package oci

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Options say how images are fetched and written. The zero value works: the host platform, the user's
// docker/podman credentials, four concurrent blob transfers and no logging.
type Options struct {
	// Platform picks the image in a multi-platform index. Nil means the host's; an explicit platform must
	// also match a single-platform image.
	Platform *v1.Platform
	// Insecure allows plain HTTP and unverified TLS to registries (a local registry on 127.0.0.1 is plain
	// HTTP even without it, as go-containerregistry decides).
	Insecure bool
	// Keychain finds registry credentials; nil means the docker/podman config and credential helpers.
	Keychain authn.Keychain
	// Jobs bounds concurrent blob transfers; 0 means 4.
	Jobs int
	// Transport is the HTTP transport to registries; nil means go-containerregistry's default. It is wrapped
	// to cap manifests at 4 MiB, unless it is a go-containerregistry transport.Wrapper (which asks for no
	// wrapping at all).
	Transport http.RoundTripper
	// Retry is the backoff for transient registry errors; nil means go-containerregistry's (about 1+3+9 s).
	Retry *remote.Backoff
	// UserAgent is sent to registries.
	UserAgent string
	// Logger receives debug logs; nil discards them.
	Logger *slog.Logger
	// Progress, when set, is told how each Write (or WriteNamed) goes: Complete bytes of Total to send (a
	// registry push, as go-containerregistry's remote.WithProgress counts them) or to write (layouts and
	// archives: the blobs' bytes, an archive's own headers too), at most ten times a second, the last call
	// with the final counts before the write returns; never concurrently. Update.Error is always nil: the
	// write's error is returned. Reads are not reported here (rootfs.Options.Progress counts a lazy pull).
	Progress func(v1.Update)
}

func (o *Options) fill() *Options {
	out := Options{}
	if o != nil {
		out = *o
	}
	if out.Keychain == nil {
		out.Keychain = authn.DefaultKeychain
	}
	if out.Jobs <= 0 {
		out.Jobs = 4
	}
	if out.Logger == nil {
		out.Logger = slog.New(slog.DiscardHandler)
	}
	if out.UserAgent == "" {
		out.UserAgent = "slimoci"
	}
	return &out
}

func (o *Options) want() (v1.Platform, bool) {
	if o.Platform != nil {
		return *o.Platform, true
	}
	return HostPlatform(), false
}

func (o *Options) remote(ctx context.Context) []remote.Option {
	opts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(o.Keychain),
		remote.WithJobs(o.Jobs),
		remote.WithUserAgent(o.UserAgent),
		remote.WithTransport(limitManifests(o.Transport)),
	}
	if o.Retry != nil {
		opts = append(opts, remote.WithRetryBackoff(*o.Retry))
	}
	return opts
}

// Source is an opened image. Image is lazy: blobs are fetched when read, and verified as they stream.
type Source struct {
	Ref   Reference
	Image v1.Image
	// Digest is the manifest digest; zero for a docker-archive, which stores no manifest.
	Digest v1.Hash
	// IndexDigest is the index the image was chosen from, if any.
	IndexDigest *v1.Hash
	closer      io.Closer
}

// Close releases files the source holds open.
func (s *Source) Close() error {
	if s == nil || s.closer == nil {
		return nil
	}
	return s.closer.Close()
}

// Open finds the image ref names and checks its manifest and config. Errors name the reference.
func Open(ctx context.Context, ref Reference, o *Options) (*Source, error) {
	opts := o.fill()
	start := time.Now()
	src, err := open(ctx, ref, opts)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", ref, err)
	}
	// The config is read now so that a bad one fails here, with the reference, and to check the platform.
	cf, err := src.Image.ConfigFile()
	if err != nil {
		src.Close()
		return nil, fmt.Errorf("reading %s: config: %w", ref, err)
	}
	if want, explicit := opts.want(); explicit && src.IndexDigest == nil && !platformMatches(cf.Platform(), want) {
		src.Close()
		return nil, fmt.Errorf("reading %s: %w: the image is %s, not %s", ref, ErrPlatform, platformString(cf.Platform()), platformString(&want))
	}
	if len(cf.RootFS.DiffIDs) == 0 {
		opts.Logger.Debug("image has no layers", "ref", ref.String())
	}
	opts.Logger.Debug("opened image", "ref", ref.String(), "digest", src.Digest.String(), "took", time.Since(start))
	return src, nil
}

func open(ctx context.Context, ref Reference, o *Options) (*Source, error) {
	want, _ := o.want()
	switch ref.Transport {
	case Registry:
		return openRegistry(ctx, ref, o, want)
	case Layout:
		s, err := layoutStore(ref.Path)
		if err != nil {
			return nil, err
		}
		return openStore(s, ref, o, want)
	case OCIArchive:
		s, err := openTarStore(ref.Path)
		if err != nil {
			return nil, unwrapPath(err, ref.Path)
		}
		src, err := openStore(s, ref, o, want)
		if err != nil {
			s.Close()
			return nil, err
		}
		src.closer = s
		return src, nil
	case DockerArchive:
		return openDockerArchive(ref)
	}
	return nil, fmt.Errorf("%w %q", ErrTransport, ref.Transport)
}

// layoutStore is the OCI layout directory at path.
func layoutStore(path string) (dirStore, error) {
	fi, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return dirStore{}, ErrNotExist
		}
		return dirStore{}, err
	}
	if !fi.IsDir() {
		return dirStore{}, fmt.Errorf("%w: an OCI layout is a directory", ErrFormat)
	}
	return dirStore{root: path}, nil
}

// unwrapPath drops a leading "PATH: " that the caller's "reading REF" context already names.
func unwrapPath(err error, p string) error {
	var msg = err.Error()
	if len(msg) > len(p)+2 && msg[:len(p)+2] == p+": " {
		return &trimmedError{msg: msg[len(p)+2:], err: err}
	}
	return err
}

type trimmedError struct {
	msg string
	err error
}

func (e *trimmedError) Error() string { return e.msg }
func (e *trimmedError) Unwrap() error { return e.err }

func openStore(s blobStore, ref Reference, o *Options, want v1.Platform) (*Source, error) {
	if _, _, err := s.open("oci-layout"); err != nil {
		o.Logger.Debug("layout has no oci-layout file", "where", s.where())
	}
	im, err := readIndexJSON(s)
	if err != nil {
		return nil, err
	}
	_, explicit := o.want()
	d, err := pickDescriptor(im, ref, want, explicit)
	if err != nil {
		return nil, err
	}
	img, idx, err := resolveInStore(s, d, want)
	if err != nil {
		return nil, err
	}
	digest, err := img.Digest()
	if err != nil {
		return nil, err
	}
	return &Source{Ref: ref, Image: &verifiedImage{Image: img}, Digest: digest, IndexDigest: idx}, nil
}

func openRegistry(ctx context.Context, ref Reference, o *Options, want v1.Platform) (*Source, error) {
	r, err := ref.registryRef(o.Insecure)
	if err != nil {
		return nil, err
	}
	desc, err := remote.Get(r, o.remote(ctx)...)
	if err != nil {
		return nil, err
	}
	var img v1.Image
	var indexDigest *v1.Hash
	switch {
	case desc.MediaType.IsIndex():
		idx, err := desc.ImageIndex()
		if err != nil {
			return nil, err
		}
		im, err := idx.IndexManifest()
		if err != nil {
			return nil, err
		}
		d, err := ChoosePlatform(im.Manifests, want)
		if err != nil {
			return nil, err
		}
		if !d.MediaType.IsImage() {
			return nil, fmt.Errorf("%w %q for %s (nested indexes are not followed in registries)", ErrMediaType, d.MediaType, d.Digest)
		}
		if img, err = idx.Image(d.Digest); err != nil {
			return nil, err
		}
		h := desc.Digest
		indexDigest = &h
	case desc.MediaType.IsImage():
		if img, err = desc.Image(); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("%w %q for %s", ErrMediaType, desc.MediaType, r)
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, err
	}
	digest, err := img.Digest()
	if err != nil {
		return nil, err
	}
	if err := checkManifest(m, digest); err != nil {
		return nil, err
	}
	return &Source{Ref: ref, Image: &verifiedImage{Image: img}, Digest: digest, IndexDigest: indexDigest}, nil
}

func openDockerArchive(ref Reference) (*Source, error) {
	f, err := os.Open(ref.Path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, ErrNotExist
		}
		return nil, err
	}
	_, err = sniffArchive(f)
	f.Close()
	if err != nil {
		return nil, err
	}
	// go-containerregistry reads manifest.json and the config whole, as soon as the image is made.
	if err := checkDockerArchive(ref.Path); err != nil {
		return nil, err
	}
	var tag *name.Tag
	if ref.Name != "" {
		t, err := name.NewTag(ref.Name)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrReference, err)
		}
		tag = &t
	}
	opener := func() (io.ReadCloser, error) { return os.Open(ref.Path) }
	img, err := tarball.Image(opener, tag)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	return &Source{Ref: ref, Image: &verifiedImage{Image: img, fromArchive: true}}, nil
}
