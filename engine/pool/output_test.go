package pool

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/cocaine-cloud/cocaine/storage"
)

func TestReadLinesSplitsLongLines(t *testing.T) {
	long := strings.Repeat("ab", 20)   // 40 bytes, max 16
	accents := strings.Repeat("é", 20) // 2-byte characters, never split
	for _, tc := range []struct {
		name, in string
		want     []string
	}{
		{"short", "a\nb\r\n\nc", []string{"a", "b", "", "c"}},
		{"long", long + "\nnext\n", []string{long[:16], ContinuedMark + long[16:32], ContinuedMark + long[32:], "next"}},
		{"exact", long[:16] + "\n", []string{long[:16], ContinuedMark}},
		{"characters kept whole", accents + "\n", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			readLines(strings.NewReader(tc.in), 16, func(s string) { got = append(got, s) })
			if tc.want == nil {
				joined := ""
				for i, g := range got {
					if !utf8.ValidString(g) || len(g) > 16+len(ContinuedMark) {
						t.Fatalf("piece %d %q", i, g)
					}
					joined += strings.TrimPrefix(g, ContinuedMark)
				}
				if joined != accents {
					t.Fatalf("rejoined %q", joined)
				}
				return
			}
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Fatalf("got %q\nwant %q", got, tc.want)
			}
		})
	}
}

// TestLongStdoutLine: a slave that prints a 1 MiB line keeps working; the
// next print on the next request answers and both reach the log.
func TestLongStdoutLine(t *testing.T) {
	var mu syncLines
	f := newPool(t, "slave", engineDefaults(), func(c *Config) { c.OnLog = mu.add })
	for _, body := range []string{"long:" + strconv.Itoa(1<<20), "after the long line"} {
		got, code, msg := f.call("print", body).wait(t, 10*time.Second)
		if code != 0 || got != "printed" {
			t.Fatalf("print %.20q: %d %s %q", body, code, msg, got)
		}
	}
	eventually(t, 5*time.Second, "both lines in the log", func() bool {
		lines := mu.get()
		total, pieces, after := 0, 0, false
		for _, l := range lines {
			if strings.HasPrefix(strings.TrimPrefix(l, ContinuedMark), "é") {
				total += len(strings.TrimPrefix(l, ContinuedMark))
				pieces++
			}
			after = after || l == "after the long line"
		}
		return after && total == 1<<20 && pieces == (1<<20)/MaxLogLine
	})
}

// TestForkedChildrenDieWithSlave: what a slave forked is gone after its
// idle exit (it left on its own) and after the pool stops.
func TestForkedChildrenDieWithSlave(t *testing.T) {
	e := engineDefaults()
	e.IdleTimeout = 300 * time.Millisecond
	f := newPool(t, "slave", e)
	check := func(when string) {
		got, code, msg := f.call("fork", "5").wait(t, 10*time.Second)
		if code != 0 {
			t.Fatalf("fork: %d %s", code, msg)
		}
		pids := strings.Fields(got)
		if len(pids) != 5 {
			t.Fatalf("fork answered %q", got)
		}
		t.Cleanup(func() {
			for _, p := range pids {
				n, _ := strconv.Atoi(p)
				_ = syscall.Kill(n, syscall.SIGKILL)
			}
		})
		eventually(t, 10*time.Second, "forked children gone "+when, func() bool {
			for _, p := range pids {
				n, _ := strconv.Atoi(p)
				if alive(n) {
					return false
				}
			}
			return true
		})
	}
	check("after idle exit")
	// Stopping the pool terminates the slave, which exits by itself.
	e.IdleTimeout = time.Hour
	f2 := newPool(t, "slave", e)
	got, code, msg := f2.call("fork", "5").wait(t, 10*time.Second)
	if code != 0 {
		t.Fatalf("fork: %d %s", code, msg)
	}
	if err := f2.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, p := range strings.Fields(got) {
		n, _ := strconv.Atoi(p)
		eventually(t, 10*time.Second, "children gone after stop", func() bool { return !alive(n) })
	}
}

// alive reports whether pid runs (a zombie waiting for its reaper does not).
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	return err == nil && !strings.Contains(string(b), ") Z ")
}

type syncLines struct {
	mu    sync.Mutex
	lines []string
}

func (s *syncLines) add(l storage.LogLine) {
	s.mu.Lock()
	s.lines = append(s.lines, l.Text)
	s.mu.Unlock()
}

func (s *syncLines) get() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.lines...)
}
