// Command timer is the example of a recurring-timer driver: the engine
// sends it the event "tick" every second, and it writes a running count to
// stdout, which the engine keeps as the app's log (`cocaine logs timer`).
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"sync/atomic"
	"time"

	slave "github.com/cocaine-cloud/cocaine/slaves/go"
)

func main() {
	// Per slave process: the manifest keeps one slave (pool-limit 1), so
	// this counts every tick since the app started, unless the slave was
	// restarted.
	var ticks atomic.Int64
	slave.HandleFunc("tick", func(ctx context.Context, req *slave.Request, w *slave.Response) error {
		n := ticks.Add(1)
		fmt.Printf("tick %d at %s (pid %d)\n", n, time.Now().Format(time.RFC3339Nano), os.Getpid())
		return nil
	})
	if err := slave.Run(); err != nil {
		log.Fatal(err)
	}
}
