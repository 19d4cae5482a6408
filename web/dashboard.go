package web

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"

	"github.com/cocaine-cloud/cocaine/internal/wire"
	"github.com/cocaine-cloud/cocaine/storage"
)

// The dashboard is plain HTML, CSS and JavaScript embedded in the binary:
// nothing to build, nothing fetched from elsewhere.
//
//go:embed ui
var uiFiles embed.FS

// streamEvery is how often the cluster stream sends a snapshot.
const streamEvery = time.Second

// csp allows the page's own scripts, styles and requests only.
const csp = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"

func (s *Server) serveUI(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/ui/")
	if r.URL.Path == "/" {
		name = "index.html"
	}
	b, err := fs.ReadFile(uiFiles, "ui/"+name)
	if err != nil || strings.Contains(name, "/") {
		writeError(w, http.StatusNotFound, "no such page: "+r.URL.Path, nil)
		return
	}
	h := w.Header()
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-cache")
	switch {
	case strings.HasSuffix(name, ".html"):
		h.Set("Content-Type", "text/html; charset=utf-8")
	case strings.HasSuffix(name, ".css"):
		h.Set("Content-Type", "text/css; charset=utf-8")
	case strings.HasSuffix(name, ".js"):
		h.Set("Content-Type", "text/javascript; charset=utf-8")
	case strings.HasSuffix(name, ".svg"):
		h.Set("Content-Type", "image/svg+xml")
	}
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(b))
}

// clusterView is one snapshot of the cluster for the dashboard.
type clusterView struct {
	Time  time.Time  `json:"time"`
	Nodes []nodeView `json:"nodes"`
	Apps  []appView  `json:"apps"`
}

type nodeView struct {
	ID       string   `json:"id"`
	Endpoint string   `json:"endpoint"`
	Hostname string   `json:"hostname"`
	Version  string   `json:"version"`
	Uptime   float64  `json:"uptime"`
	Apps     []string `json:"apps"`
}

type appView struct {
	Name     string    `json:"name"`
	Version  string    `json:"version"`
	Label    string    `json:"label"`
	Uploaded time.Time `json:"uploaded"`
	Stopped  bool      `json:"stopped"`
	// State: running, broken, stopped, stopping, or pending (stored, not
	// yet running on any node).
	State  string `json:"state"`
	Reason string `json:"reason,omitempty"`
	Busy   int    `json:"busy"`
	Total  int    `json:"total"`
	Queue  int    `json:"queue"`
	Nodes  int    `json:"nodes"`
	AppStats
}

func (s *Server) cluster(ctx context.Context) (clusterView, error) {
	v := clusterView{Time: time.Now().UTC(), Nodes: []nodeView{}, Apps: []appView{}}
	apps, err := s.store.List(ctx)
	if err != nil {
		return v, err
	}
	if s.nodes != nil {
		for _, n := range s.nodes.Nodes() {
			nv := nodeView{ID: n.ID, Endpoint: n.Endpoint, Hostname: n.Hostname, Version: n.Version, Uptime: n.Uptime, Apps: []string{}}
			for name := range n.Apps {
				nv.Apps = append(nv.Apps, name)
			}
			sort.Strings(nv.Apps)
			v.Nodes = append(v.Nodes, nv)
		}
	}
	on := s.onNodes()
	for _, a := range apps {
		av := appView{Name: a.Name, Version: a.Version, Label: a.Label, Uploaded: a.Uploaded, Stopped: a.Stopped}
		states := map[string]bool{}
		for _, n := range on[a.Name] {
			av.Nodes++
			av.Busy += n.Slaves.Busy
			av.Total += n.Slaves.Total
			av.Queue += n.QueueDepth
			states[n.State] = true
			if n.Reason != "" && av.Reason == "" {
				av.Reason = n.Reason
			}
		}
		switch {
		case states["broken"]:
			av.State = "broken"
		case states["running"]:
			av.State = "running"
		case a.Stopped && len(states) > 0:
			av.State = "stopping"
		case a.Stopped:
			av.State = "stopped"
		case len(states) > 0:
			av.State = "stopping"
		default:
			av.State = "pending"
		}
		if s.stats != nil {
			av.AppStats = s.stats.stats(a.Name)
		} else {
			av.Spark = []float64{}
		}
		v.Apps = append(v.Apps, av)
	}
	return v, nil
}

