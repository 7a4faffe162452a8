package rpc

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"rdb/cluster"
	"rdb/rpc/client"
	"rdb/rpc/rpcpb"
)

// Peer transport tuning.
const (
	peerQueueSize      = 8192
	peerReconnectDelay = 100 * time.Millisecond
	peerMaxMsgSize     = cluster.MaxPeerMessageBytes
)

// PeerTransport implements cluster.Transport over one long-lived gRPC
// client stream per peer. Each peer has a queue and a goroutine that owns
// its stream; Send never blocks: when a queue is full or a stream is
// down, messages are dropped (raft retransmits) and the peer is reported
// unreachable.
type PeerTransport struct {
	self      uint64
	announce  metadata.MD   // this node's id and addresses, sent on every stream
	clusterID atomic.Uint64 // announced too, once known (SetClusterID)
	reporter  func(id uint64)
	onRemoved func()
	log       *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu    sync.Mutex // guards peers
	peers map[uint64]*peerConn
}

var _ cluster.Transport = (*PeerTransport)(nil)

// PeerCallbacks tell the node about what the transport learns.
type PeerCallbacks struct {
	// Unreachable is told about peers that could not be reached (wire it
	// to Node.ReportUnreachable).
	Unreachable func(id uint64)
	// Removed is told when a peer refuses this node's messages because it
	// was removed from the cluster (wire it to Node.ReportRemoved).
	Removed func()
}

// Keepalive of peer connections. A stream into a partition stalls
// without an error (TCP retransmits with growing backoff, gRPC's Send
// waits for flow control), so a follower could stay cut off long after
// the partition healed (found by the chaos harness). Pings detect a dead
// connection within PeerKeepaliveTime + PeerKeepaliveTimeout; the stream
// is then reopened on a new connection. gRPC does not ping more often than
// every 10 s.
const (
	PeerKeepaliveTime    = 10 * time.Second
	PeerKeepaliveTimeout = 5 * time.Second
)

// PeerKeepalivePolicy is the enforcement policy the peer server needs so
// that it accepts the peers' pings.
var PeerKeepalivePolicy = keepalive.EnforcementPolicy{MinTime: PeerKeepaliveTime / 2, PermitWithoutStream: true}

// peerDialOptions are the options of every connection to a peer.
func peerDialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(peerMaxMsgSize), client.CodecCallOption()),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: PeerKeepaliveTime, Timeout: PeerKeepaliveTimeout, PermitWithoutStream: true}),
		// Reconnect within about 2 s of a peer coming back, not after
		// gRPC's default backoff of up to 120 s.
		grpc.WithConnectParams(fastReconnect),
		grpc.WithInitialWindowSize(StreamWindow), grpc.WithInitialConnWindowSize(ConnWindow),
	}
}

// StreamWindow and ConnWindow are the HTTP/2 flow-control windows of every
// rdb connection (the client's, in package client, too).
const (
	StreamWindow = client.StreamWindow
	ConnWindow   = client.ConnWindow
)

// Metadata keys a peer stream announces its sender with.
const (
	mdNodeID     = "rdb-node-id"
	mdPeerAddr   = "rdb-peer-addr"
	mdClientAddr = "rdb-client-addr"
	mdClusterID  = client.MetadataClusterID // as clients send it
)

