package snapshot

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
)

// DefaultChunkSize is the chunk payload size NewSender uses when given a
// size of zero or less.
const DefaultChunkSize = 1 << 20

// Chunk is one piece of a streamed snapshot payload. The rpc package maps
// it to and from its SnapshotChunk protobuf message.
type Chunk struct {
	// Offset is the position of Data in the stream.
	Offset uint64
	// Data is the payload bytes of this chunk.
	Data []byte
	// CRC32C is the CRC-32C (Castagnoli) of Data.
	CRC32C uint32
	// Last marks the final chunk of the stream.
	Last bool
	// Size is the total stream length; set only on the last chunk.
	Size uint64
	// SHA256 is the SHA-256 of the whole stream; set only on the last
	// chunk.
	SHA256 []byte
}

// Sender cuts a payload into chunks. It is for use by one goroutine.
type Sender struct {
	r         io.Reader
	chunkSize int
	h         hash.Hash
	off       uint64
	peek      []byte // at most one byte read ahead to detect the end
	done      bool   // the last chunk was returned
	err       error  // sticky read error
}

// NewSender returns a Sender reading the payload from r in chunks of
// chunkSize bytes (DefaultChunkSize if chunkSize <= 0). It holds at most
// one chunk's worth of payload in memory at a time.
func NewSender(r io.Reader, chunkSize int) *Sender {
	if chunkSize <= 0 {
		chunkSize = DefaultChunkSize
	}
	return &Sender{r: r, chunkSize: chunkSize, h: sha256.New()}
}

// Next returns the next chunk, or io.EOF after the last chunk has been
// returned. Every chunk but the last holds exactly chunkSize bytes; an
// empty payload yields a single last chunk with no data. The caller owns
// the returned chunk and its Data. A read error from the underlying
// reader is returned as is and repeated on later calls.
func (s *Sender) Next() (*Chunk, error) {
	if s.err != nil {
		return nil, s.err
	}
	if s.done {
		return nil, io.EOF
	}
	buf := make([]byte, s.chunkSize)
	n := copy(buf, s.peek)
	s.peek = s.peek[:0]
	m, err := io.ReadFull(s.r, buf[n:])
	n += m
	last := false
	switch {
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		last = true
	case err != nil:
		s.err = fmt.Errorf("snapshot: read payload: %w", err)
		return nil, s.err
	default:
		// The buffer is full: read one byte ahead to learn whether this
		// chunk is the last one.
		var one [1]byte
		k, err := io.ReadFull(s.r, one[:])
		switch {
		case k == 1:
			s.peek = append(s.peek, one[0])
		case errors.Is(err, io.EOF):
			last = true
		default:
			s.err = fmt.Errorf("snapshot: read payload: %w", err)
			return nil, s.err
		}
	}
	data := buf[:n]
	s.h.Write(data)
	c := &Chunk{Offset: s.off, Data: data, CRC32C: crc32.Checksum(data, castagnoli)}
	s.off += uint64(n)
	if last {
		c.Last, c.Size, c.SHA256 = true, s.off, s.h.Sum(nil)
		s.done = true
	}
	return c, nil
}

// Receiver checks a stream of chunks and writes their data, in order, to
// a writer. It is for use by one goroutine.
//
// Once Accept has returned an error the Receiver is failed: later calls
// to Accept and Finish return that error, and the caller should discard
// whatever was written and restart the transfer from offset 0.
type Receiver struct {
	w       io.Writer
	maxSize uint64
	h       hash.Hash
	off     uint64
	done    bool
	err     error
}

// NewReceiver returns a Receiver writing to w and rejecting streams
// longer than maxSize bytes (0 means no limit).
func NewReceiver(w io.Writer, maxSize uint64) *Receiver {
	return &Receiver{w: w, maxSize: maxSize, h: sha256.New()}
}

// Accept checks c and writes its data. It returns done = true once the
// last chunk has been accepted and the whole stream checked. Errors:
// ErrChunkOrder if c does not start at the number of bytes received so
// far or arrives after the last chunk; ErrChunkChecksum if its CRC-32C is
// wrong; ErrTooLarge if the stream grows past maxSize; on the last chunk,
// ErrTruncated if fewer bytes arrived than its Size says and ErrCorrupt if
// more did or the SHA-256 differs; any error from the writer, wrapped.
// The data of a rejected chunk is not written.
func (r *Receiver) Accept(c *Chunk) (done bool, err error) {
	if r.err != nil {
		return false, r.err
	}
	if err := r.accept(c); err != nil {
		r.err = err
		return false, err
	}
	return r.done, nil
}

func (r *Receiver) accept(c *Chunk) error {
	switch {
	case c == nil:
		return fmt.Errorf("%w: nil chunk", ErrCorrupt)
	case r.done:
		return fmt.Errorf("%w: chunk at offset %d after the last chunk", ErrChunkOrder, c.Offset)
	case c.Offset != r.off:
		return fmt.Errorf("%w: chunk at offset %d, want %d", ErrChunkOrder, c.Offset, r.off)
	}
	if got := crc32.Checksum(c.Data, castagnoli); got != c.CRC32C {
		return fmt.Errorf("%w: offset %d: crc32c %08x, want %08x", ErrChunkChecksum, c.Offset, got, c.CRC32C)
	}
	n := uint64(len(c.Data))
	if r.maxSize > 0 && (n > r.maxSize || r.off > r.maxSize-n) {
		return fmt.Errorf("%w: more than %d bytes", ErrTooLarge, r.maxSize)
	}
	if c.Last && r.maxSize > 0 && c.Size > r.maxSize {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, c.Size, r.maxSize)
	}
	if _, err := r.w.Write(c.Data); err != nil {
		return fmt.Errorf("snapshot: write chunk at offset %d: %w", c.Offset, err)
	}
	r.h.Write(c.Data)
	r.off += n
	if !c.Last {
		return nil
	}
	switch {
	case c.Size > r.off:
		return fmt.Errorf("%w: received %d of %d bytes", ErrTruncated, r.off, c.Size)
	case c.Size < r.off:
		return fmt.Errorf("%w: received %d bytes, sender sent %d", ErrCorrupt, r.off, c.Size)
	}
	if sum := r.h.Sum(nil); !bytes.Equal(sum, c.SHA256) {
		return fmt.Errorf("%w: stream sha256 %x, want %x", ErrCorrupt, sum, c.SHA256)
	}
	r.done = true
	return nil
}

// Received returns the number of payload bytes accepted so far.
func (r *Receiver) Received() uint64 { return r.off }

// Finish reports whether the stream is complete: nil after the last chunk
// was accepted, the Receiver's error if it failed, and ErrTruncated if
// the stream ended before its last chunk.
func (r *Receiver) Finish() error {
	switch {
	case r.err != nil:
		return r.err
	case !r.done:
		return fmt.Errorf("%w: no last chunk after %d bytes", ErrTruncated, r.off)
	}
	return nil
}
