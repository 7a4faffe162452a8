package client

import (
	"context"
	"errors"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"rdb/rpc/rpcpb"
)

// Metadata of a Pipeline stream: the server announces, in its response
// header, the largest request message it accepts; the client announces,
// in the stream's metadata, the largest reply message it accepts.
const (
	MetadataPipelineMaxRequest = "rdb-pipeline-max-request"
	MetadataPipelineMaxReply   = "rdb-pipeline-max-reply"
)

// Limits of what one Pipeline message carries. A call larger than the
// largest batch goes as a unary call, so that the server's refusal of an
// oversized request is that call's error alone.
const (
	pipelineMaxBatchBytes = 1 << 20
	pipelineMaxBatchCalls = 512
	// pipelineCallOverhead bounds what a call's id (11 bytes with its
	// tag), timeout (11) and framing in the message (6) add to its size.
	pipelineCallOverhead = 28
)

// ErrNoPipeline is the error of a call that must be sent as a unary call
// instead: the server has no Pipeline method (an older version), or the
// call is larger than a message may be. The synchronous methods do that
// themselves; callers of Go send such a call again another way.
var ErrNoPipeline = errors.New("client: call cannot be pipelined")

// Pipeline sends the Execute, Query and Request calls of one connection
// over a single Pipeline stream: calls made while others are on their way
// travel together in one message, and the server's replies come back the
// same way. At concurrency 1 a call goes alone, as soon as it is made; at
// concurrency 64 the per-call cost of gRPC (framing, system calls, a
// goroutine per call) is shared by every call of a message.
//
// A call keeps the meaning and the errors it has as a unary call. If the
// stream breaks, the calls on it fail as a broken connection fails a
// unary call: Unavailable, with the outcome of writes unknown. A call
// whose context ends returns at once; the server still sees the deadline
// (timeout_ms) but not a cancellation. Calls larger than a message's
// limit, and every call to a server without the Pipeline method, are sent
// as unary calls.
//
// A Pipeline owns its sender goroutine and, while a stream is open, the
// stream's receiver; Close stops them.
type Pipeline struct {
	cc      *grpc.ClientConn
	md      metadata.MD
	maxRecv int

	ctx    context.Context
	cancel context.CancelFunc
	wake   chan struct{}
	wg     sync.WaitGroup

	mu     sync.Mutex // guards the fields below
	queue  []*pipelineCall
	nextID uint64
	closed bool

	unary    atomic.Bool  // the server has no Pipeline method
	maxBatch atomic.Int64 // bytes of calls per message, after the server's limit
}

type pipelineCall struct {
	msg  *rpcpb.PipelineCall
	size int
	// Exactly one of done and onDone is set: done (buffered, so delivery
	// never blocks) for a caller that waits, onDone for a call of Go.
	done   chan pipelineResult
	onDone func(*rpcpb.PipelineReply, error)
}

// finish delivers the call's outcome.
func (c *pipelineCall) finish(r pipelineResult) {
	if c.onDone != nil {
		c.onDone(r.reply, r.err)
		return
	}
	c.done <- r
}

type pipelineResult struct {
	reply *rpcpb.PipelineReply
	err   error
}

// NewPipeline returns a Pipeline over cc and starts its sender. Its
// streams carry md as their metadata; maxRecv is the largest reply
// message the connection accepts (its gRPC receive limit). It opens a
// stream at the first call.
func NewPipeline(cc *grpc.ClientConn, md metadata.MD, maxRecv int) *Pipeline {
	ctx, cancel := context.WithCancel(context.Background())
	p := &Pipeline{cc: cc, md: md.Copy(), maxRecv: maxRecv, ctx: ctx, cancel: cancel, wake: make(chan struct{}, 1)}
	p.md.Set(MetadataPipelineMaxReply, strconv.Itoa(maxRecv))
	p.maxBatch.Store(pipelineMaxBatchBytes)
	p.wg.Add(1)
	go p.run()
	return p
}

// Execute sends an Execute call.
func (p *Pipeline) Execute(ctx context.Context, req *rpcpb.ExecuteRequest) (*rpcpb.ExecuteResponse, error) {
	return pipelined(p, ctx, &rpcpb.PipelineCall{Call: &rpcpb.PipelineCall_Execute{Execute: req}}, (*rpcpb.PipelineReply).GetExecute,
		func(ctx context.Context) (*rpcpb.ExecuteResponse, error) {
			return rpcpb.NewDBClient(p.cc).Execute(ctx, req)
		})
}

