package rpc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"rdb/cluster"
	"rdb/command"
	"rdb/rpc/client"
	"rdb/rpc/rpcpb"
)

// Node is what the server needs from a cluster node; *cluster.Node
// satisfies it.
type Node interface {
	ID() uint64
	// ClusterID is the id of the node's cluster (0: unknown); calls the
	// node forwards carry it, so that a node of another cluster that
	// took the leader's address refuses them.
	ClusterID() uint64
	Execute(ctx context.Context, stmts []*command.Statement, transaction bool) (*cluster.WriteResult, error)
	StrongQuery(ctx context.Context, stmts []*command.Statement) (*cluster.WriteResult, error)
	ReadIndex(ctx context.Context) (uint64, error)
	WaitApplied(ctx context.Context, index uint64) error
	LocalQuery(ctx context.Context, stmts []*command.Statement) ([]*command.Result, uint64, error)
	ReadOnly(ctx context.Context, stmts []*command.Statement) (bool, error)
	CheckFresh(maxStaleness time.Duration) error
	IsLeader() bool
	Leader() (uint64, string)
	Status(ctx context.Context) (cluster.Status, error)
	HashAt(ctx context.Context) (string, uint64, error)
}

var _ Node = (*cluster.Node)(nil)

// DefaultMaxRequestBytes is the default limit on one request's encoded
// size.
const DefaultMaxRequestBytes = 4 << 20

// forwardedKey marks a request that another node forwarded, so it is
// never forwarded twice.
const forwardedKey = "rdb-forwarded"

// ServerConfig configures a Server.
type ServerConfig struct {
	// MaxRequestBytes refuses larger requests with ResourceExhausted.
	MaxRequestBytes int
	// Limits are checked on every request's statements.
	Limits command.Limits
	// Version is reported by Status.
	Version string
	// DataDir is reported by Status.
	DataDir string
	// Logger receives request logs; nil discards them.
	Logger *slog.Logger
	// Metrics, if set, records the calls of Pipeline streams as the
	// interceptors record unary calls.
	Metrics *Metrics
}

// Server implements the rdb.v1.DB service on top of a Node. It embeds
// UnimplementedDBServer so that adding a method to the proto does not
// break the build before the server implements it.
type Server struct {
	rpcpb.UnimplementedDBServer
	cfg  ServerConfig
	node Node
	log  *slog.Logger

	draining  chan struct{} // closed by Drain
	drainOnce sync.Once
	workers   workerPool // runs pipeline calls

	mu    sync.Mutex // guards conns and pipes
	conns map[string]*grpc.ClientConn
	pipes map[string]*client.Pipeline // forwarding, by leader address
}

