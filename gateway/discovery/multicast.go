package discovery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/cocaine-cloud/cocaine/internal/mcast"
	"log/slog"
	"net"
	"syscall"
	"time"
)

// Beacon format, version 1 (sent by engine.RunBeacon, read by Multicast).
// Every interval the engine sends one UDP datagram to the multicast group
// (default 239.0.100.53:5099, TTL 1) holding one JSON object of at most
// 1024 bytes:
//
//		{"v":1,"announce":"tcp://host:5001","interval-ms":1000,"id":"5f0c9a7e31d2b846"}
//
//	  - v: format version; a listener ignores any other, so a later format
//	    can share the group.
//	  - announce: the node's announce (ZeroMQ PUB) endpoint, tcp://host:port.
//	    A wildcard host (*, 0.0.0.0, ::) is replaced by the datagram's
//	    source address, so a node bound to every interface can still be
//	    reached.
//	  - interval-ms: how often the node beacons; a listener drops the
//	    endpoint after three intervals without one (5 s when absent or 0).
//	  - id: random per engine run, so a restart can be told from a node that
//	    kept going; informational.
//
// Unknown fields are ignored, so version 1 can grow. A datagram that is
// larger than 1024 bytes, is not such an object, or carries a bad endpoint
// is dropped.
type beacon struct {
	V          int    `json:"v"`
	Announce   string `json:"announce"`
	IntervalMS int64  `json:"interval-ms"`
	ID         string `json:"id,omitempty"`
}

const (
	// DefaultGroup is where engines beacon unless configured otherwise.
	DefaultGroup = "239.0.100.53:5099"
	maxBeacon    = 1024
	// defaultExpire is for beacons that do not say their interval.
	defaultExpire = 5 * time.Second
	// maxInterval bounds interval-ms: a beacon claiming a day would pin a
	// dead node in the set for three days.
	maxInterval = time.Hour
)

// MulticastConfig configures a Multicast source.
type MulticastConfig struct {
	// Group is the IPv4 multicast group:port beacons are sent to.
	// Default DefaultGroup.
	Group string
	// Interface is the name of the interface to join the group on.
	// Default: the first up, non-loopback interface with the MULTICAST
	// flag and an IPv4 address, else the loopback. Beacon senders on the
	// same machine must use the same interface.
	Interface string
	// Expire drops an endpoint whose beacons stop for this long. Default:
	// three times the interval each beacon carries, or 5 s.
	Expire time.Duration
	Logger *slog.Logger
}

func (c MulticastConfig) group() string {
	if c.Group == "" {
		return DefaultGroup
	}
	return c.Group
}

// Multicast listens for engine beacons (see the format above) and reports
// the announce endpoints heard recently. Several listeners, in one process
// or several, can share a group on one machine.
func Multicast(cfg MulticastConfig) Source { return &multicastSource{cfg: cfg} }

type multicastSource struct{ cfg MulticastConfig }

func (m *multicastSource) String() string {
	s := "multicast:" + m.cfg.group()
	if m.cfg.Interface != "" {
		s += "%" + m.cfg.Interface
	}
	return s
}

type heard struct {
	endpoint string
	expire   time.Duration
	id       string
}

