package engine

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/cocaine-cloud/cocaine/internal/testcluster"
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
			b.ResetTimer()
			lat, el := testcluster.Load(b.N, conc, func(int) error {
				s, err := n.conn.Send("bench", "echo", body, wire.Policy{})
				if err != nil {
					b.Error(err)
					return err
				}
				out, err := s.Collect(context.Background())
				if err == nil && len(out) != len(body) {
					err = fmt.Errorf("answer of %d bytes", len(out))
				}
				if err != nil {
					b.Errorf("call: %q %v", out, err)
				}
				return err
			})
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(b.N)/el.Seconds(), "req/s")
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}
