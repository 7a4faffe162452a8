package snapshot

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"hash/crc32"
	"io"
	"testing"
	"testing/iotest"
)

const testChunkSize = 4096

// chunks cuts data into the chunks a Sender produces.
func chunks(t testing.TB, data []byte, chunkSize int) []*Chunk {
	t.Helper()
	s := NewSender(bytes.NewReader(data), chunkSize)
	var out []*Chunk
	for {
		c, err := s.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		out = append(out, c)
		if len(out) > len(data)/max(chunkSize, 1)+2 {
			t.Fatalf("too many chunks")
		}
	}
}

func receive(cs []*Chunk, maxSize uint64) ([]byte, error) {
	var buf bytes.Buffer
	r := NewReceiver(&buf, maxSize)
	for _, c := range cs {
		if _, err := r.Accept(c); err != nil {
			return buf.Bytes(), err
		}
	}
	return buf.Bytes(), r.Finish()
}

func TestStream_RoundTrip(t *testing.T) {
	tests := []struct {
		name       string
		size       int
		wantChunks int
	}{
		{"empty", 0, 1},
		{"one byte", 1, 1},
		{"chunk minus one", testChunkSize - 1, 1},
		{"one chunk", testChunkSize, 1},
		{"chunk plus one", testChunkSize + 1, 2},
		{"three and a half chunks", testChunkSize * 7 / 2, 4},
		{"four chunks", 4 * testChunkSize, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := payload(tt.size, 5)
			// A one-byte-at-a-time reader must give the same chunks.
			for _, src := range []io.Reader{bytes.NewReader(data), iotest.OneByteReader(bytes.NewReader(data))} {
				s := NewSender(src, testChunkSize)
				var cs []*Chunk
				for {
					c, err := s.Next()
					if err == io.EOF {
						break
					}
					if err != nil {
						t.Fatal(err)
					}
					cs = append(cs, c)
				}
				if _, err := s.Next(); err != io.EOF {
					t.Fatalf("Next after EOF = %v", err)
				}
				if len(cs) != tt.wantChunks {
					t.Fatalf("%d chunks, want %d", len(cs), tt.wantChunks)
				}
				var off uint64
				for i, c := range cs {
					last := i == len(cs)-1
					if c.Offset != off || c.Last != last || (!last && len(c.Data) != testChunkSize) {
						t.Fatalf("chunk %d: offset %d last %v len %d", i, c.Offset, c.Last, len(c.Data))
					}
					if c.CRC32C != crc32.Checksum(c.Data, crc32.MakeTable(crc32.Castagnoli)) {
						t.Fatalf("chunk %d: bad crc", i)
					}
					if !last && (c.Size != 0 || c.SHA256 != nil) {
						t.Fatalf("chunk %d: Size/SHA256 on a non-last chunk", i)
					}
					off += uint64(len(c.Data))
				}
				lastC := cs[len(cs)-1]
				sum := sha256.Sum256(data)
				if lastC.Size != uint64(len(data)) || !bytes.Equal(lastC.SHA256, sum[:]) {
					t.Fatalf("last chunk size %d sha %x", lastC.Size, lastC.SHA256)
				}
				for _, limit := range []uint64{0, uint64(len(data))} {
					got, err := receive(cs, limit)
					if err != nil {
						t.Fatalf("receive (limit %d): %v", limit, err)
					}
					if !bytes.Equal(got, data) {
						t.Fatal("received data differs")
					}
				}
			}
		})
	}
}

func TestSender_DefaultChunkSize(t *testing.T) {
	cs := chunks(t, payload(DefaultChunkSize+10, 1), 0)
	if len(cs) != 2 || len(cs[0].Data) != DefaultChunkSize || len(cs[1].Data) != 10 {
		t.Fatalf("got %d chunks", len(cs))
	}
}

func TestSender_ReadError(t *testing.T) {
	boom := errors.New("boom")
	s := NewSender(io.MultiReader(bytes.NewReader(payload(10, 0)), iotest.ErrReader(boom)), 4)
	var err error
	for range 5 {
		if _, err = s.Next(); err != nil {
			break
		}
	}
	if !errors.Is(err, boom) {
		t.Fatalf("Next = %v, want boom", err)
	}
	if _, err := s.Next(); !errors.Is(err, boom) {
		t.Fatalf("Next after error = %v, want boom again", err)
	}
}

func cloneChunk(c *Chunk) *Chunk {
	d := *c
	d.Data = bytes.Clone(c.Data)
	d.SHA256 = bytes.Clone(c.SHA256)
	return &d
}

