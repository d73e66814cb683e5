package rootfs

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"testing"
	"time"
)

// FuzzUnpack feeds two arbitrary layers to Unpack. Whatever they hold, nothing outside the root may change
// and nothing may be written beside it; a failed unpack leaves no tree. Seeded with the escape cases.
// `make fuzz` (and `make test`, for a bounded time) runs it.
func FuzzUnpack(f *testing.F) {
	for _, c := range escapeCases(newSandbox(f)) {
		var layers [][]byte
		for _, l := range c.layers {
			layers = append(layers, tarOf(f, l...))
		}
		for len(layers) < 2 {
			layers = append(layers, tarOf(f))
		}
		// Three-layer cases fold their first two layers' entries into one.
		if len(c.layers) == 3 {
			layers = [][]byte{tarOf(f, append(c.layers[0], c.layers[1]...)...), tarOf(f, c.layers[2]...)}
		}
		f.Add(layers[0], layers[1])
	}
	f.Fuzz(func(t *testing.T, a, b []byte) {
		s := newSandbox(t)
		done := make(chan error, 1)
		go func() {
			_, err := Unpack(context.Background(), imageOf(t, a, b), s.root, nil)
			done <- err
		}()
		var err error
		select {
		case err = <-done:
		case <-time.After(20 * time.Second):
			t.Fatal("unpacking two small layers took more than 20 s")
		}
		s.checkOutside(t)
		if err != nil {
			if _, serr := os.Lstat(s.root); !errors.Is(serr, fs.ErrNotExist) {
				t.Fatalf("a failed unpack (%v) left its tree", err)
			}
		}
	})
}
