package nats

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"testing"
)

// nats.go's object reader handed back about one multi-chunk read in
// thirty with a chunk twice or out of order (a digest mismatch), which is
// why Get reads chunks itself (objects.go). This keeps reading a 5 MiB
// blob (41 chunks) right after writing it.
func TestLargeBlobReadsAreWhole(t *testing.T) {
	s := opener(shared, "")(t)
	defer s.Close()
	data := make([]byte, 5<<20+123)
	rand.Read(data)
	for i := range 10 {
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
