package testcluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	natsio "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// NATSCluster starts three nats-server processes routed into one
// JetStream cluster on free loopback ports for the test, waits until a
// replicated stream can be made, and returns the nats:// URI listing all
// three (without parameters). storage/nats's own tests, which kill and
// restart servers, have their own helpers.
func NATSCluster(t testing.TB) string {
	t.Helper()
	bin := os.Getenv("NATS_SERVER")
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("nats-server"); err != nil {
			bin = "/usr/sbin/nats-server" // Debian's place, often not on PATH
		}
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("nats-server not found (%v): install it with `scripts/deps.sh test` (Debian package nats-server) or set NATS_SERVER", err)
	}
	dir := t.TempDir()
	var clients, routes []string
	ports := make([][2]int, 3)
	for i := range ports {
		ports[i] = [2]int{FreePort(t), FreePort(t)}
		clients = append(clients, fmt.Sprintf("127.0.0.1:%d", ports[i][0]))
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", ports[i][1]))
	}
	for i, p := range ports {
		conf := filepath.Join(dir, fmt.Sprintf("n%d.conf", i+1))
		text := fmt.Sprintf("server_name: n%d\nlisten: 127.0.0.1:%d\njetstream { store_dir: %q }\n"+
			"cluster { name: test, listen: 127.0.0.1:%d, routes: [%s] }\n",
			i+1, p[0], filepath.Join(dir, fmt.Sprintf("n%d", i+1)), p[1], strings.Join(routes, ", "))
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		StartCmd(t, exec.Command(bin, "-c", conf))
	}
	urls := "nats://" + strings.Join(clients, ",nats://")
	Eventually(t, 60*time.Second, "the NATS cluster to elect its JetStream leader", func() bool {
		return probeNATS(urls) == nil
	})
	return "nats://" + strings.Join(clients, ",")
}

func probeNATS(urls string) error {
	nc, err := natsio.Connect(urls, natsio.Timeout(time.Second))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "probe", Subjects: []string{"probe"}, Replicas: 3, Storage: jetstream.MemoryStorage})
	if err != nil {
		return err
	}
	return js.DeleteStream(ctx, "probe")
}
