package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/cocaine-cloud/cocaine/internal/mcast"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// BeaconConfig configures multicast beacons (see RunBeacon).
type BeaconConfig struct {
	// Group is the IPv4 multicast group:port. Default "239.0.100.53:5099".
	Group string
	// Interface is the name of the interface to send on. Default: the
	// first up, non-loopback interface with the MULTICAST flag and an IPv4
	// address, else the loopback — the same choice gateway/discovery makes,
	// so a dealer on this machine hears it with no configuration.
	Interface string
	// Interval between beacons. Default 1s.
	Interval time.Duration
	// TTL of the datagrams. Default 1: they stay on the local segment.
	TTL int
	// ID tells listeners one run of the node from the next. Default random.
	ID string
}

// Defaults for BeaconConfig.
const (
	DefaultBeaconGroup    = "239.0.100.53:5099"
	DefaultBeaconInterval = time.Second
	maxBeaconBytes        = 1024
)

// beaconMsg is the datagram, format version 1, kept in step with the
// listener in gateway/discovery (documented there and in docs/protocol.md):
//
//	{"v":1,"announce":"tcp://host:5001","interval-ms":1000,"id":"5f0c9a7e31d2b846"}
//
// at most 1024 bytes. A wildcard announce host (*, 0.0.0.0) is allowed: the
// listener substitutes the datagram's source address.
type beaconMsg struct {
	V          int    `json:"v"`
	Announce   string `json:"announce"`
	IntervalMS int64  `json:"interval-ms"`
	ID         string `json:"id"`
}

// RunBeacon sends a UDP multicast beacon for announce endpoint every
// Interval until ctx ends, when it returns nil. It returns an error at
// once if the configuration or the socket is unusable; a failing send is
// logged (once until it works again) and retried on the next tick, since a
// flapping interface should not stop the node from being found later.
func RunBeacon(ctx context.Context, cfg BeaconConfig, announce string, log *slog.Logger) error {
	if log == nil {
		log = slog.Default()
	}
	if cfg.Group == "" {
		cfg.Group = DefaultBeaconGroup
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultBeaconInterval
	}
	if cfg.TTL <= 0 {
		cfg.TTL = 1
	}
	if cfg.ID == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		cfg.ID = hex.EncodeToString(b[:])
	}
	if err := checkAnnounce(announce); err != nil {
		return fmt.Errorf("beacon: %w", err)
	}
	group, err := net.ResolveUDPAddr("udp4", cfg.Group)
	if err != nil {
		return fmt.Errorf("beacon group %q: %w", cfg.Group, err)
	}
	if !group.IP.IsMulticast() || group.IP.To4() == nil || group.Port == 0 {
		return fmt.Errorf("beacon group %q: want an IPv4 multicast group:port (224.0.0.0/4)", cfg.Group)
	}
	msg, err := json.Marshal(beaconMsg{V: 1, Announce: announce, IntervalMS: cfg.Interval.Milliseconds(), ID: cfg.ID})
	if err != nil {
		return fmt.Errorf("beacon: %w", err)
	}
	if len(msg) > maxBeaconBytes {
		return fmt.Errorf("beacon: %d bytes, more than %d: shorten the announce endpoint or id", len(msg), maxBeaconBytes)
	}
	ifi, ip, err := mcast.Interface(cfg.Interface)
	if err != nil {
		return err
	}
	conn, err := beaconSocket(ip, cfg.TTL)
	if err != nil {
		return fmt.Errorf("beacon socket on %s: %w", ifi.Name, err)
	}
	defer conn.Close()
	log = log.With("component", "beacon", "group", group.String(), "interface", ifi.Name)
	log.Info("sending multicast beacons", "announce", announce, "interval", cfg.Interval, "id", cfg.ID)

	failing := false
	send := func() {
		_, err := conn.WriteTo(msg, group)
		switch {
		case err != nil && !failing:
			hint := ""
			if errors.Is(err, syscall.EPERM) {
				hint = " (a firewall rule drops outgoing multicast)"
			}
			log.Warn("beacon not sent; retrying every interval"+hint, "err", err)
			failing = true
		case err == nil && failing:
			log.Info("beacon sent again")
			failing = false
		}
	}
	send()
	t := time.NewTicker(cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			send()
		}
	}
}

// checkAnnounce insists on tcp://host:port: the listener drops anything
// else, and failing here is clearer than never being found.
func checkAnnounce(s string) error {
	rest, ok := strings.CutPrefix(s, "tcp://")
	if !ok {
		return fmt.Errorf("announce endpoint %q: want tcp://host:port", s)
	}
	host, port, err := net.SplitHostPort(rest)
	if err != nil {
		return fmt.Errorf("announce endpoint %q: %w", s, err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("announce endpoint %q: bad port %q", s, port)
	}
	if host == "" || strings.ContainsAny(host, " /") {
		return fmt.Errorf("announce endpoint %q: bad host %q", s, host)
	}
	return nil
}

// beaconSocket opens the sending socket. Sending with the interface set
// explicitly (IP_MULTICAST_IF) is what lets beacons work without a route
// to 224.0.0.0/4 (no default route) and on a loopback lacking the
// MULTICAST flag; IP_MULTICAST_LOOP hands a copy to listeners on this
// machine, which is how a dev setup of several processes finds itself.
func beaconSocket(ifaddr net.IP, ttl int) (net.PacketConn, error) {
	var addr [4]byte
	copy(addr[:], ifaddr.To4())
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			s := int(fd)
			if serr = syscall.SetsockoptInet4Addr(s, syscall.IPPROTO_IP, syscall.IP_MULTICAST_IF, addr); serr != nil {
				serr = fmt.Errorf("IP_MULTICAST_IF %s: %w", ifaddr, serr)
				return
			}
			if serr = syscall.SetsockoptInt(s, syscall.IPPROTO_IP, syscall.IP_MULTICAST_LOOP, 1); serr != nil {
				serr = fmt.Errorf("IP_MULTICAST_LOOP: %w", serr)
				return
			}
			if serr = syscall.SetsockoptInt(s, syscall.IPPROTO_IP, syscall.IP_MULTICAST_TTL, ttl); serr != nil {
				serr = fmt.Errorf("IP_MULTICAST_TTL %d: %w", ttl, serr)
			}
		})
		return errors.Join(err, serr)
	}}
	return lc.ListenPacket(context.Background(), "udp4", "0.0.0.0:0")
}
