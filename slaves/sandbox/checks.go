package sandbox

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
)

// What the c, cpp, node and perl sandboxes need on the node, checked at
// upload (see Checker) so that a missing toolchain is named with what to
// install rather than found at deploy. The go and python checks live
// beside their sandboxes.

var (
	_ Checker = (*Native)(nil)
	_ Checker = (*Node)(nil)
	_ Checker = (*Perl)(nil)
)

// ErrNoToolchain is returned when the node lacks what a sandbox needs.
var ErrNoToolchain = errors.New("missing on this node")

// Check finds the compiler.
func (n *Native) Check() error {
	pkg := "gcc"
	if n.Lang == "cpp" {
		pkg = "g++"
	}
	if _, err := exec.LookPath(n.compiler()); err != nil {
		return fmt.Errorf("%s: %w: the compiler %q (%v): install %s and make (apt-get install %s make)",
			n.name(), ErrNoToolchain, n.compiler(), errors.Unwrap(err), pkg, pkg)
	}
	return nil
}

// Check finds node.
func (n *Node) Check() error {
	interp := n.Interpreter
	if interp == "" {
		interp = "node"
	}
	if _, err := exec.LookPath(interp); err != nil {
		return fmt.Errorf("node sandbox: %w: Node.js (%q: %v): install Node.js 18 or later (apt-get install nodejs)",
			ErrNoToolchain, interp, errors.Unwrap(err))
	}
	return nil
}

// Check finds perl and the one module the runtime needs
// (Data::MessagePack). PSGI apps need Plack too, which the app's own
// load reports.
func (p *Perl) Check() error {
	interp := p.Interpreter
	if interp == "" {
		interp = "/usr/bin/perl"
	}
	if _, err := exec.LookPath(interp); err != nil {
		return fmt.Errorf("perl sandbox: %w: perl (%q: %v): install perl and libdata-messagepack-perl (apt-get install perl libdata-messagepack-perl)",
			ErrNoToolchain, interp, errors.Unwrap(err))
	}
	return checkOnce(interp+" -MData::MessagePack", func() error {
		out, err := exec.Command(interp, "-MData::MessagePack", "-e", "1").CombinedOutput()
		if err != nil {
			return fmt.Errorf("perl sandbox: %w: Data::MessagePack (%s): install libdata-messagepack-perl (apt-get install libdata-messagepack-perl)",
				ErrNoToolchain, strings.TrimSpace(firstLine(string(out))))
		}
		return nil
	})
}

// passed remembers checks that run a program and passed; a failure is
// not remembered, so installing the package is enough.
var passed sync.Map

func checkOnce(key string, check func() error) error {
	if _, ok := passed.Load(key); ok {
		return nil
	}
	if err := check(); err != nil {
		return err
	}
	passed.Store(key, true)
	return nil
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
