package engine

import (
	"errors"
	"fmt"
	"github.com/cocaine-cloud/cocaine/internal/tomlconf"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cocaine-cloud/cocaine/engine/archive"
	"github.com/cocaine-cloud/cocaine/engine/manifest"
	"github.com/cocaine-cloud/cocaine/internal/zmqsec"
)

// Duration is a time.Duration written as a string in TOML ("30s").
type Duration = tomlconf.Duration

// Config is a node's configuration (`cocaine engine -c FILE`). Every key
// has a default; the zero Config plus Default() is a working local node.
type Config struct {
	// Listen is the ZeroMQ ROUTER endpoint requests for all apps arrive on.
	// Default "tcp://127.0.0.1:5000".
	Listen string `toml:"listen"`
	// Announce is the ZeroMQ PUB endpoint the node announces itself on.
	// Default "tcp://127.0.0.1:5001"; "" after Default() is impossible, use
	// "off" to disable announces.
	Announce string `toml:"announce"`
	// AnnounceInterval is how often the node announces itself; a dealer
	// takes a node silent for three intervals as dead. Default "1s".
	AnnounceInterval Duration `toml:"announce-interval"`
	// Advertise is the request endpoint as others must dial it. Default:
	// Listen, with a wildcard host replaced by this machine's hostname.
	Advertise string `toml:"advertise"`
	// Storage is the URI of the storage: file:///path, mongodb://... or
	// nats://host:port[,host:port...] (docs/nats.md).
	// Default "file://./var".
	Storage string `toml:"storage"`
	// DataDir holds the node's run (sockets), spool (unpacked apps) and
	// cache (built binaries) folders. Default "./var".
	DataDir string `toml:"data-dir"`
	// ReconcileInterval is how often the node re-reads storage to pick up
	// apps changed elsewhere. Default "5s"; "0s" turns it off.
	ReconcileInterval Duration `toml:"reconcile-interval"`
	// Multicast sends UDP beacons so that dealers using multicast
	// discovery find this node without a host list.
	Multicast MulticastConfig `toml:"multicast"`
	// Package bounds what an uploaded package may unpack to.
	Package PackageConfig `toml:"package"`
	// Sandbox configures the language sandboxes.
	Sandbox SandboxConfig `toml:"sandbox"`
	// Drivers says what apps' drivers may bind and watch.
	Drivers DriversConfig `toml:"drivers"`
	// Security bounds ZeroMQ messages and authenticates dealers (CURVE
	// with the cluster key) on the listen and announce endpoints.
	Security zmqsec.Config `toml:"security"`
	// Metrics is the HTTP address where `cocaine engine` serves its own
	// Prometheus /metrics. Default "127.0.0.1:5002"; "off" for none.
	// (`cocaine dev` serves the engine's metrics on its admin listener.)
	Metrics string `toml:"metrics"`
}

// MulticastConfig configures the node's discovery beacons.
type MulticastConfig struct {
	// Enabled turns beacons on. Default false.
	Enabled bool `toml:"enabled"`
	// Group is the IPv4 group:port. Default "239.0.100.53:5099".
	Group string `toml:"group"`
	// Interface to send on. Default: the first up multicast interface.
	Interface string `toml:"interface"`
}

// PackageConfig bounds app packages.
type PackageConfig struct {
	MaxBytes     int64 `toml:"max-bytes"`      // total unpacked bytes; default 256 MiB
	MaxFiles     int   `toml:"max-files"`      // entries; default 10000
	MaxFileBytes int64 `toml:"max-file-bytes"` // one file; default 128 MiB
}

// SandboxConfig configures the sandboxes.
type SandboxConfig struct {
	Go struct {
		// Toolchain is the go command used to build Go apps. Default "go".
		Toolchain string `toml:"toolchain"`
		// Framework is a checkout of this project to build Go apps
		// against instead of the SDK inside the binary, when working on
		// the SDK itself. Default "": the SDK inside the binary.
		Framework string `toml:"framework"`
	} `toml:"go"`
	// Isolate keeps apps apart: "auto" (the default) runs each app's
	// slaves, when the engine runs as root, as a user of its own (uids
	// from UIDBase, no account needed), with its package folder readable
	// by it alone and the data directory (storage, token, other apps)
	// out of its reach; "off" runs slaves as the engine's user.
	Isolate string `toml:"isolate"`
	// UIDBase is the first uid (and gid) apps' slaves run as; an app gets
	// UIDBase plus a hash of its name below 65536. Default 200000.
	UIDBase int `toml:"uid-base"`
	// DefaultMemory is the memory limit (address space, as
	// resource-limits.memory) of apps whose manifest sets none: "4GiB"
	// by default, "0" for none.
	DefaultMemory string `toml:"default-memory"`
	Python        struct {
		// Interpreter runs Python apps. Default "/usr/bin/python3".
		Interpreter string `toml:"interpreter"`
		// Runtime is a folder holding the Python runtime (slaves/python of
		// a checkout) to use instead of the one inside the binary, when
		// working on the runtime itself. Default "": the one inside the
		// binary, unpacked under the cache folder.
		Runtime string `toml:"runtime"`
	} `toml:"python"`
}

