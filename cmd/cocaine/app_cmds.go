package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cocaine-cloud/cocaine/engine/appstore"
	"github.com/cocaine-cloud/cocaine/engine/archive"
	"github.com/cocaine-cloud/cocaine/storage"
)

func uploadFlags(fs *flag.FlagSet) func(*apiClient, []string) int {
	name := fs.String("name", "", "app name (default: the folder's or file's name)")
	return func(c *apiClient, args []string) int {
		pkg, defName, err := readUpload(args[0])
		if err != nil {
			fmt.Fprintf(os.Stderr, "cocaine app upload: %v\n", err)
			if os.IsNotExist(err) {
				return exitUsage
			}
			return exitInvalid
		}
		app := *name
		if app == "" {
			app = defName
		}
		if !appstore.ValidName(app) {
			fmt.Fprintf(os.Stderr, "cocaine app upload: %q is not an app name (letters, digits, '.', '_', '-'); use --name\n", app)
			return exitUsage
		}
		var res struct {
			Name    string `json:"name"`
			Version string `json:"version"`
			Label   string `json:"label"`
			Created bool   `json:"created"`
			Stopped bool   `json:"stopped"`
		}
		if err := c.getJSON(http.MethodPut, appPath(app), bytes.NewReader(pkg), "application/gzip", &res); err != nil {
			return c.fail(err, true)
		}
		if c.json {
			printJSON(res)
			return exitOK
		}
		what := "new version of"
		if res.Created {
			what = "new app"
		}
		fmt.Printf("uploaded %s (%s, %s), version %s\n", res.Name, what, sizeOf(int64(len(pkg))), versionName(res.Label, res.Version))
		if res.Stopped {
			fmt.Printf("the app is stopped: `cocaine app start %s` runs it\n", res.Name)
		}
		return exitOK
	}
}

// readUpload packs a folder, or reads a tar.gz, and names the app after it.
func readUpload(path string) ([]byte, string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, "", err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, "", err
	}
	if fi.IsDir() {
		if _, err := os.Stat(filepath.Join(path, "manifest.json")); err != nil {
			return nil, "", fmt.Errorf("%s has no manifest.json", path)
		}
		var b bytes.Buffer
		if err := archive.Pack(path, &b); err != nil {
			return nil, "", err
		}
		return b.Bytes(), filepath.Base(abs), nil
	}
	pkg, err := os.ReadFile(path)
	if err != nil {
		return nil, "", err
	}
	base := filepath.Base(abs)
	for _, ext := range []string{".tar.gz", ".tgz", ".gz"} {
		if strings.HasSuffix(base, ext) {
			base = strings.TrimSuffix(base, ext)
			break
		}
	}
	return pkg, base, nil
}

type listedApp struct {
	appstore.Summary
	Nodes []nodeState `json:"nodes"`
}

type nodeState struct {
	Node       string `json:"node"`
	Endpoint   string `json:"endpoint"`
	Hostname   string `json:"hostname"`
	State      string `json:"state"`
	Reason     string `json:"reason"`
	Version    string `json:"version"`
	QueueDepth int    `json:"queue-depth"`
	Slaves     struct {
		Total int `json:"total"`
		Busy  int `json:"busy"`
	} `json:"slaves"`
}

func listFlags(fs *flag.FlagSet) func(*apiClient, []string) int {
	return func(c *apiClient, _ []string) int {
		var res struct {
			Apps []listedApp `json:"apps"`
		}
		if err := c.getJSON(http.MethodGet, "/apps", nil, "", &res); err != nil {
			return c.fail(err, false)
		}
		if c.json {
			printJSON(res)
			return exitOK
		}
		printAppList(res.Apps)
		return exitOK
	}
}

func infoFlags(fs *flag.FlagSet) func(*apiClient, []string) int {
	return func(c *apiClient, args []string) int {
		var res struct {
			appstore.Summary
			Manifest json.RawMessage    `json:"manifest"`
			Versions []appstore.Version `json:"versions"`
			Nodes    []nodeState        `json:"nodes"`
		}
		var raw json.RawMessage
		if err := c.getJSON(http.MethodGet, appPath(args[0]), nil, "", &raw); err != nil {
			return c.fail(err, false)
		}
		if c.json {
			printJSON(raw)
			return exitOK
		}
		if err := json.Unmarshal(raw, &res); err != nil {
			return c.fail(err, false)
		}
		printAppInfo(res.Summary, res.Versions, res.Nodes, res.Manifest)
		return exitOK
	}
}

