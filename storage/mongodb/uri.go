package mongodb

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/connstring"
)

// DefaultDatabase is used when the URI names none.
const DefaultDatabase = "cocaine"

// config is what a mongodb:// URI says once our parameters are taken out.
type config struct {
	// clientURI is the URI minus our parameters: the driver must see its own
	// options (replicaSet, authSource, tls...) unchanged, and would silently
	// ignore ours, so typos in either would go unnoticed.
	clientURI string
	db        string
	opts      Options
}

// parseURI reads
//
//	mongodb://[user:pass@]host[:port][,host...]/[db][?options]
//
// db defaults to DefaultDatabase. Besides the driver's own options it takes
//
//	max-log-lines  newest lines kept per app (negative: no count bound)
//	max-log-age    Go duration; older lines are dropped (negative: no age bound)
//	blob-grace     how long a replaced blob stays readable (0: delete at once)
//	orphan-age     how old an unreferenced blob must be before Open deletes it
//
// Ours are spelled with dashes, which no driver option is, so any other
// dashed name is reported as a typo rather than passed on.
func parseURI(u *url.URL) (config, error) {
	var c config
	fail := func(format string, a ...any) (config, error) {
		return c, fmt.Errorf("mongodb: uri %q: "+format, append([]any{u.Redacted()}, a...)...)
	}
	if u.Scheme != "mongodb" {
		return fail("scheme is not mongodb")
	}
	if u.Opaque != "" || u.Host == "" {
		return fail("no host (want mongodb://host:27017/db)")
	}
	if u.Fragment != "" {
		return fail("fragments have no meaning here")
	}

	db := strings.TrimPrefix(u.Path, "/")
	if db == "" {
		db = DefaultDatabase
	}
	if err := checkDatabaseName(db); err != nil {
		return fail("%v", err)
	}
	c.db = db

	// The query is filtered as raw text, not re-encoded from url.Values, so
	// that the driver's options reach it exactly as they were written.
	var kept []string
	seen := map[string]bool{}
	for _, pair := range strings.Split(u.RawQuery, "&") {
		if pair == "" {
			continue
		}
		rawName, rawValue, _ := strings.Cut(pair, "=")
		name, err := url.QueryUnescape(rawName)
		if err != nil {
			return fail("query: %v", err)
		}
		if !strings.Contains(name, "-") {
			kept = append(kept, pair)
			continue
		}
		value, err := url.QueryUnescape(rawValue)
		if err != nil {
			return fail("query: %v", err)
		}
		if seen[name] {
			return fail("%s given twice", name)
		}
		seen[name] = true
		if err := c.opts.set(name, value); err != nil {
			return fail("%v", err)
		}
	}

	clientURI := u.Scheme + "://"
	if u.User != nil {
		clientURI += u.User.String() + "@"
	}
	clientURI += u.Host + u.EscapedPath()
	if len(kept) > 0 {
		clientURI += "?" + strings.Join(kept, "&")
	}
	cs, err := connstring.ParseAndValidate(clientURI)
	if err != nil {
		return fail("%v", err)
	}
	if len(cs.UnknownOptions) > 0 {
		names := make([]string, 0, len(cs.UnknownOptions))
		for n := range cs.UnknownOptions {
			names = append(names, n)
		}
		return fail("unknown options %v", names)
	}
	c.clientURI = clientURI
	return c, nil
}

// set applies one of our URI parameters.
func (o *Options) set(name, value string) error {
	switch name {
	case "max-log-lines":
		n, err := strconv.Atoi(value)
		if err != nil || n == 0 {
			return fmt.Errorf("max-log-lines %q: want a non-zero integer", value)
		}
		o.MaxLogLines = n
	case "max-log-age":
		d, err := time.ParseDuration(value)
		if err != nil || d == 0 {
			return fmt.Errorf("max-log-age %q: want a non-zero duration such as 24h", value)
		}
		o.MaxLogAge = d
	case "blob-grace":
		d, err := time.ParseDuration(value)
		if err != nil || d < 0 {
			return fmt.Errorf("blob-grace %q: want a duration such as 1m, or 0", value)
		}
		if d == 0 {
			d = -1 // zero in Options means the default
		}
		o.BlobGrace = d
	case "orphan-age":
		d, err := time.ParseDuration(value)
		if err != nil || d <= 0 {
			return fmt.Errorf("orphan-age %q: want a positive duration such as 15m", value)
		}
		o.OrphanAge = d
	default:
		return fmt.Errorf("unknown parameter %q", name)
	}
	return nil
}

// checkDatabaseName applies MongoDB's rules for database names, so that a
// bad one fails at Open with a clear message instead of on the first write.
func checkDatabaseName(db string) error {
	if len(db) > 63 {
		return fmt.Errorf("database name %q is longer than 63 bytes", db)
	}
	if i := strings.IndexAny(db, "/\\. \"$*<>:|?\x00"); i >= 0 {
		return fmt.Errorf("database name %q may not contain %q", db, db[i])
	}
	return nil
}
