package pool

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/cocaine-cloud/cocaine/internal/wire"
	"github.com/cocaine-cloud/cocaine/slaves/protocol"
	"github.com/cocaine-cloud/cocaine/storage"
)

// Environment given to every slave; see docs/protocol.md.
const (
	EnvSocket    = "COCAINE_SOCKET"
	EnvSlaveID   = "COCAINE_SLAVE_ID"
	EnvApp       = "COCAINE_APP"
	EnvHeartbeat = "COCAINE_HEARTBEAT_MS"
)

// spawn starts one slave. Called with p.mu held; the fork and exec
// happen on a goroutine of their own, so that whoever made the pool grow
// (the engine's router, a front's goroutine) never waits for them, nor
// holds the pool's lock through them. The slave counts as starting at once.
func (p *Pool) spawn() error {
	id := newID()
	cmd, err := p.cfg.Spawner.Command(id)
	if err != nil {
		return err
	}
	cmd.Env = append(cmd.Env, EnvSocket+"="+p.cfg.Socket, EnvSlaveID+"="+id, EnvApp+"="+p.cfg.App, EnvHeartbeat+"="+p.hbMS)
	s := &slave{
		id: id, cmd: cmd, state: slaveStarting, jobs: map[uint64]*Job{},
		spawned: time.Now(), out: newOutbox(), tail: &tail{max: p.cfg.TailLines},
	}
	s.lastSeen.Store(time.Now().UnixNano())
	p.slaves[id] = s
	p.stats.Spawned++
	s.watchT = time.AfterFunc(p.cfg.Engine.StartupTimeout, func() { p.watch(s) })
	p.wg.Add(1)
	go p.start(s)
	return nil
}

// start forks and execs a slave that spawn registered, then follows it.
func (p *Pool) start(s *slave) {
	defer p.wg.Done()
	cmd := s.cmd
	// Plain pipes handed to the child as files: cmd.Wait then returns when
	// the process exits, not when every holder of its output closes it.
	outR, outW, err := os.Pipe()
	if err != nil {
		p.startError(s, fmt.Errorf("stdout pipe: %w", err))
		return
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		p.startError(s, fmt.Errorf("stderr pipe: %w", err))
		return
	}
	cmd.Stdout, cmd.Stderr = outW, errW
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	// Its own process group, so that a kill reaches what the slave forked,
	// and a terminal's ^C reaches the engine, which stops slaves in order.
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	err = cmd.Start()
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		p.startError(s, err)
		return
	}
	p.mu.Lock()
	s.started = true
	if s.state == slaveDead {
		// Killed (stop, startup timeout) while it was being started.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Process.Kill()
	}
	p.mu.Unlock()
	p.log.Debug("slave spawned", "slave", s.id, "pid", cmd.Process.Pid)

	done := make(chan struct{}, 2)
	go p.capture(s, "stdout", outR, done)
	go p.capture(s, "stderr", errR, done)
	// What the slave forked goes with it, whether it was killed or left
	// on its own (idle exit, terminate).
	waitThenKillGroup(cmd.Process.Pid)
	err = cmd.Wait()
	// What it answered before it died may still be in its socket: read it
	// to the end first, or a job whose answer is there would run again.
	// A grandchild holding the socket open gets a second.
	p.mu.Lock()
	s.reaped = true // its pid may belong to another process from now on
	reading := s.reading
	p.mu.Unlock()
	if reading != nil {
		select {
		case <-reading:
		case <-time.After(time.Second):
		}
	}
	// Its jobs go elsewhere now; the rest waits for the output still in
	// the pipes, which belongs in the log and the crash log.
	p.mu.Lock()
	s.exited = true
	p.gone(s, "process exited")
	p.mu.Unlock()
	timeout := time.After(time.Second) // a grandchild may hold the pipes
	for range 2 {
		select {
		case <-done:
		case <-timeout:
			outR.Close()
			errR.Close()
		}
	}
	p.exited(s, err)
}

// startError retires a slave whose process could not be started.
func (p *Pool) startError(s *slave, err error) {
	p.log.Error("cannot start a slave", "err", err)
	p.mu.Lock()
	s.exited = true
	p.gone(s, "cannot start: "+err.Error()) // counts as a failed start
	delete(p.slaves, s.id)
	p.checkEmpty()
	p.mu.Unlock()
}

func (p *Pool) capture(s *slave, stream string, r io.ReadCloser, done chan<- struct{}) {
	defer func() { r.Close(); done <- struct{}{} }()
	readLines(r, MaxLogLine, func(line string) {
		s.tail.add(line)
		if p.cfg.OnLog != nil {
			p.cfg.OnLog(storage.LogLine{Time: time.Now(), App: p.cfg.App, Slave: s.id, Stream: stream, Text: line})
		}
	})
}

// accept takes slave connections; the handshake says which slave it is.
func (p *Pool) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.AcceptUnix()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				p.log.Error("accept", "err", err)
			}
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.serve(c)
		}()
	}
}

