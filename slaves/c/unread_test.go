package c_test

import (
	"testing"

	"github.com/cocaine-cloud/cocaine/slaves/conformance"
)

func TestUnreadBodyStaysInTheSocket(t *testing.T) {
	conformance.UnreadBody(t, starter(t, "testdata/conformance-c"))
}
