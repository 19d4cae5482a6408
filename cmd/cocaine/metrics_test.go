package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/cocaine-cloud/cocaine/internal/testcluster"
)

// The admin listener of `cocaine dev` serves metrics that promtool
// accepts, and the front counts requests by the app and event of the
// routing table: 100 calls of echo/http read 100, and a path a client
// made up makes no series of its own.
func TestMetricsThroughTheFront(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("this test needs promtool: run scripts/deps.sh test (Debian package prometheus)")
	}
	// timer: a driver, for the driver metrics.
	n := testcluster.StartNode(t, testcluster.Options{Apps: []string{"echo", "timer"}, Front: true})
	admin := "http://" + n.Admin
	testcluster.Eventually(t, 2*time.Minute, "echo and timer running", func() bool {
		return running(admin, "echo") && running(admin, "timer")
	})
	for i := range 100 {
		resp, err := http.Post("http://"+n.HTTP+"/echo/http/x", "text/plain", strings.NewReader("hi"))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("call %d: %d", i, resp.StatusCode)
		}
	}
	for _, path := range []string{"/made-up-app/x", "/echo/made-up-event"} {
		resp, err := http.Get("http://" + n.HTTP + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}

	resp, err := http.Get(admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	text, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	check := exec.Command(promtool, "check", "metrics")
	check.Stdin = bytes.NewReader(text)
	if out, err := check.CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}

	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]float64{}
	for _, m := range fams["cocaine_front_requests_total"].GetMetric() {
		counts[labels(m)] = m.GetCounter().GetValue()
	}
	if got := counts["app=echo,code=200,event=http"]; got != 100 {
		t.Errorf("echo/http 200 counts %v, want 100; all: %v", got, counts)
	}
	if got := counts["app=unrouted,code=404,event=unrouted"]; got != 2 {
		t.Errorf("unrouted 404 counts %v, want 2; all: %v", got, counts)
	}
	for _, name := range []string{
		"cocaine_front_request_duration_seconds", "cocaine_front_requests_in_flight", "cocaine_front_received_bytes_total",
		"cocaine_dealer_nodes", "cocaine_dealer_nodes_seen_total", "cocaine_engine_queue_wait_seconds", "cocaine_engine_run_seconds",
		"cocaine_engine_slaves", "cocaine_engine_slave_spawns_total", "cocaine_storage_operation_seconds", "cocaine_api_requests_total",
	} {
		if fams[name] == nil {
			t.Errorf("no %s", name)
		}
	}
	// Every metric configs/grafana-dashboard.json queries exists. Vectors
	// with no child yet (no retry, no storage error) only show up later.
	board, err := os.ReadFile(filepath.Join(testcluster.Root(), "configs", "grafana-dashboard.json"))
	if err != nil || !json.Valid(board) {
		t.Fatalf("grafana dashboard: %v", err)
	}
	later := map[string]bool{"cocaine_dealer_retries_total": true, "cocaine_storage_errors_total": true}
	for _, name := range regexp.MustCompile(`cocaine_[a-z_]+`).FindAllString(string(board), -1) {
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_count"), "_sum")
		if fams[base] == nil && !later[base] {
			t.Errorf("the Grafana dashboard queries %s, which /metrics lacks", name)
		}
	}
	if strings.Contains(string(text), "made-up") {
		t.Errorf("a client-typed name became a label value")
	}
}

func labels(m *dto.Metric) string {
	var parts []string
	for _, l := range m.GetLabel() {
		parts = append(parts, l.GetName()+"="+l.GetValue())
	}
	return strings.Join(parts, ",")
}

// running reports whether the API shows app running on its node.
func running(admin, app string) bool {
	resp, err := http.Get(admin + "/api/v1/apps/" + app)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var a struct {
		Nodes []struct {
			State string `json:"state"`
		} `json:"nodes"`
	}
	return json.NewDecoder(resp.Body).Decode(&a) == nil && len(a.Nodes) == 1 && a.Nodes[0].State == "running"
}
