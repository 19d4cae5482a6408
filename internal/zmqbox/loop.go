// Package zmqbox lets any goroutine hand messages to the one goroutine
// that owns a ZeroMQ socket (ZeroMQ sockets are not thread-safe), without
// a polling interval and without that goroutine sleeping in cgo.
package zmqbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"

	zmq "github.com/pebbe/zmq4"
	"golang.org/x/sys/unix"
)

// Loop runs a ZeroMQ socket from one goroutine that sleeps in Go, not in
// zmq_poll: the socket's ZMQ_FD is watched by Go's network poller, and
// messages to send arrive on a Go channel. A goroutine blocked in a cgo
// poll costs a thread hand-off on every wake-up; on a small machine those
// hand-offs were a large part of a request's latency.
type Loop struct {
	sock *zmq.Socket
	// Messages to send wait in a slice the loop swaps out whole on each
	// wake-up: posting never blocks (callers hold their own locks, and
	// flow control above bounds what waits), and one wake-up sends
	// everything that gathered.
	pmu     sync.Mutex
	pending [][][]byte
	spare   [][][]byte
	wake    chan struct{}
	stopped bool
	ready   chan struct{} // watch → loop: ZMQ_FD became readable
	acked   chan struct{} // loop → watch: ZMQ_EVENTS was read since
	file    *os.File      // a dup of ZMQ_FD, so closing it leaves zmq's own fd alone
	done    chan struct{}
	once    sync.Once
}

// NewLoop prepares a loop for sock. queue is a hint of how many messages
// may wait to be sent.
func NewLoop(sock *zmq.Socket, queue int) (*Loop, error) {
	fd, err := sock.GetFd()
	if err != nil {
		return nil, fmt.Errorf("zmqbox: ZMQ_FD: %w", err)
	}
	dup, err := unix.Dup(fd)
	if err != nil {
		return nil, fmt.Errorf("zmqbox: dup ZMQ_FD: %w", err)
	}
	if err := unix.SetNonblock(dup, true); err != nil {
		unix.Close(dup)
		return nil, err
	}
	l := &Loop{sock: sock, wake: make(chan struct{}, 1), pending: make([][][]byte, 0, min(queue, 1024)), ready: make(chan struct{}, 1),
		acked: make(chan struct{}, 1), file: os.NewFile(uintptr(dup), "zmq-fd"), done: make(chan struct{})}
	rc, err := l.file.SyscallConn()
	if err != nil {
		l.file.Close()
		return nil, err
	}
	go l.watch(rc)
	return l, nil
}

// watch wakes the loop whenever ZMQ_FD is readable, then waits until the
// loop has read ZMQ_EVENTS (which resets the fd) before looking again.
// It checks the fd's level with poll(2) rather than trusting a remembered
// edge: Go's poller forgets an edge that came between two waits.
func (l *Loop) watch(rc syscall.RawConn) {
	for {
		err := rc.Read(func(fd uintptr) bool {
			pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			n, err := unix.Poll(pfd, 0)
			return err != nil || n > 0
		})
		if err != nil {
			return // the file was closed
		}
		select {
		case l.ready <- struct{}{}:
		default:
		}
		select {
		case <-l.acked:
		case <-l.done:
			return
		}
	}
}

// Post queues a message for the loop to send. It never blocks, so it is
// safe under the caller's locks and from the loop's own goroutine; once
// the loop has stopped, the message is dropped.
func (l *Loop) Post(frames [][]byte) {
	l.pmu.Lock()
	if l.stopped {
		l.pmu.Unlock()
		return
	}
	first := len(l.pending) == 0
	l.pending = append(l.pending, frames)
	l.pmu.Unlock()
	if first {
		select {
		case l.wake <- struct{}{}:
		default:
		}
	}
}

// flush sends every posted message.
func (l *Loop) flush() {
	for {
		l.pmu.Lock()
		batch := l.pending
		l.pending = l.spare[:0]
		l.pmu.Unlock()
		if len(batch) == 0 {
			l.spare = batch
			return
		}
		for i, msg := range batch {
			_ = l.Send(msg)
			batch[i] = nil
		}
		l.spare = batch
	}
}

// Run receives and sends until ctx ends, calling recv for every message
// (on the loop's goroutine; recv may call Send).
func (l *Loop) Run(ctx context.Context, recv func([][]byte)) {
	defer l.stop()
	for {
		if !l.drain(recv) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-l.ready:
			if !l.drain(recv) {
				return
			}
			select {
			case l.acked <- struct{}{}:
			default:
			}
		case <-l.wake:
			l.flush()
		}
	}
}

// drain receives until ZMQ_EVENTS shows nothing more to read. ZMQ_FD is
// edge-triggered: anything left unread would wait for the next message.
func (l *Loop) drain(recv func([][]byte)) bool {
	for {
		ev, err := l.sock.GetEvents()
		if err != nil {
			if errors.Is(zmq.AsErrno(err), zmq.Errno(syscall.EINTR)) {
				continue
			}
			return false
		}
		if ev&zmq.POLLIN == 0 {
			return true
		}
		msg, err := l.sock.RecvMessageBytes(zmq.DONTWAIT)
		if err != nil {
			return true
		}
		recv(msg)
	}
}

// Send sends from the loop's own goroutine. A peer gone or over its
// high-water mark loses the message, as a ROUTER does.
func (l *Loop) Send(msg [][]byte) error {
	_, err := l.sock.SendMessageDontwait(msg)
	return err
}

func (l *Loop) stop() {
	l.once.Do(func() {
		l.pmu.Lock()
		l.stopped = true
		l.pending = nil
		l.pmu.Unlock()
		close(l.done)
		l.file.Close()
	})
}