// NewPeerTransport returns a transport for node self, whose advertised
// addresses it announces to every peer (so the leader can record client
// addresses in the member table).
func NewPeerTransport(self uint64, peerAddr, clientAddr string, cb PeerCallbacks, logger *slog.Logger) *PeerTransport {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	reporter := cb.Unreachable
	if reporter == nil {
		reporter = func(uint64) {}
	}
	onRemoved := cb.Removed
	if onRemoved == nil {
		onRemoved = func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &PeerTransport{
		self:      self,
		announce:  metadata.Pairs(mdNodeID, strconv.FormatUint(self, 10), mdPeerAddr, peerAddr, mdClientAddr, clientAddr),
		reporter:  reporter,
		onRemoved: onRemoved,
		log:       logger.With("component", "transport", "node_id", self),
		ctx:       ctx,
		cancel:    cancel,
		peers:     make(map[uint64]*peerConn),
	}
}

// SetClusterID sets the cluster id announced on every stream opened from
// now on, so peers of another cluster refuse this node's messages (and it
// theirs). Call it once the node's log is open, before it sends.
func (t *PeerTransport) SetClusterID(id uint64) { t.clusterID.Store(id) }

// outgoing returns ctx carrying this node's announcement.
func (t *PeerTransport) outgoing(ctx context.Context) context.Context {
	md := t.announce
	if id := t.clusterID.Load(); id != 0 {
		md = metadata.Join(md, metadata.Pairs(mdClusterID, cluster.FormatClusterID(id)))
	}
	return metadata.NewOutgoingContext(ctx, md)
}

// checkPeerCluster refuses a stream whose sender announced another
// cluster's id (the same check as client calls, see checkCluster).
func checkPeerCluster(ctx context.Context, node cluster.Stepper) error {
	return checkCluster(ctx, node, "peer announced")
}

// SetPeer implements cluster.Transport.
func (t *PeerTransport) SetPeer(id uint64, addr string) {
	if id == t.self || addr == "" {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if p, ok := t.peers[id]; ok {
		if p.addr == addr {
			return
		}
		p.stop()
	}
	p := newPeerConn(t, id, addr)
	t.peers[id] = p
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		p.run()
	}()
}

// RemovePeer implements cluster.Transport.
func (t *PeerTransport) RemovePeer(id uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p, ok := t.peers[id]; ok {
		p.stop()
		delete(t.peers, id)
	}
}

// Send implements cluster.Transport.
func (t *PeerTransport) Send(msgs []*raftpb.Message) {
	if len(msgs) == 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, m := range msgs {
		p, ok := t.peers[m.GetTo()]
		if !ok {
			continue
		}
		select {
		case p.queue <- m:
		default:
			t.reporter(m.GetTo())
		}
	}
}

// Close stops every peer goroutine and waits for them.
func (t *PeerTransport) Close() error {
	t.cancel()
	t.mu.Lock()
	for _, p := range t.peers {
		p.stop()
	}
	t.mu.Unlock()
	t.wg.Wait()
	return nil
}

// peerConn owns the stream to one peer.
type peerConn struct {
	t      *PeerTransport
	id     uint64
	addr   string
	queue  chan *raftpb.Message
	ctx    context.Context
	cancel context.CancelFunc
}

func newPeerConn(t *PeerTransport, id uint64, addr string) *peerConn {
	ctx, cancel := context.WithCancel(t.ctx)
	return &peerConn{t: t, id: id, addr: addr, queue: make(chan *raftpb.Message, peerQueueSize), ctx: ctx, cancel: cancel}
}

func (p *peerConn) stop() { p.cancel() }

func (p *peerConn) run() {
	log := p.t.log.With("peer", p.id, "addr", p.addr)
	cc, err := grpc.NewClient(p.addr, peerDialOptions()...)
	if err != nil {
		log.Error("peer address unusable", "err", err)
		return
	}
	defer cc.Close()
	client := rpcpb.NewRaftClient(cc)
	wasDown := false
	refusal := "" // the last refusal logged
	for p.ctx.Err() == nil {
		err := p.stream(client)
		if p.ctx.Err() != nil {
			return
		}
		switch status.Code(err) {
		case codes.PermissionDenied:
			log.Error("peer refuses this node: it was removed from the cluster", "err", err)
			p.t.onRemoved()
		case codes.FailedPrecondition:
			// Another cluster's node at this member's address: say so
			// once per refusal, keep retrying (the address may be fixed).
			if msg := status.Convert(err).Message(); msg != refusal {
				log.Error("peer refuses this node", "err", msg)
				refusal = msg
			}
		default:
			refusal = ""
		}
		if !wasDown {
			log.Warn("peer stream down", "err", err)
			wasDown = true
		}
		p.t.reporter(p.id)
		// Drop what queued up while the stream was down: raft resends.
		p.drain()
		select {
		case <-p.ctx.Done():
			return
		case <-time.After(peerReconnectDelay):
		}
	}
}

// stream sends queued messages over one stream until it fails.
func (p *peerConn) stream(client rpcpb.RaftClient) error {
	ctx, cancel := context.WithCancel(p.t.outgoing(p.ctx))
	defer cancel()
	st, err := client.Stream(ctx, grpc.WaitForReady(false))
	if err != nil {
		return err
	}
	buf := make([]byte, 0, 4096)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case m := <-p.queue:
			var err error
			buf, err = appendRaftMessage(buf[:0], m)
			if err != nil {
				return err
			}
			if err := st.Send(&rpcpb.RaftMessage{Data: buf}); err != nil {
				if errors.Is(err, io.EOF) {
					_, err = st.CloseAndRecv()
				}
				return err
			}
		}
	}
}

func (p *peerConn) drain() {
	for {
		select {
		case <-p.queue:
		default:
			return
		}
	}
}

// RaftService implements the internal rdb.v1.Raft service: it receives
// peers' streams and steps their messages into the node.
type RaftService struct {
	rpcpb.UnimplementedRaftServer
	node cluster.Stepper
}

// NewRaftService returns the peer service for node.
func NewRaftService(node cluster.Stepper) *RaftService { return &RaftService{node: node} }

// Stream implements rdb.v1.Raft.
func (r *RaftService) Stream(st grpc.ClientStreamingServer[rpcpb.RaftMessage, rpcpb.RaftAck]) error {
	ctx := st.Context()
	if err := checkPeerCluster(ctx, r.node); err != nil {
		return err
	}
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if ids := md.Get(mdNodeID); len(ids) == 1 {
			if id, err := strconv.ParseUint(ids[0], 10, 64); err == nil {
				r.node.ObservePeer(id, first(md.Get(mdPeerAddr)), first(md.Get(mdClientAddr)))
			}
		}
	}
	for {
		in, err := st.Recv()
		if err == io.EOF {
			return st.SendAndClose(&rpcpb.RaftAck{})
		}
		if err != nil {
			return err
		}
		// in is fresh from Recv: its bytes are the message's to keep
		// (unmarshalRaftMessage aliases them).
		m := &raftpb.Message{}
		if err := unmarshalRaftMessage(in.GetData(), m); err != nil {
			return status.Errorf(codes.InvalidArgument, "undecodable raft message: %v", err)
		}
		if err := r.node.Step(ctx, m); err != nil {
			if errors.Is(err, cluster.ErrRemovedMember) {
				return status.Errorf(codes.PermissionDenied, "member %d was removed from the cluster", m.GetFrom())
			}
			return err
		}
	}
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}
