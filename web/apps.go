package web

import (
	"context"
	"net/http"
	"sort"

	"github.com/go-chi/chi/v5"

	"github.com/cocaine-cloud/cocaine/engine/appstore"
	"github.com/cocaine-cloud/cocaine/internal/wire"
)

// nodeApp is an app as one live node runs it.
type nodeApp struct {
	Node     string `json:"node"` // the node's id
	Endpoint string `json:"endpoint"`
	Hostname string `json:"hostname,omitempty"`
	wire.AppInfo
}

type appSummary struct {
	appstore.Summary
	Nodes []nodeApp `json:"nodes"`
}

type appDetail struct {
	*appstore.AppInfo
	Nodes []nodeApp `json:"nodes"`
}

// onNodes returns, for every app, how each live node runs it, in the
// order of the nodes' endpoints.
func (s *Server) onNodes() map[string][]nodeApp {
	out := map[string][]nodeApp{}
	if s.nodes == nil {
		return out
	}
	nodes := s.nodes.Nodes()
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].Endpoint < nodes[j].Endpoint })
	for _, n := range nodes {
		for name, a := range n.Apps {
			out[name] = append(out[name], nodeApp{Node: n.ID, Endpoint: n.Endpoint, Hostname: n.Hostname, AppInfo: a})
		}
	}
	return out
}

func (s *Server) listApps(w http.ResponseWriter, r *http.Request) {
	apps, err := s.store.List(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	on := s.onNodes()
	out := make([]appSummary, len(apps))
	for i, a := range apps {
		out[i] = appSummary{Summary: a, Nodes: nonNil(on[a.Name])}
	}
	writeJSON(w, http.StatusOK, map[string]any{"apps": out})
}

func (s *Server) appInfo(w http.ResponseWriter, r *http.Request) {
	ai, err := s.store.Info(r.Context(), chi.URLParam(r, "name"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, appDetail{AppInfo: ai, Nodes: nonNil(s.onNodes()[ai.Name])})
}

func (s *Server) listNodes(w http.ResponseWriter, r *http.Request) {
	nodes := []wire.NodeInfo{}
	if s.nodes != nil {
		if n := s.nodes.Nodes(); n != nil {
			nodes = n
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"nodes": nodes})
}

func (s *Server) remove(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "name")
	if err := s.store.Remove(r.Context(), name); err != nil {
		s.fail(w, r, err)
		return
	}
	s.changed(name)
	writeJSON(w, http.StatusOK, map[string]any{"name": name, "removed": true})
}

func (s *Server) start(w http.ResponseWriter, r *http.Request) {
	s.setState(w, r, s.store.Start, false)
}

func (s *Server) stop(w http.ResponseWriter, r *http.Request) {
	s.setState(w, r, s.store.Stop, true)
}

func (s *Server) setState(w http.ResponseWriter, r *http.Request, op func(ctx context.Context, name string) error, stopped bool) {
	name := chi.URLParam(r, "name")
	if err := op(r.Context(), name); err != nil {
		s.fail(w, r, err)
		return
	}
	s.changed(name)
	writeJSON(w, http.StatusOK, map[string]any{"name": name, "stopped": stopped})
}

func (s *Server) rollback(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "name")
	v, err := s.store.Rollback(r.Context(), name)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.changed(name)
	out := map[string]any{"name": name, "version": v}
	if ai, err := s.store.Info(r.Context(), name); err == nil && ai.Version == v {
		out["label"] = ai.Label
	}
	writeJSON(w, http.StatusOK, out)
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
