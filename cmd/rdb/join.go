package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"rdb/cluster"
	"rdb/rpc/client"
	"rdb/rpc/rpcpb"
)

// hasRaftLog reports whether dataDir already holds a raft log (a node
// that restarts, rather than a new one).
func hasRaftLog(dataDir string) bool {
	names, err := filepath.Glob(filepath.Join(dataDir, "raft", "*.wal"))
	return err == nil && len(names) > 0
}

// joinCluster asks the members at --join to add this node, retrying
// while the cluster cannot answer (no leader, unreachable), and returns
// the members, whose peer addresses the transport needs before the leader
// starts replicating to this node. A refusal (id or address in use, bad
// request) is returned at once.
func joinCluster(ctx context.Context, o *serveOptions, clientAddr, peerAddr string, logger *slog.Logger) (*rpcpb.AddMemberResponse, error) {
	c, err := client.New(client.Config{Endpoints: strings.Split(o.join, ",")})
	if err != nil {
		return nil, fmt.Errorf("join: %w", err)
	}
	defer c.Close()
	req := &rpcpb.AddMemberRequest{Id: o.id, PeerAddr: peerAddr, ClientAddr: clientAddr, StayLearner: o.learner}
	if o.clusterID != "" {
		if req.ClusterId, err = cluster.ParseClusterID(o.clusterID); err != nil {
			return nil, fmt.Errorf("--cluster-id: %w", err)
		}
	}
	delay := 200 * time.Millisecond
	for {
		actx, cancel := context.WithTimeout(ctx, 15*time.Second)
		resp, err := c.AddMember(actx, req)
		cancel()
		if err == nil {
			logger.Info("joined the cluster as a learner", "id", o.id, "raft_index", resp.GetRaftIndex(), "stay_learner", o.learner)
			return resp, nil
		}
		switch status.Code(err) {
		case codes.Unimplemented:
			fmt.Fprintf(os.Stderr, "Error: %s does not answer as an rdb cluster: %s\n", o.join, status.Convert(err).Message())
			return nil, fmt.Errorf("join: %s is not an rdb cluster", o.join)
		case codes.AlreadyExists, codes.InvalidArgument, codes.FailedPrecondition, codes.PermissionDenied, codes.NotFound:
			fmt.Fprintf(os.Stderr, "Error: the cluster refused to add node %d: %s\n", o.id, status.Convert(err).Message())
			return nil, fmt.Errorf("join refused: %s", status.Convert(err).Message())
		}
		logger.Warn("join: cluster not ready, retrying", "err", status.Convert(err).Message())
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, 2*time.Second)
	}
}
