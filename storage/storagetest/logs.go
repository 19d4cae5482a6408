package storagetest

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cocaine-cloud/cocaine/storage"
)

// line makes a log line. Times are cut to milliseconds so that backends
// keeping millisecond timestamps (BSON dates) compare equal.
func line(app string, at time.Time, text string) storage.LogLine {
	return storage.LogLine{Time: at.Truncate(time.Millisecond), App: app, Stream: "stdout", Text: text}
}

// seq makes n lines of app one second apart starting at base, with texts
// "0", "1", ...
func seq(app string, base time.Time, n int) []storage.LogLine {
	out := make([]storage.LogLine, n)
	for i := range out {
		out[i] = line(app, base.Add(time.Duration(i)*time.Second), strconv.Itoa(i))
	}
	return out
}

func appendLog(t *testing.T, s storage.Storage, app string, lines []storage.LogLine) {
	t.Helper()
	if err := s.AppendLog(context.Background(), app, lines); err != nil {
		t.Fatalf("AppendLog(%s, %d lines): %v", app, len(lines), err)
	}
}

func readLog(t *testing.T, s storage.Storage, app string, since time.Time, limit int) []storage.LogLine {
	t.Helper()
	lines, err := s.ReadLog(context.Background(), app, since, limit)
	if err != nil {
		t.Fatalf("ReadLog(%s, %v, %d): %v", app, since, limit, err)
	}
	return lines
}

func texts(lines []storage.LogLine) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = l.Text
	}
	return out
}

func wantTexts(t *testing.T, what string, got []storage.LogLine, want ...string) {
	t.Helper()
	wantKeys(t, what+" texts", texts(got), want...)
}

// wantLines compares whole lines, times by instant (a backend may hand
// them back in another location).
func wantLines(t *testing.T, what string, got, want []storage.LogLine) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: got %d lines %q, want %d lines %q", what, len(got), texts(got), len(want), texts(want))
		return
	}
	for i := range want {
		g, w := got[i], want[i]
		if !g.Time.Equal(w.Time) || g.App != w.App || g.Slave != w.Slave || g.Stream != w.Stream || g.Text != w.Text {
			t.Errorf("%s: line %d = %+v, want %+v", what, i, g, w)
		}
	}
}

// nums lists the texts "from".."to"-1 that seq produces.
func nums(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, strconv.Itoa(i))
	}
	return out
}

