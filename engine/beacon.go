package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
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
	ifi, ip, err := beaconInterface(cfg.Interface)
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

// beaconInterface mirrors gateway/discovery's choice of interface (the
// engine does not import the gateway): named, or else the best up
// interface with an IPv4 address — a running non-loopback one with the
// MULTICAST flag, then any non-loopback one with it, then the loopback.
func beaconInterface(name string) (*net.Interface, net.IP, error) {
	if name != "" {
		ifi, err := net.InterfaceByName(name)
		if err != nil {
			return nil, nil, fmt.Errorf("beacon interface %q: %w", name, err)
		}
		if ifi.Flags&net.FlagUp == 0 {
			return nil, nil, fmt.Errorf("beacon interface %q is down: bring it up (ip link set %s up)", name, name)
		}
		ip := ifaceIPv4(ifi)
		if ip == nil {
			return nil, nil, fmt.Errorf("beacon interface %q has no IPv4 address: beacons are IPv4 and the interface needs one (ip addr add ADDR/LEN dev %s)", name, name)
		}
		return ifi, ip, nil
	}
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, nil, fmt.Errorf("beacon: listing interfaces: %w", err)
	}
	var best *net.Interface
	var bestIP net.IP
	bestRank := 0
	for i := range ifs {
		ifi := &ifs[i]
		if ifi.Flags&net.FlagUp == 0 {
			continue
		}
		ip := ifaceIPv4(ifi)
		if ip == nil {
			continue
		}
		rank := 0
		switch {
		case ifi.Flags&net.FlagLoopback != 0:
			rank = 1
		case ifi.Flags&net.FlagMulticast != 0 && ifi.Flags&net.FlagRunning != 0:
			rank = 3
		case ifi.Flags&net.FlagMulticast != 0:
			rank = 2
		}
		if rank > bestRank {
			best, bestIP, bestRank = ifi, ip, rank
		}
	}
	if best == nil {
		return nil, nil, errors.New("beacon: no interface to send on: none is up with an IPv4 address and the MULTICAST flag, and the loopback is down or has no IPv4 address (ip link set lo up)")
	}
	return best, bestIP, nil
}

func ifaceIPv4(ifi *net.Interface) net.IP {
	addrs, err := ifi.Addrs()
	if err != nil {
		return nil
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip4 := n.IP.To4(); ip4 != nil {
				return ip4
			}
		}
	}
	return nil
}
