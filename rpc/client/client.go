package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"rdb/command"
	"rdb/rpc/rpcpb"
)

// Defaults for Config.
const (
	DefaultDialTimeout    = 2 * time.Second
	DefaultRequestTimeout = 10 * time.Second
	DefaultMaxMessageSize = 64 << 20
)

// StreamWindow and ConnWindow are the HTTP/2 flow-control windows of the
// client's connections (and of every rdb server's). Fixed windows turn off
// gRPC's bandwidth-delay probing, whose pings added a write and a read to
// many messages (issue 7: half of the leader's socket calls at c=1).
const (
	StreamWindow = 4 << 20
	ConnWindow   = 16 << 20
)

// Config configures a Client.
type Config struct {
	// Endpoints are client (gRPC) addresses of cluster nodes, host:port.
	Endpoints []string
	// DialTimeout bounds how long one endpoint may take to become ready
	// before the client moves on to the next.
	DialTimeout time.Duration
	// RequestTimeout applies to calls whose context has no deadline.
	RequestTimeout time.Duration
	// MaxMessageSize bounds received and sent messages.
	MaxMessageSize int
	// Logger receives failover events; nil discards them.
	Logger *slog.Logger
	// ClusterID, when set, pins the client to one cluster: the cluster id
	// `rdb status` prints (16 hex digits). Every call carries it, and a
	// node of another cluster refuses the call with FailedPrecondition
	// before doing anything, so endpoints that point at the wrong cluster
	// (a reused address, a mistyped list) cannot read or write there.
	ClusterID string
	// DisablePipeline sends every Execute, Query and Request as its own
	// unary gRPC call. By default the calls to one endpoint share a
	// Pipeline stream (see Pipeline): the same results and errors, with
	// less CPU per call when many goroutines share the client.
	DisablePipeline bool
}

// MetadataClusterID is the gRPC metadata key that carries
// Config.ClusterID.
const MetadataClusterID = "rdb-cluster-id"

func (c Config) withDefaults() Config {
	if c.DialTimeout <= 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.MaxMessageSize <= 0 {
		c.MaxMessageSize = DefaultMaxMessageSize
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Client talks to an rdb cluster through a list of endpoints.
type Client struct {
	cfg Config

	mu      sync.Mutex // guards the fields below
	conns   map[string]*grpc.ClientConn
	pipes   map[string]*Pipeline
	current int
	closed  bool
}

// New returns a Client for the endpoints. It does not dial until the
// first call.
func New(cfg Config) (*Client, error) {
	cfg = cfg.withDefaults()
	var eps []string
	for _, e := range cfg.Endpoints {
		if e = strings.TrimSpace(e); e != "" {
			eps = append(eps, e)
		}
	}
	if len(eps) == 0 {
		return nil, ErrNoEndpoints
	}
	cfg.Endpoints = eps
	if cfg.ClusterID = strings.TrimSpace(cfg.ClusterID); cfg.ClusterID != "" {
		if id, err := strconv.ParseUint(cfg.ClusterID, 16, 64); err != nil || id == 0 {
			return nil, fmt.Errorf("%w: cluster id %q: want up to 16 hex digits, not zero", ErrBadConfig, cfg.ClusterID)
		}
	}
	return &Client{cfg: cfg, conns: make(map[string]*grpc.ClientConn), pipes: make(map[string]*Pipeline)}, nil
}

// Endpoints returns the configured endpoints.
func (c *Client) Endpoints() []string { return append([]string(nil), c.cfg.Endpoints...) }

// Current returns the endpoint calls go to first.
func (c *Client) Current() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cfg.Endpoints[c.current]
}

// Close closes every connection. It is idempotent.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	for _, p := range c.pipes {
		p.Close()
	}
	c.pipes = nil
	var errs []error
	for _, cc := range c.conns {
		errs = append(errs, cc.Close())
	}
	c.conns = nil
	return errors.Join(errs...)
}

func (c *Client) conn(endpoint string) (*grpc.ClientConn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	if cc, ok := c.conns[endpoint]; ok {
		return cc, nil
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(c.cfg.MaxMessageSize),
			grpc.MaxCallSendMsgSize(c.cfg.MaxMessageSize),
			CodecCallOption()),
		grpc.WithInitialWindowSize(StreamWindow), grpc.WithInitialConnWindowSize(ConnWindow),
	}
	if id := c.cfg.ClusterID; id != "" {
		opts = append(opts,
			grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, callOpts ...grpc.CallOption) error {
				return invoker(metadata.AppendToOutgoingContext(ctx, MetadataClusterID, id), method, req, reply, cc, callOpts...)
			}),
			grpc.WithChainStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, callOpts ...grpc.CallOption) (grpc.ClientStream, error) {
				return streamer(metadata.AppendToOutgoingContext(ctx, MetadataClusterID, id), desc, cc, method, callOpts...)
			}))
	}
	cc, err := grpc.NewClient(endpoint, opts...)
	if err != nil {
		return nil, fmt.Errorf("client: endpoint %s: %w", endpoint, err)
	}
	c.conns[endpoint] = cc
	return cc, nil
}

