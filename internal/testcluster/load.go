package testcluster

import (
	"sync"
	"sync/atomic"
	"time"
)

// Load runs call n times from conc goroutines and returns each call's
// latency, indexed by call, and the wall time of the whole. A call that
// returns an error stops its goroutine; the benchmark reports it.
func Load(n, conc int, call func(i int) error) ([]time.Duration, time.Duration) {
	lat := make([]time.Duration, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				t0 := time.Now()
				if call(i) != nil {
					return
				}
				lat[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	return lat, time.Since(start)
}
