package main

import (
	"fmt"
	"os"

	"github.com/cocaine-cloud/cocaine/internal/zmqsec"
)

// runKeygen prints a new cluster key as a [security] section, for every
// engine and gateway of one cluster.
func runKeygen(args []string) int {
	fs := newFlags("keygen", "keygen   (prints a [security] section to stdout)")
	if fs.Parse(args) != nil || fs.NArg() != 0 {
		return exitUsage
	}
	public, secret, err := zmqsec.NewKey()
	if err != nil {
		fmt.Fprintln(os.Stderr, "cocaine keygen:", err)
		return exitFailure
	}
	fmt.Printf(`# The cluster key: the same in every engine and gateway config of the
# cluster (or in their environment as %s). Keep it secret.
# Public key (derived from the secret): %s
[security]
curve-secret = %q
`, zmqsec.EnvSecret, public, secret)
	return exitOK
}
