package web

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/cocaine-cloud/cocaine/engine/appstore"
	"github.com/cocaine-cloud/cocaine/engine/archive"
	"github.com/cocaine-cloud/cocaine/engine/manifest"
	"github.com/cocaine-cloud/cocaine/storage"
)

// apiError is every error the API answers: the HTTP status again (for
// clients that lose it, like a shell pipeline), a message for humans and,
// for invalid manifests, every problem found.
type apiError struct {
	Code    int       `json:"code"`
	Error   string    `json:"error"`
	Details []problem `json:"details,omitempty"`
}

// problem is one thing wrong with an upload; Path is the manifest's JSON
// path (engine.pool-limit), or the package entry, or empty.
type problem struct {
	Path    string `json:"path"`
	Message string `json:"message"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string, details []problem) {
	writeJSON(w, status, apiError{Code: status, Error: msg, Details: details})
}

// fail answers err with the status its kind calls for. Anything not
// recognised is the server's fault: logged in full, answered in short.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, details := classify(err)
	msg := err.Error()
	if status == http.StatusInternalServerError {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		msg = "internal error"
	}
	if status == http.StatusRequestEntityTooLarge {
		// The rest of the body is not read: closing is cheaper than
		// draining what may be gigabytes.
		w.Header().Set("Connection", "close")
	}
	writeError(w, status, msg, details)
}

func classify(err error) (int, []problem) {
	var me *manifest.Error
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &me):
		ps := make([]problem, len(me.Problems))
		for i, p := range me.Problems {
			ps[i] = problem{Path: p.Path, Message: p.Message}
		}
		if len(ps) == 0 {
			ps = []problem{{Message: "invalid manifest"}}
		}
		return http.StatusUnprocessableEntity, ps
	case errors.As(err, &tooBig):
		return http.StatusRequestEntityTooLarge, nil
	case errors.Is(err, appstore.ErrNoManifest):
		return http.StatusUnprocessableEntity, []problem{{Path: "manifest.json", Message: "missing from the package root"}}
	case errors.Is(err, archive.ErrUnsafe), errors.Is(err, archive.ErrTooLarge), errors.Is(err, archive.ErrTooManyFiles):
		return http.StatusUnprocessableEntity, []problem{{Message: err.Error()}}
	case errors.Is(err, archive.ErrCorrupt), errors.Is(err, errBadRequest), errors.Is(err, appstore.ErrInvalidName):
		return http.StatusBadRequest, nil
	case errors.Is(err, storage.ErrNotFound):
		return http.StatusNotFound, nil
	case errors.Is(err, appstore.ErrNoPrevious):
		return http.StatusConflict, nil
	case errors.Is(err, storage.ErrUnavailable):
		return http.StatusServiceUnavailable, nil
	}
	return http.StatusInternalServerError, nil
}

// errBadRequest marks a request the API cannot make sense of (a bad query
// parameter, a multipart body without the parts an upload needs).
var errBadRequest = errors.New("bad request")
