package drivers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"syscall"
	"time"

	zmq "github.com/pebbe/zmq4"

	"github.com/cocaine-cloud/cocaine/engine/manifest"
	"github.com/cocaine-cloud/cocaine/engine/pool"
	"github.com/cocaine-cloud/cocaine/internal/wire"
)

// ZeroMQServer binds a ZeroMQ ROUTER socket so that plain REQ and DEALER
// clients in any language can send the app events. Each message is one
// request; its last frame is the body.
//
// A REQ client (its message carries the empty delimiter frame) gets one
// reply of two frames:
//
//	["ok", <the response, all chunks joined>]
//	["error <code>", <message>]       e.g. ["error 503", "queue is full (100 jobs)"]
//
// A DEALER client (no delimiter) gets one message per response chunk, then
// an end, each of two frames:
//
//	["chunk", <data>] ... ["end", ""]
//	or, at any point, a final ["error <code>", <message>]
//
// Frames a DEALER client puts before the body (a request id, say) come
// back in front of every reply to that request, so that replies to
// requests in flight together can be told apart. Codes are the platform's
// (internal/wire): 503 means no capacity now and is worth retrying.
const ZeroMQServer = "zeromq-server"

// Status frames of replies; see ZeroMQServer.
const (
	zmqOK    = "ok"
	zmqChunk = "chunk"
	zmqEnd   = "end"
	zmqError = "error"
)

// replyEndpoint is the inproc pipe from the forwarder to the socket
// owner; inproc names are per context and each driver has its own.
const replyEndpoint = "inproc://replies"

type zmqConfig struct {
	endpoint string
	backlog  int
}

func parseZMQ(d manifest.Driver) (zmqConfig, []manifest.Problem) {
	s := newSettings(d)
	c := zmqConfig{
		endpoint: s.str("endpoint", true, `where to bind, such as "tcp://127.0.0.1:5555" or "ipc:///run/app.sock"`),
		backlog:  int(s.integer("backlog", false, "", 0, 1, 65535)),
	}
	ps := s.done()
	if c.endpoint != "" {
		transport, addr, ok := strings.Cut(c.endpoint, "://")
		if !ok || addr == "" || (transport != "tcp" && transport != "ipc") {
			ps = append(ps, manifest.Problem{Path: "endpoint", Message: fmt.Sprintf("expected tcp://HOST:PORT or ipc://PATH, got %q", c.endpoint)})
		}
	}
	return c, ps
}

type zmqServer struct {
	d      manifest.Driver
	target Target
	log    *slog.Logger
	cfg    zmqConfig
	life   lifecycle
	stats  counters

	zctx    *zmq.Context
	replies chan [][]byte // whole reply messages, envelope first

	mu    sync.Mutex
	bound string
}

var _ Driver = (*zmqServer)(nil)

func init() {
	Register(ZeroMQServer, newZMQServer, func(d manifest.Driver) []manifest.Problem {
		_, ps := parseZMQ(d)
		return ps
	})
}

func newZMQServer(d manifest.Driver, env Env) (Driver, error) {
	cfg, ps := parseZMQ(d)
	if err := problemsError(d, ps); err != nil {
		return nil, err
	}
	if env.Target == nil {
		return nil, errNoTarget(d)
	}
	z := &zmqServer{d: d, target: env.Target, log: driverLogger(d, env), cfg: cfg, replies: make(chan [][]byte, 256)}
	z.stats.log = z.log
	return z, nil
}

