package mongodb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// The tests run against a real FerretDB (SQLite handler), built from
// tools/ferretdb by scripts/ferretdb.sh and started here on a free loopback
// port. FerretDB lacks TTL indexes, change streams and transactions, which
// is why the backend uses none of them: passing here means it needs nothing
// a plain MongoDB-compatible server does not offer.

// ferretBin is the FerretDB binary, set by TestMain.
var ferretBin string

// buildFerretDB runs scripts/ferretdb.sh, which builds the binary once into
// a cache (about 100 s cold) and prints its path.
func buildFerretDB() (string, error) {
	script, err := filepath.Abs(filepath.Join("..", "..", "scripts", "ferretdb.sh"))
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "bash", script)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s: %w\n%s", script, err, stderr.String())
	}
	bin := strings.TrimSpace(stdout.String())
	if fi, err := os.Stat(bin); err != nil || fi.Mode()&0o111 == 0 {
		return "", fmt.Errorf("%s printed %q, which is not an executable", script, bin)
	}
	if d := time.Since(start); d > 5*time.Second {
		fmt.Fprintf(os.Stderr, "mongodb tests: built FerretDB in %v\n", d.Round(time.Second))
	}
	return bin, nil
}

// ferret is one running FerretDB.
type ferret struct {
	addr string // host:port
	dir  string // SQLite data directory
	log  string // its stderr
	cmd  *exec.Cmd
	exit chan error
}

// freeAddr finds a loopback port nothing listens on. Another process could
// take it before FerretDB binds it; start retries on that.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// startFerret starts FerretDB on a free port with a fresh data directory
// under dir.
func startFerret(dir string) (*ferret, error) {
	var lastErr error
	for range 3 {
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		f := &ferret{addr: addr, dir: filepath.Join(dir, "data"), log: filepath.Join(dir, "ferretdb.log")}
		if lastErr = f.start(); lastErr == nil {
			return f, nil
		}
	}
	return nil, lastErr
}

// start runs FerretDB on f.addr and f.dir and waits until it answers ping.
func (f *ferret) start() error {
	logf, err := os.OpenFile(f.log, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	f.cmd = exec.Command(ferretBin, "-listen", f.addr, "-dir", f.dir)
	f.cmd.Stdout, f.cmd.Stderr = logf, logf
	if err := f.cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", ferretBin, err)
	}
	f.exit = make(chan error, 1)
	go func(cmd *exec.Cmd, exit chan error) { exit <- cmd.Wait() }(f.cmd, f.exit)

	client, err := mongo.Connect(options.Client().ApplyURI("mongodb://" + f.addr).
		SetServerSelectionTimeout(300 * time.Millisecond))
	if err != nil {
		f.kill()
		return err
	}
	defer client.Disconnect(context.Background())
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err = client.Ping(ctx, nil)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case exitErr := <-f.exit:
			f.exit <- exitErr
			return fmt.Errorf("FerretDB on %s exited during start (%v); its log:\n%s", f.addr, exitErr, f.tail())
		default:
		}
		if time.Now().After(deadline) {
			f.kill()
			return fmt.Errorf("FerretDB on %s does not answer ping after 60 s: %v; its log:\n%s", f.addr, err, f.tail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop sends SIGTERM, as a supervisor would, and waits for the exit.
func (f *ferret) stop() error {
	if f.cmd == nil || f.cmd.Process == nil {
		return nil
	}
	_ = f.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-f.exit:
		f.cmd = nil
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			return err
		}
		return nil
	case <-time.After(15 * time.Second):
		f.kill()
		return fmt.Errorf("FerretDB on %s ignored SIGTERM for 15 s; killed", f.addr)
	}
}

func (f *ferret) kill() {
	if f.cmd != nil && f.cmd.Process != nil {
		_ = f.cmd.Process.Kill()
		<-f.exit
		f.cmd = nil
	}
}

func (f *ferret) tail() string {
	b, _ := os.ReadFile(f.log)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// uri is the address of database db on f, with extra query parameters.
func (f *ferret) uri(db, params string) string {
	u := "mongodb://" + f.addr + "/" + db
	if params != "" {
		u += "?" + params
	}
	return u
}

// rawClient connects to f directly, for tests that look behind the Store.
func rawClient(t *testing.T, f *ferret) *mongo.Client {
	t.Helper()
	c, err := mongo.Connect(options.Client().ApplyURI("mongodb://" + f.addr).SetServerSelectionTimeout(2 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Disconnect(context.Background()) })
	return c
}
