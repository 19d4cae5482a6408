package storagetest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/cocaine-cloud/cocaine/storage"
)

// versionBlob makes a blob whose every byte depends on v and whose length
// varies with v, so a reader that sees a mix of two versions, a truncated
// version or meta from another version than the blob can tell.
func versionBlob(v int) []byte {
	b := make([]byte, (16+v%48)<<10)
	binary.BigEndian.PutUint64(b, uint64(v))
	for i := 8; i < len(b); i++ {
		b[i] = byte(v*131 + i*7)
	}
	return b
}

// checkVersion returns the version a blob claims and whether it is intact
// and agrees with its metadata and size.
func checkVersion(info storage.Info, blob []byte) (int, error) {
	if len(blob) < 8 {
		return 0, fmt.Errorf("blob of %d bytes is too short to hold a version", len(blob))
	}
	v := int(binary.BigEndian.Uint64(blob))
	if v < 0 || v > 1<<30 {
		return 0, fmt.Errorf("blob claims nonsense version %d", v)
	}
	if !bytes.Equal(blob, versionBlob(v)) {
		return v, fmt.Errorf("blob of %d bytes is not version %d (torn or partial write)", len(blob), v)
	}
	if info.Meta["version"] != strconv.Itoa(v) {
		return v, fmt.Errorf("meta version %q does not match blob version %d", info.Meta["version"], v)
	}
	if info.Size != int64(len(blob)) {
		return v, fmt.Errorf("Info.Size = %d but version %d has %d bytes", info.Size, v, len(blob))
	}
	return v, nil
}

func testConcurrentPutGet(t *testing.T, open opener) {
	s := openStore(t, open)
	writers, puts, readers := 6, 20, 6
	if testing.Short() {
		puts = 5
	}
	putVersion := func(v int) error {
		return s.Put(t.Context(), "ns", "k", storage.Meta{"version": strconv.Itoa(v)}, bytes.NewReader(versionBlob(v)))
	}
	if err := putVersion(0); err != nil {
		t.Fatalf("Put: %v", err)
	}

	var wg, rwg sync.WaitGroup
	done := make(chan struct{})
	for w := range writers {
		wg.Go(func() {
			for i := range puts {
				if err := putVersion(1 + w*puts + i); err != nil {
					t.Errorf("writer %d: Put: %v", w, err)
					return
				}
			}
		})
	}
	for r := range readers {
		rwg.Go(func() {
			// Keep reading until the writers are done, but at least a few
			// times so a fast writer cannot leave the readers idle.
			for n := 0; ; n++ {
				select {
				case <-done:
					if n >= 3 {
						return
					}
				default:
				}
				info, blob, err := tryGet(s, "ns", "k")
				if err != nil {
					t.Errorf("reader %d: Get: %v", r, err)
					return
				}
				if _, err := checkVersion(info, blob); err != nil {
					t.Errorf("reader %d: %v", r, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(done)
	rwg.Wait()

	// Each writer puts its versions in order, so the survivor must be the
	// last version of one of them.
	info, blob := get(t, s, "ns", "k")
	v, err := checkVersion(info, blob)
	if err != nil {
		t.Fatalf("after all writers: %v", err)
	}
	var lasts []int
	for w := range writers {
		lasts = append(lasts, w*puts+puts)
	}
	if !slices.Contains(lasts, v) {
		t.Errorf("final version = %d, want the last Put of some writer, one of %v", v, lasts)
	}
	wantKeys(t, "List after concurrent Puts", list(t, s, "ns", ""), "k")
}