// Query sends a Query call.
func (p *Pipeline) Query(ctx context.Context, req *rpcpb.QueryRequest) (*rpcpb.QueryResponse, error) {
	return pipelined(p, ctx, &rpcpb.PipelineCall{Call: &rpcpb.PipelineCall_Query{Query: req}}, (*rpcpb.PipelineReply).GetQuery,
		func(ctx context.Context) (*rpcpb.QueryResponse, error) {
			return rpcpb.NewDBClient(p.cc).Query(ctx, req)
		})
}

// Request sends a Request call.
func (p *Pipeline) Request(ctx context.Context, req *rpcpb.RequestRequest) (*rpcpb.RequestResponse, error) {
	return pipelined(p, ctx, &rpcpb.PipelineCall{Call: &rpcpb.PipelineCall_Request{Request: req}}, (*rpcpb.PipelineReply).GetRequest,
		func(ctx context.Context) (*rpcpb.RequestResponse, error) {
			return rpcpb.NewDBClient(p.cc).Request(ctx, req)
		})
}

// pipelined sends call and returns the response get takes from its
// reply; when the call must go unary (too large, or a server without
// Pipeline) it returns what unary answers instead.
func pipelined[T comparable](p *Pipeline, ctx context.Context, call *rpcpb.PipelineCall,
	get func(*rpcpb.PipelineReply) T, unary func(context.Context) (T, error)) (T, error) {
	var none T
	r, err := p.roundTrip(ctx, call)
	if errors.Is(err, ErrNoPipeline) {
		return unary(p.outgoing(ctx))
	}
	if err != nil {
		return none, err
	}
	resp := get(r)
	if resp == none {
		// A reply of another kind: a server bug.
		return none, status.Errorf(codes.Internal, "pipeline: reply %d does not answer the call's kind", r.GetId())
	}
	return resp, nil
}

// outgoing adds the pipeline's metadata to ctx, for a unary call: a key
// the pipeline sets replaces the caller's values, as on the stream, where
// only the pipeline's metadata goes. (Joining them sent a forwarding
// node's cluster id twice, which the leader refuses.)
func (p *Pipeline) outgoing(ctx context.Context) context.Context {
	md, _ := metadata.FromOutgoingContext(ctx) // a copy
	if md == nil {
		md = metadata.MD{}
	}
	for k, v := range p.md {
		md[k] = v
	}
	return metadata.NewOutgoingContext(ctx, md)
}

// Close fails the calls not yet sent and those waiting for a reply
// (ErrClosed) and stops the pipeline's goroutines. It is idempotent.
func (p *Pipeline) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	queued := p.queue
	p.queue = nil
	p.mu.Unlock()
	for _, c := range queued {
		c.finish(pipelineResult{err: ErrClosed})
	}
	p.cancel()
	p.wg.Wait()
}

// roundTrip queues a call and waits for its reply. A reply that carries an
// error comes back as that error.
func (p *Pipeline) roundTrip(ctx context.Context, msg *rpcpb.PipelineCall) (*rpcpb.PipelineReply, error) {
	c, err := p.newCall(msg)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		left := time.Until(dl).Milliseconds()
		if left <= 0 {
			return nil, status.FromContextError(context.DeadlineExceeded).Err()
		}
		msg.TimeoutMs = left
	}
	c.done = make(chan pipelineResult, 1)
	if err := p.enqueue(c); err != nil {
		return nil, err
	}
	select {
	case r := <-c.done:
		if r.err != nil {
			return nil, r.err
		}
		if e := r.reply.GetError(); e != nil {
			return nil, status.FromProto(&spb.Status{Code: e.GetCode(), Message: e.GetMessage(), Details: e.GetDetails()}).Err()
		}
		return r.reply, nil
	case <-ctx.Done():
		p.withdraw(c)
		return nil, status.FromContextError(ctx.Err()).Err()
	}
}

