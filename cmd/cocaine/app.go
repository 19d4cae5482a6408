package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

// Exit codes of `cocaine app`, beyond exitOK, exitFailure and exitUsage.
const (
	exitNotFound = 3 // no such app, version or crash log
	exitInvalid  = 4 // the package or its manifest was refused
)

const exitCodesHelp = `exit codes: 0 ok, 1 request or server failed (unreachable, 401/403, 5xx),
  2 usage, 3 not found, 4 invalid package or manifest (400/413/422 on upload)`

// appCommand is one `cocaine app` subcommand.
type appCommand struct {
	args    string // positional arguments, for usage
	summary string
	// flags adds the subcommand's own flags; run gets the positionals.
	flags func(fs *flag.FlagSet) func(c *apiClient, args []string) int
	nargs [2]int // least and most positionals
}

var appCommands = map[string]appCommand{
	"upload":   {"DIR|FILE", "store a package (a folder with manifest.json, or a tar.gz) as an app's new version", uploadFlags, [2]int{1, 1}},
	"list":     {"", "list the apps and their state on each node", listFlags, [2]int{0, 0}},
	"info":     {"NAME", "show an app: versions, state and pool on each node, manifest", infoFlags, [2]int{1, 1}},
	"remove":   {"NAME", "remove an app with its versions, log and crash logs", simpleFlags("DELETE", ""), [2]int{1, 1}},
	"start":    {"NAME", "let a stopped app run again", simpleFlags("POST", "/start"), [2]int{1, 1}},
	"stop":     {"NAME", "keep an app stored but not running", simpleFlags("POST", "/stop"), [2]int{1, 1}},
	"rollback": {"NAME", "make the previous version current (again: one more step back)", simpleFlags("POST", "/rollback"), [2]int{1, 1}},
	"logs":     {"NAME", "print an app's log; -f follows it", logsFlags, [2]int{1, 1}},
	"crashlog": {"NAME [KEY]", "list an app's crash logs, or print one", crashlogFlags, [2]int{1, 2}},
}

var appOrder = []string{"upload", "list", "info", "remove", "start", "stop", "rollback", "logs", "crashlog"}

func appUsage(w io.Writer) {
	fmt.Fprintf(w, "usage: cocaine app COMMAND [flags] [ARGS]\n\ncommands:\n")
	for _, name := range appOrder {
		c := appCommands[name]
		fmt.Fprintf(w, "  %-8s %-11s %s\n", name, c.args, c.summary)
	}
	fmt.Fprintf(w, "\nflags of every command:\n"+
		"  --api URL     the REST API (env COCAINE_API; default %s)\n"+
		"  --token T     bearer token for writes (env COCAINE_TOKEN; else ./var/token, kept by `cocaine dev`)\n"+
		"  --json        print JSON for scripts\n\n%s\n\nRun 'cocaine app COMMAND -h' for a command's flags.\n", defaultAPI, exitCodesHelp)
}

func runApp(args []string) int {
	if len(args) == 0 {
		appUsage(os.Stderr)
		return exitUsage
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		appUsage(os.Stdout)
		return exitOK
	}
	cmd, ok := appCommands[args[0]]
	if !ok {
		fmt.Fprintf(os.Stderr, "cocaine app: unknown command %q\n\n", args[0])
		appUsage(os.Stderr)
		return exitUsage
	}
	name := args[0]
	fs := flag.NewFlagSet("app "+name, flag.ContinueOnError)
	opts := commonFlags(fs)
	run := cmd.flags(fs)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: cocaine app %s [flags] %s\n\n%s\n\nflags:\n", name, cmd.args, cmd.summary)
		fs.PrintDefaults()
		fmt.Fprintf(fs.Output(), "\n%s\n", exitCodesHelp)
	}
	pos, err := parseInterspersed(fs, args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		return exitUsage
	}
	if len(pos) < cmd.nargs[0] || len(pos) > cmd.nargs[1] {
		fmt.Fprintf(os.Stderr, "cocaine app %s: want %s, got %q\n\n", name, cmd.args, pos)
		fs.Usage()
		return exitUsage
	}
	c, err := opts.client()
	if err != nil {
		fmt.Fprintf(os.Stderr, "cocaine app %s: %v\n", name, err)
		return exitUsage
	}
	c.cmd = name
	return run(c, pos)
}

// parseInterspersed lets flags come after the positionals
// (`cocaine app logs echo -f`), which flag.Parse alone stops at.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}
