package appstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/cocaine-cloud/cocaine/storage"
)

// Stop keeps app name stored but not running: engines undeploy it at
// their next reconcile. Stopping a stopped app changes nothing.
func (s *Store) Stop(ctx context.Context, name string) error {
	return s.setStopped(ctx, name, true)
}

// Start lets a stopped app run again. Starting a running app changes
// nothing.
func (s *Store) Start(ctx context.Context, name string) error {
	return s.setStopped(ctx, name, false)
}

func (s *Store) setStopped(ctx context.Context, name string, stopped bool) error {
	if err := checkName(name); err != nil {
		return err
	}
	defer s.lock(name)()
	meta, pkg, err := s.readCurrent(ctx, name)
	if err != nil {
		return err
	}
	if (meta[MetaStopped] == "true") == stopped {
		return nil
	}
	if stopped {
		meta[MetaStopped] = "true"
	} else {
		delete(meta, MetaStopped)
	}
	if err := s.st.Put(ctx, storage.NSApps, name, meta, bytes.NewReader(pkg)); err != nil {
		return fmt.Errorf("app %s: %w", name, err)
	}
	return nil
}

// readCurrent reads the current object whole: storage has no meta-only
// update, and streaming an object into a Put of the same key is not safe
// on every backend.
func (s *Store) readCurrent(ctx context.Context, name string) (storage.Meta, []byte, error) {
	info, rc, err := s.st.Get(ctx, storage.NSApps, name)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil, notFound(name)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("app %s: %w", name, err)
	}
	defer rc.Close()
	pkg, err := io.ReadAll(rc)
	if err != nil {
		return nil, nil, fmt.Errorf("app %s: %w", name, err)
	}
	return copyMeta(info.Meta), pkg, nil
}

// Rollback makes the newest kept version older than the current one the
// current version, and returns its number. Called again, it steps back
// once more. The stopped flag is kept.
func (s *Store) Rollback(ctx context.Context, name string) (string, error) {
	if err := checkName(name); err != nil {
		return "", err
	}
	defer s.lock(name)()
	cur, err := s.current(ctx, name)
	if err != nil {
		return "", err
	}
	hist, err := s.history(ctx, name)
	if err != nil {
		return "", err
	}
	curV, ok := parseVersion(cur.Meta[MetaVersion])
	prev := int64(-1)
	for _, v := range hist {
		if ok && v < curV {
			prev = v
		}
	}
	if prev < 0 {
		return "", fmt.Errorf("app %s: %w", name, ErrNoPrevious)
	}
	version := strconv.FormatInt(prev, 10)
	info, rc, err := s.st.Get(ctx, NSVersions, versionKey(name, version))
	if errors.Is(err, storage.ErrNotFound) {
		return "", fmt.Errorf("app %s: version %s was removed meanwhile: %w", name, version, ErrNoPrevious)
	}
	if err != nil {
		return "", fmt.Errorf("app %s: version %s: %w", name, version, err)
	}
	defer rc.Close()
	meta := copyMeta(info.Meta)
	// The version number is the one the engines compare: writing it back
	// is what makes them redeploy the older package.
	meta[MetaVersion] = version
	if cur.Meta[MetaStopped] == "true" {
		meta[MetaStopped] = "true"
	}
	if err := s.st.Put(ctx, storage.NSApps, name, meta, rc); err != nil {
		return "", fmt.Errorf("app %s: %w", name, err)
	}
	return version, nil
}

// Remove forgets app name: the current object first, so that engines stop
// it at their next reconcile, then its history, log and crash logs. It
// returns ErrNotFound when nothing of the app was stored.
func (s *Store) Remove(ctx context.Context, name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	defer s.lock(name)()
	found := false
	var errs []error
	gone := func(err error) {
		switch {
		case err == nil:
			found = true
		case !errors.Is(err, storage.ErrNotFound):
			errs = append(errs, err)
		}
	}
	gone(s.st.Remove(ctx, storage.NSApps, name))
	for _, ns := range []struct{ ns, prefix string }{{NSVersions, name + "@"}, {storage.NSCrashlogs, name + ":"}} {
		keys, err := s.st.List(ctx, ns.ns, ns.prefix)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, k := range keys {
			gone(s.st.Remove(ctx, ns.ns, k))
		}
	}
	gone(s.st.RemoveLog(ctx, name))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("app %s: remove: %w", name, err)
	}
	if !found {
		return notFound(name)
	}
	return nil
}
