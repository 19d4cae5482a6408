package slave

import "sync"

// ReadAhead bounds the request body a slave holds that no handler has
// taken yet, over all its sessions. Past it the read loop stops reading the
// socket until handlers have taken half of it, or one of them waits for
// input: a body nobody reads then waits in the socket, and the engine's
// writes block, instead of growing the slave's memory. (The Python runtime
// does the same, with the same figure.) A cancel or terminate sent behind
// such a body waits with it; heartbeats go on.
const ReadAhead = 8 << 20

// readAhead counts what sessions hold and pauses the read loop.
type readAhead struct {
	mu      sync.Mutex
	cond    sync.Cond
	limit   int
	held    int  // bytes queued in requests, not yet taken by handlers
	waiting int  // handlers waiting for input
	paused  bool // the read loop waits (for tests)
}

func newReadAhead(limit int) *readAhead {
	a := &readAhead{limit: limit}
	a.cond.L = &a.mu
	return a
}

func (a *readAhead) add(n int) {
	a.mu.Lock()
	a.held += n
	a.mu.Unlock()
}

func (a *readAhead) sub(n int) {
	a.mu.Lock()
	a.held -= n
	resume := a.paused && a.held <= a.limit/2
	a.mu.Unlock()
	if resume {
		a.cond.Broadcast()
	}
}

// wait marks a handler waiting for input (in) or done waiting.
func (a *readAhead) wait(in bool) {
	a.mu.Lock()
	if in {
		a.waiting++
	} else {
		a.waiting--
	}
	resume := in && a.paused
	a.mu.Unlock()
	if resume {
		a.cond.Broadcast()
	}
}

// gate returns once the read loop may read on.
func (a *readAhead) gate() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.held <= a.limit {
		return
	}
	a.paused = true
	for a.held > a.limit/2 && a.waiting == 0 {
		a.cond.Wait()
	}
	a.paused = false
}

// unblock lets the read loop read on for good: the engine seems gone,
// and only a read tells.
func (a *readAhead) unblock() {
	a.mu.Lock()
	a.limit = 1 << 62
	a.mu.Unlock()
	a.cond.Broadcast()
}
