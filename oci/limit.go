package oci

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"strings"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// What an image's source sends is untrusted: a registry, a layout or an archive may serve a manifest or a
// config of any size. Manifests, indexes and configs are read into memory, so their size is checked before
// they are read, and the read stops at the limit whatever a size field or a Content-Length said.
const (
	// maxManifest bounds a manifest or an index (and a layout's index.json): 4 MiB is what the OCI
	// distribution spec says registries should accept at least, and what containerd and podman read at most.
	maxManifest = 4 << 20
	// maxConfig bounds an image config. Real ones are kilobytes, tens of them with a long history.
	maxConfig = 8 << 20
)

// readAtMost reads r to EOF, failing with a *LimitError if it holds more than limit bytes.
func readAtMost(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, &LimitError{Size: -1, Limit: limit}
	}
	return b, nil
}

// checkConfigSize fails unless a config of size bytes may be read: go-containerregistry reads a registry's
// config whole, as many bytes as the manifest says (or, for a negative size, as the registry sends).
func checkConfigSize(size int64, what string) error {
	if size < 0 {
		return fmt.Errorf("%w: %s has size %d", ErrFormat, what, size)
	}
	if size > maxConfig {
		return fmt.Errorf("reading %s: %w", what, &LimitError{Size: size, Limit: maxConfig})
	}
	return nil
}

// manifestLimiter caps what a registry sends for a manifest or an index at maxManifest. go-containerregistry
// reads up to 100 MiB of one into memory, and there is no option to lower it; this is the transport under its
// own (auth, retries), so it sees every manifest request.
type manifestLimiter struct{ base http.RoundTripper }

// limitManifests wraps t (nil: go-containerregistry's default). A *transport.Wrapper says its caller wants
// no wrapping at all, and is left as it is.
func limitManifests(t http.RoundTripper) http.RoundTripper {
	if _, ok := t.(*transport.Wrapper); ok {
		return t
	}
	if t == nil {
		t = remote.DefaultTransport
	}
	return manifestLimiter{base: t}
}

func (m manifestLimiter) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := m.base.RoundTrip(req)
	if err != nil || req.Method != http.MethodGet {
		return resp, err
	}
	what, ok := manifestRef(req)
	if !ok {
		return resp, nil
	}
	if resp.ContentLength > maxManifest {
		resp.Body.Close()
		resp.Body = &limitedBody{err: fmt.Errorf("reading %s: %w", what, &LimitError{Size: resp.ContentLength, Limit: maxManifest})}
		return resp, nil
	}
	resp.Body = &limitedBody{rc: resp.Body, left: maxManifest, what: what}
	return resp, nil
}

// manifestRef names what a request fetches, if it is a manifest (/v2/NAME/manifests/REF: "manifest REF") or
// a referrers listing, which is an index too (/v2/NAME/referrers/DIGEST: "referrers of DIGEST"), looking
// through redirects to the request that was made.
func manifestRef(req *http.Request) (string, bool) {
	for req.Response != nil && req.Response.Request != nil {
		req = req.Response.Request
	}
	parts := strings.Split(req.URL.Path, "/")
	if n := len(parts); n >= 5 && parts[1] == "v2" && parts[n-1] != "" {
		switch parts[n-2] {
		case "manifests":
			return "manifest " + parts[n-1], true
		case "referrers":
			return "referrers of " + parts[n-1], true
		}
	}
	return "", false
}

// limitedBody is a response body that fails once more than left bytes have been read (or at once, with err).
type limitedBody struct {
	rc   io.ReadCloser
	left int64
	what string
	err  error
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.rc.Read(p)
	if b.left -= int64(n); b.left < 0 {
		b.err = fmt.Errorf("reading %s: %w", b.what, &LimitError{Size: -1, Limit: maxManifest})
		return 0, b.err
	}
	return n, err
}

func (b *limitedBody) Close() error {
	if b.rc == nil {
		return nil
	}
	return b.rc.Close()
}

