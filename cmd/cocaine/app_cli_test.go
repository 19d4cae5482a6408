package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cocaine-cloud/cocaine/engine"
	"github.com/cocaine-cloud/cocaine/engine/appstore"
	"github.com/cocaine-cloud/cocaine/internal/wire"
	"github.com/cocaine-cloud/cocaine/storage"
	"github.com/cocaine-cloud/cocaine/storage/files"
	"github.com/cocaine-cloud/cocaine/web"
)

type staticNodes []wire.NodeInfo

func (s staticNodes) Nodes() []wire.NodeInfo { return s }

// apiServer is the REST API over files storage, without engines.
func apiServer(t *testing.T, token string) (string, storage.Storage) {
	t.Helper()
	st, err := files.Open(t.TempDir(), files.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	store := appstore.New(st, appstore.Options{Validate: engine.ValidatePackage})
	nodes := staticNodes{{Endpoint: "tcp://n1:5000", ID: "n1", Apps: map[string]wire.AppInfo{"app": {State: "running", Slaves: wire.SlaveCounts{Total: 3}}}}}
	api, err := web.New(web.Config{Tokens: []string{token}}, web.Options{Store: store, Nodes: nodes, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(api)
	t.Cleanup(ts.Close)
	t.Cleanup(api.Close)
	return ts.URL, st
}

func writeApp(t *testing.T, manifest string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "app")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "manifest.json"), []byte(manifest), 0o644)
	os.WriteFile(filepath.Join(dir, "run"), []byte("#!/bin/sh\n"), 0o755)
	return dir
}

func TestCLIExitCodesAndOutput(t *testing.T) {
	url, st := apiServer(t, "tok")
	env := []string{"COCAINE_API=" + url, "COCAINE_TOKEN=tok"}
	good := writeApp(t, `{"type": "binary", "args": {"path": "run"}, "drivers": {"x": {"type": "native-server"}}}`)
	bad := writeApp(t, `{"type": "nope", "engine": {"pool-limit": -1}}`)

	for _, c := range []struct {
		args     []string
		env      []string
		code     int
		stdout   string // substrings, "|"-separated
		stderr   string
		describe string
	}{
		{[]string{"app"}, env, exitUsage, "", "usage: cocaine app", "no subcommand"},
		{[]string{"app", "nope"}, env, exitUsage, "", "unknown command", "unknown subcommand"},
		{[]string{"app", "info"}, env, exitUsage, "", "want NAME", "missing name"},
		{[]string{"app", "info", "-h"}, env, exitOK, "", "exit codes", "help"},
		{[]string{"app", "--help"}, env, exitOK, "exit codes|upload", "", "help"},
		{[]string{"app", "list"}, env, exitOK, "no apps", "", "empty list"},
		{[]string{"app", "upload", good}, []string{"COCAINE_API=" + url}, exitFailure, "", "Bearer|--token", "no token"},
		{[]string{"app", "upload", good, "--token", "wrong"}, env, exitFailure, "", "not accepted", "wrong token"},
		{[]string{"app", "upload", bad}, env, exitInvalid, "", "engine.pool-limit|type:", "invalid manifest"},
		{[]string{"app", "upload", filepath.Join(t.TempDir(), "missing")}, env, exitUsage, "", "no such file", "missing folder"},
		{[]string{"app", "upload", good}, env, exitOK, "uploaded app (new app|version v1", "", "upload"},
		{[]string{"app", "upload", good}, env, exitOK, "uploaded app (new version of|version v2", "", "second upload"},
		{[]string{"app", "list"}, env, exitOK, "NAME|app|v2|running 1/1", "", "list"},
		{[]string{"app", "info", "app"}, env, exitOK, "versions|manifest:|tcp://n1:5000|v2 (", "", "info"},
		{[]string{"app", "info", "nope"}, env, exitNotFound, "", "not found", "unknown app"},
		{[]string{"app", "rollback", "app"}, env, exitOK, "rolled app back to version v1", "", "rollback"},
		{[]string{"app", "rollback", "app"}, env, exitFailure, "", "no previous version", "nothing to roll back to"},
		{[]string{"app", "stop", "app"}, env, exitOK, "stopped app", "", "stop"},
		{[]string{"app", "list"}, env, exitOK, "stopping", "", "stopped, a node still reports it"},
		{[]string{"app", "start", "app", "--json"}, env, exitOK, `"stopped": false`, "", "start"},
		{[]string{"app", "crashlog", "app"}, env, exitOK, "no crash logs", "", "no crash logs"},
		{[]string{"app", "logs", "app"}, env, exitOK, "hello from the app", "", "logs"},
		{[]string{"app", "logs", "app", "--since", "1m", "--json"}, env, exitOK, `"text":"hello from the app"`, "", "logs json"},
		{[]string{"app", "logs", "app", "--since", "soon"}, env, exitUsage, "", "--since", "bad since"},
		{[]string{"app", "remove", "app"}, env, exitOK, "removed app", "", "remove"},
		{[]string{"app", "remove", "app"}, env, exitNotFound, "", "not found", "second remove"},
		{[]string{"app", "list", "--api", "http://127.0.0.1:1"}, env, exitFailure, "", "cannot reach the API", "no server"},
	} {
		if c.describe == "logs" {
			line := storage.LogLine{Time: time.Now(), App: "app", Slave: "s1", Stream: "stdout", Text: "hello from the app"}
			if err := st.AppendLog(context.Background(), "app", []storage.LogLine{line}); err != nil {
				t.Fatal(err)
			}
		}
		out, errOut, code := cli(t, c.env, c.args...)
		if code != c.code {
			t.Errorf("%s (%v): exit %d, want %d\nstdout: %s\nstderr: %s", c.describe, c.args, code, c.code, out, errOut)
			continue
		}
		for _, want := range strings.Split(c.stdout, "|") {
			if !strings.Contains(out, want) {
				t.Errorf("%s: stdout lacks %q:\n%s", c.describe, want, out)
			}
		}
		for _, want := range strings.Split(c.stderr, "|") {
			if !strings.Contains(errOut, want) {
				t.Errorf("%s: stderr lacks %q:\n%s", c.describe, want, errOut)
			}
		}
	}
}

