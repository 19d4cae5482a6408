package gateway

import "github.com/cocaine-cloud/cocaine/internal/wire"

// Local is an engine in the dealer's own process (`cocaine dev`, or a node
// that runs the front too). Requests the balancer sends to it skip ZeroMQ
// and go straight to its pools, under the same rules as any node: the
// submit is the ack, a refusal goes elsewhere, deadlines and error codes
// are the same. The engine implements it; the dealer does not import the
// engine.
type Local interface {
	// Endpoint is the engine's request endpoint, as its announces name it:
	// the node in the routing table that this shortcut stands for.
	Endpoint() string
	// Invoke submits a request whose answer goes to sink. An error is a
	// refusal (*wire.Error: queue full, no such app...) and nothing more
	// reaches sink; otherwise sink gets chunks then exactly one Close or
	// Error. When more is true the body continues through the returned
	// call's Write and CloseSend.
	Invoke(app, event string, body []byte, more bool, p wire.Policy, sink LocalSink) (LocalCall, error)
}

// LocalSink receives a local request's answer. Chunk may block: that is
// how a slow caller slows the app (flow control); the slice is only valid
// during the call.
type LocalSink interface {
	Chunk(p []byte)
	Close()
	Error(code wire.Code, msg string)
}

// LocalCall is a local request in flight.
type LocalCall interface {
	// Write passes more request body; it blocks while the app has not
	// taken what came before (bounded by wire.Window). It fails once the
	// request has ended.
	Write(p []byte) error
	// CloseSend ends the request body.
	CloseSend()
	// Cancel ends the request for a caller that went away.
	Cancel()
}
