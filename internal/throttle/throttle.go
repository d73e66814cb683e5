// Package throttle calls a stage's progress hook with its counts at most ten times a second, so that the
// stage only adds to counters on its hot path and a slow hook never slows it.
package throttle

import (
	"sync"
	"time"
)

// Interval is how often a hook is called at most: often enough for a bar to move smoothly, seldom enough to
// cost nothing measurable.
const Interval = 100 * time.Millisecond

// Start calls hook(read()) from a goroutine of its own every Interval, when the value changed since the
// last call. stop ends that goroutine, waits for its last call to return and calls hook once more with the
// final value, from stop's caller: the hook is never called concurrently, nor after stop returns, and its
// last call always has the final counts. A nil hook starts nothing.
func Start[T comparable](read func() T, hook func(T)) (stop func()) {
	if hook == nil {
		return func() {}
	}
	var (
		last T
		done = make(chan struct{})
		wg   sync.WaitGroup
	)
	wg.Go(func() {
		t := time.NewTicker(Interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if v := read(); v != last {
					last = v
					hook(v)
				}
			}
		}
	})
	var once sync.Once
	return func() {
		once.Do(func() {
			close(done)
			wg.Wait()
			hook(read())
		})
	}
}