func TestCLIUploadsATarball(t *testing.T) {
	url, _ := apiServer(t, "tok")
	env := []string{"COCAINE_API=" + url, "COCAINE_TOKEN=tok"}
	dir := writeApp(t, `{"type": "binary", "args": {"path": "run"}}`)
	pkg, _, err := readUpload(dir)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "tarred.tar.gz")
	os.WriteFile(file, pkg, 0o644)
	out, errOut, code := cli(t, env, "app", "upload", file, "--json")
	var res struct{ Name, Version string }
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil || res.Name != "tarred" || res.Version == "" {
		t.Fatalf("exit %d: %s %s", code, out, errOut)
	}
}

func TestCLIFindsTheDevToken(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "var"), 0o755)
	os.WriteFile(filepath.Join(dir, "var", "token"), []byte("from-file\n"), 0o600)
	wd, _ := os.Getwd()
	defer os.Chdir(wd)
	os.Chdir(dir)
	t.Setenv(tokenEnv, "")
	o := &commonOpts{api: "http://127.0.0.1:8080"}
	if c, err := o.client(); err != nil || c.token != "from-file" {
		t.Fatalf("token from ./var/token: %+v %v", c, err)
	}
	t.Setenv(tokenEnv, "from-env")
	if c, _ := o.client(); c.token != "from-env" {
		t.Fatalf("env should win over the file: %q", c.token)
	}
	o.token = "from-flag"
	if c, _ := o.client(); c.token != "from-flag" {
		t.Fatalf("flag should win: %q", c.token)
	}
}

func TestDevTokenIsGeneratedOnceAndPrivate(t *testing.T) {
	dir := t.TempDir()
	tok, path, err := devToken(dir)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 || len(tok) < 32 {
		t.Fatalf("token file %v %v, token %q", fi, err, tok)
	}
	if again, _, err := devToken(dir); err != nil || again != tok {
		t.Fatalf("second run made another token: %q %v", again, err)
	}
}

func TestGatewayConfigAPISection(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gw.toml")
	os.WriteFile(path, []byte(`
[api]
storage = "file:///tmp/x"
tokens = ["a", "b"]
max-upload = 1024
keep-versions = 3
private-reads = true
[security]
insecure = true
`), 0o644)
	cfg, err := loadGatewayConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	a := cfg.API
	if a.Storage != "file:///tmp/x" || len(a.Tokens) != 2 || a.MaxUpload != 1024 || a.KeepVersions != 3 || !a.PrivateReads {
		t.Fatalf("api config: %+v", a)
	}
	if cfg.Admin.Listen != "127.0.0.1:8081" || cfg.Admin.OnFront {
		t.Fatalf("admin defaults: %+v", cfg.Admin)
	}
	os.WriteFile(path, []byte("[admin]\nlisten = \"127.0.0.1:9999\"\non-front = true\n[security]\ninsecure = true\n"), 0o644)
	if cfg, err = loadGatewayConfig(path); err != nil {
		t.Fatal(err)
	} else if cfg.Admin.Listen != "127.0.0.1:9999" || !cfg.Admin.OnFront {
		t.Fatalf("admin section: %+v", cfg.Admin)
	}
	os.WriteFile(path, []byte("[api]\nnope = 1\n"), 0o644)
	if _, err := loadGatewayConfig(path); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("unknown key accepted: %v", err)
	}
}