// pipeline returns the Pipeline of cc's endpoint, or nil when pipelining
// is off or the client is closed.
func (c *Client) pipeline(cc *grpc.ClientConn) *Pipeline {
	if c.cfg.DisablePipeline {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	p, ok := c.pipes[cc.Target()]
	if !ok {
		p = NewPipeline(cc, nil, c.cfg.MaxMessageSize)
		c.pipes[cc.Target()] = p
	}
	return p
}

// ready waits until cc is connected, for at most the dial timeout. An
// error means nothing was sent to this endpoint.
func (c *Client) ready(ctx context.Context, cc *grpc.ClientConn) error {
	return WaitConnected(ctx, cc, c.cfg.DialTimeout)
}

// WaitConnected waits until cc is connected, for at most timeout, and
// returns an error ("not reachable (STATE)") when it is not: at once when
// a connection attempt failed, so that the caller moves on rather than
// wait out gRPC's reconnect backoff (which it resets, for a node that may
// have restarted). A connection that is ready returns at once, without the
// timer a wait needs (a context with a timer per call was a tenth of the
// client's CPU in a profile of point reads). rdb servers use it for their
// connection to the leader too.
func WaitConnected(ctx context.Context, cc *grpc.ClientConn, timeout time.Duration) error {
	if cc.GetState() == connectivity.Ready {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cc.Connect()
	for {
		s := cc.GetState()
		if s == connectivity.Ready {
			return nil
		}
		if s == connectivity.TransientFailure {
			cc.ResetConnectBackoff()
			return fmt.Errorf("not reachable (%s)", s)
		}
		if !cc.WaitForStateChange(ctx, s) {
			return fmt.Errorf("not reachable (%s)", s)
		}
	}
}

func (c *Client) advance(from int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.current == from {
		c.current = (c.current + 1) % len(c.cfg.Endpoints)
	}
}

// The pause after a full round of endpoints failed grows from
// minRoundBackoff to maxRoundBackoff. The cap is short: during an
// election every round is a few cheap refusals, and a longer pause would
// add itself to the time writes take to come back (measured: a 500 ms
// cap made a 0.63 s failover 1.14 s half of the time).
const (
	minRoundBackoff = 10 * time.Millisecond
	maxRoundBackoff = 100 * time.Millisecond
)

// callKind says whether a call is safe to repeat after it was sent.
type callKind int

const (
	readCall callKind = iota
	writeCall
)

// do runs call against endpoints, failing over as the package doc says.
func (c *Client) do(ctx context.Context, kind callKind, call func(ctx context.Context, cc *grpc.ClientConn) error) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.RequestTimeout)
		defer cancel()
	}
	backoff := minRoundBackoff
	var lastErr error
	for attempt := 0; ; attempt++ {
		c.mu.Lock()
		idx := c.current
		endpoint := c.cfg.Endpoints[idx]
		c.mu.Unlock()

		cc, err := c.conn(endpoint)
		if err != nil {
			return err
		}
		if err := c.ready(ctx, cc); err != nil {
			lastErr = status.Errorf(codes.Unavailable, "endpoint %s: %v", endpoint, err)
			c.cfg.Logger.Debug("endpoint not reachable", "endpoint", endpoint, "err", err)
			c.advance(idx)
		} else {
			err = call(ctx, cc)
			if err == nil {
				return nil
			}
			lastErr = err
			if !retryable(kind, err) {
				return err
			}
			c.cfg.Logger.Debug("retrying on another endpoint", "endpoint", endpoint, "err", err)
			c.advance(idx)
		}
		// After a full round of endpoints, back off before the next.
		if (attempt+1)%len(c.cfg.Endpoints) == 0 {
			select {
			case <-ctx.Done():
				return lastErr
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, maxRoundBackoff)
		}
		if ctx.Err() != nil {
			return lastErr
		}
	}
}