// simpleFlags makes remove, start, stop and rollback: one request, one line.
func simpleFlags(method, suffix string) func(*flag.FlagSet) func(*apiClient, []string) int {
	return func(fs *flag.FlagSet) func(*apiClient, []string) int {
		return func(c *apiClient, args []string) int {
			var res map[string]any
			if err := c.getJSON(method, appPath(args[0])+suffix, nil, "", &res); err != nil {
				return c.fail(err, false)
			}
			if c.json {
				printJSON(res)
				return exitOK
			}
			switch c.cmd {
			case "remove":
				fmt.Printf("removed %s\n", args[0])
			case "start":
				fmt.Printf("started %s: engines deploy it within seconds\n", args[0])
			case "stop":
				fmt.Printf("stopped %s: engines undeploy it within seconds\n", args[0])
			case "rollback":
				label, _ := res["label"].(string)
				number, _ := res["version"].(string)
				fmt.Printf("rolled %s back to version %s\n", args[0], versionName(label, number))
			}
			return exitOK
		}
	}
}

func logsFlags(fs *flag.FlagSet) func(*apiClient, []string) int {
	follow := fs.Bool("f", false, "follow: keep printing new lines until interrupted")
	since := fs.String("since", "", "only lines after this: an RFC 3339 time, or a duration ago (10m)")
	limit := fs.Int("limit", 0, "at most this many of the newest lines (default: the server's, 1000)")
	return func(c *apiClient, args []string) int {
		q := url.Values{}
		if *since != "" {
			t, err := parseSince(*since, time.Now())
			if err != nil {
				fmt.Fprintf(os.Stderr, "cocaine app logs: --since: %v\n", err)
				return exitUsage
			}
			q.Set("since", t.Format(time.RFC3339Nano))
		}
		if *limit > 0 {
			q.Set("limit", strconv.Itoa(*limit))
		}
		ctx, cancel := signalContext()
		defer cancel()
		if *follow {
			q.Set("follow", "1")
		} else {
			var c2 context.CancelFunc
			ctx, c2 = context.WithTimeout(ctx, c.timeout)
			defer c2()
		}
		path := appPath(args[0], "logs")
		if len(q) > 0 {
			path += "?" + q.Encode()
		}
		resp, err := c.call(ctx, http.MethodGet, path, nil, "")
		if err != nil {
			return c.fail(err, false)
		}
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for sc.Scan() {
			if c.json {
				fmt.Printf("%s\n", sc.Bytes())
				continue
			}
			var l storage.LogLine
			if json.Unmarshal(sc.Bytes(), &l) == nil {
				printLogLine(l)
			}
		}
		if err := sc.Err(); err != nil && ctx.Err() == nil {
			return c.fail(err, false)
		}
		return exitOK
	}
}

// parseSince reads an RFC 3339 time or a duration before now.
func parseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time nor a duration like 10m", s)
	}
	return now.Add(-d), nil
}

func crashlogFlags(fs *flag.FlagSet) func(*apiClient, []string) int {
	return func(c *apiClient, args []string) int {
		if len(args) == 2 {
			var cr appstore.Crash
			if err := c.getJSON(http.MethodGet, appPath(args[0], "crashlogs", args[1]), nil, "", &cr); err != nil {
				return c.fail(err, false)
			}
			if c.json {
				printJSON(cr)
				return exitOK
			}
			printCrash(cr)
			return exitOK
		}
		var res struct {
			Crashlogs []appstore.Crash `json:"crashlogs"`
		}
		if err := c.getJSON(http.MethodGet, appPath(args[0], "crashlogs"), nil, "", &res); err != nil {
			return c.fail(err, false)
		}
		if c.json {
			printJSON(res)
			return exitOK
		}
		printCrashes(args[0], res.Crashlogs)
		return exitOK
	}
}
