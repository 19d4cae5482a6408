package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/cocaine-cloud/cocaine/internal/buildinfo"
	"github.com/cocaine-cloud/cocaine/slaves/sandbox"
)

// versionInfo is what `cocaine version --json` prints.
type versionInfo struct {
	buildinfo.Info
	Runtimes []runtimeInfo `json:"runtimes"`
}

type runtimeInfo struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Hash    string `json:"sha256"`
}

func runVersion(args []string) int {
	fs := newFlags("version", "version [--json]")
	asJSON := fs.Bool("json", false, "print JSON")
	if fs.Parse(args) != nil {
		return exitUsage
	}
	vi := versionInfo{Info: buildinfo.Get()}
	for _, b := range sandbox.Runtimes {
		h, err := b.Hash()
		if err != nil {
			fmt.Fprintln(os.Stderr, "cocaine version:", err)
			return exitFailure
		}
		vi.Runtimes = append(vi.Runtimes, runtimeInfo{Name: b.Name, Version: b.Version, Hash: h})
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(vi); err != nil {
			return exitFailure
		}
		return exitOK
	}
	commit := vi.Commit
	switch {
	case commit == "":
		commit = "unknown (built without VCS information)"
	case vi.Modified:
		commit += " (modified)"
	}
	fmt.Printf("cocaine %s\ncommit  %s\n", vi.Version, commit)
	if vi.Time != "" {
		fmt.Printf("date    %s\n", vi.Time)
	}
	fmt.Printf("go      %s\n", vi.Go)
	for _, r := range vi.Runtimes {
		fmt.Printf("runtime %-7s %s (sha256 %s)\n", r.Name, r.Version, r.Hash[:16])
	}
	return exitOK
}