// NewServer returns a Server for node.
func NewServer(cfg ServerConfig, node Node) *Server {
	if cfg.MaxRequestBytes <= 0 {
		cfg.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if cfg.Limits == (command.Limits{}) {
		cfg.Limits = command.DefaultLimits()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Server{cfg: cfg, node: node, log: cfg.Logger.With("component", "rpc"), draining: make(chan struct{}),
		conns: make(map[string]*grpc.ClientConn), pipes: make(map[string]*client.Pipeline)}
}

// Drain makes Pipeline streams stop taking calls: each answers the calls
// it has started and ends with Unavailable (NOT_APPLIED), so that a
// graceful stop of the gRPC server does not wait for clients to hang up.
func (s *Server) Drain() { s.drainOnce.Do(func() { close(s.draining) }) }

// MaxRecvMsgSize is the gRPC receive limit to use with this server: the
// request limit plus room for framing, so that an oversized request gets
// this server's clear error when possible.
func (s *Server) MaxRecvMsgSize() int { return s.cfg.MaxRequestBytes + 64<<10 }

// Close stops the pipeline workers (after the gRPC server has stopped,
// so that no stream still runs calls) and closes connections used for
// forwarding.
func (s *Server) Close() error {
	s.workers.stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	for addr, p := range s.pipes {
		p.Close()
		delete(s.pipes, addr)
	}
	for addr, cc := range s.conns {
		cc.Close()
		delete(s.conns, addr)
	}
	return nil
}

// sizedMessage is a request with generated code for its encoded size
// (SizeVT: protobuf's size without its reflection).
type sizedMessage interface{ SizeVT() int }

func (s *Server) checkRequest(req sizedMessage, stmts []*command.Statement) error {
	if size := req.SizeVT(); size > s.cfg.MaxRequestBytes {
		return fmt.Errorf("%w: %d bytes, limit %d", command.ErrTooLarge, size, s.cfg.MaxRequestBytes)
	}
	return s.cfg.Limits.Validate(stmts)
}

// Execute implements rdb.v1.DB.
func (s *Server) Execute(ctx context.Context, req *rpcpb.ExecuteRequest) (*rpcpb.ExecuteResponse, error) {
	if err := s.checkRequest(req, req.GetStatements()); err != nil {
		return nil, toStatus(err)
	}
	wr, err := s.node.Execute(ctx, req.GetStatements(), req.GetTransaction())
	if errors.Is(err, cluster.ErrNotLeader) {
		// Followers forward writes to the leader, one hop.
		cc, fctx, err := s.leaderConn(ctx)
		if err != nil {
			return nil, err
		}
		resp, err := s.forwarder(cc).Execute(fctx, req)
		return resp, forwardError(err)
	}
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &rpcpb.ExecuteResponse{Results: wr.Results, RaftIndex: wr.Index}
	if err := encodableResults(resp.Results, resp.RaftIndex); err != nil {
		return nil, err
	}
	if err := statementFailure(resp.Results, resp); err != nil {
		return nil, err
	}
	return resp, nil
}

// encodableResults refuses results that hold TEXT that is not UTF-8: the
// API's strings must be UTF-8 (protobuf's rule), and sending them would
// fail the whole Pipeline stream the reply shares with other calls.
// wroteAt is the index of the write that produced them, if any: the
// error says the write took effect.
func encodableResults(results []*command.Result, wroteAt uint64) error {
	err := command.CheckAllUTF8(results)
	if err == nil {
		return nil
	}
	const hint = "the API carries TEXT as UTF-8 only; return such values as BLOB, e.g. CAST(x AS BLOB)"
	if wroteAt > 0 {
		return status.Errorf(codes.Internal, "the write was applied (raft index %d), but its results cannot be sent: %v (%s)", wroteAt, err, hint)
	}
	return status.Errorf(codes.InvalidArgument, "the results cannot be sent: %v (%s)", err, hint)
}

// Query implements rdb.v1.DB.
func (s *Server) Query(ctx context.Context, req *rpcpb.QueryRequest) (*rpcpb.QueryResponse, error) {
	if err := s.checkRequest(req, req.GetStatements()); err != nil {
		return nil, toStatus(err)
	}
	res, idx, err := s.read(ctx, req.GetStatements(), req.GetConsistency(), req.GetMinIndex(), time.Duration(req.GetMaxStalenessMs())*time.Millisecond)
	if err != nil {
		return nil, err
	}
	if res.forwarded != nil {
		return res.forwarded, nil
	}
	resp := &rpcpb.QueryResponse{Results: res.results, RaftIndex: idx, NodeId: s.node.ID()}
	if err := encodableResults(resp.Results, 0); err != nil {
		return nil, err
	}
	if err := statementFailure(resp.Results, resp); err != nil {
		return nil, err
	}
	return resp, nil
}

// Request implements rdb.v1.DB: read-only batches are served as queries,
// anything else goes through the log as one write.
func (s *Server) Request(ctx context.Context, req *rpcpb.RequestRequest) (*rpcpb.RequestResponse, error) {
	if err := s.checkRequest(req, req.GetStatements()); err != nil {
		return nil, toStatus(err)
	}
	ro, err := s.node.ReadOnly(ctx, req.GetStatements())
	if err != nil {
		return nil, toStatus(err)
	}
	if ro {
		res, idx, err := s.read(ctx, req.GetStatements(), req.GetConsistency(), req.GetMinIndex(), 0)
		if err != nil {
			return nil, err
		}
		if res.forwarded != nil {
			return &rpcpb.RequestResponse{Results: res.forwarded.GetResults(), RaftIndex: res.forwarded.GetRaftIndex(), NodeId: res.forwarded.GetNodeId()}, nil
		}
		resp := &rpcpb.RequestResponse{Results: res.results, RaftIndex: idx, NodeId: s.node.ID()}
		if err := encodableResults(resp.Results, 0); err != nil {
			return nil, err
		}
		if err := statementFailure(resp.Results, resp); err != nil {
			return nil, err
		}
		return resp, nil
	}
	wr, err := s.node.Execute(ctx, req.GetStatements(), req.GetTransaction())
	if errors.Is(err, cluster.ErrNotLeader) {
		cc, fctx, err := s.leaderConn(ctx)
		if err != nil {
			return nil, err
		}
		resp, err := s.forwarder(cc).Request(fctx, req)
		return resp, forwardError(err)
	}
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &rpcpb.RequestResponse{Results: wr.Results, RaftIndex: wr.Index, Wrote: true, NodeId: s.node.ID()}
	if err := encodableResults(resp.Results, resp.RaftIndex); err != nil {
		return nil, err
	}
	if err := statementFailure(resp.Results, resp); err != nil {
		return nil, err
	}
	return resp, nil
}

// readResult is a local read, or the response of a forwarded one.
type readResult struct {
	results   []*command.Result
	forwarded *rpcpb.QueryResponse
}

// read serves a read at the requested level. Errors are status errors.
func (s *Server) read(ctx context.Context, stmts []*command.Statement, level rpcpb.Consistency, minIndex uint64, maxStale time.Duration) (readResult, uint64, error) {
	switch level {
	case rpcpb.Consistency_CONSISTENCY_UNSPECIFIED, rpcpb.Consistency_CONSISTENCY_LINEARIZABLE:
		idx, err := s.node.ReadIndex(ctx)
		if err != nil {
			return readResult{}, 0, toStatus(err)
		}
		return s.localRead(ctx, stmts, max(idx, minIndex))
	case rpcpb.Consistency_CONSISTENCY_NONE:
		if err := s.node.CheckFresh(maxStale); err != nil {
			return readResult{}, 0, toStatus(err)
		}
		return s.localRead(ctx, stmts, minIndex)
	case rpcpb.Consistency_CONSISTENCY_WEAK:
		if s.node.IsLeader() {
			return s.localRead(ctx, stmts, minIndex)
		}
		resp, err := s.forwardWeak(ctx, stmts, minIndex)
		if err != nil {
			return readResult{}, 0, err
		}
		return readResult{forwarded: resp}, resp.GetRaftIndex(), nil
	case rpcpb.Consistency_CONSISTENCY_STRONG:
		if minIndex > 0 {
			if err := s.node.WaitApplied(ctx, minIndex); err != nil {
				return readResult{}, 0, toStatus(err)
			}
		}
		wr, err := s.node.StrongQuery(ctx, stmts)
		if errors.Is(err, cluster.ErrNotLeader) {
			cc, fctx, err := s.leaderConn(ctx)
			if err != nil {
				return readResult{}, 0, err
			}
			resp, err := s.forwarder(cc).Query(fctx, &rpcpb.QueryRequest{Statements: stmts, Consistency: level, MinIndex: minIndex})
			if err != nil {
				return readResult{}, 0, forwardError(err)
			}
			// The leader answered after applying the query's entry; this
			// node may not have applied it yet, which is fine: the rows
			// are the leader's.
			return readResult{forwarded: resp}, resp.GetRaftIndex(), nil
		}
		if err != nil {
			return readResult{}, 0, toStatus(err)
		}
		return readResult{results: wr.Results}, wr.Index, nil
	default:
		return readResult{}, 0, status.Errorf(codes.InvalidArgument, "unknown consistency level %d (use NONE, WEAK, LINEARIZABLE or STRONG)", int32(level))
	}
}

func (s *Server) localRead(ctx context.Context, stmts []*command.Statement, minIndex uint64) (readResult, uint64, error) {
	if minIndex > 0 {
		if err := s.node.WaitApplied(ctx, minIndex); err != nil {
			return readResult{}, 0, toStatus(err)
		}
	}
	res, idx, err := s.node.LocalQuery(ctx, stmts)
	if err != nil {
		return readResult{}, 0, toStatus(err)
	}
	return readResult{results: res}, max(idx, minIndex), nil
}

// forwardWeak sends a weak read to the leader.
func (s *Server) forwardWeak(ctx context.Context, stmts []*command.Statement, minIndex uint64) (*rpcpb.QueryResponse, error) {
	cc, fctx, err := s.leaderConn(ctx)
	if err != nil {
		return nil, err
	}
	resp, err := s.forwarder(cc).Query(fctx, &rpcpb.QueryRequest{Statements: stmts, Consistency: rpcpb.Consistency_CONSISTENCY_WEAK, MinIndex: minIndex})
	return resp, forwardError(err)
}

// leaderReadyTimeout bounds the wait for a connection to the leader.
const leaderReadyTimeout = time.Second

// leaderConn returns a ready connection to the leader and a context that
// marks the call as forwarded. Its errors mean the request was not sent,
// so they carry NOT_APPLIED: the client may retry.
func (s *Server) leaderConn(ctx context.Context) (*grpc.ClientConn, context.Context, error) {
	// (ValueFromIncomingContext does not copy the whole metadata, as
	// FromIncomingContext does: 8% of a forwarding node's allocations.)
	if len(metadata.ValueFromIncomingContext(ctx, forwardedKey)) > 0 {
		return nil, nil, client.ErrorWithReason(codes.Unavailable, "forwarded to a node that is not the leader (leadership is moving)", client.ReasonNotApplied)
	}
	_, addr := s.node.Leader()
	if addr == "" {
		return nil, nil, toStatus(cluster.ErrNoLeader)
	}
	cc, err := s.conn(addr)
	if err != nil {
		return nil, nil, client.ErrorWithReason(codes.Unavailable, fmt.Sprintf("leader at %s: %v", addr, err), client.ReasonNotApplied)
	}
	// A refused connection means the leader is down: answer now (the
	// client tries elsewhere, and an election is under way).
	if err := client.WaitConnected(ctx, cc, leaderReadyTimeout); err != nil {
		return nil, nil, client.ErrorWithReason(codes.Unavailable, fmt.Sprintf("leader at %s is %v", addr, err), client.ReasonNotApplied)
	}
	return cc, metadata.NewOutgoingContext(ctx, s.forwardMetadata()), nil
}

// forwardMetadata is the metadata of every call this node forwards: the
// mark that stops a second forward and, when the node knows it, its
// cluster id, so that a node of another cluster that answers at the
// leader's address (the leader died and a stranger took its ports before
// the election) refuses the call instead of running it.
func (s *Server) forwardMetadata() metadata.MD {
	md := metadata.Pairs(forwardedKey, "1")
	if id := s.node.ClusterID(); id != 0 {
		md.Set(client.MetadataClusterID, cluster.FormatClusterID(id))
	}
	return md
}

// forwardError passes on the error of a call forwarded to the leader,
// marking it NOT_APPLIED when the call never reached the leader (its
// connection failed between leaderConn's check and the call) or reached
// a node of another cluster that refused it, so that clients may send it
// again: the client did nothing wrong, this node's idea of the leader is
// out of date.
func forwardError(err error) error {
	switch {
	case err == nil:
		return nil
	case client.NotSent(err):
		return client.ErrorWithReason(codes.Unavailable, "leader not reachable: "+status.Convert(err).Message(), client.ReasonNotApplied)
	case client.IsWrongCluster(err):
		return client.ErrorWithReason(codes.Unavailable, "the leader's address answers for another cluster: "+status.Convert(err).Message(), client.ReasonNotApplied)
	}
	return err
}

// The connection a node forwards calls to the leader on must notice soon
// that a partition killed it, and reconnect soon after the heal: gRPC's
// defaults (no keepalive, a 20 s connect timeout, backoff up to 120 s)
// can keep forwarded calls failing or hanging for tens of seconds after
// the network is back (a suspect for chaos finding 4). Pings every 5 s
// are the most the client server's enforcement policy allows. Peer
// connections reconnect the same way (peerDialOptions).
var (
	forwardKeepalive = keepalive.ClientParameters{Time: 5 * time.Second, Timeout: 3 * time.Second, PermitWithoutStream: true}
	fastReconnect    = grpc.ConnectParams{
		Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 2 * time.Second},
		MinConnectTimeout: 3 * time.Second,
	}
)

func (s *Server) conn(addr string) (*grpc.ClientConn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cc, ok := s.conns[addr]; ok {
		return cc, nil
	}
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(forwardMaxRecv), grpc.MaxCallSendMsgSize(s.MaxRecvMsgSize()), client.CodecCallOption()),
		grpc.WithKeepaliveParams(forwardKeepalive), grpc.WithConnectParams(fastReconnect),
		grpc.WithInitialWindowSize(StreamWindow), grpc.WithInitialConnWindowSize(ConnWindow))
	if err != nil {
		return nil, err
	}
	s.conns[addr] = cc
	return cc, nil
}

