package nats

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// config is what a nats:// URI says.
type config struct {
	servers    string // comma-separated nats:// URLs for the client
	user, pass string
	opts       Options
}

var bucketPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// parseURI reads
//
//	nats://[user:pass@]host[:port][,host[:port]...][/][?parameters]
//
// The port defaults to 4222. Parameters:
//
//	replicas       servers keeping each object and line (default 3 with three or more hosts, else 1)
//	bucket         prefix of the bucket and stream names (default cocaine)
//	timeout        bound on each call to the cluster (default 5s)
//	max-log-lines  newest lines kept per app (negative: no count bound)
//	max-log-age    Go duration; older lines are dropped (negative: no age bound)
//	blob-grace     how long a replaced blob stays readable (0: delete at once)
//
// Any other parameter is an error, so that a typo is not silently ignored.
func parseURI(u *url.URL) (config, error) {
	var c config
	fail := func(format string, a ...any) (config, error) {
		return c, fmt.Errorf("nats: uri %q: "+format, append([]any{u.Redacted()}, a...)...)
	}
	if u.Scheme != "nats" {
		return fail("scheme is not nats")
	}
	if u.Opaque != "" || u.Host == "" {
		return fail("no host (want nats://host:4222[,host:4222...])")
	}
	if u.Path != "" && u.Path != "/" {
		return fail("a path has no meaning here (the bucket is ?bucket=NAME)")
	}
	if u.Fragment != "" {
		return fail("fragments have no meaning here")
	}
	if u.User != nil {
		c.user = u.User.Username()
		c.pass, _ = u.User.Password()
	}
	var servers []string
	for _, h := range strings.Split(u.Host, ",") {
		if h == "" {
			return fail("empty host in the list")
		}
		host, port, err := net.SplitHostPort(h)
		if err != nil {
			host, port = h, "4222"
		}
		if host == "" {
			return fail("host %q has no name", h)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fail("host %q: bad port", h)
		}
		servers = append(servers, "nats://"+net.JoinHostPort(host, port))
	}
	c.servers = strings.Join(servers, ",")

	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return fail("query: %v", err)
	}
	for name, values := range q {
		if len(values) != 1 {
			return fail("%s given %d times", name, len(values))
		}
		if err := c.opts.set(name, values[0]); err != nil {
			return fail("%v", err)
		}
	}
	c.opts = c.opts.withDefaults(len(servers))
	if c.opts.Replicas > len(servers) && len(servers) >= 3 {
		// With fewer hosts listed than replicas the client still finds
		// the rest of the cluster, so only the obvious mistake is caught.
		return fail("replicas=%d but only %d servers listed", c.opts.Replicas, len(servers))
	}
	return c, nil
}

// set applies one URI parameter.
func (o *Options) set(name, value string) error {
	switch name {
	case "replicas":
		n, err := strconv.Atoi(value)
		// JetStream allows 1 to 5 replicas.
		if err != nil || n < 1 || n > 5 {
			return fmt.Errorf("replicas %q: want 1 to 5 (3 survives one server down)", value)
		}
		o.Replicas = n
	case "bucket":
		if !bucketPattern.MatchString(value) {
			return fmt.Errorf("bucket %q: want 1 to 32 of A-Z a-z 0-9 _ -", value)
		}
		o.Bucket = value
	case "timeout":
		d, err := time.ParseDuration(value)
		if err != nil || d <= 0 {
			return fmt.Errorf("timeout %q: want a positive duration such as 5s", value)
		}
		o.Timeout = d
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
	default:
		return fmt.Errorf("unknown parameter %q", name)
	}
	return nil
}
