package slave

import (
	"math/bits"
	"sync"

	"github.com/cocaine-cloud/cocaine/slaves/protocol"
)

// buffers recycles the byte slices that carry bodies through a slave: the
// request chunks read from the socket and the response buffers. Sizes go
// by powers of two from 512 bytes to protocol.ChunkSize; each class keeps
// at most about 1 MiB of free buffers, so the pool never holds more than
// about 12 MiB, while a slave that serves the same kind of request again
// and again allocates nothing for its bodies.
//
// A free list rather than a sync.Pool: putting a []byte in a sync.Pool
// allocates its header, which is what the pool is here to avoid.
var buffers bufPool

const (
	minClass     = 9                                      // 512 B
	maxClass     = 20                                     // protocol.ChunkSize, 1 MiB
	retainBytes  = 1 << 20                                // kept free per class
	retainNumber = 64                                     // and at most this many buffers
	_            = uint(1<<maxClass - protocol.ChunkSize) // compiles while a chunk fits the top class
)

type bufPool struct {
	mu   sync.Mutex
	free [maxClass + 1][][]byte
}

func class(n int) int { return max(minClass, bits.Len(uint(n-1))) }

// get returns a buffer of length n, recycled when one of its class is free.
func (p *bufPool) get(n int) []byte {
	if n > 1<<maxClass {
		return make([]byte, n)
	}
	c := class(n)
	p.mu.Lock()
	if k := len(p.free[c]); k > 0 {
		b := p.free[c][k-1]
		p.free[c][k-1] = nil
		p.free[c] = p.free[c][:k-1]
		p.mu.Unlock()
		return b[:n]
	}
	p.mu.Unlock()
	return make([]byte, n, 1<<c)
}

// put gives b back. Only buffers from get come back whole (their capacity
// is their class's size); anything else is left to the collector.
func (p *bufPool) put(b []byte) {
	c := bits.Len(uint(cap(b))) - 1
	if c < minClass || c > maxClass || cap(b) != 1<<c {
		return
	}
	p.mu.Lock()
	if k := len(p.free[c]); k < retainNumber && k<<c < retainBytes {
		p.free[c] = append(p.free[c], b[:0])
	}
	p.mu.Unlock()
}
