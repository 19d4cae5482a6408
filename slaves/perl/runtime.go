// Package perl carries the Perl runtime (cocaine_slave.pl and the
// Cocaine::Slave modules) inside the binary; the perl sandbox unpacks it on
// the node. The runtime itself is Perl: see README.md.
package perl

import "embed"

// Files is the runtime as perl loads it: cocaine_slave.pl beside lib/.
//
//go:embed cocaine_slave.pl lib
var Files embed.FS
