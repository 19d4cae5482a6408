package wire

// NodeInfo is what an engine announces about itself every interval on its
// PUB endpoint (as JSON, after a frame holding its endpoint) and answers to
// MsgInfo. `cocaine info --json` prints a list of them.
type NodeInfo struct {
	Endpoint   string             `json:"endpoint"` // the ROUTER endpoint requests go to
	Announce   string             `json:"announce,omitempty"`
	ID         string             `json:"id"`
	Hostname   string             `json:"hostname"`
	Version    string             `json:"version"`
	Uptime     float64            `json:"uptime"` // seconds
	IntervalMS int64              `json:"interval-ms"`
	Apps       map[string]AppInfo `json:"apps"`
	// Missing maps each sandbox type this node cannot run (no Go
	// toolchain, no Python) to what to install, so that an API that does
	// not run on the node can refuse such an upload.
	Missing map[string]string `json:"missing,omitempty"`
}

// AppInfo is one app on a node.
type AppInfo struct {
	State      string                    `json:"state"`
	Reason     string                    `json:"reason,omitempty"`
	Version    string                    `json:"version,omitempty"`
	QueueDepth int                       `json:"queue-depth"`
	Slaves     SlaveCounts               `json:"slaves"`
	Jobs       map[string]uint64         `json:"jobs,omitempty"`
	Drivers    map[string]map[string]any `json:"drivers"`
	SlaveList  []SlaveInfo               `json:"slave-list,omitempty"` // MsgInfo answers only
}

// SlaveCounts counts an app's slaves.
type SlaveCounts struct {
	Total    int `json:"total"`
	Busy     int `json:"busy"`
	Starting int `json:"starting,omitempty"`
}

// SlaveInfo is one slave of an app, in the answer to MsgInfo only (announces
// stay small): the dashboard's node page.
type SlaveInfo struct {
	ID     string  `json:"id"`
	PID    int     `json:"pid"`
	State  string  `json:"state"`  // starting, idle, busy, terminating
	Uptime float64 `json:"uptime"` // seconds
	Jobs   int     `json:"jobs"`   // running now
	Served uint64  `json:"served"` // answered since it started
	RSS    int64   `json:"rss"`    // resident memory, bytes; 0 when unknown
}