// Start binds before returning, so that a taken port fails the start.
//
// ZeroMQ sockets must not be used from two threads at once, and sinks run
// on the pool's goroutines. So each socket has one goroutine: serve owns
// the ROUTER and the receiving end of an inproc PAIR; forward owns the
// sending end and moves replies from a channel, which sinks may write to
// from anywhere, into the pipe that serve polls beside the ROUTER.
func (z *zmqServer) Start(context.Context) error {
	if err := z.life.begin(); err != nil {
		return err
	}
	zctx, err := zmq.NewContext()
	if err != nil {
		return fmt.Errorf("drivers: %s: zeromq context: %w", z.d.Name, err)
	}
	router, rx, tx, err := z.open(zctx)
	if err != nil {
		_ = zctx.Term()
		return fmt.Errorf("drivers: %s: %w", z.d.Name, err)
	}
	z.zctx = zctx
	z.life.goRun(func(stop <-chan struct{}) { z.serve(stop, router, rx) })
	z.life.goRun(func(stop <-chan struct{}) { z.forward(stop, tx) })
	return nil
}

func (z *zmqServer) open(zctx *zmq.Context) (router, rx, tx *zmq.Socket, err error) {
	var opened []*zmq.Socket
	defer func() {
		if err != nil {
			for _, s := range opened {
				_ = s.Close()
			}
		}
	}()
	socket := func(t zmq.Type) (*zmq.Socket, error) {
		s, err := zctx.NewSocket(t)
		if err != nil {
			return nil, fmt.Errorf("zeromq socket: %w", err)
		}
		opened = append(opened, s)
		// Replies to clients that are gone are not worth waiting for at Stop.
		return s, s.SetLinger(0)
	}
	if router, err = socket(zmq.ROUTER); err != nil {
		return
	}
	if z.cfg.backlog > 0 {
		if err = router.SetBacklog(z.cfg.backlog); err != nil {
			return
		}
	}
	if err = router.Bind(z.cfg.endpoint); err != nil {
		err = fmt.Errorf("bind %s: %w", z.cfg.endpoint, err)
		return
	}
	bound, _ := router.GetLastEndpoint()
	z.mu.Lock()
	z.bound = bound
	z.mu.Unlock()

	if rx, err = socket(zmq.PAIR); err != nil {
		return
	}
	// No high-water mark on the pipe: what it holds is bounded by the
	// jobs in flight, and a full pipe would block the forwarder.
	if err = rx.SetRcvhwm(0); err != nil {
		return
	}
	if err = rx.Bind(replyEndpoint); err != nil {
		return
	}
	if tx, err = socket(zmq.PAIR); err != nil {
		return
	}
	if err = tx.SetSndhwm(0); err != nil {
		return
	}
	// Bounds a send when serve has already gone, so forward sees Stop.
	if err = tx.SetSndtimeo(100 * time.Millisecond); err != nil {
		return
	}
	err = tx.Connect(replyEndpoint)
	return
}

func (z *zmqServer) serve(stop <-chan struct{}, router, rx *zmq.Socket) {
	defer router.Close()
	defer rx.Close()
	poller := zmq.NewPoller()
	poller.Add(router, zmq.POLLIN)
	poller.Add(rx, zmq.POLLIN)
	for {
		// forward wakes us at Stop; the timeout is only a backstop.
		polled, err := poller.Poll(time.Second)
		select {
		case <-stop:
			return
		default:
		}
		if err != nil {
			z.stats.fail(fmt.Errorf("zeromq poll: %w", err))
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond): // no spinning on a persistent error
			}
			continue
		}
		for _, p := range polled {
			switch p.Socket {
			case router:
				z.receive(stop, router)
			case rx:
				relay(rx, router)
			}
		}
	}
}

// drainBatch bounds the messages taken from one socket per poll so that
// neither requests nor replies starve the other.
const drainBatch = 64

func (z *zmqServer) receive(stop <-chan struct{}, router *zmq.Socket) {
	for range drainBatch {
		msg, err := router.RecvMessageBytes(zmq.DONTWAIT)
		if err != nil {
			return // EAGAIN: nothing more for now
		}
		if len(msg) < 2 {
			continue // an identity and no body: nothing to answer
		}
		env, body := msg[:len(msg)-1], msg[len(msg)-1]
		var sink pool.Sink
		if len(env) >= 2 && len(env[len(env)-1]) == 0 {
			sink = &reqSink{z: z, stop: stop, env: env}
		} else {
			sink = &dealerSink{z: z, stop: stop, env: env}
		}
		if err := z.stats.submit(z.target, &pool.Job{Event: z.d.Emit, Body: body, Sink: sink}); err != nil {
			// The client must hear of it: a REQ socket would otherwise
			// wait forever.
			text := err.Error()
			var we *wire.Error
			if errors.As(err, &we) {
				text = we.Message
			}
			_, _ = router.SendMessage(reply(env, errorStatus(wire.CodeOf(err)), []byte(text)))
		}
	}
}