// Go sends msg (a call whose id the pipeline sets; its timeout_ms is the
// caller's) without waiting: done is called once with the server's reply,
// whose id is the pipeline's, or with the error that would have failed a
// synchronous call (a reply carrying an error status is a reply). done
// must not block: it runs on one of the pipeline's goroutines. When Go
// does not take the call it returns the reason without calling done:
// ErrNoPipeline (send it unary) or ErrClosed. Unlike the synchronous
// methods, no timer ends the wait at the call's deadline: the server
// answers by then, and a connection that dies fails the call once the
// stream breaks (keepalive).
func (p *Pipeline) Go(msg *rpcpb.PipelineCall, done func(*rpcpb.PipelineReply, error)) error {
	c, err := p.newCall(msg)
	if err != nil {
		return err
	}
	c.onDone = done
	return p.enqueue(c)
}

// newCall returns the call that sends msg, or ErrNoPipeline when msg
// must go as a unary call (the server has no Pipeline method, or msg is
// larger than a message).
func (p *Pipeline) newCall(msg *rpcpb.PipelineCall) (*pipelineCall, error) {
	if p.unary.Load() {
		return nil, ErrNoPipeline
	}
	size := msg.SizeVT()
	if int64(size) > p.maxBatch.Load() {
		return nil, ErrNoPipeline
	}
	// The id and the timeout may be set after size was taken: count them
	// and the call's framing in the message at their largest.
	return &pipelineCall{msg: msg, size: size + pipelineCallOverhead}, nil
}

// enqueue gives c an id and queues it for the sender.
func (p *Pipeline) enqueue(c *pipelineCall) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrClosed
	}
	p.nextID++
	c.msg.Id = p.nextID
	p.queue = append(p.queue, c)
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
	return nil
}

// withdraw takes c off the queue if it was not sent yet.
func (p *Pipeline) withdraw(c *pipelineCall) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, q := range p.queue {
		if q == c {
			p.queue = append(p.queue[:i], p.queue[i+1:]...)
			return
		}
	}
}

// take removes the next message's worth of calls from the queue.
func (p *Pipeline) take() []*pipelineCall {
	p.mu.Lock()
	defer p.mu.Unlock()
	limit := int(p.maxBatch.Load())
	n, bytes := 0, 0
	for n < len(p.queue) && n < pipelineMaxBatchCalls {
		if n > 0 && bytes+p.queue[n].size > limit {
			break
		}
		bytes += p.queue[n].size
		n++
	}
	batch := make([]*pipelineCall, n)
	copy(batch, p.queue[:n])
	p.queue = append(p.queue[:0], p.queue[n:]...)
	return batch
}

// run is the sender: it sends what is queued, one message at a time, on
// the current stream, opening a new one when there is none or it broke.
func (p *Pipeline) run() {
	defer p.wg.Done()
	var st *pipelineStream
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-p.wake:
		}
		// Let the goroutines that are ready to run make their calls
		// first (a reply message wakes many callers at once, and each
		// makes its next call): they then share this message.
		runtime.Gosched()
		for {
			batch := p.take()
			if len(batch) == 0 {
				break
			}
			for {
				if st == nil || st.broken() {
					var err error
					if st, err = p.open(); err != nil {
						st = nil
						deliverAll(batch, err)
						break
					}
				}
				if st.register(batch) {
					if !st.send(batch) {
						st = nil
					}
					break
				}
				st = nil // it broke before the calls were on it: try a new one
			}
		}
	}
}

func deliverAll(calls []*pipelineCall, err error) {
	for _, c := range calls {
		c.finish(pipelineResult{err: err})
	}
}

