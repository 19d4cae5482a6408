package appstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/cocaine-cloud/cocaine/engine/manifest"
	"github.com/cocaine-cloud/cocaine/storage"
)

// Upload is the outcome of Put.
type Upload struct {
	Name     string
	Version  string
	Label    string // "v3": the third upload
	Manifest *manifest.Manifest
	Created  bool // the app had no current version before
	Stopped  bool // stored, but kept from running until started
}

// Put validates pkg and stores it as app name's new current version, then
// trims history to Options.Keep versions.
//
// The version object is written before the current one: should Put fail
// between the two, history holds a version that never ran, which is
// harmless, whereas the other order could leave a current version that
// rollback and info cannot find.
func (s *Store) Put(ctx context.Context, name string, pkg []byte) (*Upload, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if s.opts.Validate == nil {
		return nil, errors.New("appstore: no validator configured")
	}
	m, err := s.opts.Validate(pkg)
	if err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errors.New("appstore: the validator returned no manifest")
	}
	defer s.lock(name)()

	cur, err := s.current(ctx, name)
	created := errors.Is(err, storage.ErrNotFound)
	if err != nil && !created {
		return nil, err
	}
	hist, err := s.history(ctx, name)
	if err != nil {
		return nil, err
	}
	v := time.Now().UnixNano()
	if n, ok := parseVersion(cur.Meta[MetaVersion]); ok && n >= v {
		v = n + 1
	}
	if len(hist) > 0 && hist[len(hist)-1] >= v {
		v = hist[len(hist)-1] + 1
	}
	version := strconv.FormatInt(v, 10)

	// Kept as JSON for info to embed: compacted, without the BOM a
	// manifest may start with.
	raw := bytes.TrimPrefix(m.Raw, []byte("\xef\xbb\xbf"))
	compact := new(bytes.Buffer)
	if json.Compact(compact, raw) != nil {
		compact.Reset()
		compact.Write(raw)
	}
	meta := storage.Meta{MetaVersion: version, MetaManifest: compact.String(), MetaUploaded: time.Now().UTC().Format(time.RFC3339Nano),
		MetaSeq: strconv.Itoa(s.nextSeq(ctx, name, cur, hist))}
	if err := s.st.Put(ctx, NSVersions, versionKey(name, version), meta, bytes.NewReader(pkg)); err != nil {
		return nil, fmt.Errorf("app %s: store version: %w", name, err)
	}
	stopped := cur.Meta[MetaStopped] == "true"
	curMeta := copyMeta(meta)
	if stopped {
		curMeta[MetaStopped] = "true"
	}
	if err := s.st.Put(ctx, storage.NSApps, name, curMeta, bytes.NewReader(pkg)); err != nil {
		return nil, fmt.Errorf("app %s: store: %w", name, err)
	}
	// The upload has succeeded once the current object is written; a
	// version that could not be trimmed goes at the next upload.
	_ = s.trim(ctx, name, v)
	return &Upload{Name: name, Version: version, Label: Label(meta), Manifest: m, Created: created, Stopped: stopped}, nil
}

// trim removes all but the newest Keep versions, never the current one.
func (s *Store) trim(ctx context.Context, name string, current int64) error {
	hist, err := s.history(ctx, name)
	if err != nil {
		return err
	}
	var errs []error
	for i := 0; i < len(hist)-s.opts.Keep; i++ {
		if hist[i] == current {
			continue
		}
		err := s.st.Remove(ctx, NSVersions, versionKey(name, strconv.FormatInt(hist[i], 10)))
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func copyMeta(m storage.Meta) storage.Meta {
	out := make(storage.Meta, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	return out
}

func parseVersion(s string) (int64, bool) {
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && n >= 0
}

// nextSeq is one past the largest upload count of the current object and
// the kept versions (a rollback makes an older count current).
func (s *Store) nextSeq(ctx context.Context, name string, cur storage.Info, hist []int64) int {
	top, _ := strconv.Atoi(cur.Meta[MetaSeq])
	for _, v := range hist {
		if info, err := s.st.Stat(ctx, NSVersions, versionKey(name, strconv.FormatInt(v, 10))); err == nil {
			if n, err := strconv.Atoi(info.Meta[MetaSeq]); err == nil && n > top {
				top = n
			}
		}
	}
	return top + 1
}

// Label is a version as people count them: "v3", or "" for one stored
// before uploads were counted.
func Label(meta storage.Meta) string {
	if n, err := strconv.Atoi(meta[MetaSeq]); err == nil && n > 0 {
		return "v" + strconv.Itoa(n)
	}
	return ""
}