func relay(rx, router *zmq.Socket) {
	for range drainBatch {
		msg, err := rx.RecvMessageBytes(zmq.DONTWAIT)
		if err != nil {
			return
		}
		if len(msg) < 3 {
			continue // forward's wake-up at Stop
		}
		// A ROUTER drops messages for clients that left; nothing to do.
		_, _ = router.SendMessage(msg)
	}
}

func (z *zmqServer) forward(stop <-chan struct{}, tx *zmq.Socket) {
	defer tx.Close()
	for {
		select {
		case <-stop:
			_, _ = tx.Send("", zmq.DONTWAIT) // wake serve out of its poll
			return
		case msg := <-z.replies:
			for {
				_, err := tx.SendMessage(msg)
				if err == nil {
					break
				}
				if zmq.AsErrno(err) != zmq.Errno(syscall.EAGAIN) {
					z.stats.fail(fmt.Errorf("zeromq reply pipe: %w", err))
					break
				}
				select {
				case <-stop:
					return
				default:
				}
			}
		}
	}
}

// send queues a reply for the socket owner. After Stop it drops the
// reply instead of blocking the pool's goroutine.
func (z *zmqServer) send(stop <-chan struct{}, msg [][]byte) {
	select {
	case z.replies <- msg:
	case <-stop:
	}
}

func reply(env [][]byte, status string, body []byte) [][]byte {
	msg := make([][]byte, 0, len(env)+2)
	msg = append(msg, env...)
	return append(msg, []byte(status), body)
}

func errorStatus(code wire.Code) string { return fmt.Sprintf("%s %d", zmqError, int(code)) }

// reqSink answers a REQ client: one reply with the chunks joined.
type reqSink struct {
	z    *zmqServer
	stop <-chan struct{}
	env  [][]byte
	buf  []byte
}

func (s *reqSink) Chunk(p []byte) { s.buf = append(s.buf, p...) }

func (s *reqSink) Close() {
	s.z.stats.ended(0, "")
	s.z.send(s.stop, reply(s.env, zmqOK, s.buf))
}

func (s *reqSink) Error(code wire.Code, msg string) {
	s.z.stats.ended(code, msg)
	s.z.send(s.stop, reply(s.env, errorStatus(code), []byte(msg)))
}

// dealerSink streams to a DEALER client: a message per chunk, then an end.
type dealerSink struct {
	z    *zmqServer
	stop <-chan struct{}
	env  [][]byte
}

func (s *dealerSink) Chunk(p []byte) {
	s.z.send(s.stop, reply(s.env, zmqChunk, append([]byte(nil), p...)))
}

func (s *dealerSink) Close() {
	s.z.stats.ended(0, "")
	s.z.send(s.stop, reply(s.env, zmqEnd, nil))
}

func (s *dealerSink) Error(code wire.Code, msg string) {
	s.z.stats.ended(code, msg)
	s.z.send(s.stop, reply(s.env, errorStatus(code), []byte(msg)))
}

// Stop closes the sockets (linger 0) and then the context, which is
// quick once every socket is closed.
func (z *zmqServer) Stop() {
	if !z.life.end() || z.zctx == nil {
		return
	}
	if err := z.zctx.Term(); err != nil {
		z.log.Warn("zeromq context", "err", err)
	}
}

func (z *zmqServer) Info() map[string]any {
	info := z.stats.into(BaseInfo(z.d))
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.bound != "" {
		info["bound"] = z.bound
	}
	return info
}
