// Package tomlconf holds what every TOML config of the platform shares:
// durations written as strings, and decoding that rejects unknown keys
// (a typo in a config must be an error, not a silently ignored setting).
package tomlconf

import (
	"fmt"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Duration is a time.Duration written as a string in TOML ("30s").
type Duration struct{ time.Duration }

// UnmarshalText parses "1.5s", "200ms".
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// MarshalText writes the duration back as a string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// DecodeFile decodes a TOML file into v and fails on keys v has no field for.
func DecodeFile(path string, v any) error {
	md, err := toml.DecodeFile(path, v)
	if err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return fmt.Errorf("config %s: unknown keys: %s", path, strings.Join(keys, ", "))
	}
	return nil
}