// open starts a stream and its receiver. Its errors mean nothing was sent.
func (p *Pipeline) open() (*pipelineStream, error) {
	if p.unary.Load() {
		return nil, ErrNoPipeline
	}
	ctx, cancel := context.WithCancel(metadata.NewOutgoingContext(p.ctx, p.md))
	st, err := rpcpb.NewDBClient(p.cc).Pipeline(ctx)
	if err != nil {
		cancel()
		if p.ctx.Err() != nil {
			return nil, ErrClosed
		}
		return nil, notApplied(err)
	}
	// The server's header says how large a message it takes (it sends
	// the header as soon as the stream starts).
	h, err := st.Header()
	if err != nil {
		cancel()
		if p.ctx.Err() != nil {
			return nil, ErrClosed
		}
		if status.Code(err) == codes.Unimplemented {
			p.unary.Store(true)
			return nil, ErrNoPipeline
		}
		return nil, notApplied(err)
	}
	if v := h.Get(MetadataPipelineMaxRequest); len(v) == 1 {
		if n, err := strconv.Atoi(v[0]); err == nil && n > 0 {
			p.maxBatch.Store(int64(min(pipelineMaxBatchBytes, n)))
		}
	}
	s := &pipelineStream{p: p, st: st, cancel: cancel, inflight: make(map[uint64]*pipelineCall)}
	p.wg.Add(1)
	go s.receive()
	return s, nil
}

// notApplied marks the error of a call that never left this process, so
// that it may be sent again (IsNotApplied).
func notApplied(err error) error {
	st := status.Convert(err)
	if st.Code() == codes.Canceled || st.Code() == codes.DeadlineExceeded || IsNotApplied(err) {
		return err
	}
	return ErrorWithReason(codes.Unavailable, "pipeline: "+st.Message(), ReasonNotApplied)
}

// pipelineStream is one Pipeline stream and the calls sent on it that
// wait for their reply.
type pipelineStream struct {
	p      *Pipeline
	st     rpcpb.DB_PipelineClient
	cancel context.CancelFunc

	mu       sync.Mutex // guards the fields below
	inflight map[uint64]*pipelineCall
	failed   bool
	replied  bool // a reply came: the server has the method
}

func (s *pipelineStream) broken() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failed
}

// register records the calls as waiting for a reply; false if the stream
// has already failed (the calls are not on it).
func (s *pipelineStream) register(batch []*pipelineCall) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed {
		return false
	}
	for _, c := range batch {
		s.inflight[c.msg.GetId()] = c
	}
	return true
}

// send writes one message of calls; false if the stream broke (the
// receiver fails the calls waiting on it).
func (s *pipelineStream) send(batch []*pipelineCall) bool {
	msgs := make([]*rpcpb.PipelineCall, len(batch))
	for i, c := range batch {
		msgs[i] = c.msg
	}
	if err := s.st.Send(&rpcpb.PipelineRequest{Calls: msgs}); err != nil {
		// io.EOF: the server ended the stream, and the receiver gets its
		// status; anything else: end it here so that the receiver stops.
		s.cancel()
		return false
	}
	return true
}

// receive delivers replies until the stream ends, then fails the calls
// still waiting on it.
func (s *pipelineStream) receive() {
	defer s.p.wg.Done()
	for {
		resp, err := s.st.Recv()
		if err != nil {
			s.fail(err)
			return
		}
		s.mu.Lock()
		s.replied = true
		for _, r := range resp.GetReplies() {
			if c, ok := s.inflight[r.GetId()]; ok {
				delete(s.inflight, r.GetId())
				c.finish(pipelineResult{reply: r})
			}
		}
		s.mu.Unlock()
	}
}

// fail ends the stream and fails the calls waiting on it the way a broken
// connection fails unary calls.
func (s *pipelineStream) fail(err error) {
	s.cancel()
	s.mu.Lock()
	s.failed = true
	calls := s.inflight
	s.inflight = nil
	replied := s.replied
	s.mu.Unlock()
	code := status.Code(err)
	switch {
	case s.p.ctx.Err() != nil:
		err = ErrClosed
	case code == codes.Unimplemented && !replied:
		// An older server: nothing was run; every call goes unary.
		s.p.unary.Store(true)
		err = ErrNoPipeline
	case IsNotApplied(err):
		// The server stopped taking calls (it is shutting down) after it
		// answered those it ran.
	case code == codes.FailedPrecondition || code == codes.InvalidArgument ||
		code == codes.ResourceExhausted || code == codes.PermissionDenied:
		// The server refused the stream or a message before running the
		// calls still waiting (it answers every call it ran before it
		// ends the stream): they did not take effect.
	default:
		st := status.Convert(err)
		err = ErrorWithReason(codes.Unavailable, "pipeline stream broke: "+st.Message(), ReasonOutcomeUnknown)
	}
	for _, c := range calls {
		c.finish(pipelineResult{err: err})
	}
}