// runLogs assumes the store keeps at least 1000 lines and an hour of log
// per app; bounds are checked by RunLogBound.
func runLogs(t *testing.T, open opener) {
	// Recent enough for any sane age bound, old enough that lines seq puts
	// seconds apart are all in the past.
	base := time.Now().Add(-10 * time.Minute)

	t.Run("NoLog", func(t *testing.T) {
		s := openStore(t, open)
		for _, limit := range []int{0, 10} {
			lines, err := s.ReadLog(context.Background(), "app", time.Time{}, limit)
			if err != nil || len(lines) != 0 {
				t.Errorf("ReadLog of an app without a log (limit %d) = %v, %v; want no lines and nil error", limit, lines, err)
			}
		}
	})

	t.Run("OrderAndFields", func(t *testing.T) {
		s := openStore(t, open)
		first := []storage.LogLine{
			{Time: base.Truncate(time.Millisecond), App: "app", Slave: "s-1", Stream: "stdout", Text: "plain"},
			{Time: base.Add(time.Second).Truncate(time.Millisecond), App: "app", Slave: "s-1", Stream: "stderr", Text: "multi\nline \"quoted\" {\"json\":1}"},
			{Time: base.Add(2 * time.Second).Truncate(time.Millisecond), App: "app", Stream: "engine", Text: "ünïcødé ✓ \t tab"},
		}
		second := []storage.LogLine{
			{Time: base.Add(3 * time.Second).Truncate(time.Millisecond), App: "app", Text: ""},
		}
		third := []storage.LogLine{
			{Time: base.Add(4 * time.Second).Truncate(time.Millisecond), App: "app", Slave: "s-2", Stream: "stdout", Text: "last"},
		}
		appendLog(t, s, "app", first)
		appendLog(t, s, "app", second)
		appendLog(t, s, "app", third)
		want := append(append(append([]storage.LogLine(nil), first...), second...), third...)
		wantLines(t, "ReadLog", readLog(t, s, "app", time.Time{}, 0), want)
	})

	t.Run("Since", func(t *testing.T) {
		s := openStore(t, open)
		lines := seq("app", base, 10)
		appendLog(t, s, "app", lines[:4])
		appendLog(t, s, "app", lines[4:])
		wantTexts(t, "since zero", readLog(t, s, "app", time.Time{}, 0), nums(0, 10)...)
		wantTexts(t, "since before the first", readLog(t, s, "app", base.Add(-time.Hour), 0), nums(0, 10)...)
		// since is exclusive: the line stamped exactly at since is left out.
		wantTexts(t, "since line 4", readLog(t, s, "app", lines[4].Time, 0), nums(5, 10)...)
		wantTexts(t, "since between lines 4 and 5", readLog(t, s, "app", lines[4].Time.Add(time.Millisecond), 0), nums(5, 10)...)
		wantTexts(t, "since the last line", readLog(t, s, "app", lines[9].Time, 0))
		wantTexts(t, "since after the last line", readLog(t, s, "app", lines[9].Time.Add(time.Hour), 0))
	})

	t.Run("Limit", func(t *testing.T) {
		s := openStore(t, open)
		lines := seq("app", base, 10)
		appendLog(t, s, "app", lines)
		wantTexts(t, "limit 3", readLog(t, s, "app", time.Time{}, 3), "7", "8", "9")
		wantTexts(t, "limit 1", readLog(t, s, "app", time.Time{}, 1), "9")
		wantTexts(t, "limit 10", readLog(t, s, "app", time.Time{}, 10), nums(0, 10)...)
		wantTexts(t, "limit 100", readLog(t, s, "app", time.Time{}, 100), nums(0, 10)...)
		wantTexts(t, "limit -1", readLog(t, s, "app", time.Time{}, -1), nums(0, 10)...)
		// The limit keeps the newest of the lines after since.
		wantTexts(t, "since 2, limit 3", readLog(t, s, "app", lines[2].Time, 3), "7", "8", "9")
		wantTexts(t, "since 6, limit 5", readLog(t, s, "app", lines[6].Time, 5), "7", "8", "9")
	})

	t.Run("AppsAreSeparate", func(t *testing.T) {
		s := openStore(t, open)
		a, b := seq("a", base, 4), seq("b", base, 3)
		for i := range 4 {
			appendLog(t, s, "a", a[i:i+1])
			if i < 3 {
				appendLog(t, s, "b", b[i:i+1])
			}
		}
		wantLines(t, "log of a", readLog(t, s, "a", time.Time{}, 0), a)
		wantLines(t, "log of b", readLog(t, s, "b", time.Time{}, 0), b)
		wantTexts(t, "log of a prefix of a name", readLog(t, s, "ab", time.Time{}, 0))
	})

	t.Run("RemoveLog", func(t *testing.T) {
		s := openStore(t, open)
		ctx := context.Background()
		appendLog(t, s, "a", seq("a", base, 3))
		appendLog(t, s, "b", seq("b", base, 2))
		if err := s.RemoveLog(ctx, "a"); err != nil {
			t.Fatalf("RemoveLog: %v", err)
		}
		wantTexts(t, "log of a after RemoveLog", readLog(t, s, "a", time.Time{}, 0))
		wantTexts(t, "log of b after RemoveLog(a)", readLog(t, s, "b", time.Time{}, 0), "0", "1")
		wantNotFound(t, "second RemoveLog", s.RemoveLog(ctx, "a"))
		wantNotFound(t, "RemoveLog of an app that never logged", s.RemoveLog(ctx, "never"))

		again := []storage.LogLine{line("a", base.Add(time.Minute), "again")}
		appendLog(t, s, "a", again)
		wantLines(t, "log of a after RemoveLog and AppendLog", readLog(t, s, "a", time.Time{}, 0), again)
	})

	t.Run("InvalidApp", func(t *testing.T) {
		s := openStore(t, open)
		ctx := context.Background()
		for _, bad := range badNames {
			wantInvalid(t, "AppendLog("+quote(bad)+")", s.AppendLog(ctx, bad, []storage.LogLine{line(bad, base, "x")}))
			_, err := s.ReadLog(ctx, bad, time.Time{}, 0)
			wantInvalid(t, "ReadLog("+quote(bad)+")", err)
			wantInvalid(t, "RemoveLog("+quote(bad)+")", s.RemoveLog(ctx, bad))
		}
		// The names a careless backend could have written to instead.
		for _, app := range []string{"x", "a", "b", "y", "hidden", "abs"} {
			wantTexts(t, "log of "+app+" after invalid appends", readLog(t, s, app, time.Time{}, 0))
		}
	})

	t.Run("EmptyAppend", func(t *testing.T) {
		s := openStore(t, open)
		appendLog(t, s, "app", nil)
		appendLog(t, s, "app", []storage.LogLine{})
		wantTexts(t, "log after empty appends", readLog(t, s, "app", time.Time{}, 0))
		appendLog(t, s, "app", seq("app", base, 2))
		appendLog(t, s, "app", nil)
		wantTexts(t, "log after an empty append", readLog(t, s, "app", time.Time{}, 0), "0", "1")
	})

	t.Run("ConcurrentAppends", func(t *testing.T) {
		s := openStore(t, open)
		const goroutines, perG = 8, 60
		var wg sync.WaitGroup
		for g := range goroutines {
			wg.Go(func() {
				for i := 0; i < perG; {
					n := min(1+i%3, perG-i) // batches of 1, 2 and 3 lines
					batch := make([]storage.LogLine, n)
					for j := range batch {
						batch[j] = line("app", time.Now(), fmt.Sprintf("g%d-%d", g, i+j))
					}
					if err := s.AppendLog(context.Background(), "app", batch); err != nil {
						t.Errorf("goroutine %d: AppendLog: %v", g, err)
						return
					}
					i += n
				}
			})
		}
		wg.Wait()
		lines := readLog(t, s, "app", time.Time{}, 0)
		if len(lines) != goroutines*perG {
			t.Fatalf("got %d lines, want %d", len(lines), goroutines*perG)
		}
		// Every goroutine's lines are whole and in the order it wrote them.
		next := make([]int, goroutines)
		for _, l := range lines {
			var g, i int
			if _, err := fmt.Sscanf(l.Text, "g%d-%d", &g, &i); err != nil || g < 0 || g >= goroutines {
				t.Fatalf("mangled line %q", l.Text)
			}
			if i != next[g] {
				t.Fatalf("goroutine %d: line %d came where %d was due", g, i, next[g])
			}
			next[g]++
		}
	})
}

