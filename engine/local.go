package engine

import (
	"github.com/cocaine-cloud/cocaine/engine/pool"
	"github.com/cocaine-cloud/cocaine/internal/wire"
)

// Endpoint is the request endpoint this node announces: a dealer in the
// same process recognises its node by it and calls InvokeLocal instead.
func (n *Node) Endpoint() string { return n.cfg.Advertise }

// InvokeLocal submits a request from a dealer in this process, with no
// ZeroMQ between them: the accepted submit is the ack, a refusal comes
// back as the error, and the answer goes to sink (see gateway.Local).
func (n *Node) InvokeLocal(app, event string, body []byte, more bool, p wire.Policy, sink pool.Sink) (*LocalRequest, error) {
	j := &pool.Job{Body: body, More: more, Urgent: p.Urgent, Timeout: p.Timeout, Deadline: p.Deadline, Sink: sink}
	if err := n.Submit(app, event, j); err != nil {
		return nil, err
	}
	return &LocalRequest{job: j}, nil
}

// LocalRequest is a request submitted with InvokeLocal.
type LocalRequest struct{ job *pool.Job }

// Write feeds more request body, waiting while the app has a window's
// worth unread.
func (l *LocalRequest) Write(p []byte) error { return l.job.Feed(p, true) }

// CloseSend ends the request body.
func (l *LocalRequest) CloseSend() { l.job.EndBody() }

// Cancel ends the request for a caller that went away.
func (l *LocalRequest) Cancel() {
	if i, ok := l.job.Sink.(pool.Interrupter); ok {
		i.Interrupt()
	}
	l.job.Cancel()
}
