// Command cocaine is the whole platform in one binary: the engine node,
// the front, a one-process dev cloud, and the CLI.
package main

import (
	"fmt"
	"os"
)

type command struct {
	run     func(args []string) int
	summary string
}

var commands = map[string]command{
	"dev":     {runDev, "run the whole cloud in one process with the apps of ./examples"},
	"engine":  {runEngine, "run an engine node (-c configs/engine.toml)"},
	"gateway": {runGateway, "run the front, HTTP and FastCGI, with the dealer (-c configs/gateway.toml)"},
	"call":    {runCall, "send one request: cocaine call APP/EVENT [DATA]"},
	"info":    {runInfo, "show the nodes, apps, pools and queues"},
	"app":     {runApp, "manage apps through the REST API: upload, list, info, logs, ... (app -h)"},
	"version": {runVersion, "print the version, commit, and the runtimes and Go SDK inside"},
	"keygen":  {runKeygen, "make a cluster key for the [security] section of engine and gateway configs"},
}

var order = []string{"dev", "engine", "gateway", "call", "info", "app", "version", "keygen"}

func usage() {
	fmt.Fprintf(os.Stderr, "usage: cocaine COMMAND [flags]\n\ncommands:\n")
	for _, name := range order {
		fmt.Fprintf(os.Stderr, "  %-8s %s\n", name, commands[name].summary)
	}
	fmt.Fprintf(os.Stderr, "\nRun 'cocaine COMMAND -h' for a command's flags.\n")
}

func main() {
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help" {
		usage()
		if len(os.Args) < 2 {
			os.Exit(2)
		}
		return
	}
	cmd, ok := commands[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "cocaine: unknown command %q\n\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	os.Exit(cmd.run(os.Args[2:]))
}
