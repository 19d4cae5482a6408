package fastcgi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

const nginxBin = "/usr/sbin/nginx"

// countingListener counts accepted connections, to tell whether nginx
// reuses FastCGI connections.
type countingListener struct {
	net.Listener
	accepted atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.accepted.Add(1)
	}
	return c, err
}

// startNginx runs nginx in the foreground with conf (an http{} body) and
// returns its base URL once it answers. It is stopped in Cleanup.
func startNginx(t *testing.T, dir, httpConf string) string {
	t.Helper()
	if _, err := os.Stat(nginxBin); err != nil {
		t.Fatalf("nginx is required for this test and was not found at %s (Debian: apt-get install nginx-light or nginx): %v", nginxBin, err)
	}
	pl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := pl.Addr().(*net.TCPAddr).Port
	pl.Close()

	user := ""
	if os.Geteuid() == 0 {
		// Workers would otherwise run as nobody and could not reach the
		// socket inside the test's private temporary directory.
		user = "user root;"
	}
	for _, d := range []string{"body", "fastcgi", "proxy", "scgi", "uwsgi"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	conf := fmt.Sprintf(`%s
worker_processes 1;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log info;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path %[2]s/body;
    fastcgi_temp_path %[2]s/fastcgi;
    proxy_temp_path %[2]s/proxy;
    scgi_temp_path %[2]s/scgi;
    uwsgi_temp_path %[2]s/uwsgi;
    client_max_body_size 64m;
    server {
        listen 127.0.0.1:%[3]d;
%[4]s
    }
}
`, user, dir, port, httpConf)
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	errLog := filepath.Join(dir, "error.log")
	cmd := exec.Command(nginxBin, "-p", dir+"/", "-c", confPath, "-g", "daemon off;", "-e", errLog)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting nginx: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM) // fast shutdown
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			b, _ := os.ReadFile(errLog)
			t.Logf("nginx output:\n%s\nerror.log:\n%s", out.String(), b)
		}
	})

	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case err := <-exited:
			b, _ := os.ReadFile(errLog)
			t.Fatalf("nginx exited during startup: %v\n%s\n%s", err, out.String(), b)
		default:
		}
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			c.Close()
			return base
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx did not listen on port %d: %v", port, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestNginx(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "app.sock")
	ul, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(sock, 0o666); err != nil {
		t.Fatal(err)
	}
	l := &countingListener{Listener: ul}

	next := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/hello/", func(w http.ResponseWriter, r *http.Request) {
		script, _ := Param(r, "SCRIPT_NAME")
		fmt.Fprintf(w, "method=%s path=%s x=%s y=%s host=%s script=%s remote_ip=%s server_software=%t ua=%s",
			r.Method, r.URL.Path, r.URL.Query().Get("x"), r.URL.Query().Get("y"), r.Host, script,
			strings.Split(r.RemoteAddr, ":")[0], ProcessEnv(r)["SERVER_SOFTWARE"] != "", r.UserAgent())
	})
	mux.HandleFunc("/keep/", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "kept") })
	mux.HandleFunc("/upload", func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		fmt.Fprintf(w, "%d %x", n, h.Sum(nil))
	})
	mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "first chunk;")
		w.(http.Flusher).Flush()
		select {
		case <-next:
		case <-r.Context().Done():
			return
		case <-time.After(20 * time.Second):
			return
		}
		io.WriteString(w, "second chunk")
	})
	mux.HandleFunc("/fail", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "it broke", 500) })
	mux.HandleFunc("/panic", func(w http.ResponseWriter, r *http.Request) { panic("handler panic") })
	ts := serveOn(t, l, mux)
	_ = ts

	base := startNginx(t, dir, fmt.Sprintf(`
        location /keep/ {
            include /etc/nginx/fastcgi_params;
            fastcgi_keep_conn on;
            fastcgi_pass app_keep;
        }
        location /stream {
            include /etc/nginx/fastcgi_params;
            fastcgi_buffering off;
            fastcgi_pass unix:%[1]s;
        }
        location / {
            include /etc/nginx/fastcgi_params;
            fastcgi_pass unix:%[1]s;
        }
    }
    upstream app_keep {
        server unix:%[1]s;
        keepalive 4;
`, sock))

	client := &http.Client{Timeout: 30 * time.Second}
	get := func(t *testing.T, path string) (int, string) {
		t.Helper()
		resp, err := client.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(b)
	}

	t.Run("GetWithQuery", func(t *testing.T) {
		code, body := get(t, "/hello/world?x=1&y=two%20words")
		// Debian's fastcgi_params sets HTTP_HOST to $host, which has no port.
		want := "method=GET path=/hello/world x=1 y=two words host=127.0.0.1" +
			" script=/hello/world remote_ip=127.0.0.1 server_software=true ua=Go-http-client/1.1"
		if code != 200 || body != want {
			t.Fatalf("%d %q\nwant %q", code, body, want)
		}
	})

	t.Run("Post10MB", func(t *testing.T) {
		data := make([]byte, 10<<20)
		rand.NewChaCha8([32]byte{7}).Read(data)
		sum := sha256.Sum256(data)
		resp, err := client.Post(base+"/upload", "application/octet-stream", bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if want := fmt.Sprintf("%d %s", len(data), hex.EncodeToString(sum[:])); resp.StatusCode != 200 || string(b) != want {
			t.Fatalf("%d %q, want %q", resp.StatusCode, b, want)
		}
	})

	t.Run("Streaming", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", base+"/stream", nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		first := make([]byte, len("first chunk;"))
		if _, err := io.ReadFull(resp.Body, first); err != nil {
			t.Fatalf("reading the first chunk (the handler has not written the second yet): %v", err)
		}
		if string(first) != "first chunk;" {
			t.Fatalf("first chunk %q", first)
		}
		close(next)
		rest, err := io.ReadAll(resp.Body)
		if err != nil || string(rest) != "second chunk" {
			t.Fatalf("rest %q, %v", rest, err)
		}
	})

	t.Run("KeepConn", func(t *testing.T) {
		before := l.accepted.Load()
		for i := range 20 {
			if code, body := get(t, fmt.Sprintf("/keep/%d", i)); code != 200 || body != "kept" {
				t.Fatalf("%d %q", code, body)
			}
		}
		if n := l.accepted.Load() - before; n != 1 {
			t.Fatalf("20 requests with fastcgi_keep_conn used %d new connections, want 1", n)
		}
		// Without it, every request has its own connection.
		before = l.accepted.Load()
		for range 5 {
			get(t, "/hello/x")
		}
		if n := l.accepted.Load() - before; n != 5 {
			t.Fatalf("5 requests without keep_conn used %d connections", n)
		}
	})

	t.Run("Statuses", func(t *testing.T) {
		if code, body := get(t, "/nothing-here"); code != 404 || body != "404 page not found\n" {
			t.Errorf("404: %d %q", code, body)
		}
		if code, body := get(t, "/fail"); code != 500 || body != "it broke\n" {
			t.Errorf("500: %d %q", code, body)
		}
		if code, _ := get(t, "/panic"); code != 500 {
			t.Errorf("panic: %d", code)
		}
		if code, body := get(t, "/keep/after-panic"); code != 200 || body != "kept" {
			t.Errorf("after panic: %d %q", code, body)
		}
	})

	if t.Failed() {
		return
	}
	if b, err := os.ReadFile(filepath.Join(dir, "error.log")); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, "[error]") || strings.Contains(line, "[crit]") || strings.Contains(line, "[alert]") {
				t.Errorf("nginx logged: %s", line)
			}
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		t.Error(err)
	}
}
