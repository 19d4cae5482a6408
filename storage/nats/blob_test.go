package nats

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"testing"
)

// nats.go's object reader now and then hands back a multi-chunk blob with
// a chunk twice or out of order, and reports a digest mismatch (about one
// read in thirty of 5 MiB here). Get reads again; without that this test
// fails nearly every run.
func TestLargeBlobReadsAreWhole(t *testing.T) {
	s := opener(shared, "")(t)
	defer s.Close()
	data := make([]byte, 5<<20+123)
	rand.Read(data)
	for i := range 20 {
		if err := s.Put(context.Background(), "ns", "large", nil, bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		_, rc, err := s.Get(context.Background(), "ns", "large")
		if err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		if !bytes.Equal(b, data) {
			t.Fatalf("read %d: got %d bytes that differ from the %d put", i, len(b), len(data))
		}
	}
}