// LogBound is the log bound a store was opened with. A zero field leaves
// that bound unchecked.
type LogBound struct {
	// MaxLines is how many of the newest lines a store keeps per app.
	MaxLines int
	// MaxAge is how old (by LogLine.Time) a kept line may be. The check
	// needs at least a minute so that slow machines do not age lines out
	// while it runs.
	MaxAge time.Duration
}

// RunLogBound checks that a store opened with bound b trims each app's log
// to it: ReadLog never returns more than b.MaxLines lines per app or lines
// older than b.MaxAge, however many were appended. Backends may trim lazily
// (on read or once the log exceeds the bound by some slack); the suite only
// looks at what ReadLog returns. open must return fresh stores with that
// bound, and the suite closes them like Run does.
func RunLogBound(t *testing.T, open func(t *testing.T) storage.Storage, b LogBound) {
	t.Helper()
	if b.MaxLines <= 0 && b.MaxAge <= 0 {
		t.Fatal("RunLogBound: LogBound has no bound to check")
	}
	if b.MaxAge > 0 && b.MaxAge < time.Minute {
		t.Fatalf("RunLogBound: MaxAge %v is below the minute the check needs", b.MaxAge)
	}
	t.Run("MaxLines", func(t *testing.T) {
		if b.MaxLines <= 0 {
			t.Skip("no line bound")
		}
		testMaxLines(t, open, b.MaxLines)
	})
	t.Run("MaxAge", func(t *testing.T) {
		if b.MaxAge <= 0 {
			t.Skip("no age bound")
		}
		testMaxAge(t, open, b.MaxAge)
	})
}

