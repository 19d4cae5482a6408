package manifest

import (
	"regexp"
	"sort"
	"strings"
)

// namePattern is what driver names, emit values and plugin names must look like: they end up
// in routes (APP/DRIVER), metric labels and file names, so they stay short and plain.
var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

const namePatternText = `^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`

// maxDrivers bounds the drivers of one app; each one holds sockets, timers or watches.
const maxDrivers = 64

type validator struct {
	opts     *options
	problems []Problem
}

var topKeys = []string{"type", "args", "engine", "resource-limits", "drivers"}

// legacyTopKeys explain keys that earlier Cocaine versions used, so that an old manifest gets
// a way forward rather than a bare "unknown key".
var legacyTopKeys = map[string]string{
	"tasks": `"tasks" is 0.7's name for "drivers" (keyed by driver name, each with a "type" and an "emit")`,
}

func (v *validator) manifest(root *node) *Manifest {
	m := &Manifest{
		Args:    map[string]any{},
		Engine:  Defaults(),
		Drivers: map[string]Driver{},
	}
	sawType := false
	for _, mem := range root.members {
		p := joinPath("", mem.key)
		switch mem.key {
		case "type":
			sawType = true
			m.Type = v.sandboxType(p, mem.val)
		case "args":
			if v.expectObject(p, mem.val) {
				m.Args = mem.val.value().(map[string]any)
			}
		case "engine":
			m.Engine = v.engine(p, mem.val)
		case "resource-limits":
			m.ResourceLimits = v.limits(p, mem.val)
		case "drivers":
			m.Drivers = v.drivers(p, mem.val)
		default:
			v.unknownKey(p, mem.key, topKeys, legacyTopKeys)
		}
	}
	if !sawType {
		v.add("type", `required: the sandbox that runs the app, such as "go" or "python"`)
	}
	return m
}

func (v *validator) sandboxType(path string, n *node) string {
	s, ok := v.name(path, n)
	if !ok {
		return ""
	}
	if v.opts.sandboxes == nil {
		return s
	}
	for _, name := range v.opts.sandboxes {
		if s == name {
			return s
		}
	}
	if len(v.opts.sandboxes) == 0 {
		v.add(path, "unknown sandbox %q: no sandboxes are available on this node", s)
		return ""
	}
	avail := append([]string(nil), v.opts.sandboxes...)
	sort.Strings(avail)
	v.add(path, "unknown sandbox %q; available: %s", s, strings.Join(avail, ", "))
	return ""
}

// name checks a value that must be a non-empty string matching namePattern.
func (v *validator) name(path string, n *node) (string, bool) {
	if n.kind != kindString || n.str == "" {
		v.add(path, "expected a non-empty string, got %s", describe(n))
		return "", false
	}
	if !namePattern.MatchString(n.str) {
		v.add(path, "%q must match %s", truncate(n.str), namePatternText)
		return "", false
	}
	return n.str, true
}

func (v *validator) expectObject(path string, n *node) bool {
	if n.kind != kindObject {
		v.add(path, "expected an object, got %s", describe(n))
		return false
	}
	return true
}

// describe names a value's type for messages; an empty string is called out because "expected
// a non-empty string, got a string" would puzzle.
func describe(n *node) string {
	if n.kind == kindString && n.str == "" {
		return "an empty string"
	}
	return n.kindName()
}

func truncate(s string) string {
	const max = 80
	if len(s) <= max {
		return s
	}
	for i := max; i > 0; i-- {
		if s[i]&0xC0 != 0x80 { // do not cut a UTF-8 sequence in half
			return s[:i] + "..."
		}
	}
	return s[:max] + "..."
}

func (v *validator) drivers(path string, n *node) map[string]Driver {
	out := map[string]Driver{}
	if !v.expectObject(path, n) {
		return out
	}
	if len(n.members) > maxDrivers {
		v.add(path, "%d drivers; at most %d are allowed", len(n.members), maxDrivers)
	}
	for _, mem := range n.members {
		if d, ok := v.driver(joinPath(path, mem.key), mem.key, mem.val); ok {
			out[d.Name] = d
		}
	}
	return out
}

func (v *validator) driver(path, name string, n *node) (Driver, bool) {
	ok := true
	if !namePattern.MatchString(name) {
		v.add(path, "driver name %q must match %s", truncate(name), namePatternText)
		ok = false
	}
	if n.kind != kindObject {
		v.add(path, `expected an object with a "type", got %s`, describe(n))
		return Driver{}, false
	}
	d := Driver{Name: name, Emit: name, Settings: map[string]any{}}
	sawType := false
	for _, mem := range n.members {
		p := joinPath(path, mem.key)
		switch mem.key {
		case "type":
			sawType = true
			t, tok := v.name(p, mem.val)
			d.Type, ok = t, ok && tok
		case "emit":
			e, eok := v.name(p, mem.val)
			d.Emit, ok = e, ok && eok
		default:
			d.Settings[mem.key] = mem.val.value()
		}
	}
	if !sawType {
		v.add(joinPath(path, "type"), `required: the driver to run, such as "native-server" or "recurring-timer"`)
		ok = false
	}
	if !ok {
		return d, false
	}
	for _, check := range v.opts.driverChecks {
		for _, p := range check(d) {
			v.add(prefixPath(path, p.Path), "%s", p.Message)
		}
	}
	return d, true
}
