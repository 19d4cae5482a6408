package sandbox

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

func init() {
	spec, ok := os.LookupEnv(envRlimits)
	if !ok {
		return
	}
	// This process is the launcher of a slave: limit, then become the slave.
	path := os.Getenv(envExec)
	if err := applyRlimits(spec); err != nil || path == "" {
		fmt.Fprintf(os.Stderr, "cocaine launcher: %v (exec %q)\n", err, path)
		os.Exit(127)
	}
	env := make([]string, 0, len(os.Environ()))
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, envRlimits+"=") && !strings.HasPrefix(kv, envExec+"=") {
			env = append(env, kv)
		}
	}
	args := append([]string{path}, os.Args[1:]...)
	err := syscall.Exec(path, args, env)
	fmt.Fprintf(os.Stderr, "cocaine launcher: exec %s: %v\n", path, err)
	os.Exit(127)
}

var rlimitResources = map[string]int{
	"as":     syscall.RLIMIT_AS,
	"nofile": syscall.RLIMIT_NOFILE,
	"cpu":    syscall.RLIMIT_CPU,
}

func applyRlimits(spec string) error {
	for _, part := range strings.Split(spec, ",") {
		name, val, _ := strings.Cut(part, "=")
		res, ok := rlimitResources[name]
		if !ok {
			return fmt.Errorf("unknown rlimit %q", name)
		}
		n, err := strconv.ParseUint(val, 10, 64)
		if err != nil {
			return fmt.Errorf("rlimit %s: %w", name, err)
		}
		lim := syscall.Rlimit{Cur: n, Max: n}
		if res == syscall.RLIMIT_CPU {
			// SIGXCPU at the soft limit lets a runtime log why it dies;
			// the hard limit a second later is the kill.
			lim.Max = n + 1
		}
		if err := syscall.Setrlimit(res, &lim); err != nil {
			return fmt.Errorf("setrlimit %s=%d: %w", name, n, err)
		}
	}
	return nil
}
