package testcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cocaine-cloud/cocaine/internal/mcast"
)

var mcSetup struct {
	once  sync.Once
	notes []string
	err   error
}

// MulticastReady makes sure a datagram sent to a multicast group through
// iface ("" for the default choice, "lo"...) comes back to a listener on
// this machine. Most sandboxes need no setup, since the platform names the
// interface on both ends; a bare network namespace with its loopback down
// does. As root (CI) it sets the loopback up, idempotently, with iproute2
// (installed by scripts/deps.sh test); otherwise the test fails saying
// what to run. Never a silent skip: the multicast tests are the only
// proof that beacons work.
func MulticastReady(t testing.TB, iface string) {
	t.Helper()
	if err := MulticastProbe(iface); err == nil {
		return
	} else {
		t.Logf("multicast via %q does not work yet: %v", iface, err)
	}
	if os.Geteuid() != 0 {
		t.Fatal("multicast on the loopback does not work here and only root may set it up; as root run: " +
			"ip link set lo up; ip link set lo multicast on; ip route replace 224.0.0.0/4 dev lo")
	}
	mcSetup.once.Do(func() {
		if _, err := exec.LookPath("ip"); err != nil {
			mcSetup.err = fmt.Errorf("the ip command is missing: run scripts/deps.sh test (apt-get install iproute2)")
			return
		}
		for _, args := range [][]string{
			{"link", "set", "lo", "up"},
			{"link", "set", "lo", "multicast", "on"},
			{"route", "replace", "224.0.0.0/4", "dev", "lo"},
		} {
			out, err := exec.Command("ip", args...).CombinedOutput()
			mcSetup.notes = append(mcSetup.notes, fmt.Sprintf("setup: ip %s: err=%v %s", strings.Join(args, " "), err, bytes.TrimSpace(out)))
		}
	})
	for _, n := range mcSetup.notes {
		t.Log(n)
	}
	if mcSetup.err != nil {
		t.Fatal(mcSetup.err)
	}
	if err := MulticastProbe(iface); err != nil {
		t.Fatalf("multicast via %q does not work even after setting up the loopback: %v", iface, err)
	}
}

// MulticastProbe sends datagrams to a fresh group through iface until one
// comes back or a second passes.
func MulticastProbe(iface string) error {
	ifi, ip, err := mcast.Interface(iface)
	if err != nil {
		return err
	}
	c, err := net.ListenUDP("udp4", &net.UDPAddr{})
	if err != nil {
		return err
	}
	group := &net.UDPAddr{IP: net.IPv4(239, 0, 100, 53), Port: c.LocalAddr().(*net.UDPAddr).Port}
	c.Close()
	l, err := net.ListenMulticastUDP("udp4", ifi, group)
	if err != nil {
		return err
	}
	defer l.Close()
	s, err := MulticastSender(ip)
	if err != nil {
		return fmt.Errorf("sender on %s: %w", ifi.Name, err)
	}
	defer s.Close()
	buf := make([]byte, 64)
	for end := time.Now().Add(time.Second); time.Now().Before(end); {
		if _, err := s.WriteTo([]byte("probe"), group); err != nil {
			return fmt.Errorf("send: %w", err)
		}
		_ = l.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if n, _, err := l.ReadFromUDP(buf); err == nil && string(buf[:n]) == "probe" {
			return nil
		}
	}
	return errors.New("nothing received in 1s")
}

// MulticastSender is a UDP socket that sends multicast through the
// interface with address ip, looped back to this machine, TTL 1.
func MulticastSender(ip net.IP) (net.PacketConn, error) {
	var addr [4]byte
	copy(addr[:], ip.To4())
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = errors.Join(
				syscall.SetsockoptInet4Addr(int(fd), syscall.IPPROTO_IP, syscall.IP_MULTICAST_IF, addr),
				syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, syscall.IP_MULTICAST_LOOP, 1),
				syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, syscall.IP_MULTICAST_TTL, 1))
		})
		return errors.Join(err, serr)
	}}
	return lc.ListenPacket(context.Background(), "udp4", "0.0.0.0:0")
}
