package sandbox

import (
	"cmp"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// Resource limits are applied by re-executing the engine's own binary as
// a tiny launcher that calls setrlimit and then execs the slave: Go's
// os/exec cannot set a child's rlimits between fork and exec, and setting
// them on the running child afterwards (prlimit) races with its start.
// Any binary that links this package is such a launcher (see init).
const (
	envRlimits = "COCAINE_LAUNCH_RLIMITS" // "as=N,nofile=N,cpu=N"
	envExec    = "COCAINE_LAUNCH_EXEC"    // the program to exec after setrlimit
	envUser    = "COCAINE_LAUNCH_USER"    // "UID:GID" to become before the exec
)

// SlaveOOMScoreAdj is the OOM score adjustment of every slave: when memory
// runs out the kernel kills a slave before the engine (which lowers its
// own score when it may).
const SlaveOOMScoreAdj = 500

// Limit returns a Launcher that starts copies of tmpl with the app's
// resource limits, in its package directory, with the engine's
// environment minus the engine's own COCAINE_ settings.
//
// The launcher always runs: it also raises the slave's OOM score and, when
// app.User is set, drops to that user just before the exec.
func Limit(tmpl *exec.Cmd, app App) Launcher {
	env := slaveEnv(tmpl.Env)
	if app.User != nil {
		// The engine's home is not the app's to write to.
		env = append(env, "HOME="+app.Dir)
	}
	spec := rlimitSpec(app)
	return LauncherFunc(func(id string) (*exec.Cmd, error) {
		cmd := &exec.Cmd{Path: tmpl.Path, Args: append([]string(nil), tmpl.Args...), Dir: app.Dir, Env: append([]string(nil), env...)}
		if tmpl.Dir != "" {
			cmd.Dir = tmpl.Dir
		}
		self, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("sandbox: find the launcher: %w", err)
		}
		cmd.Env = append(cmd.Env, envRlimits+"="+spec, envExec+"="+cmd.Path)
		if u := app.User; u != nil {
			cmd.Env = append(cmd.Env, fmt.Sprintf("%s=%d:%d", envUser, u.UID, u.GID))
		}
		cmd.Path = self
		return cmd, nil
	})
}

func slaveEnv(extra []string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "COCAINE_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

func rlimitSpec(app App) string {
	l := app.Manifest.ResourceLimits
	var parts []string
	if mem := cmp.Or(l.Memory, app.DefaultMemory); mem > 0 {
		parts = append(parts, "as="+strconv.FormatInt(mem, 10))
	}
	if l.OpenFiles > 0 {
		parts = append(parts, "nofile="+strconv.Itoa(l.OpenFiles))
	}
	if s := int64(l.CPUTime.Seconds()); s > 0 {
		parts = append(parts, "cpu="+strconv.FormatInt(s, 10))
	}
	return strings.Join(parts, ",")
}