func (m *multicastSource) Run(ctx context.Context, update func([]string)) error {
	log := m.cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("source", m.String())
	group, err := resolveGroup(m.cfg.group())
	if err != nil {
		return err
	}
	ifi, _, err := mcast.Interface(m.cfg.Interface)
	if err != nil {
		return err
	}
	conn, err := net.ListenMulticastUDP("udp4", ifi, group)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("multicast: listen on %s via %s: %w (another socket holds the port without SO_REUSEADDR)", group, ifi.Name, err)
		}
		return fmt.Errorf("multicast: listen on %s via %s: %w", group, ifi.Name, err)
	}
	if err := onlyGroup(conn); err != nil {
		conn.Close()
		return fmt.Errorf("multicast: listen on %s via %s: %w", group, ifi.Name, err)
	}
	log.Info("listening for beacons", "group", group.String(), "interface", ifi.Name)

	beacons := make(chan heard)
	stop := make(chan struct{})
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		read(conn, log, beacons, stop)
	}()
	defer func() {
		close(stop)
		conn.Close()
		<-readerDone
	}()

	type entry struct {
		deadline time.Time
		id       string
	}
	live := map[string]*entry{}
	publish := func() {
		set := make([]string, 0, len(live))
		for ep := range live {
			set = append(set, ep)
		}
		update(sortSet(set))
	}
	publish()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case b := <-beacons:
			expire := m.cfg.Expire
			if expire <= 0 {
				expire = b.expire
			}
			e, known := live[b.endpoint]
			switch {
			case !known:
				e = &entry{id: b.id}
				live[b.endpoint] = e
				log.Info("node beacon heard", "announce", b.endpoint, "id", b.id)
			case e.id != b.id:
				log.Info("node restarted", "announce", b.endpoint, "id", b.id, "was", e.id)
				e.id = b.id
			}
			e.deadline = time.Now().Add(expire)
			if !known {
				publish()
			}
		case now := <-timer.C:
			gone := false
			for ep, e := range live {
				if !now.Before(e.deadline) {
					delete(live, ep)
					log.Info("node beacons stopped", "announce", ep, "id", e.id)
					gone = true
				}
			}
			if gone {
				publish()
			}
		}
		var next time.Time
		for _, e := range live {
			if next.IsZero() || e.deadline.Before(next) {
				next = e.deadline
			}
		}
		if !next.IsZero() {
			timer.Reset(time.Until(next))
		}
	}
}

// read passes the beacons that arrive on conn until it is closed.
func read(conn *net.UDPConn, log *slog.Logger, out chan<- heard, stop <-chan struct{}) {
	buf := make([]byte, maxBeacon+1) // one more, to tell an oversized datagram
	for {
		n, from, err := conn.ReadFromUDP(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			log.Warn("reading beacons", "err", err)
			select { // don't spin on a persistent error
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		h, err := parseBeacon(buf[:n], from.IP)
		if err != nil {
			log.Debug("ignoring datagram", "from", from.String(), "err", err)
			continue
		}
		select {
		case out <- h:
		case <-stop:
			return
		}
	}
}

func parseBeacon(b []byte, from net.IP) (heard, error) {
	if len(b) > maxBeacon {
		return heard{}, fmt.Errorf("%d bytes, more than %d", len(b), maxBeacon)
	}
	var bc beacon
	if err := json.Unmarshal(b, &bc); err != nil {
		return heard{}, fmt.Errorf("not a beacon: %w", err)
	}
	if bc.V != 1 {
		return heard{}, fmt.Errorf("beacon version %d, want 1", bc.V)
	}
	host, port, err := splitEndpoint(bc.Announce, 0, true)
	if err != nil {
		return heard{}, fmt.Errorf("beacon announce: %w", err)
	}
	if isWildcard(host) {
		if from == nil || from.IsUnspecified() {
			return heard{}, fmt.Errorf("beacon announce %q: wildcard host and no source address", bc.Announce)
		}
		host = from.String()
	}
	interval := time.Duration(bc.IntervalMS) * time.Millisecond
	if bc.IntervalMS < 0 || interval > maxInterval {
		return heard{}, fmt.Errorf("beacon interval-ms %d out of range", bc.IntervalMS)
	}
	expire := defaultExpire
	if interval > 0 {
		expire = 3 * interval
	}
	if len(bc.ID) > 128 {
		bc.ID = bc.ID[:128]
	}
	return heard{endpoint: "tcp://" + net.JoinHostPort(host, port), expire: expire, id: bc.ID}, nil
}

// resolveGroup parses an IPv4 multicast group:port; a missing port is
// the default group's.
func resolveGroup(s string) (*net.UDPAddr, error) {
	hostport := s
	if _, _, err := net.SplitHostPort(s); err != nil {
		_, defPort, _ := net.SplitHostPort(DefaultGroup)
		hostport = net.JoinHostPort(s, defPort)
	}
	addr, err := net.ResolveUDPAddr("udp4", hostport)
	if err != nil {
		return nil, fmt.Errorf("multicast group %q: %w", s, err)
	}
	if !addr.IP.IsMulticast() || addr.IP.To4() == nil {
		return nil, fmt.Errorf("multicast group %q: not an IPv4 multicast address (224.0.0.0/4)", s)
	}
	if addr.Port == 0 {
		return nil, fmt.Errorf("multicast group %q: needs a port", s)
	}
	return addr, nil
}