// events streams cluster snapshots as server-sent events until the
// client leaves or the server closes (Close), so that a shutdown never
// waits for an open page.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: pass events through at once
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, "retry: 2000\n\n")
	t := time.NewTicker(streamEvery)
	defer t.Stop()
	for {
		v, err := s.cluster(r.Context())
		if err != nil {
			if r.Context().Err() != nil {
				return
			}
			s.log.Warn("dashboard snapshot", "err", err)
			fmt.Fprintf(w, "event: problem\ndata: %q\n\n", "storage: "+err.Error())
		} else {
			b, _ := json.Marshal(v)
			fmt.Fprintf(w, "event: cluster\ndata: %s\n\n", b)
		}
		if rc.Flush() != nil {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-s.done:
			return
		case <-t.C:
		}
	}
}

// NodeDetailer asks a live node for its detailed info (its slaves).
type NodeDetailer func(ctx context.Context, node string) (wire.NodeInfo, error)

func (s *Server) nodeDetail(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "node")
	if s.nodeInfo == nil {
		writeError(w, http.StatusNotFound, "no node details here", nil)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	in, err := s.nodeInfo(ctx, id)
	if err != nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("node %s: %v", id, err), nil)
		return
	}
	writeJSON(w, http.StatusOK, in)
}

// maxCallAnswer bounds the answer the request panel shows.
const maxCallAnswer = 1 << 20

// callResult is the request panel's answer.
type callResult struct {
	Status    int                 `json:"status"`
	Headers   map[string][]string `json:"headers"`
	Body      string              `json:"body"`
	Binary    bool                `json:"binary,omitempty"` // body is not UTF-8: shown as a byte count
	Size      int                 `json:"size"`
	Truncated bool                `json:"truncated,omitempty"`
	Millis    float64             `json:"ms"`
}

// call sends one request to an app's event through the front, as a
// client of the traffic listener would, and answers what came back. The
// body of the call is the request's body; ?method= and ?path= (the part
// after /APP/EVENT) shape what an HTTP event sees.
func (s *Server) call(w http.ResponseWriter, r *http.Request) {
	if s.front == nil {
		writeError(w, http.StatusNotFound, "no front in this process to send requests through", nil)
		return
	}
	name, event := chi.URLParam(r, "name"), chi.URLParam(r, "event")
	if ok, err := s.store.Exists(r.Context(), name); err != nil || !ok {
		if err == nil {
			err = fmt.Errorf("app %s: %w", name, storage.ErrNotFound)
		}
		s.fail(w, r, err)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxUpload))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "request body too large", nil)
		return
	}
	method := strings.ToUpper(r.URL.Query().Get("method"))
	if method == "" {
		method = http.MethodPost
	}
	rest := r.URL.Query().Get("path")
	if rest != "" && !strings.HasPrefix(rest, "/") {
		rest = "/" + rest
	}
	ctx, cancel := context.WithTimeout(r.Context(), 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, "/"+name+"/"+event+rest, bytes.NewReader(body))
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad request: "+err.Error(), nil)
		return
	}
	req.Host, req.RemoteAddr = r.Host, r.RemoteAddr
	if ct := r.Header.Get("Content-Type"); ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	rec := &capture{header: http.Header{}}
	start := time.Now()
	func() {
		defer func() {
			if v := recover(); v != nil {
				if v != http.ErrAbortHandler {
					panic(v)
				}
				rec.aborted = true // the answer broke mid-stream
			}
		}()
		s.front.ServeHTTP(rec, req)
	}()
	res := callResult{Status: rec.status, Headers: rec.header, Size: rec.size, Truncated: rec.size > rec.body.Len(),
		Millis: float64(time.Since(start).Microseconds()) / 1000}
	if res.Status == 0 {
		res.Status = http.StatusOK
	}
	if rec.aborted {
		res.Status = 0
	}
	if utf8.Valid(rec.body.Bytes()) {
		res.Body = rec.body.String()
	} else {
		res.Binary = true
	}
	writeJSON(w, http.StatusOK, res)
}

// capture is the ResponseWriter of a panel call: it keeps the head and
// the first maxCallAnswer bytes, counting the rest.
type capture struct {
	header  http.Header
	status  int
	body    bytes.Buffer
	size    int
	aborted bool
}

func (c *capture) Header() http.Header { return c.header }
func (c *capture) WriteHeader(code int) {
	if c.status == 0 {
		c.status = code
	}
}
func (c *capture) Write(p []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	c.size += len(p)
	if room := maxCallAnswer - c.body.Len(); room > 0 {
		c.body.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}
func (c *capture) Flush() {}

// wantsEvents reports whether a client asked for server-sent events.
func wantsEvents(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/event-stream")
}

// sseLines turns each JSON line json.Encoder writes into one event.
type sseLines struct{ w io.Writer }

func (s sseLines) Write(p []byte) (int, error) {
	line := bytes.TrimRight(p, "\n")
	if _, err := fmt.Fprintf(s.w, "data: %s\n\n", line); err != nil {
		return 0, err
	}
	return len(p), nil
}
