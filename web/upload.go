package web

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/cocaine-cloud/cocaine/engine/appstore"
)

type uploadResult struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Label   string `json:"label,omitempty"` // "v3": the third upload
	Created bool   `json:"created"`
	Stopped bool   `json:"stopped"`
}

// upload stores a package as the app's new version: 201 for a new app,
// 200 for a new version of a known one.
func (s *Server) upload(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "name")
	if !appstore.ValidName(name) {
		s.fail(w, r, fmt.Errorf("%w: %q (letters, digits, '.', '_', '-'; at most 100)", appstore.ErrInvalidName, name))
		return
	}
	if reserved[name] {
		s.fail(w, r, fmt.Errorf("%w: the front serves /%s/ itself, so an app of that name could not be called", appstore.ErrInvalidName, name))
		return
	}
	// Refused before a byte of the body is read: the client learns at once
	// and the server spends nothing on it.
	if r.ContentLength > s.cfg.MaxUpload {
		s.fail(w, r, &http.MaxBytesError{Limit: s.cfg.MaxUpload})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxUpload)
	pkg, err := s.readPackage(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.metrics.uploads.Observe(float64(len(pkg)))
	up, err := s.store.Put(r.Context(), name, pkg)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.Info("app uploaded", "app", name, "version", up.Version, "bytes", len(pkg))
	s.changed(name)
	status := http.StatusOK
	if up.Created {
		status = http.StatusCreated
	}
	writeJSON(w, status, uploadResult{Name: name, Version: up.Version, Label: up.Label, Created: up.Created, Stopped: up.Stopped})
}

// readPackage reads the body as a tar.gz, or as multipart/form-data with
// a "package" part (tar.gz) and/or a "manifest" part (JSON) that becomes
// the package's manifest.json.
func (s *Server) readPackage(r *http.Request) ([]byte, error) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "multipart/form-data" {
		pkg, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, bodyError(err)
		}
		if len(pkg) == 0 {
			return nil, fmt.Errorf("%w: empty body: send the package (tar.gz)", errBadRequest)
		}
		return pkg, nil
	}
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errBadRequest, err)
	}
	var pkg, man []byte
	var havePkg, haveMan bool
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, bodyError(err)
		}
		var buf bytes.Buffer
		_, err = io.Copy(&buf, p)
		p.Close()
		if err != nil {
			return nil, bodyError(err)
		}
		switch p.FormName() {
		case "package":
			pkg, havePkg = buf.Bytes(), true
		case "manifest":
			man, haveMan = buf.Bytes(), true
		default:
			return nil, fmt.Errorf("%w: unknown part %q: send \"package\" and/or \"manifest\"", errBadRequest, p.FormName())
		}
	}
	switch {
	case !havePkg && !haveMan:
		return nil, fmt.Errorf("%w: multipart upload without a \"package\" or \"manifest\" part", errBadRequest)
	case !haveMan:
		return pkg, nil
	}
	return withManifest(pkg, man)
}

// bodyError keeps "too large" recognisable and makes the rest a 400: a
// body that cannot be read is the client's problem.
func bodyError(err error) error {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return err
	}
	return fmt.Errorf("%w: reading the body: %v", errBadRequest, err)
}