// call runs one unary call of the given kind through do (failover and
// retry rules) and returns its response.
func call[T any](c *Client, ctx context.Context, kind callKind, rpc func(ctx context.Context, cc *grpc.ClientConn) (T, error)) (T, error) {
	var resp T
	err := c.do(ctx, kind, func(ctx context.Context, cc *grpc.ClientConn) error {
		var err error
		resp, err = rpc(ctx, cc)
		return err
	})
	return resp, err
}

// direct returns a ready connection to one endpoint, without failover, and
// a context with the request timeout when ctx has no deadline.
func (c *Client) direct(ctx context.Context, endpoint string) (*grpc.ClientConn, context.Context, context.CancelFunc, error) {
	cancel := context.CancelFunc(func() {})
	if _, ok := ctx.Deadline(); !ok {
		ctx, cancel = context.WithTimeout(ctx, c.cfg.RequestTimeout)
	}
	cc, err := c.conn(endpoint)
	if err != nil {
		cancel()
		return nil, nil, nil, err
	}
	if err := c.ready(ctx, cc); err != nil {
		cancel()
		return nil, nil, nil, status.Errorf(codes.Unavailable, "endpoint %s: %v", endpoint, err)
	}
	return cc, ctx, cancel, nil
}

// retryable reports whether err after sending a call of this kind allows
// sending it again elsewhere.
func retryable(kind callKind, err error) bool {
	if status.Code(err) == codes.ResourceExhausted {
		// Too large: every node refuses it the same way.
		return false
	}
	if IsNotApplied(err) {
		return true
	}
	if kind == readCall {
		return status.Code(err) == codes.Unavailable
	}
	return false
}

// Execute sends writes. See the package doc for when it is retried.
func (c *Client) Execute(ctx context.Context, req *rpcpb.ExecuteRequest) (*rpcpb.ExecuteResponse, error) {
	return call(c, ctx, writeCall, func(ctx context.Context, cc *grpc.ClientConn) (*rpcpb.ExecuteResponse, error) {
		if p := c.pipeline(cc); p != nil {
			return p.Execute(ctx, req)
		}
		return rpcpb.NewDBClient(cc).Execute(ctx, req)
	})
}

// Query sends reads; they are retried on another endpoint when one is
// unavailable.
func (c *Client) Query(ctx context.Context, req *rpcpb.QueryRequest) (*rpcpb.QueryResponse, error) {
	return call(c, ctx, readCall, func(ctx context.Context, cc *grpc.ClientConn) (*rpcpb.QueryResponse, error) {
		if p := c.pipeline(cc); p != nil {
			return p.Query(ctx, req)
		}
		return rpcpb.NewDBClient(cc).Query(ctx, req)
	})
}

// Request sends a mix of reads and writes; it is retried like a write.
func (c *Client) Request(ctx context.Context, req *rpcpb.RequestRequest) (*rpcpb.RequestResponse, error) {
	return call(c, ctx, writeCall, func(ctx context.Context, cc *grpc.ClientConn) (*rpcpb.RequestResponse, error) {
		if p := c.pipeline(cc); p != nil {
			return p.Request(ctx, req)
		}
		return rpcpb.NewDBClient(cc).Request(ctx, req)
	})
}

// Status returns the status of the first endpoint that answers, and that
// endpoint.
func (c *Client) Status(ctx context.Context) (*rpcpb.StatusResponse, string, error) {
	var resp *rpcpb.StatusResponse
	var ep string
	err := c.do(ctx, readCall, func(ctx context.Context, cc *grpc.ClientConn) error {
		var err error
		resp, err = rpcpb.NewDBClient(cc).Status(ctx, &rpcpb.StatusRequest{})
		ep = cc.Target()
		return err
	})
	return resp, ep, err
}

// StatusOf returns the status of one endpoint, without failover.
func (c *Client) StatusOf(ctx context.Context, endpoint string) (*rpcpb.StatusResponse, error) {
	cc, ctx, cancel, err := c.direct(ctx, endpoint)
	if err != nil {
		return nil, err
	}
	defer cancel()
	return rpcpb.NewDBClient(cc).Status(ctx, &rpcpb.StatusRequest{})
}

// Backup opens a backup stream on the current endpoint (failing over
// until one accepts the call). The caller reads chunks until the one with
// Last set, and checks its size and SHA-256.
func (c *Client) Backup(ctx context.Context, req *rpcpb.BackupRequest) (grpc.ServerStreamingClient[rpcpb.BackupChunk], error) {
	var st grpc.ServerStreamingClient[rpcpb.BackupChunk]
	err := c.do(ctx, readCall, func(ctx context.Context, cc *grpc.ClientConn) error {
		var err error
		st, err = rpcpb.NewDBClient(cc).Backup(ctx, req)
		return err
	})
	return st, err
}

