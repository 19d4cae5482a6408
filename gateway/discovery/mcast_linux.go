package discovery

import (
	"fmt"
	"net"
	"syscall"
)

// ipMulticastAll is IP_MULTICAST_ALL from <linux/in.h>, the same on every
// architecture; package syscall is frozen without it.
const ipMulticastAll = 49

// onlyGroup turns off IP_MULTICAST_ALL. The listening socket is bound to
// the wildcard address (Go does that so several can share the port), and
// Linux would then deliver to it datagrams for every group any socket on
// the machine joined on that port, not just its own.
func onlyGroup(c *net.UDPConn) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, ipMulticastAll, 0)
	}); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("IP_MULTICAST_ALL: %w", serr)
	}
	return nil
}
