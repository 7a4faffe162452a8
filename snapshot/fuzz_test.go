package snapshot

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"hash/crc32"
	"testing"
)

// decodeChunks turns fuzz input into a chunk sequence. Each record is a
// flags byte, then a length byte and that many data bytes; the flags
// choose whether Offset, CRC, Size and SHA256 are correct or arbitrary so
// that the fuzzer reaches both the accepting and the rejecting paths.
func decodeChunks(b []byte) []*Chunk {
	var out []*Chunk
	var off uint64
	h := sha256.New()
	for len(b) >= 2 {
		flags, n := b[0], int(b[1])
		b = b[2:]
		n = min(n, len(b))
		data := b[:n]
		b = b[n:]
		c := &Chunk{Offset: off, Data: data, CRC32C: crc32.Checksum(data, castagnoli)}
		if flags&1 != 0 && len(b) >= 8 {
			c.Offset = binary.LittleEndian.Uint64(b)
			b = b[8:]
		}
		if flags&2 != 0 && len(b) >= 4 {
			c.CRC32C = binary.LittleEndian.Uint32(b)
			b = b[4:]
		}
		off += uint64(n)
		h.Write(data)
		if flags&4 != 0 {
			c.Last, c.Size, c.SHA256 = true, off, h.Sum(nil)
			if flags&8 != 0 && len(b) >= 8 {
				c.Size = binary.LittleEndian.Uint64(b)
				b = b[8:]
			}
			if flags&16 != 0 && len(b) >= 1 {
				n := min(int(b[0]), len(b)-1)
				c.SHA256, b = b[1:1+n], b[1+n:]
			}
		}
		if flags&32 != 0 {
			c = nil
		}
		out = append(out, c)
	}
	return out
}

func FuzzReceiver(f *testing.F) {
	f.Add([]byte{}, uint16(0))
	f.Add([]byte{4, 0}, uint16(0))                           // empty stream
	f.Add([]byte{0, 3, 'a', 'b', 'c', 4, 1, 'd'}, uint16(0)) // two chunks
	f.Add([]byte{0, 3, 'a', 'b', 'c', 4, 1, 'd'}, uint16(2)) // too large
	f.Add([]byte{1, 2, 'a', 'b', 9, 0, 0, 0, 0, 0, 0, 0, 4, 0}, uint16(0))
	f.Add([]byte{6, 1, 'x', 1, 2, 3, 4}, uint16(0))
	f.Add([]byte{12, 1, 'x', 0xff, 0, 0, 0, 0, 0, 0, 0}, uint16(0))
	f.Add([]byte{20, 1, 'x', 2, 9, 9}, uint16(0))
	f.Add([]byte{36, 0, 4, 0}, uint16(0))
	f.Fuzz(func(t *testing.T, in []byte, limit uint16) {
		var buf bytes.Buffer
		r := NewReceiver(&buf, uint64(limit))
		var lastSum []byte
		var lastSize uint64
		done := false
		var err error
		for _, c := range decodeChunks(in) {
			done, err = r.Accept(c)
			if err != nil {
				break
			}
			if done {
				lastSum, lastSize = c.SHA256, c.Size
			}
		}
		if got := uint64(buf.Len()); got != r.Received() {
			t.Fatalf("wrote %d bytes, Received %d", got, r.Received())
		}
		if limit > 0 && r.Received() > uint64(limit) {
			t.Fatalf("received %d bytes over limit %d", r.Received(), limit)
		}
		ferr := r.Finish()
		if (ferr == nil) != (done && err == nil) {
			t.Fatalf("Finish = %v, but done=%v err=%v", ferr, done, err)
		}
		if ferr == nil {
			sum := sha256.Sum256(buf.Bytes())
			if !bytes.Equal(sum[:], lastSum) || lastSize != uint64(buf.Len()) {
				t.Fatal("accepted a stream that does not match its last chunk")
			}
		}
	})
}
