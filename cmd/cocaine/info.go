package main

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/cocaine-cloud/cocaine/internal/wire"
)

func runInfo(args []string) int {
	fs := newFlags("info", "info [--json] [--discovery SPEC]")
	disc := fs.String("discovery", envOr("COCAINE_DISCOVERY", defaultDiscovery), "where the dealer finds nodes (env COCAINE_DISCOVERY)")
	asJSON := fs.Bool("json", false, "print JSON")
	if fs.Parse(args) != nil {
		return exitUsage
	}
	d, err := cliDealer(*disc, 3*time.Second)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cocaine info:", err)
		return exitUsage
	}
	defer d.Close()
	nodes := d.Nodes()
	if nodes == nil {
		nodes = []wire.NodeInfo{}
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(map[string]any{"nodes": nodes})
		return exitOK
	}
	if len(nodes) == 0 {
		fmt.Fprintf(os.Stderr, "cocaine info: no node answered (discovery %s)\n", *disc)
		return exitFailure
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
