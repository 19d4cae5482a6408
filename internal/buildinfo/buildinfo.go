// Package buildinfo says which build of cocaine is running: the version
// stamped by the Makefile and the commit the go command recorded.
package buildinfo

import (
	"runtime"
	"runtime/debug"
	"sync"
)

// Version is the release, set at link time by `make build`
// (-ldflags "-X github.com/cocaine-cloud/cocaine/internal/buildinfo.Version=…").
var Version = "0.1.0-dev"

// Info describes the running binary.
type Info struct {
	Version  string `json:"version"`            // Version
	Commit   string `json:"commit,omitempty"`   // VCS revision, "" when the build recorded none
	Time     string `json:"time,omitempty"`     // commit time, RFC 3339
	Modified bool   `json:"modified,omitempty"` // built from a work tree with uncommitted changes
	Go       string `json:"go"`                 // Go release and platform
}

var (
	once sync.Once
	info Info
)

// Get reads the build's VCS stamp once. `go build` records it unless the
// build runs with -buildvcs=false (which `make build` overrides).
func Get() Info {
	once.Do(func() {
		info = Info{Version: Version, Go: runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH}
		bi, ok := debug.ReadBuildInfo()
		if !ok {
			return
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				info.Commit = s.Value
			case "vcs.time":
				info.Time = s.Value
			case "vcs.modified":
				info.Modified = s.Value == "true"
			}
		}
	})
	return info
}

// Short is the version with the abbreviated commit, for logs and announces:
// "0.1.0-dev+3f2a9c1d0e4b" (with "-dirty" for a modified tree).
func Short() string {
	in := Get()
	s := in.Version
	if in.Commit != "" {
		c := in.Commit
		if len(c) > 12 {
			c = c[:12]
		}
		s += "+" + c
		if in.Modified {
			s += "-dirty"
		}
	}
	return s
}
