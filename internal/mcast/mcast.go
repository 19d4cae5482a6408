// Package mcast chooses the interface multicast discovery uses, the same
// way for the engines that send beacons and the dealers that hear them,
// so that one machine with no configuration hears itself.
package mcast

import (
	"fmt"
	"net"
)

// Interface picks the interface to join or send on and its IPv4
// address. Naming it explicitly, rather than leaving it to the routing
// table, is what makes multicast work on a machine with no default route
// or with a loopback lacking the MULTICAST flag: with the interface set,
// Linux needs no route to the group, and loops the datagrams back to local
// listeners whatever the flags say.
func Interface(name string) (*net.Interface, net.IP, error) {
	if name != "" {
		ifi, err := net.InterfaceByName(name)
		if err != nil {
			return nil, nil, fmt.Errorf("multicast interface %q: %w (have: %s)", name, err, interfaceNames())
		}
		if ifi.Flags&net.FlagUp == 0 {
			return nil, nil, fmt.Errorf("multicast interface %q is down: bring it up (ip link set %s up)", name, name)
		}
		ip := IPv4Of(ifi)
		if ip == nil {
			return nil, nil, fmt.Errorf("multicast interface %q has no IPv4 address: beacons are IPv4 and the interface needs one (ip addr add ADDR/LEN dev %s)", name, name)
		}
		return ifi, ip, nil
	}
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, nil, fmt.Errorf("multicast: listing interfaces: %w", err)
	}
	// Prefer an interface that reaches other machines, and one with a
	// carrier; the loopback only keeps a single-machine setup working.
	var best *net.Interface
	var bestIP net.IP
	bestRank := 0
	for i := range ifs {
		ifi := &ifs[i]
		if ifi.Flags&net.FlagUp == 0 {
			continue
		}
		ip := IPv4Of(ifi)
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
		return nil, nil, fmt.Errorf("multicast: no interface to use: none is up with an IPv4 address and the MULTICAST flag, and the loopback is down or has no IPv4 address (ip link set lo up), have: %s", interfaceNames())
	}
	return best, bestIP, nil
}

// IPv4Of returns the first IPv4 address of ifi, or nil.
func IPv4Of(ifi *net.Interface) net.IP {
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

func interfaceNames() string {
	ifs, err := net.Interfaces()
	if err != nil || len(ifs) == 0 {
		return "none"
	}
	s := ""
	for i, ifi := range ifs {
		if i > 0 {
			s += ", "
		}
		s += ifi.Name + " <" + ifi.Flags.String() + ">"
	}
	return s
}
