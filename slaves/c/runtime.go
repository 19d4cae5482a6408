// Package c carries the C and C++ runtime (libcocaine-slave: include/ and
// src/) inside the binary; the c and cpp sandboxes unpack it on the node
// and build the library from it. The runtime itself is C: see README.md.
package c

import "embed"

// Files is the library's source as the sandboxes build it.
//
//go:embed include src
var Files embed.FS
