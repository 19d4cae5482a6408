package sandbox

import (
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
)

// Limit returns a Launcher that starts copies of tmpl with the app's
// resource limits, in its package directory, with the engine's
// environment minus the engine's own COCAINE_ settings.
func Limit(tmpl *exec.Cmd, app App) Launcher {
	env := slaveEnv(tmpl.Env)
	spec := rlimitSpec(app)
	return LauncherFunc(func(id string) (*exec.Cmd, error) {
		cmd := &exec.Cmd{Path: tmpl.Path, Args: append([]string(nil), tmpl.Args...), Dir: app.Dir, Env: append([]string(nil), env...)}
		if tmpl.Dir != "" {
			cmd.Dir = tmpl.Dir
		}
		if spec == "" {
			return cmd, nil
		}
		self, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("sandbox: find the launcher: %w", err)
		}
		cmd.Env = append(cmd.Env, envRlimits+"="+spec, envExec+"="+cmd.Path)
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
	if l.Memory > 0 {
		parts = append(parts, "as="+strconv.FormatInt(l.Memory, 10))
	}
	if l.OpenFiles > 0 {
		parts = append(parts, "nofile="+strconv.Itoa(l.OpenFiles))
	}
	if s := int64(l.CPUTime.Seconds()); s > 0 {
		parts = append(parts, "cpu="+strconv.FormatInt(s, 10))
	}
	return strings.Join(parts, ",")
}
