package engine

import (
	"context"
	"encoding/json"
	"time"

	zmq "github.com/pebbe/zmq4"
)

// announce publishes the node's info every interval on its PUB endpoint:
// two frames, the request endpoint and the info as JSON (as in 0.9.8).
func (n *Node) announce(ctx context.Context) {
	if n.cfg.Announce == "off" {
		return
	}
	pub, err := zmq.NewSocket(zmq.PUB)
	if err != nil {
		n.log.Error("announce socket", "err", err)
		return
	}
	defer pub.Close()
	_ = pub.SetLinger(0)
	if err := pub.Bind(n.cfg.Announce); err != nil {
		n.log.Error("announce bind", "endpoint", n.cfg.Announce, "err", err)
		return
	}
	t := time.NewTicker(n.cfg.AnnounceInterval.Duration)
	defer t.Stop()
	for {
		b, err := json.Marshal(n.Info())
		if err == nil {
			_, err = pub.SendMessageDontwait(n.cfg.Advertise, b)
		}
		if err != nil {
			n.log.Debug("announce", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
