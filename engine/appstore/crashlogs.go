package appstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/cocaine-cloud/cocaine/storage"
)

// MaxCrashOutput bounds the output CrashLog returns; engines keep only a
// slave's last lines, so only a hand-written object could be larger.
const MaxCrashOutput = 4 << 20

// Crash describes one crash log (namespace "crashlogs", key
// APP:UNIXNANO:SLAVE, written by engines).
type Crash struct {
	Key    string    `json:"key"`
	App    string    `json:"app"`
	Slave  string    `json:"slave,omitempty"`
	Reason string    `json:"reason,omitempty"`
	Status string    `json:"status,omitempty"`
	Node   string    `json:"node,omitempty"`
	Time   time.Time `json:"time"`
	Size   int64     `json:"size"`
	Output string    `json:"output,omitempty"` // only from CrashLog
}

// Crashes lists app name's crash logs, newest first. An app without any
// has an empty list; whether the app exists is the caller's question.
func (s *Store) Crashes(ctx context.Context, name string) ([]Crash, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	keys, err := s.st.List(ctx, storage.NSCrashlogs, name+":")
	if err != nil {
		return nil, fmt.Errorf("app %s: crash logs: %w", name, err)
	}
	out := make([]Crash, 0, len(keys))
	for _, key := range keys {
		info, err := s.st.Stat(ctx, storage.NSCrashlogs, key)
		if errors.Is(err, storage.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("app %s: crash log %s: %w", name, key, err)
		}
		out = append(out, crash(name, key, info))
	}
	slices.SortStableFunc(out, func(a, b Crash) int { return b.Time.Compare(a.Time) })
	return out, nil
}

// CrashLog returns one crash log of app name with its output.
func (s *Store) CrashLog(ctx context.Context, name, key string) (*Crash, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	// A key of another app must not be readable through this one's URL.
	if !strings.HasPrefix(key, name+":") || !storage.ValidName(key) {
		return nil, fmt.Errorf("crash log %q of app %s: %w", key, name, storage.ErrNotFound)
	}
	info, rc, err := s.st.Get(ctx, storage.NSCrashlogs, key)
	if err != nil {
		return nil, fmt.Errorf("crash log %s: %w", key, err)
	}
	defer rc.Close()
	out, err := io.ReadAll(io.LimitReader(rc, MaxCrashOutput))
	if err != nil {
		return nil, fmt.Errorf("crash log %s: %w", key, err)
	}
	c := crash(name, key, info)
	c.Output = string(out)
	return &c, nil
}

func crash(name, key string, info storage.Info) Crash {
	c := Crash{Key: key, App: name, Slave: info.Meta["slave"], Reason: info.Meta["reason"],
		Status: info.Meta["status"], Node: info.Meta["node"], Size: info.Size, Time: info.Modified}
	if t, err := time.Parse(time.RFC3339Nano, info.Meta["time"]); err == nil {
		c.Time = t
	}
	return c
}

// Logs returns up to limit lines of app name's log after since, oldest
// first (limit <= 0: all kept).
func (s *Store) Logs(ctx context.Context, name string, since time.Time, limit int) ([]storage.LogLine, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	lines, err := s.st.ReadLog(ctx, name, since, limit)
	if err != nil {
		return nil, fmt.Errorf("app %s: log: %w", name, err)
	}
	return lines, nil
}

// LogChanged returns a channel closed when app name's log may have grown,
// or nil when the storage cannot tell (the caller polls then).
func (s *Store) LogChanged(name string) <-chan struct{} {
	w, ok := s.st.(storage.LogWatcher)
	if !ok || checkName(name) != nil {
		return nil
	}
	ch, err := w.LogChanged(name)
	if err != nil {
		return nil
	}
	return ch
}

// Exists reports whether app name is stored.
func (s *Store) Exists(ctx context.Context, name string) (bool, error) {
	if err := checkName(name); err != nil {
		return false, err
	}
	_, err := s.current(ctx, name)
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}