// checkDockerArchive checks, before go-containerregistry's tarball package reads them whole, that the
// manifest.json of a docker-archive and the configs it names are within maxManifest and maxConfig. Entries
// are found as that package finds them: the first of the name, through symlinks and hardlinks, and
// manifest.json is decoded as it decodes it. What it does not find or cannot decode is left to that package
// to report.
func checkDockerArchive(file string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	found, err := archiveEntries(f, []string{"manifest.json"})
	if err != nil {
		return err
	}
	e, ok := found["manifest.json"]
	if !ok {
		return nil
	}
	if e.size > maxManifest {
		return fmt.Errorf("reading manifest.json: %w", &LimitError{Size: e.size, Limit: maxManifest})
	}
	b, err := archiveFile(f, e.name, maxManifest)
	if err != nil {
		return fmt.Errorf("reading manifest.json: %w", err)
	}
	var m tarball.Manifest
	if json.NewDecoder(bytes.NewReader(b)).Decode(&m) != nil {
		return nil
	}
	var configs []string
	for _, d := range m {
		configs = append(configs, d.Config)
	}
	if found, err = archiveEntries(f, configs); err != nil {
		return err
	}
	for _, c := range configs {
		if e, ok := found[c]; ok && e.size > maxConfig {
			return fmt.Errorf("reading config %s: %w", c, &LimitError{Size: e.size, Limit: maxConfig})
		}
	}
	return nil
}

// archiveEntry is where a name of a tar file leads: the entry's name, once links are followed, and size.
type archiveEntry struct {
	name string
	size int64
}

// archiveEntries finds the entry each of names is in the tar file f, following links: one pass over the
// headers per level of links, at most 8 (a longer chain, or a cycle, go-containerregistry reports).
func archiveEntries(f *os.File, names []string) (map[string]archiveEntry, error) {
	// want maps a name to look for to the names asking for it.
	want := map[string][]string{}
	for _, n := range names {
		want[path.Clean(n)] = append(want[path.Clean(n)], n)
	}
	out := map[string]archiveEntry{}
	for depth := 0; len(want) > 0 && depth < 8; depth++ {
		next := map[string][]string{}
		err := eachHeader(f, func(h *tar.Header) bool {
			name := path.Clean(h.Name)
			askers, ok := want[name]
			if !ok {
				return true
			}
			delete(want, name) // the first entry of a name is the one read
			if h.Typeflag == tar.TypeSymlink || h.Typeflag == tar.TypeLink {
				// As go-containerregistry resolves them: relative to the entry's directory.
				t := path.Join(path.Dir(name), path.Clean(h.Linkname))
				next[t] = append(next[t], askers...)
			} else {
				for _, a := range askers {
					out[a] = archiveEntry{name: name, size: h.Size}
				}
			}
			return len(want) > 0
		})
		if err != nil {
			return nil, err
		}
		want = next
	}
	return out, nil
}

// archiveFile reads the first entry called name of the tar file f, at most limit bytes of it.
func archiveFile(f *os.File, name string, limit int64) ([]byte, error) {
	var b []byte
	err := eachEntry(f, func(h *tar.Header, r io.Reader) (bool, error) {
		if path.Clean(h.Name) != name {
			return true, nil
		}
		var err error
		b, err = readAtMost(r, limit)
		return false, err
	})
	return b, err
}

// eachHeader calls fn on the tar headers of f, from the start, until it returns false.
func eachHeader(f *os.File, fn func(*tar.Header) bool) error {
	return eachEntry(f, func(h *tar.Header, _ io.Reader) (bool, error) { return fn(h), nil })
}

// eachEntry calls fn on the entries of the tar file f, from the start, until it returns false or an error.
// What fn does not read of an entry is skipped with a seek.
func eachEntry(f *os.File, fn func(*tar.Header, io.Reader) (bool, error)) error {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: %v", ErrFormat, err)
		}
		if more, err := fn(h, tr); err != nil || !more {
			return err
		}
	}
}
