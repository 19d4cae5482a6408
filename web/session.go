package web

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"time"
)

// The dashboard logs in with the API token once and then holds a session
// cookie: HttpOnly (page scripts cannot read it), SameSite=Strict (other
// sites' pages do not send it) and, on TLS, Secure. Every write made with
// the cookie must also carry the session's CSRF token in HeaderCSRF, which
// only a page of this origin can read (GET /api/v1/session), so a forged
// form or fetch from elsewhere fails even in a browser that ignores
// SameSite. Requests with a bearer token need no CSRF token: a browser
// never adds that header by itself.
const (
	SessionCookie = "cocaine_session"
	HeaderCSRF    = "X-CSRF-Token"
	// sessionTTL is how long a login lasts.
	sessionTTL = 12 * time.Hour
	// maxSessions bounds the table; the oldest goes when it is full.
	maxSessions = 10000
)

type session struct {
	expires time.Time
	csrf    string
}

type sessions struct {
	mu  sync.Mutex
	m   map[string]session // key: SHA-256 of the cookie value
	key [32]byte           // derives CSRF tokens
}

func newSessions() *sessions {
	s := &sessions{m: map[string]session{}}
	_, _ = rand.Read(s.key[:])
	return s
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func sessionKey(cookie string) string {
	sum := sha256.Sum256([]byte(cookie))
	return string(sum[:])
}

func (s *sessions) create() (cookie string, sess session) {
	cookie = randomHex(32)
	mac := hmac.New(sha256.New, s.key[:])
	mac.Write([]byte(cookie))
	sess = session{expires: time.Now().Add(sessionTTL), csrf: hex.EncodeToString(mac.Sum(nil))}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if len(s.m) >= maxSessions {
		var oldest string
		var at time.Time
		for k, v := range s.m {
			if v.expires.Before(now) {
				delete(s.m, k)
				continue
			}
			if oldest == "" || v.expires.Before(at) {
				oldest, at = k, v.expires
			}
		}
		if len(s.m) >= maxSessions {
			delete(s.m, oldest)
		}
	}
	s.m[sessionKey(cookie)] = sess
	return cookie, sess
}

// lookup returns the live session of r's cookie.
func (s *sessions) lookup(r *http.Request) (session, bool) {
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" {
		return session{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k := sessionKey(c.Value)
	sess, ok := s.m[k]
	if ok && time.Now().After(sess.expires) {
		delete(s.m, k)
		ok = false
	}
	return sess, ok
}

func (s *sessions) drop(r *http.Request) {
	if c, err := r.Cookie(SessionCookie); err == nil {
		s.mu.Lock()
		delete(s.m, sessionKey(c.Value))
		s.mu.Unlock()
	}
}

// validCSRF checks the header of a write made with a session cookie.
func (sess session) validCSRF(r *http.Request) bool {
	got := r.Header.Get(HeaderCSRF)
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(sess.csrf)) == 1
}

type sessionState struct {
	Authenticated bool   `json:"authenticated"`
	CSRF          string `json:"csrf,omitempty"`
	Writable      bool   `json:"writable"` // the server accepts some token
}

// getSession tells the page whether it is logged in, and its CSRF token.
func (s *Server) getSession(w http.ResponseWriter, r *http.Request) {
	sess, ok := s.sessions.lookup(r)
	st := sessionState{Authenticated: ok, Writable: len(s.tokens) > 0}
	if ok {
		st.CSRF = sess.csrf
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, st)
}

// login trades the API token (form field or JSON "token") for a session
// cookie.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	var token string
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		var in struct {
			Token string `json:"token"`
		}
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			writeError(w, http.StatusBadRequest, "body must be {\"token\": \"...\"}", nil)
			return
		}
		token = in.Token
	} else {
		token = r.PostFormValue("token")
	}
	token = strings.TrimSpace(token)
	if token == "" || !s.validToken(token) {
		writeError(w, http.StatusForbidden, "token not accepted", nil)
		return
	}
	cookie, sess := s.sessions.create()
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: cookie, Path: "/", HttpOnly: true, Secure: r.TLS != nil,
		SameSite: http.SameSiteStrictMode, Expires: sess.expires})
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, sessionState{Authenticated: true, CSRF: sess.csrf, Writable: true})
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	s.sessions.drop(r)
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: -1})
	writeJSON(w, http.StatusOK, sessionState{Writable: len(s.tokens) > 0})
}
