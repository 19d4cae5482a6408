// Package cocaine carries the Go SDK as source inside the binary, so that
// the go sandbox builds an app against the SDK of the binary that runs it,
// with neither a checkout of this project nor the network: slaves/go and
// the packages of this module it imports, this module's go.mod and go.sum
// (the versions and checksums of the SDK's dependencies), and
// slaves/go/proxy, those dependencies as the module proxy serves them.
// slaves/sandbox unpacks it on the node (see docs/sandboxes.md).
package cocaine

import "embed"

// SDK is the Go SDK's tree, with the paths it has in this repository.
// Keep the patterns in step with what slaves/go imports; a test in
// slaves/sandbox builds an app from the unpacked copy alone.
//
//go:embed go.mod go.sum slaves/go/*.go slaves/protocol/*.go internal/httpmsg/*.go slaves/go/proxy
var SDK embed.FS

// The SDK's dependencies, copied from the module cache into slaves/go/proxy.
//go:generate go run ./internal/sdkgen
