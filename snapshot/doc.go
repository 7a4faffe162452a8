// Package snapshot owns rdb's snapshot files: a directory of point-in-time
// copies of the state machine with their raft metadata, written
// atomically, verified by checksum and reaped; and a chunked streaming
// format for sending a snapshot to another node.
//
// The payload is opaque bytes. In rdb it is a SQLite database file, but
// this package never interprets it: the db package produces and consumes
// payloads through io.Reader/io.Writer, the cluster package decides when to
// snapshot and what index and membership a snapshot carries, and the rpc
// package moves chunks over gRPC. The package imports only raftpb and the
// standard library.
//
// # Files
//
// A store directory holds, per snapshot at term T and index I (both as 16
// lower-case hex digits, so a name sorts by term then index):
//
//	<T>-<I>.snap   the payload, byte for byte
//	<T>-<I>.meta   its metadata: one JSON object
//	               {"version":1,"crc32c":N,"meta":{...}}
//
// where "meta" holds index, term, conf_state (voters, learners,
// voters_outgoing, learners_next, auto_leave), size, sha256 (hex) and
// created_at, and crc32c is the CRC-32C (Castagnoli) of the exact bytes of
// "meta". Files ending in ".tmp" are writes in progress and never count.
// Other names are ignored and left alone.
//
// # Atomicity
//
// A snapshot exists only when its .meta file exists, decodes with a good
// CRC, names the same term and index as its file name, and sits beside a
// payload of the recorded size. Writer.Commit (and Import) follow this
// order, so that a crash at any point leaves either the complete snapshot
// or nothing that counts:
//
//  1. write the payload to <T>-<I>.snap.tmp, hashing it; fsync it;
//  2. write the metadata to <T>-<I>.meta.tmp; fsync it;
//  3. rename the payload to <T>-<I>.snap; fsync the directory;
//  4. rename the metadata to <T>-<I>.meta (the commit point); fsync the
//     directory.
//
// Open removes leftover *.tmp files. A payload without a .meta (a crash
// between steps 3 and 4) is not listed and Reap removes it. Reap removes a
// snapshot's .meta before its payload, for the same reason. List checks
// only the metadata and the payload's size; Verify re-reads the payload
// and checks its SHA-256, and should be called before a snapshot is
// restored.
//
// # Streaming
//
// A Sender cuts a payload into Chunks of at most DefaultChunkSize (or a
// chosen size) bytes; a Receiver checks them and writes their data to an
// io.Writer, typically a Store Writer. Each chunk carries its byte Offset
// in the stream and the CRC-32C of its Data. The last chunk has Last set
// and also carries the Size and SHA-256 of the whole stream; an empty
// payload is a single last chunk with no data. The Receiver rejects:
//
//   - a chunk whose Offset is not the number of bytes received so far
//     (a gap, duplicate or reordering) or that follows the last chunk:
//     ErrChunkOrder;
//   - a chunk whose Data does not match its CRC-32C: ErrChunkChecksum;
//   - a stream longer than its limit: ErrTooLarge;
//   - a last chunk whose Size exceeds the bytes received: ErrTruncated;
//     whose Size is smaller, or whose SHA-256 differs: ErrCorrupt;
//   - a stream that ends without a last chunk (Receiver.Finish):
//     ErrTruncated.
//
// The chunks carry no transport framing; the rpc package maps them to its
// SnapshotChunk message. A failed transfer is restarted from offset 0:
// the Receiver does not resume.
//
// # Concurrency
//
// Store methods are safe for concurrent use; one Store owns a directory
// (two Stores on one directory may remove each other's temporary files).
// Writers for different snapshots may run in parallel; a second Create or
// Import of the same term and index returns ErrExists. Commit and Reap are
// serialized, so Reap never mistakes a committing snapshot for an orphan.
// A Writer, a Sender and a Receiver are each for use by one goroutine.
package snapshot
