package pool

import (
	"bufio"
	"errors"
	"io"
	"unicode/utf8"
)

// MaxLogLine is the longest piece of a slave's output stored as one log
// line. A longer line is split into pieces of at most this size, each
// after the first starting with ContinuedMark, so nothing is lost and the
// pipe is always drained: a slave whose pipe stopped being read would
// block or fail on its next print.
const MaxLogLine = 16 << 10

// ContinuedMark starts every piece of a split line but the first.
const ContinuedMark = "[continued] "

// readLines calls emit for every line of r (without its line break) until
// r ends or fails, splitting lines longer than max bytes at a UTF-8
// character boundary.
func readLines(r io.Reader, max int, emit func(string)) {
	br := bufio.NewReaderSize(r, max)
	var carry []byte // the start of a character split by the buffer's end
	cont := false
	for {
		b, err := br.ReadSlice('\n')
		full := errors.Is(err, bufio.ErrBufferFull)
		if len(b) == 0 && len(carry) == 0 {
			if err != nil && !full {
				return
			}
			continue
		}
		piece := b
		var next []byte
		if full {
			// Keep an incomplete trailing character for the next piece.
			cut := len(b)
			for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
				if utf8.RuneStart(b[i]) {
					if !utf8.FullRune(b[i:]) {
						cut = i
					}
					break
				}
			}
			piece, next = b[:cut], append([]byte(nil), b[cut:]...)
		} else if n := len(piece); n > 0 && piece[n-1] == '\n' {
			piece = piece[:n-1]
			if n := len(piece); n > 0 && piece[n-1] == '\r' {
				piece = piece[:n-1]
			}
		}
		line := string(carry) + string(piece)
		if cont {
			line = ContinuedMark + line
		}
		emit(line)
		carry, cont = next, full
		if err != nil && !full {
			return
		}
	}
}
