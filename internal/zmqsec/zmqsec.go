// Package zmqsec sets the limits and the authentication of the platform's
// ZeroMQ sockets between dealers and engines: a bound on message size, so
// that a peer declaring a huge frame is dropped before anything is
// allocated for it, and CURVE encryption with one cluster key pair that
// every engine and dealer of a cluster holds (`cocaine keygen` makes one).
//
// Engines are CURVE servers; dealers are clients that present the same
// key pair, and a ZAP handler admits only that public key, so a peer
// without the cluster's secret key cannot complete the handshake.
package zmqsec

import (
	"errors"
	"fmt"
	"os"
	"sync"

	zmq "github.com/pebbe/zmq4"
)

// EnvSecret overrides Config.CurveSecret, so that the secret need not be
// written in a config file.
const EnvSecret = "COCAINE_CURVE_SECRET"

// DefaultMaxMessage bounds one ZeroMQ message: above the front's default
// max-body (64 MiB), which today travels in one message, with room for
// the header.
const DefaultMaxMessage = 80 << 20

// zapDomain names the platform's sockets to the ZAP handler.
const zapDomain = "cocaine"

// Config is the [security] section of the engine and gateway configs.
type Config struct {
	// CurveSecret is the cluster's CURVE secret key (Z85, 40 characters)
	// from `cocaine keygen`; the public key is derived from it. Every
	// engine and dealer of a cluster holds the same one. Environment
	// COCAINE_CURVE_SECRET overrides it. Required unless Insecure.
	CurveSecret string `toml:"curve-secret"`
	// Insecure turns CURVE off: anyone who reaches the request and
	// announce endpoints may send requests and read announces. Only for
	// a single machine or a trusted network. Default false (`cocaine dev`
	// runs insecure on loopback).
	Insecure bool `toml:"insecure"`
	// MaxMessage bounds one ZeroMQ message in bytes; a peer that sends a
	// larger one is disconnected before it is read. Default 83886080
	// (80 MiB), above the front's default max-body.
	MaxMessage int64 `toml:"max-message"`

	public string // derived from CurveSecret by Default
}

// Default applies the environment override and the defaults.
func (c *Config) Default() {
	if s := os.Getenv(EnvSecret); s != "" {
		c.CurveSecret = s
	}
	if c.MaxMessage == 0 {
		c.MaxMessage = DefaultMaxMessage
	}
}

// ErrNoKey is returned by Validate for a secure config without a key.
var ErrNoKey = errors.New("security: curve-secret is required (make one with `cocaine keygen`, or set " +
	EnvSecret + "); insecure = true turns authentication off")

// Validate checks the key and derives the public key.
func (c *Config) Validate() error {
	if c.MaxMessage < 0 {
		return errors.New("security: max-message: negative")
	}
	if c.Insecure {
		return nil
	}
	if c.CurveSecret == "" {
		return ErrNoKey
	}
	if !zmq.HasCurve() {
		return errors.New("security: this libzmq has no CURVE support")
	}
	if len(c.CurveSecret) != 40 {
		return fmt.Errorf("security: curve-secret: want 40 Z85 characters, got %d", len(c.CurveSecret))
	}
	pub, err := zmq.AuthCurvePublic(c.CurveSecret)
	if err != nil {
		return fmt.Errorf("security: curve-secret: %w", err)
	}
	c.public = pub
	return nil
}

// Secure reports whether CURVE is on (after Validate).
func (c *Config) Secure() bool { return c != nil && !c.Insecure && c.public != "" }

var zap struct {
	once sync.Once
	err  error
}

// startZAP runs the process's ZAP handler once; keys are added per
// server.
func startZAP() error {
	zap.once.Do(func() { zap.err = zmq.AuthStart() })
	return zap.err
}

// Server prepares a socket that binds (the engine's ROUTER and XPUB):
// the message bound and, when secure, CURVE as a server admitting only
// the cluster key. Call it before Bind. A nil c means no CURVE and the
// default bound.
func (c *Config) Server(sock *zmq.Socket) error {
	if err := sock.SetMaxmsgsize(c.maxMessage()); err != nil {
		return fmt.Errorf("zmq maxmsgsize: %w", err)
	}
	if !c.Secure() {
		return nil
	}
	if err := startZAP(); err != nil {
		return fmt.Errorf("zmq auth: %w", err)
	}
	zmq.AuthCurveAdd(zapDomain, c.public)
	if err := sock.ServerAuthCurve(zapDomain, c.CurveSecret); err != nil {
		return fmt.Errorf("zmq curve server: %w", err)
	}
	return nil
}

// Client prepares a socket that connects (a dealer's DEALER and SUB): the
// message bound and, when secure, CURVE with the cluster key pair. Call
// it before Connect.
func (c *Config) Client(sock *zmq.Socket) error {
	if err := sock.SetMaxmsgsize(c.maxMessage()); err != nil {
		return fmt.Errorf("zmq maxmsgsize: %w", err)
	}
	if !c.Secure() {
		return nil
	}
	if err := sock.ClientAuthCurve(c.public, c.public, c.CurveSecret); err != nil {
		return fmt.Errorf("zmq curve client: %w", err)
	}
	return nil
}

func (c *Config) maxMessage() int64 {
	if c == nil || c.MaxMessage == 0 {
		return DefaultMaxMessage
	}
	return c.MaxMessage
}

// NewKey makes a cluster key pair, Z85-encoded.
func NewKey() (public, secret string, err error) {
	if !zmq.HasCurve() {
		return "", "", errors.New("this libzmq has no CURVE support")
	}
	return zmq.NewCurveKeypair()
}
