package sqlstore

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The combiner's own mechanics, with a run that records what it is given:
// a lone call runs at once and alone; calls arriving while the statements
// in flight are at their bound wait and go together, each answered with
// its own result; a run that panics fails only its calls, and the next
// call is served.
func TestCombinerMechanics(t *testing.T) {
	var runs, biggest atomic.Int64
	release := make(chan struct{})
	c := &combiner[int, int]{}
	c.run = func(ctx context.Context, calls []*call[int, int]) {
		runs.Add(1)
		if n := int64(len(calls)); n > biggest.Load() {
			biggest.Store(n)
		}
		for _, k := range calls {
			if k.in < 0 {
				panic("a negative input")
			}
			if k.in >= 1000 {
				<-release // hold the statements in flight
			}
			k.out = k.in * 2
		}
	}
	if out, err := c.do(context.Background(), 21); out != 42 || err != nil || runs.Load() != 1 || biggest.Load() != 1 {
		t.Fatalf("a lone call: %d, %v after %d runs of up to %d", out, err, runs.Load(), biggest.Load())
	}

	// Fill the statements in flight, then queue 100 calls behind them.
	var wg sync.WaitGroup
	for i := range combinedInFlight {
		wg.Add(1)
		go func() { defer wg.Done(); _, _ = c.do(context.Background(), 1000+i) }()
	}
	for c.runningNow() < combinedInFlight {
		time.Sleep(time.Millisecond)
	}
	outs := make([]int, 100)
	errs := make([]error, 100)
	for i := range 100 {
		wg.Add(1)
		go func() { defer wg.Done(); outs[i], errs[i] = c.do(context.Background(), i) }()
	}
	for c.queued() < 100 {
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	for i := range 100 {
		if outs[i] != 2*i || errs[i] != nil {
			t.Fatalf("queued call %d: %d, %v", i, outs[i], errs[i])
		}
	}
	if biggest.Load() < 2 || biggest.Load() > maxCombined {
		t.Fatalf("the largest run had %d calls: want the queued calls combined, at most %d", biggest.Load(), maxCombined)
	}
	if c.runningNow() != 0 || c.queued() != 0 {
		t.Fatalf("%d running, %d queued after every call returned", c.runningNow(), c.queued())
	}

	if _, err := c.do(context.Background(), -1); err == nil {
		t.Fatal("a run that panicked answered no error")
	}
	if out, err := c.do(context.Background(), 5); out != 10 || err != nil {
		t.Fatalf("after a panic: %d, %v", out, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.do(ctx, 7); !errors.Is(err, context.Canceled) {
		t.Fatalf("a call whose request had ended: %v; want it to start nothing", err)
	}
}

// runningNow and queued report the combiner's state (for the tests).
func (c *combiner[In, Out]) runningNow() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.running
}

func (c *combiner[In, Out]) queued() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.queue)
}
