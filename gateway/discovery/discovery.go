// Package discovery tells the dealer which engine announce endpoints exist.
// It does not talk to the engines: the dealer subscribes to the endpoints a
// Source reports and learns everything else from what the nodes publish.
//
// Sources: a fixed list (Static), a hosts file re-read when it changes
// (HostsFile), UDP multicast beacons sent by engine.RunBeacon (Multicast),
// and any union of them (Merge). Parse builds one from a config string.
package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
)

// Source reports the set of announce endpoints it currently knows. Run
// calls update with the full current set (not a delta) whenever it
// changes, and returns when ctx ends.
//
// Every Source here reports its initial set once at start, even when it is
// empty, calls update from one goroutine at a time, passes a sorted,
// deduplicated slice the callee may keep, and returns nil when ctx ends.
type Source interface {
	Run(ctx context.Context, update func(endpoints []string)) error
	String() string
}

// DefaultPort is the engine's default announce port, used for hosts given
// without one.
const DefaultPort = 5001

// Static is a fixed list. Entries are normalised as hosts file lines are
// ("host", "host:port" or "tcp://host:port"); one that is not an endpoint
// is skipped with a warning when the source runs (Parse rejects it instead).
func Static(endpoints ...string) Source {
	return staticSource(slices.Clone(endpoints))
}

type staticSource []string

func (s staticSource) Run(ctx context.Context, update func([]string)) error {
	var set []string
	for _, e := range s {
		ep, err := Normalize(e, DefaultPort)
		if err != nil {
			slog.Default().Warn("discovery: skipping static endpoint", "endpoint", e, "err", err)
			continue
		}
		set = append(set, ep)
	}
	update(sortSet(set))
	<-ctx.Done()
	return nil
}

func (s staticSource) String() string { return "static:" + strings.Join(s, ",") }

// Merge is the union of several sources, deduplicated and sorted. A source
// that fails keeps contributing the last set it reported (a broken
// multicast setup must not drop the static hosts beside it); Merge returns
// early only when every source has failed, with their errors joined.
func Merge(sources ...Source) Source { return mergeSource(slices.Clone(sources)) }

type mergeSource []Source

func (m mergeSource) String() string {
	names := make([]string, len(m))
	for i, s := range m {
		names[i] = s.String()
	}
	return "merge(" + strings.Join(names, ", ") + ")"
}

