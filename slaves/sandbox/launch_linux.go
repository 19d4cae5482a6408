package sandbox

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
)

func init() {
	spec, ok := os.LookupEnv(envRlimits)
	if !ok {
		return
	}
	// This process is the launcher of a slave: limit, drop privileges,
	// then become the slave. Everything runs on this one thread, which
	// execs: the credentials that matter are the exec'ing thread's.
	runtime.LockOSThread()
	path := os.Getenv(envExec)
	user := os.Getenv(envUser)
	fail := func(err error) {
		fmt.Fprintf(os.Stderr, "cocaine launcher: %v (exec %q)\n", err, path)
		os.Exit(127)
	}
	if path == "" {
		fail(fmt.Errorf("no %s", envExec))
	}
	// Raising one's own score needs no privilege; ignore a missing /proc.
	_ = os.WriteFile("/proc/self/oom_score_adj", []byte(strconv.Itoa(SlaveOOMScoreAdj)), 0)
	if err := applyRlimits(spec); err != nil {
		fail(err)
	}
	env := make([]string, 0, len(os.Environ()))
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, envRlimits+"=") && !strings.HasPrefix(kv, envExec+"=") && !strings.HasPrefix(kv, envUser+"=") {
			env = append(env, kv)
		}
	}
	if user != "" {
		if err := becomeUser(user); err != nil {
			fail(err)
		}
	}
	args := append([]string{path}, os.Args[1:]...)
	err := syscall.Exec(path, args, env)
	fail(fmt.Errorf("exec: %w", err))
}

// becomeUser switches this thread to "UID:GID" with no supplementary
// groups. Raw per-thread calls: Go's process-wide Setuid is refused in a
// cgo binary, and only this thread survives the exec anyway.
func becomeUser(spec string) error {
	u, g, ok := strings.Cut(spec, ":")
	uid, err1 := strconv.Atoi(u)
	gid, err2 := strconv.Atoi(g)
	if !ok || err1 != nil || err2 != nil || uid <= 0 || gid <= 0 {
		return fmt.Errorf("bad user %q", spec)
	}
	if _, _, e := syscall.RawSyscall(syscall.SYS_SETGROUPS, 0, 0, 0); e != 0 {
		return fmt.Errorf("setgroups: %w", e)
	}
	if _, _, e := syscall.RawSyscall(syscall.SYS_SETRESGID, uintptr(gid), uintptr(gid), uintptr(gid)); e != 0 {
		return fmt.Errorf("setresgid %d: %w", gid, e)
	}
	if _, _, e := syscall.RawSyscall(syscall.SYS_SETRESUID, uintptr(uid), uintptr(uid), uintptr(uid)); e != 0 {
		return fmt.Errorf("setresuid %d: %w", uid, e)
	}
	return nil
}

var rlimitResources = map[string]int{
	"as":     syscall.RLIMIT_AS,
	"nofile": syscall.RLIMIT_NOFILE,
	"cpu":    syscall.RLIMIT_CPU,
}

func applyRlimits(spec string) error {
	if spec == "" {
		return nil
	}
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
