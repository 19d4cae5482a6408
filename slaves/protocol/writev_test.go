package protocol

import (
	"bytes"
	"net"
	"os"
	"syscall"
	"testing"
)

func socketpair(t *testing.T) (*net.UnixConn, *net.UnixConn) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	var cs [2]*net.UnixConn
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "socketpair")
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		cs[i] = c.(*net.UnixConn)
		t.Cleanup(func() { c.Close() })
	}
	return cs[0], cs[1]
}

// On a socket, big chunks go out from the writers' own slices (writev)
// among the frames of other writers, each writer's frames whole and in
// order.
func TestWritevChunks(t *testing.T) {
	a, b := socketpair(t)
	w := NewConn(a)
	if !w.vec {
		t.Fatal("a Unix socket Conn does not use writev")
	}
	sizes := []int{10, vecMin, 70000, 3, ChunkSize, vecMin - 1, 2*ChunkSize + 5, 0, 100000}
	const writers = 6
	errs := make(chan error, writers)
	for i := range writers {
		session := uint64(i + 1)
		go func() {
			for j, n := range sizes {
				p := bytes.Repeat([]byte{byte(session)}, n)
				var err error
				if j%2 == 0 {
					err = w.WriteChunks(session, nil, p, []byte{byte(session)})
				} else if n <= ChunkSize {
					err = w.Write(&Frame{Type: Chunk, Session: session, Data: p}, &Frame{Type: Heartbeat})
				} else {
					err = w.WriteChunks(session, nil, p)
				}
				clear(p) // the Conn must be done with p by now
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- w.WriteChunks(session, &Frame{Type: Choke, Session: session})
		}()
	}
	want := 0
	for j, n := range sizes {
		want += n
		if j%2 == 0 {
			want++
		}
	}
	r := NewConn(b)
	got := map[uint64]int{}
	for ended := 0; ended < writers; {
		var f Frame
		if err := r.Read(&f); err != nil {
			t.Fatal(err)
		}
		switch f.Type {
		case Chunk:
			if len(f.Data) > ChunkSize {
				t.Fatalf("chunk of %d bytes", len(f.Data))
			}
			for _, c := range f.Data {
				if c != byte(f.Session) {
					t.Fatalf("session %d: byte %d in its data", f.Session, c)
				}
			}
			got[f.Session] += len(f.Data)
		case Choke:
			if got[f.Session] != want {
				t.Fatalf("session %d: %d bytes, want %d", f.Session, got[f.Session], want)
			}
			ended++
		}
	}
	for range writers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