func testMaxLines(t *testing.T, open opener, maxLines int) {
	s := openStore(t, open)
	n := 3*maxLines + 7
	// Lines a millisecond apart ending now, so that an age bound of a
	// minute or more keeps them all.
	base := time.Now().Add(-time.Duration(n+1) * time.Millisecond)
	lines := make([]storage.LogLine, n)
	for i := range lines {
		lines[i] = line("app", base.Add(time.Duration(i)*time.Millisecond), strconv.Itoa(i))
	}
	appendLog(t, s, "other", []storage.LogLine{line("other", base, "other")})
	// One line, then a batch larger than the bound, then small batches.
	appendLog(t, s, "app", lines[:1])
	appendLog(t, s, "app", lines[1:maxLines+4])
	for i := maxLines + 4; i < n; i += 7 {
		appendLog(t, s, "app", lines[i:min(i+7, n)])
	}

	wantTexts(t, "all kept lines", readLog(t, s, "app", time.Time{}, 0), nums(n-maxLines, n)...)
	wantTexts(t, "limit 5", readLog(t, s, "app", time.Time{}, 5), nums(n-min(5, maxLines), n)...)
	wantTexts(t, "limit above the bound", readLog(t, s, "app", time.Time{}, 2*maxLines), nums(n-maxLines, n)...)
	wantTexts(t, "since the third last", readLog(t, s, "app", lines[n-3].Time, 0), nums(n-2, n)...)
	wantTexts(t, "since before every line", readLog(t, s, "app", base.Add(-time.Hour), 0), nums(n-maxLines, n)...)

	extra := line("app", time.Now(), "extra")
	appendLog(t, s, "app", []storage.LogLine{extra})
	got := readLog(t, s, "app", time.Time{}, 0)
	want := append(nums(n-maxLines+1, n), "extra")
	wantTexts(t, "after one more line", got, want...)

	// The bound is per app.
	wantTexts(t, "another app's log", readLog(t, s, "other", time.Time{}, 0), "other")
}

func testMaxAge(t *testing.T, open opener, maxAge time.Duration) {
	s := openStore(t, open)
	now := time.Now()
	appendLog(t, s, "app", []storage.LogLine{
		line("app", now.Add(-3*maxAge), "expired-1"),
		line("app", now.Add(-maxAge-time.Minute), "expired-2"),
		line("app", now.Add(-maxAge/2), "fresh-1"),
	})
	appendLog(t, s, "app", []storage.LogLine{line("app", now, "fresh-2")})
	// Age goes by the line's time, not by when it was appended.
	appendLog(t, s, "app", []storage.LogLine{line("app", now.Add(-2*maxAge), "expired-late")})

	wantTexts(t, "kept lines", readLog(t, s, "app", time.Time{}, 0), "fresh-1", "fresh-2")
	wantTexts(t, "limit 1", readLog(t, s, "app", time.Time{}, 1), "fresh-2")
	wantTexts(t, "since long ago", readLog(t, s, "app", now.Add(-10*maxAge), 0), "fresh-1", "fresh-2")

	appendLog(t, s, "old", []storage.LogLine{line("old", now.Add(-2*maxAge), "expired")})
	lines, err := s.ReadLog(context.Background(), "old", time.Time{}, 0)
	if err != nil || len(lines) != 0 {
		t.Errorf("ReadLog of a log whose lines all expired = %q, %v; want no lines and nil error", texts(lines), err)
	}
}