func (p *Pool) serve(c *net.UnixConn) {
	defer c.Close()
	conn := protocol.NewConn(c)
	_ = c.SetReadDeadline(time.Now().Add(p.cfg.Engine.StartupTimeout))
	var f protocol.Frame
	if err := conn.Read(&f); err != nil || f.Type != protocol.Handshake {
		p.log.Warn("connection without a handshake dropped", "err", err, "frame", f.Type)
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	p.mu.Lock()
	s := p.slaves[f.SlaveID]
	if s == nil || s.state != slaveStarting {
		p.mu.Unlock()
		p.log.Warn("handshake from an unknown slave dropped", "slave", f.SlaveID, "pid", f.PID)
		return
	}
	if f.Proto != protocol.Version {
		p.kill(s, fmt.Sprintf("protocol version %d, engine speaks %d", f.Proto, protocol.Version))
		p.mu.Unlock()
		return
	}
	s.state = slaveAlive
	s.lastSeen.Store(time.Now().UnixNano())
	s.watchT.Reset(p.cfg.Engine.HeartbeatTimeout)
	p.failures = 0
	p.backoff = time.Time{}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		s.out.run(conn, func(err error) {
			// The slave is gone or going: stop writing, but let the
			// reader drain what it answered before its jobs are judged.
			p.log.Debug("write to slave failed", "slave", s.id, "err", err)
			_ = c.CloseWrite()
		}, p.bodyWritten)
	}()
	p.idle(s)
	p.pump()
	p.mu.Unlock()
	p.log.Debug("slave alive", "slave", s.id)

	p.mu.Lock()
	s.reading = make(chan struct{})
	reading := s.reading
	p.mu.Unlock()
	err := p.read(s, conn)
	close(reading)
	p.mu.Lock()
	if err != nil && s.state != slaveDead {
		p.kill(s, err.Error())
	}
	p.gone(s, "connection closed")
	p.mu.Unlock()
}

// read handles frames from an alive slave until its connection ends. It
// returns an error for a protocol violation.
func (p *Pool) read(s *slave, conn *protocol.Conn) error {
	var f protocol.Frame
	for {
		if err := conn.Read(&f); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
				return nil
			}
			if errors.Is(err, protocol.ErrMalformed) || errors.Is(err, protocol.ErrTooLarge) {
				return fmt.Errorf("protocol violation: %w", err)
			}
			return nil
		}
		s.lastSeen.Store(time.Now().UnixNano())
		switch f.Type {
		case protocol.Heartbeat:
		case protocol.Chunk:
			p.mu.Lock()
			j := s.jobs[f.Session]
			live := j != nil && j.state == jobRunning && j.session == f.Session
			if live {
				j.chunked = true
			}
			p.mu.Unlock()
			if live {
				s.inSink.Store(true)
				j.chunk(f.Data)
				s.inSink.Store(false)
				s.lastSeen.Store(time.Now().UnixNano())
			}
		case protocol.Choke, protocol.Error:
			p.mu.Lock()
			j, ok := s.jobs[f.Session]
			if !ok {
				p.mu.Unlock()
				return fmt.Errorf("protocol violation: %s for unknown session %d", f.Type, f.Session)
			}
			delete(s.jobs, f.Session)
			var o outcome
			live := j.state == jobRunning && j.session == f.Session
			if live {
				observe(p.cfg.RunTime, j.startedAt)
				s.served++
				if f.Type == protocol.Choke {
					p.stats.Processed++
					o = j.finish(0, "")
				} else {
					code := wire.Code(f.Code)
					if !code.Known() {
						code = wire.CodeApp
					}
					p.stats.Failed++
					o = j.finish(code, f.Message)
				}
			}
			p.idle(s)
			p.pump()
			p.mu.Unlock()
			if live {
				o.deliver()
			}
		case protocol.Terminate:
			p.mu.Lock()
			if s.state == slaveAlive {
				s.state = slaveTerminating
				s.requested = true
				s.reason = "slave leaving: " + f.Message
			}
			p.pump()
			p.mu.Unlock()
		default:
			return fmt.Errorf("protocol violation: unexpected %s from slave", f.Type)
		}
	}
}

// idle arms the idle exit of a slave that has no job.
func (p *Pool) idle(s *slave) {
	if s.state != slaveAlive || len(s.jobs) > 0 || s.idleT != nil {
		return
	}
	s.idleT = time.AfterFunc(p.cfg.Engine.IdleTimeout, func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if s.state == slaveAlive && len(s.jobs) == 0 {
			p.stats.IdleExits++
			p.terminate(s, "idle")
		}
	})
}

// watch fires at the startup timeout, then every heartbeat timeout.
func (p *Pool) watch(s *slave) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch s.state {
	case slaveDead:
		return
	case slaveStarting:
		p.kill(s, fmt.Sprintf("no handshake within startup-timeout %v", p.cfg.Engine.StartupTimeout))
		p.startFailed(s.reason)
		return
	}
	silent := time.Since(time.Unix(0, s.lastSeen.Load()))
	if s.inSink.Load() {
		silent = 0 // its answer waits for a slow caller: not the slave's fault
	}
	if limit := p.cfg.Engine.HeartbeatTimeout; silent >= limit {
		p.kill(s, fmt.Sprintf("no heartbeat for %v", silent.Round(time.Millisecond)))
		return
	} else {
		s.watchT.Reset(limit - silent)
	}
}

