// Command watcher is the example of a filesystem-monitor driver: the
// engine watches the folder "spool" inside the unpacked package (a
// relative path resolves there; it need not exist yet) and sends the event
// "changed" for every file dropped into it, changed or removed. The app
// prints each change to its log.
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/vmihailenco/msgpack/v5"

	slave "github.com/cocaine-cloud/cocaine/slaves/go"
)

// change is the event's body, a MessagePack map; see the
// filesystem-monitor driver in engine/drivers.
type change struct {
	Path string   `msgpack:"path"` // absolute
	Op   string   `msgpack:"op"`   // create, write, remove, rename or chmod
	Ops  []string `msgpack:"ops"`  // every kind of change merged into this event
}

func main() {
	// Slaves run in the unpacked package, so this is where to drop files.
	if wd, err := os.Getwd(); err == nil {
		fmt.Printf("watching %s\n", filepath.Join(wd, "spool"))
	}
	slave.HandleFunc("changed", func(ctx context.Context, req *slave.Request, w *slave.Response) error {
		body, err := req.ReadAll()
		if err != nil {
			return err
		}
		var c change
		if err := msgpack.Unmarshal(body, &c); err != nil {
			return &slave.Error{Code: 400, Message: fmt.Sprintf("not a change: %v", err)}
		}
		name := c.Path
		if wd, err := os.Getwd(); err == nil {
			if rel, err := filepath.Rel(wd, c.Path); err == nil {
				name = rel
			}
		}
		switch c.Op {
		case "create", "write":
			size := int64(-1)
			if fi, err := os.Stat(c.Path); err == nil {
				size = fi.Size()
			}
			fmt.Printf("%s %s (%d bytes) %v\n", c.Op, name, size, c.Ops)
		default:
			fmt.Printf("%s %s %v\n", c.Op, name, c.Ops)
		}
		return nil
	})
	if err := slave.Run(); err != nil {
		log.Fatal(err)
	}
}
