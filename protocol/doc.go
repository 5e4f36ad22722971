// Package protocol holds the Echo/Add wire format: the generated protobuf
// messages, the three framings that delimit them on a byte stream, and typed
// errors for everything a peer can get wrong. PROTOCOL.md at the repository
// root is the specification; comments here quote its requirement IDs.
//
// The codec works on byte slices (Framing.Split, Framing.AppendFrame) and on
// io.Reader/io.Writer (Decoder, Encoder) built on them, never on net.Conn, so
// it is tested without sockets. It is strict: IllegalWriter is the one,
// separately named, way to put invalid bytes on the wire, for the conformance
// suite's malformed-input cases.
package protocol

//go:generate sh -c "cd .. && protoc --plugin=protoc-gen-go=$(go tool -n protoc-gen-go) --go_out=. --go_opt=module=echoadd protocol/messages.proto"
