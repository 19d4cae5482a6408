package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/cocaine-cloud/cocaine/gateway"
	"github.com/cocaine-cloud/cocaine/internal/wire"
)

func runCall(args []string) int {
	fs := newFlags("call", "call [flags] APP/EVENT [DATA]   (DATA from stdin when absent)")
	disc := fs.String("discovery", envOr("COCAINE_DISCOVERY", defaultDiscovery), "where the dealer finds nodes: static:ENDPOINTS, file:PATH, multicast; several joined by ';' (env COCAINE_DISCOVERY)")
	timeout := fs.Duration("timeout", 0, "job timeout on the engine (504 past it); 0 = none")
	deadline := fs.Duration("deadline", 30*time.Second, "answer within this long or fail with 520")
	urgent := fs.Bool("urgent", false, "put the request at the front of the queue")
	nretries := fs.Int("retries", 1, "re-sends allowed if a node is lost after accepting the request")
	if fs.Parse(args) != nil {
		return exitUsage
	}
	if fs.NArg() < 1 || fs.NArg() > 2 {
		fs.Usage()
		return exitUsage
	}
	app, event, ok := strings.Cut(fs.Arg(0), "/")
	if !ok || app == "" || event == "" {
		fmt.Fprintf(os.Stderr, "cocaine call: %q is not APP/EVENT\n", fs.Arg(0))
		return exitUsage
	}
	var body []byte
	if fs.NArg() == 2 {
		body = []byte(fs.Arg(1))
	} else {
		var err error
		if body, err = io.ReadAll(os.Stdin); err != nil {
			fmt.Fprintln(os.Stderr, "cocaine call: read stdin:", err)
			return exitFailure
		}
	}
	d, err := cliDealer(*disc, 3*time.Second)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cocaine call:", err)
		return exitUsage
	}
	defer d.Close()
	pol := wire.Policy{Urgent: *urgent, Timeout: *timeout, Retries: *nretries}
	ctx := context.Background()
	if *deadline > 0 {
		pol.Deadline = time.Now().Add(*deadline)
		var cancel context.CancelFunc
		// A little past the deadline: the engine's 520 is the better answer.
		ctx, cancel = context.WithDeadline(ctx, pol.Deadline.Add(time.Second))
		defer cancel()
	}
	s, err := d.Send(app, event, body, pol)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cocaine call:", err)
		return exitFailure
	}
	defer s.Close()
	for {
		ev, err := s.Next(ctx)
		if errors.Is(err, context.DeadlineExceeded) {
			fmt.Fprintf(os.Stderr, "cocaine call: no answer within the deadline (is an engine running? discovery %s)\n", *disc)
			return exitFailure
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "cocaine call:", err)
			return exitFailure
		}
		switch ev.Kind {
		case gateway.EventChunk:
			os.Stdout.Write(ev.Data)
		case gateway.EventError:
			fmt.Fprintf(os.Stderr, "cocaine call: error %d: %s\n", int(ev.Err.Code), ev.Err.Message)
			return exitFailure
		case gateway.EventEnd:
			return exitOK
		}
	}
}