// defaultMemory parses DefaultMemory; 0 for none.
func (s *SandboxConfig) defaultMemory() (int64, error) {
	if s.DefaultMemory == "0" || s.DefaultMemory == "" {
		return 0, nil
	}
	return manifest.ParseSize(s.DefaultMemory)
}

// Default fills unset fields with their defaults.
func (c *Config) Default() {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&c.Listen, "tcp://127.0.0.1:5000")
	def(&c.Announce, "tcp://127.0.0.1:5001")
	def(&c.DataDir, "./var")
	def(&c.Storage, "file://"+c.DataDir)
	def(&c.Sandbox.Python.Interpreter, "/usr/bin/python3")
	def(&c.Sandbox.Isolate, "auto")
	def(&c.Sandbox.DefaultMemory, "4GiB")
	if c.Sandbox.UIDBase == 0 {
		c.Sandbox.UIDBase = 200000
	}
	def(&c.Metrics, "127.0.0.1:5002")
	if c.AnnounceInterval.Duration == 0 {
		c.AnnounceInterval.Duration = time.Second
	}
	if c.ReconcileInterval.Duration == 0 {
		c.ReconcileInterval.Duration = 5 * time.Second
	}
	d := archive.DefaultLimits()
	if c.Package.MaxBytes == 0 {
		c.Package.MaxBytes = d.MaxBytes
	}
	if c.Package.MaxFiles == 0 {
		c.Package.MaxFiles = d.MaxFiles
	}
	if c.Package.MaxFileBytes == 0 {
		c.Package.MaxFileBytes = d.MaxFileBytes
	}
	if c.Advertise == "" {
		c.Advertise = advertise(c.Listen)
	}
	c.Security.Default()
	c.Drivers.defaults()
}

// advertise replaces a wildcard host by the hostname.
func advertise(listen string) string {
	for _, wild := range []string{"://*:", "://0.0.0.0:", "://[::]:"} {
		if strings.Contains(listen, wild) {
			host, err := os.Hostname()
			if err != nil {
				host = "127.0.0.1"
			}
			return strings.Replace(listen, wild, "://"+host+":", 1)
		}
	}
	return listen
}

// Validate reports every problem at once.
func (c *Config) Validate() error {
	var errs []error
	for name, ep := range map[string]string{"listen": c.Listen, "advertise": c.Advertise} {
		if !strings.HasPrefix(ep, "tcp://") && !strings.HasPrefix(ep, "ipc://") {
			errs = append(errs, fmt.Errorf("%s: %q is not a tcp:// or ipc:// endpoint", name, ep))
		}
	}
	if c.Announce != "off" && !strings.HasPrefix(c.Announce, "tcp://") && !strings.HasPrefix(c.Announce, "ipc://") {
		errs = append(errs, fmt.Errorf("announce: %q is not a tcp:// or ipc:// endpoint (or \"off\")", c.Announce))
	}
	if c.AnnounceInterval.Duration < 10*time.Millisecond {
		errs = append(errs, fmt.Errorf("announce-interval: %v is below 10ms", c.AnnounceInterval.Duration))
	}
	if c.ReconcileInterval.Duration < 0 {
		errs = append(errs, fmt.Errorf("reconcile-interval: negative"))
	}
	if c.Package.MaxBytes < 0 || c.Package.MaxFiles < 0 || c.Package.MaxFileBytes < 0 {
		errs = append(errs, fmt.Errorf("package: limits must be positive"))
	}
	if c.Sandbox.Isolate != "auto" && c.Sandbox.Isolate != "off" {
		errs = append(errs, fmt.Errorf("sandbox.isolate: %q is not auto or off", c.Sandbox.Isolate))
	}
	if c.Sandbox.UIDBase <= 0 || c.Sandbox.UIDBase > 1<<31-1-uidRange {
		errs = append(errs, fmt.Errorf("sandbox.uid-base: %d out of range", c.Sandbox.UIDBase))
	}
	if _, err := c.Sandbox.defaultMemory(); err != nil {
		errs = append(errs, fmt.Errorf("sandbox.default-memory: %w", err))
	}
	if err := c.Security.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// RunDir holds the apps' Unix sockets. Kept short: socket paths are
// limited to 108 bytes.
func (c *Config) RunDir() string { return filepath.Join(c.DataDir, "run") }

// SpoolDir holds unpacked apps.
func (c *Config) SpoolDir() string { return filepath.Join(c.DataDir, "spool") }

// CacheDir holds built binaries.
func (c *Config) CacheDir() string { return filepath.Join(c.DataDir, "cache") }

// LoadConfig reads a TOML file, rejecting unknown keys, and applies
// defaults and validation.
func LoadConfig(path string) (*Config, error) {
	var c Config
	if err := tomlconf.DecodeFile(path, &c); err != nil {
		return nil, err
	}
	c.Default()
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return &c, nil
}
