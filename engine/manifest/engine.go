package manifest

import "time"

// Upper bounds that catch typos (an extra zero or two) before they reach a running pool.
const (
	maxPoolLimit   = 1000
	maxQueueLimit  = 1_000_000
	maxConcurrency = 1000
)

var engineKeys = []string{
	"pool-limit", "queue-limit", "grow-threshold", "concurrency",
	"startup-timeout", "heartbeat-timeout", "idle-timeout", "termination-timeout",
}

var legacyEngineKeys = map[string]string{
	"suicide-timeout": `0.9 renamed "suicide-timeout" to "idle-timeout"`,
	"slave":           `the sandbox named by the top-level "type" starts the app's slaves; "slave" is not used`,
	"resource-limits": `"resource-limits" is a top-level key since 0.9`,
}

func (v *validator) engine(path string, n *node) Engine {
	e := Defaults()
	if !v.expectObject(path, n) {
		return e
	}
	growGiven := false
	// The derived grow-threshold needs both limits; a bad one is already a problem, and
	// deriving from the default instead would only add a second, confusing one.
	limitsOK := true
	for _, mem := range n.members {
		p := joinPath(path, mem.key)
		var ok bool
		switch mem.key {
		case "pool-limit":
			e.PoolLimit, ok = v.intIn(p, mem.val, 1, maxPoolLimit)
			limitsOK = limitsOK && ok
		case "queue-limit":
			e.QueueLimit, ok = v.intIn(p, mem.val, 1, maxQueueLimit)
			limitsOK = limitsOK && ok
		case "grow-threshold":
			growGiven = true
			e.GrowThreshold, _ = v.intIn(p, mem.val, 1, maxQueueLimit)
		case "concurrency":
			e.Concurrency, _ = v.intIn(p, mem.val, 1, maxConcurrency)
		case "startup-timeout":
			e.StartupTimeout, _ = v.seconds(p, mem.val, false)
		case "heartbeat-timeout":
			e.HeartbeatTimeout, _ = v.seconds(p, mem.val, false)
		case "idle-timeout":
			e.IdleTimeout, _ = v.seconds(p, mem.val, false)
		case "termination-timeout":
			e.TerminationTimeout, _ = v.seconds(p, mem.val, true)
		default:
			v.unknownKey(p, mem.key, engineKeys, legacyEngineKeys)
		}
	}
	if !growGiven && limitsOK {
		e.GrowThreshold = max(1, e.QueueLimit/e.PoolLimit)
	}
	return e
}

// Bounds of resource-limits. The floors catch units left out ("memory": 256 meant MiB; a slave
// cannot start with 8 descriptors); zero still means "not limited".
const (
	minMemory    = 1 << 20
	maxMemory    = 1 << 50
	maxCPU       = 1024
	maxCPUTime   = 30 * 24 * 60 * 60
	minOpenFiles = 16
	maxOpenFiles = 1 << 20
)

var limitKeys = []string{"memory", "cpu", "cpu-time", "open-files"}

func (v *validator) limits(path string, n *node) Limits {
	var l Limits
	if !v.expectObject(path, n) {
		return l
	}
	for _, mem := range n.members {
		p := joinPath(path, mem.key)
		switch mem.key {
		case "memory":
			l.Memory = v.memory(p, mem.val)
		case "cpu":
			if mem.val.kind == kindObject {
				v.add(p, "expected a number of cores, got an object (0.9 cgroup controller maps are not supported)")
				continue
			}
			if f, ok := v.float(p, mem.val); ok {
				switch {
				case f < 0:
					v.add(p, "must not be negative, got %s", mem.val.num)
				case f > maxCPU:
					v.add(p, "must be at most %d cores, got %s", maxCPU, truncate(mem.val.num.String()))
				default:
					l.CPU = f
				}
			}
		case "cpu-time":
			if s, ok := v.integer(p, mem.val); ok {
				switch {
				case s < 0:
					v.add(p, "must not be negative, got %d", s)
				case s > maxCPUTime:
					v.add(p, "must be at most %d seconds (30 days), got %s", maxCPUTime, clampedString(s))
				default:
					l.CPUTime = time.Duration(s) * time.Second
				}
			}
		case "open-files":
			if f, ok := v.intIn(p, mem.val, 0, maxOpenFiles); ok {
				if f != 0 && f < minOpenFiles {
					v.add(p, "must be 0 (not limited) or at least %d, got %d", minOpenFiles, f)
				} else {
					l.OpenFiles = f
				}
			}
		default:
			v.unknownKey(p, mem.key, limitKeys, cgroupHints)
		}
	}
	return l
}

// cgroupHints answer 0.9 manifests, whose resource-limits were cgroup controller maps.
var cgroupHints = map[string]string{
	"cpuset":  `0.9 cgroup controller maps are not supported; use "cpu", "memory", "cpu-time" and "open-files"`,
	"blkio":   `0.9 cgroup controller maps are not supported`,
	"cpuacct": `0.9 cgroup controller maps are not supported`,
}

func (v *validator) memory(path string, n *node) int64 {
	var b int64
	switch n.kind {
	case kindNumber:
		i, ok := v.integer(path, n)
		if !ok {
			return 0
		}
		b = i
	case kindString:
		s, err := parseSize(n.str)
		if err != nil {
			v.add(path, "%q: %v", truncate(n.str), err)
			return 0
		}
		b = s
	case kindObject:
		v.add(path, `expected a number of bytes or a size like "256MiB", got an object (0.9 cgroup controller maps are not supported)`)
		return 0
	default:
		v.add(path, `expected a number of bytes or a size like "256MiB", got %s`, describe(n))
		return 0
	}
	switch {
	case b < 0:
		v.add(path, "must not be negative")
	case b > maxMemory:
		v.add(path, "must be at most 1PiB")
	case b != 0 && b < minMemory:
		v.add(path, `must be 0 (not limited) or at least 1MiB, got %d bytes; give a unit, as in "256MiB"`, b)
	default:
		return b
	}
	return 0
}
