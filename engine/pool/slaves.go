package pool

import (
	"sort"
	"time"
)

// SlaveInfo is one slave as the node page of the dashboard shows it.
type SlaveInfo struct {
	ID     string  `json:"id"`
	PID    int     `json:"pid"`
	State  string  `json:"state"`  // starting, idle, busy, terminating
	Uptime float64 `json:"uptime"` // seconds
	Jobs   int     `json:"jobs"`   // running now
	Served uint64  `json:"served"` // answered since it started
	RSS    int64   `json:"rss"`    // resident memory in bytes; 0 when unknown
}

// Slaves lists the live slaves, oldest first. Memory is read from /proc
// outside the pool lock.
func (p *Pool) Slaves() []SlaveInfo {
	p.mu.Lock()
	out := make([]SlaveInfo, 0, len(p.slaves))
	now := time.Now()
	for _, s := range p.slaves {
		if s.state == slaveDead {
			continue
		}
		in := SlaveInfo{ID: s.id, State: s.state.String(), Uptime: now.Sub(s.spawned).Seconds(), Jobs: len(s.jobs), Served: s.served}
		if s.started { // forked off the lock: the pid is there once started is set
			in.PID = s.cmd.Process.Pid
		}
		if s.state == slaveAlive {
			in.State = "idle"
			if len(s.jobs) > 0 {
				in.State = "busy"
			}
		}
		out = append(out, in)
	}
	p.mu.Unlock()
	for i := range out {
		out[i].RSS = rss(out[i].PID)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Uptime > out[j].Uptime })
	return out
}
