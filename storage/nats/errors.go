package nats

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"

	natsio "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cocaine-cloud/cocaine/storage"
)

// fail gives a client error the meaning callers test for: the caller's own
// cancellation first, so that errors.Is(err, context.Canceled) holds
// whatever the client made of it; then storage.ErrUnavailable for what
// heals once the cluster has a quorum again, including this Store's own
// per-call timeout (octx) running out. The client's error stays wrapped for
// the detail.
func (s *Store) fail(ctx, octx context.Context, err error) error {
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil && !errors.Is(err, ctx.Err()):
		return fmt.Errorf("%w: %w", ctx.Err(), err)
	case ctx.Err() != nil, errors.Is(err, storage.ErrUnavailable):
		return err
	case s.closed.Load() && errors.Is(err, natsio.ErrConnectionClosed):
		return fmt.Errorf("%w: %w", errClosed, err)
	case octx.Err() != nil:
		return fmt.Errorf("%w: no answer from the cluster within %v (is a majority of the servers up?): %w",
			storage.ErrUnavailable, s.opts.Timeout, err)
	case unavailable(err):
		return fmt.Errorf("%w: %w", storage.ErrUnavailable, err)
	}
	return err
}

// clusterCodes are JetStream API errors that mean "no server can serve this
// right now" (no leader, no quorum, stream offline) rather than "the
// request is wrong".
var clusterCodes = map[jetstream.ErrorCode]bool{
	10005: true, // JSClusterNoPeersErr
	10006: true, // JSClusterNotActiveErr
	10008: true, // JSClusterNotAvailErr: JetStream system temporarily unavailable
	10009: true, // JSClusterNotLeaderErr
	10118: true, // JSStreamOfflineErr
}

// unavailable reports whether err comes from not reaching a working
// quorum. A timeout counts only because fail has already ruled out the
// caller's own deadline.
func unavailable(err error) bool {
	var api *jetstream.APIError
	if errors.As(err, &api) && (clusterCodes[api.ErrorCode] || api.Code == 503) {
		return true
	}
	// The KV watcher behind List still goes through nats.go's older API,
	// which has its own error type.
	var legacy *natsio.APIError
	if errors.As(err, &legacy) && (clusterCodes[jetstream.ErrorCode(legacy.ErrorCode)] || legacy.Code == 503) {
		return true
	}
	for _, e := range []error{
		context.DeadlineExceeded, natsio.ErrTimeout, natsio.ErrNoResponders, natsio.ErrNoServers,
		natsio.ErrDisconnected, natsio.ErrConnectionReconnecting, natsio.ErrConnectionClosed,
		natsio.ErrStaleConnection, natsio.ErrReconnectBufExceeded, jetstream.ErrNoStreamResponse, jetstream.ErrNoHeartbeat,
		jetstream.ErrAsyncPublishTimeout, io.ErrUnexpectedEOF, net.ErrClosed,
		syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.EPIPE,
	} {
		if errors.Is(err, e) {
			return true
		}
	}
	var nerr net.Error
	return errors.As(err, &nerr)
}
