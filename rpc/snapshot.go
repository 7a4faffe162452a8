package rpc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"rdb/rpc/rpcpb"
	"rdb/snapshot"
)

// maxSnapshotBytes bounds a received snapshot file.
const maxSnapshotBytes = 1 << 40

// SendSnapshot implements cluster.Transport: it streams the MsgSnap and
// the database file in chunks over a dedicated gRPC stream, so memory
// stays bounded by the chunk size whatever the database size.
func (t *PeerTransport) SendSnapshot(ctx context.Context, m *raftpb.Message, data io.Reader, size int64) error {
	t.mu.Lock()
	p, ok := t.peers[m.GetTo()]
	t.mu.Unlock()
	if !ok {
		return fmt.Errorf("snapshot to %d: unknown peer", m.GetTo())
	}
	msg, err := proto.Marshal(m)
	if err != nil {
		return fmt.Errorf("snapshot to %d: %w", m.GetTo(), err)
	}
	cc, err := grpc.NewClient(p.addr, peerDialOptions()...)
	if err != nil {
		return fmt.Errorf("snapshot to %d: %w", m.GetTo(), err)
	}
	defer cc.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := rpcpb.NewRaftClient(cc).Snapshot(t.outgoing(ctx))
	if err != nil {
		return fmt.Errorf("snapshot to %d: open stream: %w", m.GetTo(), err)
	}
	sender := snapshot.NewSender(data, snapshot.DefaultChunkSize)
	first := true
	for {
		c, err := sender.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("snapshot to %d: read: %w", m.GetTo(), err)
		}
		out := &rpcpb.SnapshotChunk{Offset: c.Offset, Data: c.Data, Crc32C: c.CRC32C, Last: c.Last, Size: c.Size, Sha256: c.SHA256}
		if first {
			out.Message = msg
			first = false
		}
		if err := st.Send(out); err != nil {
			_, rerr := st.CloseAndRecv()
			return fmt.Errorf("snapshot to %d: send: %v (%v)", m.GetTo(), err, rerr)
		}
	}
	if _, err := st.CloseAndRecv(); err != nil {
		return fmt.Errorf("snapshot to %d: %w", m.GetTo(), err)
	}
	return nil
}

// Snapshot implements rdb.v1.Raft: it receives a snapshot file into the
// node's incoming directory, checking order, checksums and size, and
// hands it to the node, which verifies the database before raft sees the
// MsgSnap.
func (r *RaftService) Snapshot(st grpc.ClientStreamingServer[rpcpb.SnapshotChunk, rpcpb.SnapshotAck]) error {
	ctx := st.Context()
	if err := checkPeerCluster(ctx, r.node); err != nil {
		return err
	}
	in, err := st.Recv()
	if err != nil {
		return err
	}
	m := &raftpb.Message{}
	if err := proto.Unmarshal(in.GetMessage(), m); err != nil || m.GetType() != raftpb.MsgSnap {
		return status.Errorf(codes.InvalidArgument, "snapshot stream must start with a MsgSnap (%v)", err)
	}
	f, err := os.CreateTemp(r.node.IncomingSnapshotDir(), "recv-*.db")
	if err != nil {
		return status.Errorf(codes.Internal, "snapshot: %v", err)
	}
	path := f.Name()
	keep := false
	defer func() {
		if !keep {
			f.Close()
			os.Remove(path)
		}
	}()
	recv := snapshot.NewReceiver(f, maxSnapshotBytes)
	for {
		done, err := recv.Accept(&snapshot.Chunk{Offset: in.GetOffset(), Data: in.GetData(), CRC32C: in.GetCrc32C(), Last: in.GetLast(), Size: in.GetSize(), SHA256: in.GetSha256()})
		if err != nil {
			return status.Errorf(codes.DataLoss, "snapshot: %v", err)
		}
		if done {
			break
		}
		if in, err = st.Recv(); err != nil {
			if errors.Is(err, io.EOF) {
				return status.Errorf(codes.DataLoss, "snapshot: %v", recv.Finish())
			}
			return err
		}
	}
	if err := recv.Finish(); err != nil {
		return status.Errorf(codes.DataLoss, "snapshot: %v", err)
	}
	if err := f.Sync(); err != nil {
		return status.Errorf(codes.Internal, "snapshot: %v", err)
	}
	if err := f.Close(); err != nil {
		return status.Errorf(codes.Internal, "snapshot: %v", err)
	}
	keep = true
	if err := r.node.ReceiveSnapshot(ctx, m, path); err != nil {
		return status.Errorf(codes.DataLoss, "snapshot: %v", err)
	}
	return st.SendAndClose(&rpcpb.SnapshotAck{})
}
