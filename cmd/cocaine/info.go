package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/cocaine-cloud/cocaine/gateway"
	"github.com/cocaine-cloud/cocaine/internal/wire"
)

func runInfo(args []string) int {
	fs := newFlags("info", "info [--json] [--node ENDPOINT]")
	node := fs.String("node", envOr("COCAINE_NODE", defaultNode), "engine endpoint (env COCAINE_NODE)")
	asJSON := fs.Bool("json", false, "print JSON")
	if fs.Parse(args) != nil {
		return exitUsage
	}
	c, err := gateway.Dial(*node)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cocaine info:", err)
		return exitFailure
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	in, err := c.Info(ctx)
	if err != nil {
		fmt.Fprintf(os.Stderr, "cocaine info: %s: %v\n", *node, err)
		return exitFailure
	}
	nodes := []wire.NodeInfo{in}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(map[string]any{"nodes": nodes})
		return exitOK
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	for _, n := range nodes {
		fmt.Fprintf(tw, "node %s (%s, up %s)\n", n.Endpoint, n.Hostname, time.Duration(n.Uptime*float64(time.Second)).Round(time.Second))
		fmt.Fprintln(tw, "APP\tSTATE\tQUEUE\tSLAVES\tBUSY\tDRIVERS")
		names := make([]string, 0, len(n.Apps))
		for name := range n.Apps {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			a := n.Apps[name]
			state := a.State
			if a.Reason != "" {
				state += " (" + a.Reason + ")"
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\n", name, state, a.QueueDepth, a.Slaves.Total, a.Slaves.Busy, len(a.Drivers))
		}
	}
	tw.Flush()
	return exitOK
}
