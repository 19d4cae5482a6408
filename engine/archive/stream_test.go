package archive

import (
	"errors"
	"io"
	"strings"
	"testing"
)

func TestBoundedReader(t *testing.T) {
	tests := []struct {
		name  string
		input string
		limit int64
		want  error
	}{
		{"under", "abc", 4, nil},
		{"exactly at", "abcd", 4, nil},
		{"one over", "abcde", 4, errStreamTooLarge},
		{"empty", "", 0, nil},
		{"zero limit", "a", 0, errStreamTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := io.ReadAll(&boundedReader{r: strings.NewReader(tt.input), n: tt.limit})
			if !errors.Is(err, tt.want) {
				t.Fatalf("err %v, want %v", err, tt.want)
			}
			if tt.want == nil && string(got) != tt.input {
				t.Fatalf("read %q, want %q", got, tt.input)
			}
		})
	}
	stuck := &boundedReader{r: noProgress{}, n: 0}
	if _, err := stuck.Read(make([]byte, 1)); !errors.Is(err, io.ErrNoProgress) {
		t.Fatalf("reader without progress: %v", err)
	}
}

type noProgress struct{}

func (noProgress) Read([]byte) (int, error) { return 0, nil }
