package gateway

import (
	"fmt"
	"sync/atomic"
	"time"

	zmq "github.com/pebbe/zmq4"
)

var monitorSeq atomic.Uint64

// watchDisconnects calls gone when sock's connection to its peer drops: a
// node killed with kill -9 closes its TCP connections at once, long
// before three announce intervals pass, and its requests can be re-sent
// at once. The monitor socket belongs to this goroutine alone; it stops
// when stop closes.
func watchDisconnects(sock *zmq.Socket, stop <-chan struct{}, gone func()) error {
	addr := fmt.Sprintf("inproc://gateway-monitor-%d", monitorSeq.Add(1))
	if err := sock.Monitor(addr, zmq.EVENT_DISCONNECTED); err != nil {
		return err
	}
	mon, err := zmq.NewSocket(zmq.PAIR)
	if err != nil {
		return err
	}
	if err := mon.Connect(addr); err != nil {
		mon.Close()
		return err
	}
	go func() {
		defer mon.Close()
		poller := zmq.NewPoller()
		poller.Add(mon, zmq.POLLIN)
		for {
			select {
			case <-stop:
				return
			default:
			}
			polled, err := poller.Poll(200 * time.Millisecond)
			if err != nil || len(polled) == 0 {
				continue
			}
			ev, _, _, err := mon.RecvEvent(zmq.DONTWAIT)
			if err == nil && ev == zmq.EVENT_DISCONNECTED {
				gone()
			}
		}
	}()
	return nil
}