// restoreChunkSize is the data sent per RestoreRequest.
const restoreChunkSize = 1 << 20

// Restore uploads data (a SQLite file or SQL text) to the current
// endpoint, which replaces the database on every node through the log.
// It is not retried once data was sent.
func (c *Client) Restore(ctx context.Context, format command.RestoreFormat, data io.Reader) (*rpcpb.RestoreResponse, error) {
	var resp *rpcpb.RestoreResponse
	attempts := 0
	err := c.do(ctx, writeCall, func(ctx context.Context, cc *grpc.ClientConn) error {
		// A retry must resend from the start: only possible if data seeks.
		if attempts++; attempts > 1 {
			seeker, ok := data.(io.Seeker)
			if !ok {
				return fmt.Errorf("client: restore: cannot retry on another endpoint: input is not seekable")
			}
			if _, err := seeker.Seek(0, io.SeekStart); err != nil {
				return fmt.Errorf("client: restore: rewind: %w", err)
			}
		}
		st, err := rpcpb.NewDBClient(cc).Restore(ctx)
		if err != nil {
			return err
		}
		buf := make([]byte, restoreChunkSize)
		first := true
		for {
			n, rerr := io.ReadFull(data, buf)
			if n > 0 || first {
				req := &rpcpb.RestoreRequest{Data: buf[:n]}
				if first {
					req.Format = format
					first = false
				}
				if err := st.Send(req); err != nil {
					_, err = st.CloseAndRecv()
					return err
				}
			}
			if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
				break
			}
			if rerr != nil {
				return fmt.Errorf("client: restore: read: %w", rerr)
			}
		}
		resp, err = st.CloseAndRecv()
		return err
	})
	return resp, err
}

// HashOf returns the content hash of one endpoint's database once it has
// applied minIndex, without failover.
func (c *Client) HashOf(ctx context.Context, endpoint string, minIndex uint64) (*rpcpb.HashResponse, error) {
	cc, ctx, cancel, err := c.direct(ctx, endpoint)
	if err != nil {
		return nil, err
	}
	defer cancel()
	return rpcpb.NewDBClient(cc).Hash(ctx, &rpcpb.HashRequest{MinIndex: minIndex})
}

// AddMember asks the cluster to add a node (followers forward to the
// leader). It is retried only when it certainly did not take effect.
func (c *Client) AddMember(ctx context.Context, req *rpcpb.AddMemberRequest) (*rpcpb.AddMemberResponse, error) {
	return call(c, ctx, writeCall, func(ctx context.Context, cc *grpc.ClientConn) (*rpcpb.AddMemberResponse, error) {
		return rpcpb.NewClusterClient(cc).AddMember(ctx, req)
	})
}

// RemoveMember asks the cluster to remove a node.
func (c *Client) RemoveMember(ctx context.Context, req *rpcpb.RemoveMemberRequest) (*rpcpb.MemberChangeResponse, error) {
	return call(c, ctx, writeCall, func(ctx context.Context, cc *grpc.ClientConn) (*rpcpb.MemberChangeResponse, error) {
		return rpcpb.NewClusterClient(cc).RemoveMember(ctx, req)
	})
}

// PromoteMember asks the cluster to make a learner a voter.
func (c *Client) PromoteMember(ctx context.Context, req *rpcpb.PromoteMemberRequest) (*rpcpb.MemberChangeResponse, error) {
	return call(c, ctx, writeCall, func(ctx context.Context, cc *grpc.ClientConn) (*rpcpb.MemberChangeResponse, error) {
		return rpcpb.NewClusterClient(cc).PromoteMember(ctx, req)
	})
}

// TransferLeader asks the leader to hand leadership to a voter and waits
// until it has.
func (c *Client) TransferLeader(ctx context.Context, req *rpcpb.TransferLeaderRequest) (*rpcpb.TransferLeaderResponse, error) {
	return call(c, ctx, writeCall, func(ctx context.Context, cc *grpc.ClientConn) (*rpcpb.TransferLeaderResponse, error) {
		return rpcpb.NewClusterClient(cc).TransferLeader(ctx, req)
	})
}

// Members lists members as the leader sees them.
func (c *Client) Members(ctx context.Context) (*rpcpb.MembersResponse, error) {
	return call(c, ctx, readCall, func(ctx context.Context, cc *grpc.ClientConn) (*rpcpb.MembersResponse, error) {
		return rpcpb.NewClusterClient(cc).Members(ctx, &rpcpb.MembersRequest{})
	})
}
