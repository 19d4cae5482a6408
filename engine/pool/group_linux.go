package pool

import (
	"errors"
	"syscall"

	"golang.org/x/sys/unix"
)

// waitThenKillGroup waits for the slave (the leader of its own process
// group) to exit without reaping it, then kills the rest of its group.
// While the leader is an unreaped zombie its id cannot be reused, so the
// group id names only what the slave forked, never a newer process.
// What left the group (setsid, setpgid) escapes; only a cgroup would
// hold it.
func waitThenKillGroup(pid int) {
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
}
