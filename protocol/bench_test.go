package protocol

import (
	"bytes"
	"io"
	"strconv"
	"strings"
	"testing"
)

// The codec's cost per message, for each framing: splitting a buffered
// request, reading one through a Decoder, and framing a reply.

func benchRequest(b *testing.B, f Framing, content int) []byte {
	b.Helper()
	frame, err := f.AppendMessage(nil, EchoRequest(strings.Repeat("x", content)))
	if err != nil {
		b.Fatal(err)
	}
	return frame
}

func BenchmarkSplit(b *testing.B) {
	for _, f := range Framings {
		for _, size := range []int{16, 1024} {
			frame := benchRequest(b, f, size)
			b.Run(f.String()+"/echo"+strconv.Itoa(size), func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(frame)))
				for b.Loop() {
					if _, _, err := f.Split(frame, 0); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// repeatReader serves the same bytes over and over, like a busy connection.
type repeatReader struct {
	data []byte
	off  int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.data[r.off:])
		n += c
		r.off = (r.off + c) % len(r.data)
	}
	return n, nil
}

func BenchmarkDecoderNext(b *testing.B) {
	for _, f := range Framings {
		frame := benchRequest(b, f, 16)
		b.Run(f.String()+"/echo16", func(b *testing.B) {
			d := NewDecoder(&repeatReader{data: frame}, f, 0)
			b.ReportAllocs()
			b.SetBytes(int64(len(frame)))
			for b.Loop() {
				if _, err := d.Next(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecodeRequest(b *testing.B) {
	frame := benchRequest(b, Raw, 16)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeRequest(frame); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncoder(b *testing.B) {
	reply := EchoReply("0123456789abcdef")
	for _, f := range Framings {
		b.Run(f.String()+"/echo16", func(b *testing.B) {
			e := NewEncoder(io.Discard, f)
			b.ReportAllocs()
			for b.Loop() {
				if err := e.Encode(reply); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkAppendFrame(b *testing.B) {
	msg := bytes.Repeat([]byte{0x0a}, 18)
	buf := make([]byte, 0, 64)
	for _, f := range Framings {
		b.Run(f.String(), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				buf = f.AppendFrame(buf[:0], msg)
			}
		})
	}
}
