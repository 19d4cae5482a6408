package web

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
)

// digest makes every token the same length, so that comparing them in
// constant time does not leak a configured token's length either.
func digest(token string) [32]byte { return sha256.Sum256([]byte(token)) }

// requireToken lets a request through with a configured bearer token, or
// with a dashboard session (session.go) and, for anything but a read, its
// CSRF token: 401 when it sends none, 403 when it sends another.
func (s *Server) requireToken(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "" {
			if sess, ok := s.sessions.lookup(r); ok {
				if r.Method != http.MethodGet && r.Method != http.MethodHead && !sess.validCSRF(r) {
					writeError(w, http.StatusForbidden, "this needs the session's "+HeaderCSRF+" header", nil)
					return
				}
				next.ServeHTTP(w, r)
				return
			}
		}
		scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		token = strings.TrimSpace(token)
		if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="cocaine"`)
			writeError(w, http.StatusUnauthorized, "this needs Authorization: Bearer TOKEN", nil)
			return
		}
		if !s.validToken(token) {
			writeError(w, http.StatusForbidden, "token not accepted", nil)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// validToken compares against every configured token, without stopping
// at a match, so the time taken says nothing about which one matched.
func (s *Server) validToken(token string) bool {
	got := digest(token)
	match := 0
	for _, t := range s.tokens {
		match |= subtle.ConstantTimeCompare(got[:], t[:])
	}
	return match == 1
}
