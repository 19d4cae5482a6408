package mongodb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"

	"github.com/cocaine-cloud/cocaine/storage"
)

// fail gives a driver error the meaning callers test for: the caller's own
// cancellation first (so errors.Is(err, context.Canceled) holds even when
// the driver reported it as a network failure), then storage.ErrUnavailable
// for failures that heal once the database is reachable again. The driver's
// error stays wrapped for the detail.
func (s *Store) fail(ctx context.Context, err error) error {
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil && !errors.Is(err, ctx.Err()):
		return fmt.Errorf("%w: %w", ctx.Err(), err)
	case ctx.Err() != nil, errors.Is(err, storage.ErrUnavailable):
		return err
	case errors.Is(err, mongo.ErrClientDisconnected):
		return fmt.Errorf("%w: %w", errClosed, err)
	case unavailable(err):
		return fmt.Errorf("%w: %w", storage.ErrUnavailable, err)
	}
	return err
}

// Server error codes that mean "this server cannot serve you right now"
// (shutdown, step-down, network trouble between servers) rather than "the
// request is wrong".
var transientCodes = map[int]bool{
	6: true, 7: true, 89: true, 91: true, 189: true, 262: true, 9001: true,
	10107: true, 11600: true, 11602: true, 13435: true, 13436: true,
}

// unavailable reports whether err comes from not reaching a usable server.
// A timeout counts only because fail has already ruled out the caller's own
// deadline: what is left is the server not answering in time.
func unavailable(err error) bool {
	if mongo.IsNetworkError(err) || mongo.IsTimeout(err) {
		return true
	}
	var sel topology.ServerSelectionError
	var conn topology.ConnectionError
	var pool driver.RetryablePoolError
	if errors.As(err, &sel) || errors.As(err, &conn) || (errors.As(err, &pool) && pool.Retryable()) {
		return true
	}
	var se mongo.ServerError
	if errors.As(err, &se) {
		for _, code := range se.ErrorCodes() {
			if transientCodes[code] {
				return true
			}
		}
		if se.HasErrorLabel("RetryableWriteError") || se.HasErrorLabel("TransientTransactionError") {
			return true
		}
	}
	// Seen mid-stream when the server goes away under an open cursor.
	var nerr net.Error
	return errors.As(err, &nerr) ||
		errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE)
}

// definitelyNotApplied reports whether a failed write certainly changed
// nothing, so that what it would have referenced can be deleted at once.
// After a network failure the server may have applied the write anyway, and
// deleting then would leave a document pointing at nothing.
func definitelyNotApplied(err error) bool {
	// A write concern error comes after the write was applied on the
	// primary.
	var we mongo.WriteException
	if errors.As(err, &we) && we.WriteConcernError != nil {
		return false
	}
	var se mongo.ServerError
	return errors.As(err, &se) && !unavailable(err)
}