// forwardMaxRecv is the receive limit of forwarding connections.
const forwardMaxRecv = 256 << 20

// forwarder returns the pipeline that carries the calls this node
// forwards over cc (a connection from conn): calls forwarded at the same
// time share its messages, as a client's do.
func (s *Server) forwarder(cc *grpc.ClientConn) *client.Pipeline {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.pipes[cc.Target()]
	if !ok {
		p = client.NewPipeline(cc, s.forwardMetadata(), forwardMaxRecv)
		s.pipes[cc.Target()] = p
	}
	return p
}

// Status implements rdb.v1.DB.
func (s *Server) Status(ctx context.Context, _ *rpcpb.StatusRequest) (*rpcpb.StatusResponse, error) {
	st, err := s.node.Status(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &rpcpb.StatusResponse{
		ClusterId:     st.ClusterID,
		Id:            st.ID,
		Role:          st.Role,
		Term:          st.Term,
		LeaderId:      st.LeaderID,
		LeaderAddr:    st.LeaderAddr,
		CommitIndex:   st.CommitIndex,
		AppliedIndex:  st.AppliedIndex,
		FirstIndex:    st.FirstIndex,
		LastIndex:     st.LastIndex,
		SnapshotIndex: st.SnapshotIndex,
		LogBytes:      st.LogBytes,
		Version:       s.cfg.Version,
		DataDir:       s.cfg.DataDir,
	}
	for _, m := range st.Members {
		resp.Members = append(resp.Members, &rpcpb.MemberStatus{
			Id: m.ID, PeerAddr: m.PeerAddr, ClientAddr: m.ClientAddr, Voter: m.Voter, MatchIndex: m.MatchIndex,
		})
	}
	return resp, nil
}

// Hash implements rdb.v1.DB.
func (s *Server) Hash(ctx context.Context, req *rpcpb.HashRequest) (*rpcpb.HashResponse, error) {
	if req.GetMinIndex() > 0 {
		if err := s.node.WaitApplied(ctx, req.GetMinIndex()); err != nil {
			return nil, toStatus(err)
		}
	}
	h, applied, err := s.node.HashAt(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return &rpcpb.HashResponse{Hash: h, AppliedIndex: applied, NodeId: s.node.ID()}, nil
}
