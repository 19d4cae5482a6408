package wire

import "github.com/vmihailenco/msgpack/v5"

var msgpackMarshal = func(v any) ([]byte, error) { return msgpack.Marshal(v) }
