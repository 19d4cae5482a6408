package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cocaine-cloud/cocaine/engine/appstore"
	"github.com/cocaine-cloud/cocaine/storage"
)

func newTable() *tabwriter.Writer { return tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0) }

// appState sums an app up across nodes: "stopped", "not running" (stored,
// no node runs it yet), or each distinct node state with its count.
func appState(stopped bool, nodes []nodeState) string {
	if stopped {
		if len(nodes) > 0 {
			return "stopping"
		}
		return "stopped"
	}
	if len(nodes) == 0 {
		return "not running"
	}
	counts := map[string]int{}
	for _, n := range nodes {
		counts[n.State]++
	}
	states := make([]string, 0, len(counts))
	for s, n := range counts {
		states = append(states, fmt.Sprintf("%s %d/%d", s, n, len(nodes)))
	}
	sort.Strings(states)
	return strings.Join(states, ", ")
}

func printAppList(apps []listedApp) {
	if len(apps) == 0 {
		fmt.Println("no apps; `cocaine app upload DIR` stores one")
		return
	}
	tw := newTable()
	fmt.Fprintln(tw, "NAME\tVERSION\tSTATE\tSLAVES\tQUEUE\tUPLOADED")
	for _, a := range apps {
		slaves, queue := 0, 0
		for _, n := range a.Nodes {
			slaves += n.Slaves.Total
			queue += n.QueueDepth
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\n", a.Name, versionName(a.Label, a.Version), appState(a.Stopped, a.Nodes), slaves, queue, ago(a.Uploaded))
	}
	tw.Flush()
}

func printAppInfo(s appstore.Summary, versions []appstore.Version, nodes []nodeState, manifest json.RawMessage) {
	tw := newTable()
	fmt.Fprintf(tw, "name:\t%s\n", s.Name)
	fmt.Fprintf(tw, "version:\t%s\n", versionName(s.Label, s.Version)+numberOf(s.Label, s.Version))
	fmt.Fprintf(tw, "state:\t%s\n", appState(s.Stopped, nodes))
	fmt.Fprintf(tw, "uploaded:\t%s (%s)\n", s.Uploaded.Local().Format(time.RFC3339), ago(s.Uploaded))
	fmt.Fprintf(tw, "package:\t%s\n", sizeOf(s.Size))
	tw.Flush()

	fmt.Println("\nversions (newest first; rollback steps down this list):")
	tw = newTable()
	fmt.Fprintln(tw, "  \tVERSION\tUPLOADED\tSIZE\tNUMBER")
	labels := map[string]string{}
	for _, v := range versions {
		mark := ""
		if v.Current {
			mark = "*"
		}
		labels[v.Version] = v.Label
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", mark, versionName(v.Label, v.Version), v.Uploaded.Local().Format(time.RFC3339), sizeOf(v.Size), v.Version)
	}
	tw.Flush()

	fmt.Println("\nnodes:")
	if len(nodes) == 0 {
		fmt.Println("  none runs it")
	} else {
		tw = newTable()
		fmt.Fprintln(tw, "  NODE\tSTATE\tVERSION\tQUEUE\tSLAVES\tBUSY")
		for _, n := range nodes {
			state := n.State
			if n.Reason != "" {
				state += " (" + n.Reason + ")"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\t%d\t%d\n", n.Endpoint, state, versionName(labels[n.Version], n.Version), n.QueueDepth, n.Slaves.Total, n.Slaves.Busy)
		}
		tw.Flush()
	}

	var pretty bytes.Buffer
	if json.Indent(&pretty, manifest, "  ", "  ") == nil {
		fmt.Printf("\nmanifest:\n  %s\n", pretty.String())
	}
}

func printLogLine(l storage.LogLine) {
	who := l.Slave
	if l.Stream != "" && l.Stream != "stdout" {
		who += " " + l.Stream
	}
	fmt.Printf("%s [%s] %s\n", l.Time.Local().Format("2006-01-02 15:04:05.000"), strings.TrimSpace(who), l.Text)
}

func printCrashes(app string, list []appstore.Crash) {
	if len(list) == 0 {
		fmt.Printf("no crash logs for %s\n", app)
		return
	}
	tw := newTable()
	fmt.Fprintln(tw, "KEY\tTIME\tSLAVE\tREASON\tSTATUS\tSIZE")
	for _, c := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", c.Key, c.Time.Local().Format(time.RFC3339), c.Slave, c.Reason, c.Status, sizeOf(c.Size))
	}
	tw.Flush()
	fmt.Printf("\n`cocaine app crashlog %s KEY` prints one\n", app)
}

func printCrash(c appstore.Crash) {
	tw := newTable()
	fmt.Fprintf(tw, "app:\t%s\n", c.App)
	fmt.Fprintf(tw, "time:\t%s\n", c.Time.Local().Format(time.RFC3339Nano))
	fmt.Fprintf(tw, "slave:\t%s\n", c.Slave)
	fmt.Fprintf(tw, "node:\t%s\n", c.Node)
	fmt.Fprintf(tw, "reason:\t%s\n", c.Reason)
	fmt.Fprintf(tw, "status:\t%s\n", c.Status)
	tw.Flush()
	fmt.Printf("\n%s\n", strings.TrimRight(c.Output, "\n"))
}

func ago(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := time.Since(t).Round(time.Second)
	if d < 0 {
		d = 0
	}
	return d.String() + " ago"
}

func sizeOf(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// versionName is a version as people count them ("v3"), or its number
// for one stored before uploads were counted.
func versionName(label, number string) string {
	if label != "" {
		return label
	}
	return number
}

// numberOf adds the number beside a label, for `app info`.
func numberOf(label, number string) string {
	if label == "" {
		return ""
	}
	return " (" + number + ")"
}
