package engine

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cocaine-cloud/cocaine/internal/wire"
)

// BenchmarkRoundTrip measures ZeroMQ client → engine → Go slave → back,
// the whole path of a request minus the front. Results and the machine
// are in docs/benchmarks.md.
func BenchmarkRoundTrip(b *testing.B) {
	n := startNode(b)
	manifest := `{"type": "testself", "engine": {"pool-limit": 2, "concurrency": 16, "queue-limit": 10000},
		"drivers": {"echo": {"type": "native-server"}}}`
	if _, err := n.Upload(context.Background(), "bench", pack(b, map[string]string{"manifest.json": manifest})); err != nil {
		b.Fatal(err)
	}
	body := []byte("hello, world")
	// Warm up: slaves started, sockets connected.
	for range 200 {
		if got, err := n.call(b, "bench", "echo", string(body), wire.Policy{}); err != nil || got != string(body) {
			b.Fatalf("warm-up: %q %v", got, err)
		}
	}
	for _, conc := range []int{1, 32} {
		b.Run(fmt.Sprintf("concurrency=%d", conc), func(b *testing.B) {
			lat := make([]time.Duration, b.N)
			var next int64
			var mu sync.Mutex
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for range conc {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						mu.Lock()
						i := next
						next++
						mu.Unlock()
						if i >= int64(b.N) {
							return
						}
						t0 := time.Now()
						s, err := n.conn.Send("bench", "echo", body, wire.Policy{})
						if err != nil {
							b.Error(err)
							return
						}
						out, err := s.Collect(context.Background())
						if err != nil || len(out) != len(body) {
							b.Errorf("call: %q %v", out, err)
							return
						}
						lat[i] = time.Since(t0)
					}
				}()
			}
			wg.Wait()
			el := time.Since(start)
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(b.N)/el.Seconds(), "req/s")
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}
