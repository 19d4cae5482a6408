package main

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
)

func TestVersionListsTheRuntimesInside(t *testing.T) {
	out, errOut, code := cli(t, nil, "version", "--json")
	if code != exitOK {
		t.Fatalf("version --json: exit %d\n%s", code, errOut)
	}
	var vi versionInfo
	if err := json.Unmarshal([]byte(out), &vi); err != nil {
		t.Fatalf("version --json: %v\n%s", err, out)
	}
	if vi.Version == "" || !strings.HasPrefix(vi.Go, "go1.") {
		t.Errorf("version %q, go %q", vi.Version, vi.Go)
	}
	hash := regexp.MustCompile(`^[0-9a-f]{64}$`)
	names := map[string]runtimeInfo{}
	for _, r := range vi.Runtimes {
		if !hash.MatchString(r.Hash) {
			t.Errorf("runtime %s: hash %q", r.Name, r.Hash)
		}
		names[r.Name] = r
	}
	if _, ok := names["python"]; !ok {
		t.Errorf("no python runtime in %+v", vi.Runtimes)
	}
	if sdk := names["go-sdk"]; !strings.Contains(sdk.Version, "github.com/vmihailenco/msgpack/v5 v") {
		t.Errorf("the Go SDK's version does not name its modules: %q", sdk.Version)
	}
	text, _, code := cli(t, nil, "version")
	if code != exitOK || !strings.HasPrefix(text, "cocaine "+vi.Version+"\n") || !strings.Contains(text, names["python"].Hash[:16]) {
		t.Errorf("version: exit %d\n%s", code, text)
	}
}