func (m mergeSource) Run(ctx context.Context, update func([]string)) error {
	if len(m) == 0 {
		update([]string{})
		<-ctx.Done()
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type report struct {
		i   int
		set []string
	}
	type result struct {
		i   int
		err error
	}
	// The children report here rather than calling update themselves so
	// that update sees one caller at a time and the union is computed in
	// one place.
	reports := make(chan report)
	results := make(chan result, len(m))
	for i, s := range m {
		go func() {
			err := s.Run(ctx, func(set []string) {
				select {
				case reports <- report{i, slices.Clone(set)}:
				case <-ctx.Done():
				}
			})
			results <- result{i, err}
		}()
	}
	sets := make([][]string, len(m))
	var last []string
	published := false
	var errs []error
	running := len(m)
	for running > 0 {
		select {
		case r := <-reports:
			sets[r.i] = r.set
			u := sortSet(slices.Concat(sets...))
			if !published || !slices.Equal(u, last) {
				published, last = true, u
				update(slices.Clone(u))
			}
		case r := <-results:
			running--
			if ctx.Err() != nil {
				continue
			}
			if r.err == nil {
				r.err = errors.New("stopped")
			}
			err := fmt.Errorf("%s: %w", m[r.i], r.err)
			slog.Default().Error("discovery source failed; keeping its last endpoints", "source", m[r.i].String(), "err", r.err)
			errs = append(errs, err)
		case <-ctx.Done():
			// Children see the same ctx; wait for them so none outlives Run.
			for ; running > 0; running-- {
				<-results
			}
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	return errors.Join(errs...)
}

// Parse builds a source from a config string:
//
//	static:tcp://a:5001,tcp://b:5001   a fixed list (host[:port] also accepted)
//	file:/etc/cocaine/hosts             a hosts file, default port 5001
//	multicast                           beacons on the default group 239.0.100.53:5099
//	multicast:239.0.100.53:5099         beacons on another group
//	multicast:239.0.100.53:5099%eth0    ... joined on a given interface
func Parse(spec string) (Source, error) {
	kind, arg, hasArg := strings.Cut(strings.TrimSpace(spec), ":")
	switch kind {
	case "static":
		var eps []string
		for e := range strings.SplitSeq(arg, ",") {
			e = strings.TrimSpace(e)
			if e == "" {
				continue
			}
			ep, err := Normalize(e, DefaultPort)
			if err != nil {
				return nil, fmt.Errorf("discovery spec %q: %w", spec, err)
			}
			eps = append(eps, ep)
		}
		if len(eps) == 0 {
			return nil, fmt.Errorf("discovery spec %q: no endpoints after static:", spec)
		}
		return Static(eps...), nil
	case "file":
		path := strings.TrimPrefix(arg, "//") // file:///etc/hosts as well as file:/etc/hosts
		if strings.TrimSpace(path) == "" {
			return nil, fmt.Errorf("discovery spec %q: no path after file:", spec)
		}
		return HostsFile(path, DefaultPort), nil
	case "multicast":
		if hasArg && (arg == "" || strings.HasPrefix(arg, "%")) {
			return nil, fmt.Errorf("discovery spec %q: no group after multicast: (the default is %s)", spec, DefaultGroup)
		}
		group, iface, _ := strings.Cut(arg, "%")
		cfg := MulticastConfig{Group: group, Interface: iface}
		if _, err := resolveGroup(cfg.group()); err != nil {
			return nil, fmt.Errorf("discovery spec %q: %w", spec, err)
		}
		return Multicast(cfg), nil
	}
	return nil, fmt.Errorf("discovery spec %q: want static:ENDPOINT,..., file:PATH, multicast or multicast:GROUP:PORT", spec)
}

// Normalize turns "host", "host:port", "[v6]:port", "tcp://host" or
// "tcp://host:port" into "tcp://host:port", with defaultPort for a missing
// port. Hostnames are lowercased so that one host is one endpoint.
func Normalize(s string, defaultPort int) (string, error) {
	host, port, err := splitEndpoint(s, defaultPort, false)
	if err != nil {
		return "", err
	}
	if isWildcard(host) {
		return "", fmt.Errorf("%q: a wildcard address cannot be dialled", s)
	}
	return "tcp://" + net.JoinHostPort(host, port), nil
}

// splitEndpoint parses an endpoint leniently (strict=false: scheme and
// port optional) or as a beacon must carry it (strict: tcp://host:port).
// Wildcard hosts pass; callers decide what they mean.
func splitEndpoint(s string, defaultPort int, strict bool) (host, port string, err error) {
	rest := s
	if scheme, after, ok := strings.Cut(s, "://"); ok {
		if !strings.EqualFold(scheme, "tcp") {
			return "", "", fmt.Errorf("%q: only tcp:// endpoints can be announce endpoints", s)
		}
		rest = after
	} else if strict {
		return "", "", fmt.Errorf("%q: want tcp://host:port", s)
	}
	switch {
	case strings.HasPrefix(rest, "[") && strings.HasSuffix(rest, "]"): // [v6] without a port
		host = rest[1 : len(rest)-1]
	case strings.Count(rest, ":") > 1 && !strings.HasPrefix(rest, "["): // bare v6 without a port
		host = rest
	case strings.Contains(rest, ":"):
		if host, port, err = net.SplitHostPort(rest); err != nil {
			return "", "", fmt.Errorf("%q: %w", s, err)
		}
		if port == "" {
			return "", "", fmt.Errorf("%q: empty port", s)
		}
	default:
		host = rest
	}
	if port == "" {
		if strict {
			return "", "", fmt.Errorf("%q: want tcp://host:port", s)
		}
		port = strconv.Itoa(defaultPort)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", "", fmt.Errorf("%q: bad port %q", s, port)
	}
	if strings.HasPrefix(rest, "[") && (!strings.Contains(host, ":") || net.ParseIP(host) == nil) {
		return "", "", fmt.Errorf("%q: brackets hold an IPv6 address, not %q", s, host)
	}
	if !validHost(host) {
		return "", "", fmt.Errorf("%q: bad host %q", s, host)
	}
	if net.ParseIP(host) == nil {
		host = strings.ToLower(host)
	}
	return host, port, nil
}

func validHost(h string) bool {
	if h == "*" || net.ParseIP(h) != nil {
		return true
	}
	if h == "" || len(h) > 253 || h[0] == '-' || h[0] == '.' {
		return false
	}
	for _, c := range h {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_'
		if !ok {
			return false
		}
	}
	return true
}

func isWildcard(host string) bool {
	if host == "*" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsUnspecified()
}

// sortSet sorts and deduplicates in place; never nil, so that "no
// endpoints" is an empty list rather than a missing one.
func sortSet(set []string) []string {
	if set == nil {
		return []string{}
	}
	slices.Sort(set)
	return slices.Compact(set)
}
