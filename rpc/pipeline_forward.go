package rpc

import (
	"context"
	"errors"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/status"

	"rdb/rpc/client"
	"rdb/rpc/rpcpb"
)

// forwardCall hands an Execute call of a follower's Pipeline stream
// straight to the forwarding pipeline to the leader, without a worker
// goroutine waiting for it: the leader's reply goes back under the
// call's id through reply (which must not block). It returns false, having
// done nothing, when the call must take the usual path (pipelineCall on a
// worker): it is not an Execute call, this node leads or knows no leader,
// the request breaks a limit (the usual path says which), or the
// connection to the leader is not ready.
//
// The usual path costs a forwarded write a worker hand-off, a context
// with a timer for its deadline and a goroutine parked on the reply: a
// fifth of a forwarding follower's CPU at 64 concurrent inserts (issue
// 7). Here the deadline travels to the leader as timeout_ms, and the
// leader answers by then; if the connection dies instead, the call fails
// when the stream breaks (keepalive), later than its deadline.
func (s *Server) forwardCall(ctx context.Context, c *rpcpb.PipelineCall, maxReply int, reply func(*rpcpb.PipelineReply, int)) bool {
	x, ok := c.GetCall().(*rpcpb.PipelineCall_Execute)
	if !ok || s.node.IsLeader() {
		return false
	}
	id, addr := s.node.Leader()
	if id == 0 || id == s.node.ID() || addr == "" {
		return false
	}
	if s.checkRequest(x.Execute, x.Execute.GetStatements()) != nil {
		return false
	}
	cc, err := s.conn(addr)
	if err != nil || cc.GetState() != connectivity.Ready {
		return false
	}
	start := time.Now()
	callID := c.GetId()
	fc := &rpcpb.PipelineCall{Call: c.GetCall()}
	if ms := c.GetTimeoutMs(); ms > 0 { // as pipelineCall reads it
		fc.TimeoutMs = min(ms, pipelineMaxTimeout.Milliseconds())
	}
	err = s.forwarder(cc).Go(fc, func(r *rpcpb.PipelineReply, err error) {
		if errors.Is(err, client.ErrNoPipeline) {
			// The leader has no Pipeline method: the usual path sends
			// the call unary.
			s.workers.run(func() { reply(s.pipelineCall(ctx, c, maxReply)) })
			return
		}
		if err == nil && r.GetReply() == nil {
			err = status.Errorf(codes.Internal, "pipeline: the leader's reply %d carries nothing", r.GetId())
		}
		if err == nil && r.GetExecute() == nil && r.GetError() == nil {
			err = status.Errorf(codes.Internal, "pipeline: the leader's reply %d does not answer an Execute call", r.GetId())
		}
		size := 0
		if err == nil {
			r.Id = callID
			if size = r.SizeVT(); maxReply > 0 && size > maxReply {
				err = status.Errorf(codes.ResourceExhausted, "response of %d bytes is larger than the client accepts (%d)", size, maxReply)
			}
		}
		if err != nil {
			st := status.Convert(forwardError(err)).Proto()
			r = &rpcpb.PipelineReply{Id: callID, Reply: &rpcpb.PipelineReply_Error{Error: &rpcpb.CallStatus{Code: st.GetCode(), Message: st.GetMessage(), Details: st.GetDetails()}}}
			size = r.SizeVT()
		}
		if s.cfg.Metrics != nil {
			s.cfg.Metrics.observe(rpcpb.DB_Execute_FullMethodName, time.Since(start), replyError(r))
		}
		reply(r, size)
	})
	if err != nil {
		return false
	}
	if s.cfg.Metrics != nil {
		s.cfg.Metrics.forwarded.Inc()
	}
	return true
}

// replyError is the error a reply carries, for metrics (nil for none).
func replyError(r *rpcpb.PipelineReply) error {
	e := r.GetError()
	if e == nil {
		return nil
	}
	return status.Error(codes.Code(e.GetCode()), e.GetMessage())
}
