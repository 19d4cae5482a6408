package gateway

import (
	"context"
	"testing"
	"time"

	"github.com/cocaine-cloud/cocaine/internal/wire"
)

// A slow reader still gets the end of its answer: the error after many
// buffered chunks is not dropped, and a closed Response frees the sender.
func TestEmitWaitsForSlowReader(t *testing.T) {
	out := make(chan Event, 2)
	closed := make(chan struct{})
	dv := &delivery{out: out, closed: closed}
	done := make(chan struct{})
	go func() {
		for range 5 {
			dv.emit(Event{Kind: EventChunk, Data: []byte("x")})
		}
		dv.fail(wire.CodeDeadline, "late")
		close(done)
	}()
	time.Sleep(50 * time.Millisecond) // let the sender fill the buffer
	r := &Response{ch: out, cancel: func() {}, closed: closed}
	var last Event
	for range 6 {
		ev, err := r.Next(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		last = ev
	}
	<-done
	if last.Kind != EventError || last.Err.Code != wire.CodeDeadline {
		t.Fatalf("last event %+v, want the 520 error", last)
	}
	// Nobody reading and the Response closed: the sender gives up.
	dv2 := &delivery{out: make(chan Event), closed: closed}
	close(closed)
	if dv2.emit(Event{Kind: EventChunk}) {
		t.Fatal("emit to a closed Response reported success")
	}
}
