// Package wire holds the message formats shared by the engine, the dealer
// and the front: the error codes, the dealer ⇄ engine frames over ZeroMQ and
// the node announce. docs/protocol.md is the prose reference.
package wire

import (
	"errors"
	"fmt"
	"net/http"
)

// Code is a platform error code, the same end to end (as in Cocaine 0.9).
type Code int

// The platform's error codes.
const (
	CodeBadRequest  Code = 400 // malformed request
	CodeNotFound    Code = 404 // no such app or event
	CodeServer      Code = 500 // the platform failed (broken app, slave lost after a chunk)
	CodeApp         Code = 502 // the app's handler failed
	CodeUnavailable Code = 503 // no capacity: queue full, shutting down
	CodeTimeout     Code = 504 // the job ran past its timeout
	CodeDeadline    Code = 520 // the request's absolute deadline passed
)

type codeInfo struct {
	name      string
	status    int  // HTTP status the front answers with
	retryable bool // may the dealer send the request elsewhere
}

// codes is the one table of error codes: the engine, dealer and front all
// read it so that they cannot disagree.
var codes = map[Code]codeInfo{
	CodeBadRequest:  {"bad request", http.StatusBadRequest, false},
	CodeNotFound:    {"not found", http.StatusNotFound, false},
	CodeServer:      {"server error", http.StatusInternalServerError, false},
	CodeApp:         {"app error", http.StatusBadGateway, false},
	CodeUnavailable: {"unavailable", http.StatusServiceUnavailable, true},
	CodeTimeout:     {"timeout", http.StatusGatewayTimeout, false},
	CodeDeadline:    {"deadline passed", http.StatusGatewayTimeout, false},
}

// Known reports whether c is one of the platform's codes.
func (c Code) Known() bool { _, ok := codes[c]; return ok }

// HTTPStatus is the status the HTTP front answers with.
func (c Code) HTTPStatus() int {
	if i, ok := codes[c]; ok {
		return i.status
	}
	return http.StatusInternalServerError
}

// Retryable reports whether a request that failed with c may be sent again
// elsewhere (the engine did not run it).
func (c Code) Retryable() bool { return codes[c].retryable }

func (c Code) String() string {
	if i, ok := codes[c]; ok {
		return i.name
	}
	return fmt.Sprintf("code %d", int(c))
}

// Error is a platform error: a code and a message for humans.
type Error struct {
	Code    Code
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("%d %s: %s", int(e.Code), e.Code, e.Message) }

// Errorf builds an *Error.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// CodeOf returns the platform code carried by err, or CodeServer.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeServer
}
