package throttle

import (
	"sync/atomic"
	"testing"
	"time"
)

// A counter moved a million times in half a second reaches the hook a few times, ending with the final
// value, and never after stop.
func TestStart(t *testing.T) {
	var n atomic.Int64
	var calls, concurrent, maxConcurrent atomic.Int64
	var last int64
	stop := Start(n.Load, func(v int64) {
		if c := concurrent.Add(1); c > maxConcurrent.Load() {
			maxConcurrent.Store(c)
		}
		calls.Add(1)
		last = v
		concurrent.Add(-1)
	})
	deadline := time.Now().Add(500 * time.Millisecond)
	for time.Now().Before(deadline) {
		n.Add(1)
	}
	stop()
	stop() // a second stop does nothing
	got := calls.Load()
	if got < 2 || got > 8 {
		t.Errorf("%d calls in 500ms, want about 5 (one per %v, and the final one)", got, Interval)
	}
	if last != n.Load() {
		t.Errorf("last call got %d, the final count is %d", last, n.Load())
	}
	if maxConcurrent.Load() > 1 {
		t.Errorf("the hook ran %d times at once", maxConcurrent.Load())
	}
	n.Add(1)
	time.Sleep(2 * Interval)
	if calls.Load() != got {
		t.Errorf("the hook was called after stop")
	}
}

// An unchanged value is not sent again; the final call is made regardless.
func TestStartUnchanged(t *testing.T) {
	var calls int
	stop := Start(func() int { return 0 }, func(int) { calls++ })
	time.Sleep(3 * Interval)
	stop()
	if calls != 1 {
		t.Errorf("%d calls for a value that never changed, want the final one only", calls)
	}
}

func TestStartNil(t *testing.T) {
	stop := Start(func() int { return 1 }, nil)
	stop()
}
