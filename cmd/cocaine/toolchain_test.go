package main

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cocaine-cloud/cocaine/internal/testcluster"
	"github.com/cocaine-cloud/cocaine/internal/wire"
)

// pathWithout is $PATH without the folders that hold cmd.
func pathWithout(cmd string) string {
	var keep []string
	for _, d := range filepath.SplitList(os.Getenv("PATH")) {
		if _, err := os.Stat(filepath.Join(d, cmd)); err != nil {
			keep = append(keep, d)
		}
	}
	return strings.Join(keep, string(filepath.ListSeparator))
}

// On a node without a Go toolchain, uploading a Go app is refused at once
// with what to install; a Python app still goes in.
func TestUploadNamesMissingToolchain(t *testing.T) {
	if testing.Short() {
		t.Skip("starts cocaine dev")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Fatalf("this test needs go on PATH to take it away: %v", err)
	}
	const tok = "toolchain-token"
	path := pathWithout("go")
	n := testcluster.StartNode(t, testcluster.Options{Front: true, Env: []string{"PATH=" + path, "COCAINE_TOKEN=" + tok}})
	api := "http://" + n.Admin
	hc := &http.Client{Timeout: 30 * time.Second}
	testcluster.Eventually(t, 60*time.Second, "the API to answer", func() bool {
		resp, err := hc.Get(api + "/api/v1/apps")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == http.StatusOK
	})
	env := []string{"COCAINE_API=" + api, "COCAINE_TOKEN=" + tok}
	_, errOut, code := cli(t, env, "app", "upload", filepath.Join(testcluster.Root(), "examples", "echo"), "--name", "gone")
	if code != exitInvalid || !strings.Contains(errOut, "no Go toolchain") || !strings.Contains(errOut, "install Go") {
		t.Fatalf("upload of a Go app without go: exit %d, stderr:\n%s", code, errOut)
	}
	if out, errOut, code := cli(t, env, "app", "upload", filepath.Join(testcluster.Root(), "examples", "hello-python"), "--name", "py"); code != exitOK {
		t.Fatalf("upload of a Python app: exit %d\n%s%s", code, out, errOut)
	}
	// The node announces what it lacks, for a gateway's API to refuse
	// such uploads (engine.ValidateForNodes).
	testcluster.Eventually(t, 30*time.Second, "the node to announce it has no go", func() bool {
		resp, err := hc.Get(api + "/api/v1/nodes")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var body struct{ Nodes []wire.NodeInfo }
		if json.NewDecoder(resp.Body).Decode(&body) != nil || len(body.Nodes) != 1 {
			return false
		}
		return strings.Contains(body.Nodes[0].Missing["go"], "install Go")
	})
}
