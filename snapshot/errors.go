package snapshot

import "errors"

var (
	// ErrNotFound means no (complete) snapshot matched the request.
	ErrNotFound = errors.New("snapshot: not found")
	// ErrCorrupt means a snapshot file, its metadata, or a streamed
	// snapshot does not match its recorded size or checksum.
	ErrCorrupt = errors.New("snapshot: corrupt")
	// ErrExists means a snapshot with the same term and index is already
	// committed in the store, or is being written by another Writer.
	ErrExists = errors.New("snapshot: already exists")
	// ErrClosed means a Writer was used after Commit or Abort.
	ErrClosed = errors.New("snapshot: writer closed")
	// ErrChunkOrder means a chunk did not start where the previous one
	// ended (gap, duplicate, reordering) or arrived after the last chunk.
	ErrChunkOrder = errors.New("snapshot: chunk out of order")
	// ErrChunkChecksum means a chunk's data does not match its CRC-32C.
	ErrChunkChecksum = errors.New("snapshot: chunk checksum mismatch")
	// ErrTruncated means a stream ended before all of its bytes (or its
	// last chunk) arrived.
	ErrTruncated = errors.New("snapshot: truncated")
	// ErrTooLarge means a stream exceeded the receiver's size limit.
	ErrTooLarge = errors.New("snapshot: too large")
)
