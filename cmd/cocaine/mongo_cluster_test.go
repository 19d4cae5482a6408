package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cocaine-cloud/cocaine/internal/testcluster"
	"github.com/cocaine-cloud/cocaine/internal/zmqsec"
)

// TestTwoEnginesShareMongoDB: two engines and a gateway as separate
// processes share one MongoDB-wire server; an app uploaded once through
// the gateway's API runs on both engines.
func TestTwoEnginesShareMongoDB(t *testing.T) {
	uri := testcluster.FerretDB(t) + "/cocaine"
	dir := t.TempDir()
	// The cluster is secure: every engine and the gateway hold one key.
	_, secret, err := zmqsec.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	security := fmt.Sprintf("[security]\ncurve-secret = %q\n", secret)
	var announces, engineMetrics []string
	for i := range 2 {
		data, err := os.MkdirTemp("", "eng") // short: app sockets live under it
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(data) })
		listen := fmt.Sprintf("tcp://127.0.0.1:%d", testcluster.FreePort(t))
		announce := fmt.Sprintf("tcp://127.0.0.1:%d", testcluster.FreePort(t))
		announces = append(announces, announce)
		metrics := fmt.Sprintf("127.0.0.1:%d", testcluster.FreePort(t))
		engineMetrics = append(engineMetrics, metrics)
		cfg := filepath.Join(dir, fmt.Sprintf("engine%d.toml", i))
		os.WriteFile(cfg, []byte(fmt.Sprintf(`listen = %q
announce = %q
announce-interval = "200ms"
reconcile-interval = "300ms"
storage = %q
data-dir = %q
metrics = %q
%s`, listen, announce, uri, data, metrics, security)), 0o600)
		testcluster.Start(t, "engine", "-c", cfg)
	}
	front := fmt.Sprintf("127.0.0.1:%d", testcluster.FreePort(t))
	admin := fmt.Sprintf("127.0.0.1:%d", testcluster.FreePort(t))
	gwcfg := filepath.Join(dir, "gateway.toml")
	os.WriteFile(gwcfg, []byte(fmt.Sprintf(`[dealer]
discovery = ["static:%s"]
[front]
http = %q
fastcgi = ""
[api]
storage = %q
tokens = ["shared-secret"]
[admin]
listen = %q
%s`, strings.Join(announces, ","), front, uri, admin, security)), 0o600)
	testcluster.Start(t, "gateway", "-c", gwcfg)
	api := "http://" + admin
	testcluster.Eventually(t, 30*time.Second, "the gateway's API", func() bool {
		resp, err := http.Get(api + "/api/v1/apps")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == 200
	})

	up := exec.Command(testcluster.Binary(t), "app", "upload", filepath.Join(testcluster.Root(), "examples", "echo"),
		"--name", "shared", "--api", api, "--token", "shared-secret")
	if out, err := up.CombinedOutput(); err != nil {
		t.Fatalf("cocaine app upload: %v\n%s", err, out)
	}
	// Both engines run it: the dealer's view through `cocaine info`.
	testcluster.Eventually(t, 120*time.Second, "the app running on both engines", func() bool {
		cmd := exec.Command(testcluster.Binary(t), "info", "--json", "--discovery", "static:"+strings.Join(announces, ","))
		cmd.Env = append(os.Environ(), zmqsec.EnvSecret+"="+secret)
		out, err := cmd.Output()
		if err != nil {
			return false
		}
		var info struct {
			Nodes []struct {
				Apps map[string]struct {
					State string `json:"state"`
				} `json:"apps"`
			} `json:"nodes"`
		}
		if json.Unmarshal(out, &info) != nil || len(info.Nodes) != 2 {
			return false
		}
		for _, n := range info.Nodes {
			if n.Apps["shared"].State != "running" {
				return false
			}
		}
		return true
	})
	resp, err := http.Post("http://"+front+"/shared/http/x", "text/plain", strings.NewReader("via mongo"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "POST /x\nvia mongo" {
		t.Fatalf("call through the front: %d %q", resp.StatusCode, body)
	}
	// Each engine serves its own metrics, from its config.
	for _, addr := range engineMetrics {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(b), `cocaine_engine_app_broken{app="shared"`) || !strings.Contains(string(b), `cocaine_storage_operation_seconds_count{backend="mongodb"`) {
			t.Fatalf("engine metrics at %s lack the app or storage:\n%s", addr, b)
		}
	}
}
