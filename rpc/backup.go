package rpc

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"hash"
	"io"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"rdb/cluster"
	"rdb/command"
	"rdb/rpc/rpcpb"
)

// backupChunkSize is the data carried by one BackupChunk.
const backupChunkSize = 1 << 20

// DefaultMaxRestoreBytes bounds an uploaded restore.
const DefaultMaxRestoreBytes = 64 << 30

// Backuper is what Backup and Restore need from the node; *cluster.Node
// satisfies it.
type Backuper interface {
	Backup(ctx context.Context) (string, uint64, error)
	Dump(ctx context.Context, w io.Writer) (uint64, error)
	Restore(ctx context.Context, path string, format command.RestoreFormat) (uint64, error)
	StagingDir() (string, error)
}

// chunkWriter turns writes into BackupChunks on a stream, hashing all
// data; close sends the last chunk.
type chunkWriter struct {
	st    grpc.ServerStreamingServer[rpcpb.BackupChunk]
	index uint64
	first bool
	size  int64
	sum   hash.Hash
}

func (w *chunkWriter) Write(p []byte) (int, error) {
	c := &rpcpb.BackupChunk{Data: p}
	if w.first {
		c.RaftIndex = w.index
		w.first = false
	}
	if err := w.st.Send(c); err != nil {
		return 0, err
	}
	w.sum.Write(p)
	w.size += int64(len(p))
	return len(p), nil
}

func (w *chunkWriter) close() error {
	// The index is repeated on the last chunk: for SQL text it is only
	// known once the dump has been read.
	return w.st.Send(&rpcpb.BackupChunk{Last: true, Sha256: w.sum.Sum(nil), Size: w.size, RaftIndex: w.index})
}

// Backup implements rdb.v1.DB: a consistent SQLite file, or SQL text,
// streamed in chunks.
func (s *Server) Backup(req *rpcpb.BackupRequest, st grpc.ServerStreamingServer[rpcpb.BackupChunk]) error {
	ctx := st.Context()
	b, ok := s.node.(Backuper)
	if !ok {
		return status.Error(codes.Unimplemented, "backup not supported by this node")
	}
	switch req.GetConsistency() {
	case rpcpb.Consistency_CONSISTENCY_NONE:
	case rpcpb.Consistency_CONSISTENCY_UNSPECIFIED, rpcpb.Consistency_CONSISTENCY_LINEARIZABLE:
		idx, err := s.node.ReadIndex(ctx)
		if err != nil {
			return toStatus(err)
		}
		if err := s.node.WaitApplied(ctx, idx); err != nil {
			return toStatus(err)
		}
	default:
		return status.Errorf(codes.InvalidArgument, "backup consistency must be NONE or LINEARIZABLE")
	}
	w := &chunkWriter{st: st, first: true, sum: sha256.New()}
	switch req.GetFormat() {
	case rpcpb.BackupFormat_BACKUP_FORMAT_UNSPECIFIED, rpcpb.BackupFormat_BACKUP_FORMAT_SQLITE:
		path, idx, err := b.Backup(ctx)
		if err != nil {
			return toStatus(err)
		}
		defer os.Remove(path)
		f, err := os.Open(path)
		if err != nil {
			return status.Errorf(codes.Internal, "backup: %v", err)
		}
		defer f.Close()
		w.index = idx
		buf := make([]byte, backupChunkSize)
		if _, err := io.CopyBuffer(w, struct{ io.Reader }{f}, buf); err != nil {
			return toStatus(err)
		}
	case rpcpb.BackupFormat_BACKUP_FORMAT_SQL:
		bw := bufio.NewWriterSize(w, backupChunkSize)
		idx, err := b.Dump(ctx, bw)
		if err != nil {
			return toStatus(err)
		}
		w.index = idx
		if err := bw.Flush(); err != nil {
			return toStatus(err)
		}
	default:
		return status.Errorf(codes.InvalidArgument, "unknown backup format %d", int32(req.GetFormat()))
	}
	return w.close()
}

// Restore implements rdb.v1.DB: the upload is written to a staging file
// on this node, validated, then replicated through the log.
func (s *Server) Restore(st grpc.ClientStreamingServer[rpcpb.RestoreRequest, rpcpb.RestoreResponse]) error {
	ctx := st.Context()
	b, ok := s.node.(Backuper)
	if !ok {
		return status.Error(codes.Unimplemented, "restore not supported by this node")
	}
	dir, err := b.StagingDir()
	if err != nil {
		return status.Errorf(codes.Internal, "restore: %v", err)
	}
	f, err := os.CreateTemp(dir, "restore-*.upload")
	if err != nil {
		return status.Errorf(codes.Internal, "restore: %v", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	format := command.RestoreFormat_RESTORE_FORMAT_UNSPECIFIED
	var size int64
	for {
		in, err := st.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if format == command.RestoreFormat_RESTORE_FORMAT_UNSPECIFIED {
			format = in.GetFormat()
		}
		size += int64(len(in.GetData()))
		if size > DefaultMaxRestoreBytes {
			return status.Errorf(codes.ResourceExhausted, "restore larger than %d bytes", int64(DefaultMaxRestoreBytes))
		}
		if _, err := f.Write(in.GetData()); err != nil {
			return status.Errorf(codes.Internal, "restore: %v", err)
		}
	}
	switch format {
	case command.RestoreFormat_RESTORE_FORMAT_SQLITE, command.RestoreFormat_RESTORE_FORMAT_SQL:
	default:
		return status.Errorf(codes.InvalidArgument, "restore: the first message must set format to SQLITE or SQL")
	}
	if size == 0 {
		return status.Errorf(codes.InvalidArgument, "restore: no data")
	}
	if err := f.Sync(); err != nil {
		return status.Errorf(codes.Internal, "restore: %v", err)
	}
	idx, err := b.Restore(ctx, f.Name(), format)
	if errors.Is(err, cluster.ErrNotLeader) {
		resp, err := s.forwardRestore(ctx, f, format)
		if err != nil {
			return err
		}
		return st.SendAndClose(resp)
	}
	if err != nil {
		return toStatus(err)
	}
	return st.SendAndClose(&rpcpb.RestoreResponse{RaftIndex: idx, Bytes: size})
}

// forwardRestore streams a staged upload to the leader's Restore.
func (s *Server) forwardRestore(ctx context.Context, f *os.File, format command.RestoreFormat) (*rpcpb.RestoreResponse, error) {
	cc, fctx, err := s.leaderConn(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, status.Errorf(codes.Internal, "restore: %v", err)
	}
	up, err := rpcpb.NewDBClient(cc).Restore(fctx)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, backupChunkSize)
	first := true
	for {
		n, rerr := io.ReadFull(f, buf)
		if n > 0 {
			req := &rpcpb.RestoreRequest{Data: buf[:n]}
			if first {
				req.Format, first = format, false
			}
			if err := up.Send(req); err != nil {
				_, err = up.CloseAndRecv()
				return nil, err
			}
		}
		if rerr != nil {
			break
		}
	}
	return up.CloseAndRecv()
}
