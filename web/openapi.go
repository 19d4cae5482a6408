package web

import (
	_ "embed"
	"net/http"
)

// openAPI is written by hand beside the handlers; TestOpenAPIDescribesEveryRoute
// keeps the two from drifting apart.
//
//go:embed openapi.json
var openAPI []byte

func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(openAPI)
}
