package rpc

import (
	"context"
	"errors"
	"io"
	"runtime"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"rdb/db"
	"rdb/rpc/client"
	"rdb/rpc/rpcpb"
)

// pipelineMaxRunning bounds the calls of one Pipeline stream that run at
// once; the stream is not read further until one finishes.
const pipelineMaxRunning = 1024

// pipelineMaxCalls bounds the calls of one message (the Go client sends
// at most 512); a message with more ends the stream with InvalidArgument.
const pipelineMaxCalls = 4096

// pipelineMaxTimeout caps a call's timeout_ms (a larger one would
// overflow a time.Duration).
const pipelineMaxTimeout = 24 * time.Hour

// pipelineMaxReplyBatch bounds the bytes of replies sent in one message
// (a larger reply goes alone).
const pipelineMaxReplyBatch = 1 << 20

// Pipeline implements rdb.v1.DB: each call of the stream runs as the unary
// call it carries (on a pooled worker, with its own deadline), and its reply is
// sent as soon as it is done, together with whatever other replies are
// ready. Before it ends the stream, the server answers every call it has
// started, so calls without a reply did not run.
func (s *Server) Pipeline(st rpcpb.DB_PipelineServer) error {
	// Calls run on the pool's workers, whose stacks stay grown: reads run
	// there rather than on one of the database's goroutines (marked once
	// per stream, not per call).
	ctx := db.OnCaller(st.Context())
	if err := st.SendHeader(metadata.Pairs(client.MetadataPipelineMaxRequest, strconv.Itoa(s.MaxRecvMsgSize()))); err != nil {
		return err
	}
	maxReply := 0 // the client's receive limit, if it said
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get(client.MetadataPipelineMaxReply); len(v) == 1 {
			maxReply, _ = strconv.Atoi(v[0])
		}
	}
	// A stream another node forwarded is never forwarded again
	// (leaderConn refuses its calls when this node does not lead).
	forwardedStream := len(metadata.ValueFromIncomingContext(ctx, forwardedKey)) > 0
	out := newReplyQueue()
	if s.cfg.Metrics != nil {
		out.observe = s.cfg.Metrics.replies.Observe
	}
	sent := make(chan error, 1)
	go func() { sent <- out.sendAll(st) }()
	running := make(chan struct{}, pipelineMaxRunning)
	var calls sync.WaitGroup
	// reply delivers a call's reply (one closure per stream, not per call).
	reply := func(r *rpcpb.PipelineReply, size int) {
		<-running
		out.push(r, size)
		calls.Done()
	}
	// The reader owns Recv and starts the calls of each message itself
	// (handing each message to this goroutine first cost a goroutine
	// wake-up per message, issue 7). This goroutine waits for the reader
	// to end or the server to drain, then stops the reader from starting
	// more calls (stopped, under mu) and answers those started. readEnd
	// gets the reader's one error (nil: it was stopped).
	var mu sync.Mutex
	stopped := false
	start := func(c *rpcpb.PipelineCall) error {
		select {
		case running <- struct{}{}:
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		}
		mu.Lock()
		if stopped {
			mu.Unlock()
			<-running
			return nil
		}
		calls.Add(1)
		mu.Unlock()
		if !forwardedStream && s.forwardCall(ctx, c, maxReply, reply) {
			return nil
		}
		s.workers.run(func() { reply(s.pipelineCall(ctx, c, maxReply)) })
		return nil
	}
	readEnd := make(chan error, 1)
	go func() {
		readEnd <- func() error {
			for {
				req, err := st.Recv()
				if err != nil {
					if errors.Is(err, io.EOF) {
						return nil
					}
					return err
				}
				// Draining takes precedence over a message already read.
				select {
				case <-s.draining:
					return errDraining()
				default:
				}
				if n := len(req.GetCalls()); n > pipelineMaxCalls {
					return status.Errorf(codes.InvalidArgument, "pipeline message of %d calls: at most %d", n, pipelineMaxCalls)
				}
				if s.cfg.Metrics != nil {
					s.cfg.Metrics.batch.Observe(float64(len(req.GetCalls())))
				}
				for _, c := range req.GetCalls() {
					if err := start(c); err != nil {
						return err
					}
				}
				mu.Lock()
				done := stopped
				mu.Unlock()
				if done {
					return nil
				}
			}
		}()
	}()
	var endErr error
	select {
	case endErr = <-readEnd:
	case <-s.draining:
		endErr = errDraining()
	}
	mu.Lock()
	stopped = true
	mu.Unlock()
	// Every call started gets its reply before the stream ends: the
	// client takes calls without one as not run.
	calls.Wait()
	out.close()
	if err := <-sent; err != nil && endErr == nil {
		endErr = err
	}
	return endErr
}

// errDraining ends a Pipeline stream when the server drains: the calls
// still waiting on it did not run.
func errDraining() error {
	return client.ErrorWithReason(codes.Unavailable, "node is shutting down", client.ReasonNotApplied)
}

