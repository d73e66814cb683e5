package oci

import (
	"io"
	"sync/atomic"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/slimoci/slimoci/internal/throttle"
)

// writeProgress counts one write's bytes for Options.Progress: the writing goroutines only add to counters;
// the hook is called by throttle.
type writeProgress struct {
	complete, total atomic.Int64
	stop            func()
}

// startProgress starts reporting to hook (nil: a writeProgress that counts and reports nothing). finish
// must be called when the write returns.
func startProgress(hook func(v1.Update)) *writeProgress {
	p := &writeProgress{}
	p.stop = throttle.Start(func() v1.Update {
		c, t := p.complete.Load(), p.total.Load()
		// An archive's headers come on top of the blobs' sizes: Complete never passes Total.
		return v1.Update{Complete: c, Total: max(c, t)}
	}, hook)
	return p
}

func (p *writeProgress) finish() { p.stop() }

// forward returns a channel for go-containerregistry's WithProgress options, whose updates set the counts.
// end must be called once the write using it returned (its sends are done by then; remote.Write also closes
// the channel, unless it failed before taking it).
func (p *writeProgress) forward() (ch chan v1.Update, end func()) {
	ch = make(chan v1.Update, 64)
	quit, done := make(chan struct{}), make(chan struct{})
	take := func(u v1.Update) {
		if u.Error == nil {
			p.complete.Store(u.Complete)
			p.total.Store(u.Total)
		}
	}
	go func() {
		defer close(done)
		for {
			var u v1.Update
			ok := true
			select {
			case u, ok = <-ch:
			case <-quit:
				// The write returned: take what it left in the channel, then stop.
				select {
				case u, ok = <-ch:
				default:
					return
				}
			}
			if !ok {
				return
			}
			take(u)
		}
	}()
	return ch, func() { close(quit); <-done }
}

// add counts n bytes done; p may be nil.
func (p *writeProgress) add(n int64) {
	if p != nil {
		p.complete.Add(n)
	}
}

// reader counts what is read from r; p may be nil.
func (p *writeProgress) reader(r io.Reader) io.Reader {
	if p == nil {
		return r
	}
	return CountReads(io.NopCloser(r), &p.complete)
}

// countingWriter adds what is written through it to a write's Complete.
type countingWriter struct {
	w io.Writer
	p *writeProgress
}

func (c countingWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.p.complete.Add(int64(n))
	return n, err
}

// blobsSize is the total of img's blobs, each layer once, the config and the manifest: what a layout or an
// archive of it holds. Sizes come from the manifest; it is 0 when one cannot be read.
func blobsSize(img v1.Image) int64 {
	m, err := img.Manifest()
	if err != nil {
		return 0
	}
	raw, err := img.RawManifest()
	if err != nil {
		return 0
	}
	total := m.Config.Size + int64(len(raw))
	seen := map[v1.Hash]bool{}
	for _, l := range m.Layers {
		if !seen[l.Digest] {
			seen[l.Digest] = true
			total += l.Size
		}
	}
	return total
}
