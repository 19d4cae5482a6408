package archive

import (
	"strings"
	"testing"
)

func TestCleanName(t *testing.T) {
	tests := []struct {
		raw, want string
		refused   bool
	}{
		{raw: "a", want: "a"},
		{raw: "./a", want: "a"},
		{raw: "a/", want: "a"},
		{raw: "a//b/./c/", want: "a/b/c"},
		{raw: ".", want: "."},
		{raw: "./", want: "."},
		{raw: "..a/b..", want: "..a/b.."},
		{raw: "a:b", refused: true}, // drive-relative on Windows
		{raw: "ab:c", want: "ab:c"},
		{raw: "", refused: true},
		{raw: "..", refused: true},
		{raw: "../a", refused: true},
		{raw: "a/..", refused: true},
		{raw: "a/../b", refused: true},
		{raw: "/a", refused: true},
		{raw: "//a", refused: true},
		{raw: `a\b`, refused: true},
		{raw: `\a`, refused: true},
		{raw: "C:", refused: true},
		{raw: "z:/a", refused: true},
		{raw: "a\x00b", refused: true},
		{raw: strings.Repeat("a", 256), refused: true},
		{raw: strings.Repeat("a", 255), want: strings.Repeat("a", 255)},
		{raw: strings.Repeat("a/", 2049), refused: true},
	}
	for _, tt := range tests {
		got, reason := cleanName(tt.raw)
		if (reason != "") != tt.refused || got != tt.want {
			t.Errorf("cleanName(%.40q) = %q, %q; want %q, refused %v", tt.raw, got, reason, tt.want, tt.refused)
		}
	}
}

func TestCheckSymlinkTarget(t *testing.T) {
	tests := []struct {
		name, target string
		ok           bool
	}{
		{"a", "b", true},
		{"a", ".", true},
		{"d/a", "..", true},
		{"d/a", "../b", true},
		{"d/e/a", "../../b", true},
		{"d/a", "../d/../b", true},
		{"a", "..", false},
		{"a", "../x", false},
		{"d/a", "../..", false},
		{"d/a", "x/../../..", false},
		{"a", "/etc", false},
		{"a", "", false},
		{"a", `..\x`, false},
		{"a", "C:/x", false},
	}
	for _, tt := range tests {
		if got := checkSymlinkTarget(tt.name, tt.target) == ""; got != tt.ok {
			t.Errorf("checkSymlinkTarget(%q, %q) ok = %v, want %v", tt.name, tt.target, got, tt.ok)
		}
	}
}
