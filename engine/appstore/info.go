package appstore

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cocaine-cloud/cocaine/storage"
)

// Summary is an app as List shows it.
type Summary struct {
	Name     string    `json:"name"`
	Version  string    `json:"version"`
	Label    string    `json:"label,omitempty"` // "v3": the third upload
	Stopped  bool      `json:"stopped"`
	Uploaded time.Time `json:"uploaded"`
	Size     int64     `json:"size"` // package bytes
}

// Version is one kept version of an app.
type Version struct {
	Version  string    `json:"version"`
	Label    string    `json:"label,omitempty"` // "v3": the third upload
	Uploaded time.Time `json:"uploaded"`
	Size     int64     `json:"size"`
	Current  bool      `json:"current"`
}

// AppInfo is an app as Info shows it.
type AppInfo struct {
	Summary
	Manifest json.RawMessage `json:"manifest"`
	Versions []Version       `json:"versions"` // newest first
}

// List returns the stored apps, sorted by name.
func (s *Store) List(ctx context.Context) ([]Summary, error) {
	names, err := s.st.List(ctx, storage.NSApps, "")
	if err != nil {
		return nil, fmt.Errorf("list apps: %w", err)
	}
	out := make([]Summary, 0, len(names))
	for _, name := range names {
		info, err := s.st.Stat(ctx, storage.NSApps, name)
		if errors.Is(err, storage.ErrNotFound) {
			continue // removed since List
		}
		if err != nil {
			return nil, fmt.Errorf("app %s: %w", name, err)
		}
		out = append(out, summary(name, info))
	}
	return out, nil
}

// Info describes app name: its current version, manifest and history.
func (s *Store) Info(ctx context.Context, name string) (*AppInfo, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	cur, err := s.current(ctx, name)
	if err != nil {
		return nil, err
	}
	ai := &AppInfo{Summary: summary(name, cur), Manifest: manifestJSON(cur.Meta[MetaManifest])}
	keys, err := s.st.List(ctx, NSVersions, name+"@")
	if err != nil {
		return nil, fmt.Errorf("app %s: versions: %w", name, err)
	}
	seen := false
	for _, key := range keys {
		info, err := s.st.Stat(ctx, NSVersions, key)
		if errors.Is(err, storage.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("app %s: version %s: %w", name, key, err)
		}
		v := Version{Version: strings.TrimPrefix(key, name+"@"), Label: Label(info.Meta), Uploaded: uploaded(info), Size: info.Size}
		v.Current = v.Version == ai.Version
		seen = seen || v.Current
		ai.Versions = append(ai.Versions, v)
	}
	if !seen {
		// Stored before history was kept, or its version object was lost:
		// the current version still belongs in the list.
		ai.Versions = append(ai.Versions, Version{Version: ai.Version, Label: ai.Label, Uploaded: ai.Uploaded, Size: ai.Size, Current: true})
	}
	slices.SortFunc(ai.Versions, func(a, b Version) int { return compareVersions(b.Version, a.Version) })
	return ai, nil
}

// history returns the numbers of app name's kept versions, oldest first.
func (s *Store) history(ctx context.Context, name string) ([]int64, error) {
	keys, err := s.st.List(ctx, NSVersions, name+"@")
	if err != nil {
		return nil, fmt.Errorf("app %s: versions: %w", name, err)
	}
	out := make([]int64, 0, len(keys))
	for _, key := range keys {
		if n, ok := parseVersion(strings.TrimPrefix(key, name+"@")); ok {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out, nil
}

func summary(name string, info storage.Info) Summary {
	return Summary{Name: name, Version: info.Meta[MetaVersion], Label: Label(info.Meta), Stopped: info.Meta[MetaStopped] == "true", Uploaded: uploaded(info), Size: info.Size}
}

func uploaded(info storage.Info) time.Time {
	if t, err := time.Parse(time.RFC3339Nano, info.Meta[MetaUploaded]); err == nil {
		return t
	}
	return info.Modified
}

// manifestJSON keeps a stored manifest that is not JSON (written by hand,
// or by an older version) from breaking the document it is embedded in.
func manifestJSON(s string) json.RawMessage {
	if s == "" || !json.Valid([]byte(s)) {
		b, _ := json.Marshal(s)
		return b
	}
	return json.RawMessage(s)
}

// compareVersions orders version strings by number, numbers before
// anything else.
func compareVersions(a, b string) int {
	na, oka := parseVersion(a)
	nb, okb := parseVersion(b)
	switch {
	case oka && okb:
		return cmp.Compare(na, nb)
	case oka:
		return 1
	case okb:
		return -1
	}
	return strings.Compare(a, b)
}
