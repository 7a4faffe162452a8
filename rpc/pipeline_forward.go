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
	fc := &rpcpb.PipelineCall{Call: c.GetCall(), TimeoutMs: callTimeoutMs(c)}
	err = s.forwarder(cc).Go(fc, func(r *rpcpb.PipelineReply, err error) {
		if errors.Is(err, client.ErrNoPipeline) {
			// The leader has no Pipeline method: the usual path sends
			// the call unary.
			s.workers.run(func() { reply(s.pipelineCall(ctx, c, maxReply)) })
			return
		}
		if err == nil && r.GetExecute() == nil && r.GetError() == nil {
			err = status.Errorf(codes.Internal, "pipeline: the leader's reply %d does not answer an Execute call", r.GetId())
		}
		if err != nil {
			r, err = &rpcpb.PipelineReply{}, forwardError(err)
		}
		r.Id = callID
		size := finishReply(r, err, maxReply)
		if s.cfg.Metrics != nil {
			s.cfg.Metrics.observeCode(rpcpb.DB_Execute_FullMethodName, time.Since(start), codes.Code(r.GetError().GetCode()))
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
