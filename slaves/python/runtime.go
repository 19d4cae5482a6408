// Package python carries the Python runtime (cocaine_slave.py and the
// cocaine package) inside the binary; the python sandbox unpacks it on the
// node. The runtime itself is Python: see README.md.
package python

import "embed"

// Files is the runtime as the interpreter loads it: cocaine_slave.py at
// the root, beside the cocaine package.
//
//go:embed cocaine_slave.py cocaine/*.py
var Files embed.FS
