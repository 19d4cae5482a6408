package gateway_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/cocaine-cloud/cocaine/gateway"
	"github.com/cocaine-cloud/cocaine/internal/testcluster"
	"github.com/cocaine-cloud/cocaine/internal/wire"
)

// Workload of BenchmarkSmartVsRoundRobin: each request is echo's "sleep"
// event for sleepMS, an app waiting on something slow (a database, say),
// so a node's capacity is its number of slots over sleepMS and not the
// share of the two CPUs it happens to get.
const (
	benchConcurrency = 32
	sleepMS          = "5"
	warmup           = 400
)

// The slow node runs one slave, the fast ones up to four. grow-threshold 1
// is what makes four reachable: with echo's shipped queue-limit 1000 the
// derived threshold is 250, and a pool under 32 concurrent requests would
// never grow past its first slave, leaving the "fast" nodes as slow as the
// slow one.
const (
	fastManifest = `{"type": "go", "engine": {"pool-limit": 4, "grow-threshold": 1, "queue-limit": 1000, "idle-timeout": 600},
		"drivers": {"echo": {"type": "native-server"}, "sleep": {"type": "native-server"}}}`
	slowManifest = `{"type": "go", "engine": {"pool-limit": 1, "queue-limit": 1000, "idle-timeout": 600},
		"drivers": {"echo": {"type": "native-server"}, "sleep": {"type": "native-server"}}}`
)

// echoWithManifest copies examples/echo into a temporary folder named echo,
// its manifest replaced.
func echoWithManifest(b *testing.B, manifest string) string {
	b.Helper()
	dir := filepath.Join(b.TempDir(), "echo")
	if err := os.CopyFS(dir, os.DirFS(filepath.Join(testcluster.Root(), "examples", "echo"))); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), []byte(manifest), 0o644); err != nil {
		b.Fatal(err)
	}
	return dir
}

// BenchmarkSmartVsRoundRobin drives the same load through a round-robin
// dealer and a smart one, over three nodes of which one has a quarter of
// the others' capacity. Run it with a fixed count, so both balancers see
// the same number of requests:
//
//	go test -run '^$' -bench SmartVsRoundRobin -benchtime 4000x ./gateway/
//
// slow-% is the share of the requests the slow node processed.
func BenchmarkSmartVsRoundRobin(b *testing.B) {
	fast, slow := echoWithManifest(b, fastManifest), echoWithManifest(b, slowManifest)
	var nodes [3]*testcluster.Node
	for i, app := range []string{slow, fast, fast} {
		nodes[i] = testcluster.StartNode(b, testcluster.Options{Apps: []string{app}})
	}
	slowEndpoint := nodes[0].Listen
	announces := static{nodes[0].Announce, nodes[1].Announce, nodes[2].Announce}

	for _, bal := range []string{gateway.RoundRobin, gateway.Smart} {
		d := newDealer(b, bal, announces)
		eventually(b, 180*time.Second, "three nodes serving echo/sleep", func() bool { return d.Routes()["echo/sleep"] == 3 })
		// Pools grown, connections up, and smart's latency estimates
		// filled, before anything is measured.
		runLoad(b, d, warmup)
		b.Run(bal, func(b *testing.B) {
			// The counts come with the nodes' announces, every 200 ms:
			// wait for the warm-up's to arrive, and below for the run's.
			time.Sleep(600 * time.Millisecond)
			before := processed(d)
			b.ResetTimer()
			lat, elapsed := runLoad(b, d, b.N)
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "req/s")
			b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
			b.ReportMetric(ms(lat[len(lat)*99/100]), "p99-ms")
			b.ReportMetric(ms(lat[len(lat)-1]), "max-ms")
			time.Sleep(600 * time.Millisecond)
			after := processed(d)
			var total, onSlow uint64
			for ep, n := range after {
				total += n - before[ep]
				if ep == slowEndpoint {
					onSlow += n - before[ep]
				}
			}
			if total > 0 {
				b.ReportMetric(100*float64(onSlow)/float64(total), "slow-%")
			}
		})
		for _, n := range d.Nodes() {
			b.Logf("after %s: node %s (slow: %v) ran %d slaves", bal, n.Endpoint, n.Endpoint == slowEndpoint, n.Apps["echo"].Slaves.Total)
		}
	}
}

// runLoad sends n requests from benchConcurrency callers and returns each
// request's latency and the wall time of the whole.
func runLoad(b *testing.B, d *gateway.Dealer, n int) ([]time.Duration, time.Duration) {
	return testcluster.Load(n, benchConcurrency, func(int) error {
		r, err := d.Send("echo", "sleep", []byte(sleepMS), wire.Policy{Deadline: time.Now().Add(30 * time.Second)})
		if err != nil {
			b.Error(err)
			return err
		}
		got, err := r.Collect(context.Background())
		if err == nil && string(got) != "ok" {
			err = fmt.Errorf("answer %q", got)
		}
		if err != nil {
			b.Errorf("echo/sleep: %v", err)
		}
		return err
	})
}

// processed is the count of finished echo jobs per node, as announced.
func processed(d *gateway.Dealer) map[string]uint64 {
	m := map[string]uint64{}
	for _, n := range d.Nodes() {
		m[n.Endpoint] = n.Apps["echo"].Jobs["processed"]
	}
	return m
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