// pipelineCall runs one call and returns its reply and the reply's size.
// ctx is the stream's, marked db.OnCaller.
func (s *Server) pipelineCall(ctx context.Context, c *rpcpb.PipelineCall, maxReply int) (*rpcpb.PipelineReply, int) {
	start := time.Now()
	if ms := callTimeoutMs(c); ms > 0 {
		cc := newCallContext(ctx, start.Add(time.Duration(ms)*time.Millisecond))
		defer cc.release()
		ctx = cc
	}
	reply := &rpcpb.PipelineReply{Id: c.GetId()}
	method := rpcpb.DB_Pipeline_FullMethodName
	var err error
	switch x := c.GetCall().(type) {
	case *rpcpb.PipelineCall_Execute:
		method = rpcpb.DB_Execute_FullMethodName
		var resp *rpcpb.ExecuteResponse
		if resp, err = s.Execute(ctx, x.Execute); err == nil {
			reply.Reply = &rpcpb.PipelineReply_Execute{Execute: resp}
		}
	case *rpcpb.PipelineCall_Query:
		method = rpcpb.DB_Query_FullMethodName
		var resp *rpcpb.QueryResponse
		if resp, err = s.Query(ctx, x.Query); err == nil {
			reply.Reply = &rpcpb.PipelineReply_Query{Query: resp}
		}
	case *rpcpb.PipelineCall_Request:
		method = rpcpb.DB_Request_FullMethodName
		var resp *rpcpb.RequestResponse
		if resp, err = s.Request(ctx, x.Request); err == nil {
			reply.Reply = &rpcpb.PipelineReply_Request{Request: resp}
		}
	default:
		err = status.Errorf(codes.InvalidArgument, "pipeline call %d carries no request", c.GetId())
	}
	size := finishReply(reply, err, maxReply)
	if s.cfg.Metrics != nil {
		s.cfg.Metrics.observeCode(method, time.Since(start), codes.Code(reply.GetError().GetCode()))
	}
	return reply, size
}

// callTimeoutMs is a call's timeout in milliseconds, at most
// pipelineMaxTimeout; 0 for none.
func callTimeoutMs(c *rpcpb.PipelineCall) int64 {
	if ms := c.GetTimeoutMs(); ms > 0 {
		return min(ms, pipelineMaxTimeout.Milliseconds())
	}
	return 0
}

// finishReply completes a call's reply and returns its size: err, or a
// reply larger than the client accepts (maxReply, when set), becomes the
// reply's error status. Too large a reply fails its own call, as it would
// have as a unary call, not the client's whole stream.
func finishReply(reply *rpcpb.PipelineReply, err error, maxReply int) int {
	if err == nil {
		size := reply.SizeVT()
		if maxReply <= 0 || size <= maxReply {
			return size
		}
		err = status.Errorf(codes.ResourceExhausted, "response of %d bytes is larger than the client accepts (%d)", size, maxReply)
	}
	st := status.Convert(err).Proto()
	reply.Reply = &rpcpb.PipelineReply_Error{Error: &rpcpb.CallStatus{Code: st.GetCode(), Message: st.GetMessage(), Details: st.GetDetails()}}
	return reply.SizeVT()
}

// replyQueue collects the replies of a Pipeline stream for its sender.
type replyQueue struct {
	// observe, when set, gets the number of replies of each message sent.
	observe func(float64)

	mu      sync.Mutex
	replies []*rpcpb.PipelineReply
	sizes   []int
	closed  bool
	wake    chan struct{}
}

func newReplyQueue() *replyQueue { return &replyQueue{wake: make(chan struct{}, 1)} }

func (q *replyQueue) push(r *rpcpb.PipelineReply, size int) {
	q.mu.Lock()
	q.replies = append(q.replies, r)
	q.sizes = append(q.sizes, size)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// close tells the sender that no reply follows.
func (q *replyQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// sendAll sends the replies as they come, as many to a message as are
// ready (up to pipelineMaxReplyBatch bytes), until the queue is closed
// and empty. After a failed send it keeps emptying the queue, so that
// pushes never wait, and returns the error.
func (q *replyQueue) sendAll(st rpcpb.DB_PipelineServer) error {
	var sendErr error
	for {
		<-q.wake
		// Let the calls that are finishing push their replies first (an
		// apply completes many at once): they then share this message.
		runtime.Gosched()
		for {
			q.mu.Lock()
			batch, bytes := 0, 0
			for batch < len(q.replies) {
				size := q.sizes[batch]
				if batch > 0 && bytes+size > pipelineMaxReplyBatch {
					break
				}
				bytes += size
				batch++
			}
			replies := q.replies[:batch:batch]
			q.replies = q.replies[batch:]
			q.sizes = q.sizes[batch:]
			done := q.closed && len(q.replies) == 0
			q.mu.Unlock()
			if batch > 0 && sendErr == nil {
				sendErr = st.Send(&rpcpb.PipelineResponse{Replies: replies})
				if q.observe != nil {
					q.observe(float64(batch))
				}
			}
			if done {
				return sendErr
			}
			if batch == 0 {
				break
			}
		}
	}
}