func TestReceiver_Errors(t *testing.T) {
	data := payload(testChunkSize*7/2, 8) // 4 chunks
	tests := []struct {
		name    string
		maxSize uint64
		edit    func(cs []*Chunk) []*Chunk
		want    error
	}{
		{name: "out of order", want: ErrChunkOrder, edit: func(cs []*Chunk) []*Chunk {
			cs[1], cs[2] = cs[2], cs[1]
			return cs
		}},
		{name: "duplicate", want: ErrChunkOrder, edit: func(cs []*Chunk) []*Chunk {
			return append(cs[:2], append([]*Chunk{cs[1]}, cs[2:]...)...)
		}},
		{name: "gap", want: ErrChunkOrder, edit: func(cs []*Chunk) []*Chunk {
			return append(cs[:1], cs[2:]...)
		}},
		{name: "first chunk not at zero", want: ErrChunkOrder, edit: func(cs []*Chunk) []*Chunk { return cs[1:] }},
		{name: "chunk after last", want: ErrChunkOrder, edit: func(cs []*Chunk) []*Chunk {
			extra := &Chunk{Offset: uint64(len(data)), Data: []byte{1}, CRC32C: crc32.Checksum([]byte{1}, castagnoli)}
			return append(cs, extra)
		}},
		{name: "bad crc", want: ErrChunkChecksum, edit: func(cs []*Chunk) []*Chunk {
			cs[2].CRC32C ^= 1
			return cs
		}},
		{name: "flipped data byte", want: ErrChunkChecksum, edit: func(cs []*Chunk) []*Chunk {
			cs[1].Data[17] ^= 0x80
			return cs
		}},
		{name: "missing last", want: ErrTruncated, edit: func(cs []*Chunk) []*Chunk { return cs[:3] }},
		{name: "no chunks", want: ErrTruncated, edit: func([]*Chunk) []*Chunk { return nil }},
		{name: "last claims more bytes", want: ErrTruncated, edit: func(cs []*Chunk) []*Chunk {
			cs[3].Size += 100
			return cs
		}},
		{name: "last claims fewer bytes", want: ErrCorrupt, edit: func(cs []*Chunk) []*Chunk {
			cs[3].Size--
			return cs
		}},
		{name: "bad total sha", want: ErrCorrupt, edit: func(cs []*Chunk) []*Chunk {
			cs[3].SHA256[0] ^= 1
			return cs
		}},
		{name: "missing total sha", want: ErrCorrupt, edit: func(cs []*Chunk) []*Chunk {
			cs[3].SHA256 = nil
			return cs
		}},
		{name: "consistent but altered chunk", want: ErrCorrupt, edit: func(cs []*Chunk) []*Chunk {
			cs[0].Data[0] ^= 1 // with a recomputed CRC only the SHA-256 catches it
			cs[0].CRC32C = crc32.Checksum(cs[0].Data, castagnoli)
			return cs
		}},
		{name: "nil chunk", want: ErrCorrupt, edit: func(cs []*Chunk) []*Chunk { return append(cs[:1], nil) }},
		{name: "over max size", maxSize: uint64(len(data)) - 1, want: ErrTooLarge, edit: func(cs []*Chunk) []*Chunk { return cs }},
		{name: "over max size in first chunk", maxSize: 10, want: ErrTooLarge, edit: func(cs []*Chunk) []*Chunk { return cs }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cs []*Chunk
			for _, c := range chunks(t, data, testChunkSize) {
				cs = append(cs, cloneChunk(c))
			}
			_, err := receive(tt.edit(cs), tt.maxSize)
			if !errors.Is(err, tt.want) {
				t.Fatalf("receive = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestReceiver_Sticky(t *testing.T) {
	cs := chunks(t, payload(3*testChunkSize, 1), testChunkSize)
	var buf bytes.Buffer
	r := NewReceiver(&buf, 0)
	if _, err := r.Accept(cs[1]); !errors.Is(err, ErrChunkOrder) {
		t.Fatalf("Accept = %v", err)
	}
	// Even a correct chunk is refused once the Receiver has failed.
	if _, err := r.Accept(cs[0]); !errors.Is(err, ErrChunkOrder) {
		t.Fatalf("Accept after failure = %v", err)
	}
	if err := r.Finish(); !errors.Is(err, ErrChunkOrder) {
		t.Fatalf("Finish = %v", err)
	}
	if buf.Len() != 0 || r.Received() != 0 {
		t.Fatalf("wrote %d bytes", buf.Len())
	}
}

type errWriter struct{ err error }

func (w errWriter) Write([]byte) (int, error) { return 0, w.err }

func TestReceiver_WriteError(t *testing.T) {
	boom := errors.New("disk full")
	r := NewReceiver(errWriter{boom}, 0)
	if _, err := r.Accept(chunks(t, []byte("abc"), 0)[0]); !errors.Is(err, boom) {
		t.Fatalf("Accept = %v, want %v", err, boom)
	}
}

// TestStream_IntoStore sends a payload through the chunk format into a
// Store Writer, as a follower does.
func TestStream_IntoStore(t *testing.T) {
	data := payload(5*testChunkSize+3, 2)
	cs := chunks(t, data, testChunkSize)
	s := openStore(t, t.TempDir())
	last := cs[len(cs)-1]
	w, err := s.Create(Meta{Term: 4, Index: 99, SHA256: last.SHA256})
	if err != nil {
		t.Fatal(err)
	}
	r := NewReceiver(w, 1<<20)
	for _, c := range cs {
		if _, err := r.Accept(c); err != nil {
			w.Abort()
			t.Fatal(err)
		}
	}
	if err := r.Finish(); err != nil {
		t.Fatal(err)
	}
	m, err := w.Commit()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(m); err != nil || m.Size != int64(len(data)) {
		t.Fatalf("Verify: %v size %d", err, m.Size)
	}
}