// terminate asks a slave to finish its jobs and leave, and kills it if it
// is still there after termination-timeout. Called with p.mu held.
func (p *Pool) terminate(s *slave, reason string) {
	if s.state == slaveDead || s.state == slaveTerminating {
		return
	}
	if s.state == slaveStarting {
		p.kill(s, reason)
		return
	}
	s.state, s.requested, s.reason = slaveTerminating, true, reason
	if s.idleT != nil {
		s.idleT.Stop()
	}
	s.out.push(protocol.Frame{Type: protocol.Terminate, Message: reason})
	s.killT = time.AfterFunc(p.cfg.Engine.TerminationTimeout, func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if !s.exited {
			p.kill(s, fmt.Sprintf("still running %v after terminate (%s)", p.cfg.Engine.TerminationTimeout, reason))
		}
	})
}

// kill ends a slave at once. Called with p.mu held.
func (p *Pool) kill(s *slave, reason string) {
	if !s.exited && s.started && !s.reaped {
		// The slave runs in its own process group: take its children too.
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		_ = s.cmd.Process.Kill()
	}
	if !s.requested {
		s.fault = reason
	}
	s.requested = true
	p.gone(s, reason)
}

// gone retires a slave: its unanswered jobs run again elsewhere if they
// can, else they end in 500. Called with p.mu held; idempotent.
func (p *Pool) gone(s *slave, reason string) {
	if s.state == slaveDead {
		return
	}
	wasStarting := s.state == slaveStarting
	s.state = slaveDead
	if s.reason == "" || !s.requested {
		s.reason = reason
	}
	stopTimers(s.watchT, s.idleT, s.killT)
	s.out.close()
	var outs []outcome
	for session, j := range s.jobs {
		delete(s.jobs, session)
		if j.state != jobRunning || j.session != session {
			continue // already answered (timed out); nothing to re-run
		}
		if j.timeoutT != nil {
			j.timeoutT.Stop()
		}
		if !j.chunked && !j.noReplay && j.attempts+1 < p.cfg.MaxAttempts && p.state == StateRunning {
			j.attempts++
			j.slave = nil
			p.stats.Retried++
			p.enqueue(j, true)
			continue
		}
		p.stats.Failed++
		code, msg := wire.CodeServer, "slave died: "+s.reason
		if !j.chunked && p.state != StateRunning {
			code = wire.CodeUnavailable // not run: safe to send elsewhere
		}
		outs = append(outs, j.finish(code, msg))
	}
	if wasStarting && !s.requested {
		p.startFailed("slave exited before its handshake: " + reason)
	}
	p.pump()
	if len(outs) > 0 {
		// Deliver outside the lock, in order, without holding up the caller.
		go deliver(outs)
	}
	p.log.Debug("slave gone", "slave", s.id, "reason", s.reason)
}

// exited is called once the slave's process has been reaped.
func (p *Pool) exited(s *slave, waitErr error) {
	status := "exit status 0"
	if waitErr != nil {
		status = waitErr.Error()
	}
	p.mu.Lock()
	crashed := !s.requested || s.fault != ""
	reason := s.fault
	if reason == "" {
		reason = "exited unexpectedly: " + status
	}
	p.gone(s, "process "+status)
	delete(p.slaves, s.id)
	if crashed {
		p.stats.Crashed++
	}
	p.checkEmpty()
	p.mu.Unlock()

	if crashed {
		p.log.Warn("slave crashed", "slave", s.id, "reason", reason, "status", status)
		if p.cfg.OnCrash != nil {
			p.cfg.OnCrash(Crash{App: p.cfg.App, Slave: s.id, Time: time.Now(), Reason: reason, Status: status, Output: s.tail.get()})
		}
	}
}

// startFailed counts a slave lost before its handshake: back off before
// the next spawn, and after BrokenAfter in a row mark the app broken.
func (p *Pool) startFailed(reason string) {
	p.failures++
	d := p.cfg.BackoffMin << min(p.failures-1, 16)
	p.backoff = time.Now().Add(min(d, p.cfg.BackoffMax))
	if p.failures < p.cfg.BrokenAfter || p.state != StateRunning {
		return
	}
	p.state = StateBroken
	p.reason = fmt.Sprintf("%d slaves in a row failed to start; last: %s", p.failures, strings.TrimSpace(reason))
	p.log.Error("app is broken", "reason", p.reason)
	var outs []outcome
	for e := p.queue.Front(); e != nil; e = p.queue.Front() {
		j := p.queue.Remove(e).(*Job)
		p.stats.Failed++
		outs = append(outs, j.finish(wire.CodeUnavailable, "app is broken: "+p.reason))
	}
	go deliver(outs)
}

func stopTimers(ts ...*time.Timer) {
	for _, t := range ts {
		if t != nil {
			t.Stop()
		}
	}
}
