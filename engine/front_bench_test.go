package engine

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/cocaine-cloud/cocaine/fcgiproxy"
	"github.com/cocaine-cloud/cocaine/gateway"
	"github.com/cocaine-cloud/cocaine/gateway/discovery"
	"github.com/cocaine-cloud/cocaine/internal/testcluster"
	"github.com/cocaine-cloud/cocaine/internal/wire"
)

// localEngine is cmd/cocaine's adapter: the dealer reaches this process's
// engine without ZeroMQ.
type localEngine struct{ n *Node }

func (l localEngine) Endpoint() string { return l.n.Endpoint() }

func (l localEngine) Invoke(app, event string, body []byte, more bool, p wire.Policy, sink gateway.LocalSink) (gateway.LocalCall, error) {
	r, err := l.n.InvokeLocal(app, event, body, more, p, sink)
	if err != nil {
		return nil, err
	}
	return r, nil
}

// BenchmarkFront is one process's request path without nginx or sockets
// to the client: front (ServeHTTP) → dealer → engine → a real Go slave
// serving a net/http handler (it sees the path below /APP/EVENT) → back.
// "local" goes through the local route, as cocaine dev does; "zeromq" through the engine's ZeroMQ
// endpoint, as a separate gateway would (both ends in this process).
// platform-µs/op is this process's CPU per request (the slave's is not
// counted), switches/op its voluntary context switches per request.
//
//	go test -run '^$' -bench Front -benchtime 20000x -benchmem ./engine/
func BenchmarkFront(b *testing.B) {
	n := startNode(b)
	manifest := `{"type": "testself", "engine": {"pool-limit": 1, "concurrency": 32, "queue-limit": 10000},
		"drivers": {"http": {"type": "native-server", "payload": "http"}}}`
	if _, err := n.Upload(context.Background(), "bench", pack(b, map[string]string{"manifest.json": manifest})); err != nil {
		b.Fatal(err)
	}
	for _, route := range []string{"local", "zeromq"} {
		// The node announces every 100 ms; on a loaded machine three missed
		// announces must not make it dead in the middle of a measurement.
		cfg := gateway.Config{Sources: []gateway.Source{discovery.Static(n.cfg.Announce)}, DeadAfter: 100}
		if route == "local" {
			cfg.Local = localEngine{n.Node}
		}
		d, err := gateway.New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		front, err := fcgiproxy.New(fcgiproxy.Config{}, d, nil)
		if err != nil {
			b.Fatal(err)
		}
		call := func() error {
			w := httptest.NewRecorder()
			front.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/bench/http/x", nil))
			if w.Code != http.StatusOK || w.Body.String() != "GET /x\n" {
				return fmt.Errorf("answer %d %q", w.Code, w.Body.String())
			}
			return nil
		}
		testcluster.Eventually(b, 20*time.Second, "the app to answer through the front", func() bool { return call() == nil })
		for range 500 { // warm-up: slave started, buffers grown
			if err := call(); err != nil {
				b.Fatal(err)
			}
		}
		for _, conc := range []int{1, 32} {
			b.Run(fmt.Sprintf("%s/concurrency=%d", route, conc), func(b *testing.B) {
				b.ReportAllocs()
				cpu0, sw0 := selfUsage(b)
				b.ResetTimer()
				lat, el := testcluster.Load(b.N, conc, func(int) error {
					err := call()
					if err != nil {
						b.Error(err)
					}
					return err
				})
				b.StopTimer()
				cpu1, sw1 := selfUsage(b)
				slices.Sort(lat)
				b.ReportMetric(float64(b.N)/el.Seconds(), "req/s")
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
				b.ReportMetric((cpu1-cpu0).Seconds()*1e6/float64(b.N), "platform-µs/op")
				b.ReportMetric(float64(sw1-sw0)/float64(b.N), "switches/op")
			})
		}
		d.Close()
	}
}

// selfUsage is this process's CPU time and voluntary context switches,
// over all its threads.
func selfUsage(b *testing.B) (time.Duration, int64) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), ru.Nvcsw
}
