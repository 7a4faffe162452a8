package rpc

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"rdb/cluster"
	"rdb/rpc/client"
)

// ClusterChecker is what the cluster-id interceptors need of a node.
type ClusterChecker interface {
	// CheckClusterID returns an error wrapping cluster.ErrWrongCluster
	// when id is known and differs from the node's cluster id.
	CheckClusterID(id uint64) error
}

// checkCluster refuses a call or stream whose metadata names another
// cluster (client.MetadataClusterID, sent by peers and by clients pinned
// with client.Config.ClusterID) with FailedPrecondition; who says who
// sent it, for the message of a malformed id. A call without the key
// passes.
func checkCluster(ctx context.Context, node ClusterChecker, who string) error {
	md, _ := metadata.FromIncomingContext(ctx)
	ids := md.Get(client.MetadataClusterID)
	if len(ids) == 0 {
		return nil
	}
	if len(ids) > 1 {
		return status.Errorf(codes.InvalidArgument, "%d cluster ids in one call's metadata", len(ids))
	}
	id, err := cluster.ParseClusterID(ids[0])
	if err != nil {
		return status.Errorf(codes.InvalidArgument, "%s %v", who, err)
	}
	if err := node.CheckClusterID(id); err != nil {
		return client.ErrorWithReason(codes.FailedPrecondition, userMessage(err), client.ReasonWrongCluster)
	}
	return nil
}

// ClusterIDUnaryInterceptor refuses unary calls from clients pinned to
// another cluster with FailedPrecondition.
func ClusterIDUnaryInterceptor(node ClusterChecker) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if err := checkCluster(ctx, node, "client pinned"); err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// ClusterIDStreamInterceptor is ClusterIDUnaryInterceptor for streams.
func ClusterIDStreamInterceptor(node ClusterChecker) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if err := checkCluster(ss.Context(), node, "client pinned"); err != nil {
			return err
		}
		return handler(srv, ss)
	}
}
