package cluster

import (
	"context"
	"io"

	"go.etcd.io/raft/v3/raftpb"
)

// Transport carries raft messages to peers. The rpc package implements it
// over gRPC streams; tests use an in-memory one. Implementations must not
// block the caller: a message that cannot be delivered is dropped (raft
// retransmits) and may be reported through Reporter.ReportUnreachable.
type Transport interface {
	// Send queues messages for delivery to their To node.
	Send(msgs []*raftpb.Message)
	// SetPeer records or updates the peer address of a node.
	SetPeer(id uint64, peerAddr string)
	// RemovePeer forgets a node.
	RemovePeer(id uint64)
	// SendSnapshot streams a snapshot to m.To: the MsgSnap m itself and
	// the database file (size bytes from data). It blocks until the
	// receiver has accepted the whole file or ctx ends, and returns nil
	// only if the receiver confirmed it.
	SendSnapshot(ctx context.Context, m *raftpb.Message, data io.Reader, size int64) error
}

// Stepper receives raft messages from the transport.
type Stepper interface {
	// Step hands an inbound message to the node.
	Step(ctx context.Context, m *raftpb.Message) error
	// ReportUnreachable tells raft that a peer could not be reached.
	ReportUnreachable(id uint64)
	// IncomingSnapshotDir is where the transport writes a snapshot file
	// while receiving it.
	IncomingSnapshotDir() string
	// ReceiveSnapshot hands over a fully received snapshot file (in
	// IncomingSnapshotDir) with the MsgSnap it belongs to. The node takes
	// ownership of the file.
	ReceiveSnapshot(ctx context.Context, m *raftpb.Message, path string) error
	// ObservePeer records the addresses a peer announced on its stream.
	ObservePeer(id uint64, peerAddr, clientAddr string)
	// CheckClusterID refuses (ErrWrongCluster) a peer that announced
	// another cluster's id.
	CheckClusterID(id uint64) error
}

var _ Stepper = (*Node)(nil)
