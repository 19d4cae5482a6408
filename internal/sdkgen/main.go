// Command sdkgen copies the modules the Go SDK (slaves/go) depends on from
// the module cache into slaves/go/proxy, laid out as the module proxy
// serves them, for the binary to carry (see sdk.go). Run it from the
// repository root through `go generate .` after changing those
// dependencies; TestSDKProxyCurrent says when it is due.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

const out = "slaves/go/proxy"

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "sdkgen:", err)
		os.Exit(1)
	}
}

func run() error {
	list, err := goCmd("list", "-deps", "-f", "{{with .Module}}{{if not .Main}}{{.Path}}@{{.Version}}{{end}}{{end}}", "./slaves/go")
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	var mods []string
	for _, l := range strings.Fields(string(list)) {
		if !seen[l] {
			seen[l] = true
			mods = append(mods, l)
		}
	}
	sort.Strings(mods)
	entries, err := os.ReadDir(out)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() {
			if err := os.RemoveAll(filepath.Join(out, e.Name())); err != nil {
				return err
			}
		}
	}
	for _, m := range mods {
		j, err := goCmd("mod", "download", "-json", m)
		if err != nil {
			return err
		}
		var d struct{ Path, Version, Info, GoMod, Zip, Error string }
		if err := json.Unmarshal(j, &d); err != nil {
			return fmt.Errorf("%s: %w", m, err)
		}
		if d.Error != "" {
			return fmt.Errorf("%s: %s", m, d.Error)
		}
		dir := filepath.Join(out, filepath.FromSlash(escape(d.Path)), "@v")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		for src, ext := range map[string]string{d.Info: ".info", d.GoMod: ".mod", d.Zip: ".zip"} {
			data, err := os.ReadFile(src)
			if err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(dir, d.Version+ext), data, 0o644); err != nil {
				return err
			}
		}
		fmt.Println("sdkgen:", d.Path, d.Version)
	}
	return nil
}

func goCmd(args ...string) ([]byte, error) {
	var stderr bytes.Buffer
	cmd := exec.Command("go", args...)
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	return b, nil
}

// escape is the module proxy's case encoding: an upper-case letter becomes
// '!' and its lower case.
func escape(p string) string {
	var b strings.Builder
	for _, r := range p {
		if r >= 'A' && r <= 'Z' {
			b.WriteByte('!')
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}
