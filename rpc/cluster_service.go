package rpc

import (
	"context"
	"errors"

	"rdb/cluster"
	"rdb/command"
	"rdb/rpc/rpcpb"
)

// Membership is what the Cluster service needs from the node;
// *cluster.Node satisfies it.
type Membership interface {
	AddMember(ctx context.Context, m *command.Member) (uint64, error)
	RemoveMember(ctx context.Context, id uint64, force bool) (uint64, error)
	PromoteMember(ctx context.Context, id uint64, force bool) (uint64, error)
	TransferLeader(ctx context.Context, id uint64) error
	Status(ctx context.Context) (cluster.Status, error)
	IsLeader() bool
	Leader() (uint64, string)
	ClusterID() uint64
	CheckClusterID(id uint64) error
}

var _ Membership = (*cluster.Node)(nil)

// ClusterService implements rdb.v1.Cluster. Calls that need the leader
// are forwarded to it once (at most one hop).
type ClusterService struct {
	rpcpb.UnimplementedClusterServer
	node Membership
	srv  *Server // for its connection cache
}

// NewClusterService returns the membership service for node; srv provides
// connections for forwarding.
func NewClusterService(node Membership, srv *Server) *ClusterService {
	return &ClusterService{node: node, srv: srv}
}

// leaderClient returns a client of the leader's Cluster service; its
// errors mean the request was not sent (NOT_APPLIED).
func (c *ClusterService) leaderClient(ctx context.Context) (rpcpb.ClusterClient, context.Context, error) {
	cc, fctx, err := c.srv.leaderConn(ctx)
	if err != nil {
		return nil, nil, err
	}
	return rpcpb.NewClusterClient(cc), fctx, nil
}

// onLeader runs local on the leader, or forward elsewhere.
func onLeader[T any](ctx context.Context, c *ClusterService, local func() (T, error), forward func(ctx context.Context, cl rpcpb.ClusterClient) (T, error)) (T, error) {
	var zero T
	if c.node.IsLeader() {
		v, err := local()
		if !errors.Is(err, cluster.ErrNotLeader) {
			if err != nil {
				return zero, toStatus(err)
			}
			return v, nil
		}
	}
	cl, fctx, err := c.leaderClient(ctx)
	if err != nil {
		return zero, err
	}
	v, err := forward(fctx, cl)
	return v, forwardError(err)
}

// Members implements rdb.v1.Cluster.
func (c *ClusterService) Members(ctx context.Context, req *rpcpb.MembersRequest) (*rpcpb.MembersResponse, error) {
	return onLeader(ctx, c, func() (*rpcpb.MembersResponse, error) {
		st, err := c.node.Status(ctx)
		if err != nil {
			return nil, err
		}
		if st.LeaderID != st.ID {
			return nil, cluster.ErrNotLeader
		}
		return &rpcpb.MembersResponse{Members: memberInfos(st), LeaderId: st.LeaderID, ClusterId: st.ClusterID}, nil
	}, func(ctx context.Context, cl rpcpb.ClusterClient) (*rpcpb.MembersResponse, error) {
		return cl.Members(ctx, req)
	})
}

func memberInfos(st cluster.Status) []*rpcpb.MemberInfo {
	out := make([]*rpcpb.MemberInfo, 0, len(st.Members))
	for _, m := range st.Members {
		out = append(out, &rpcpb.MemberInfo{
			Id: m.ID, Role: m.Role, Voter: m.Voter, ClientAddr: m.ClientAddr, PeerAddr: m.PeerAddr,
			MatchIndex: m.MatchIndex, Lag: m.Lag, Reachable: m.Reachable, StayLearner: m.StayLearner,
		})
	}
	return out
}

// AddMember implements rdb.v1.Cluster.
func (c *ClusterService) AddMember(ctx context.Context, req *rpcpb.AddMemberRequest) (*rpcpb.AddMemberResponse, error) {
	// Every member holds the same cluster id: refuse a node meant for
	// another cluster before anything is proposed or forwarded.
	if err := c.node.CheckClusterID(req.GetClusterId()); err != nil {
		return nil, toStatus(err)
	}
	return onLeader(ctx, c, func() (*rpcpb.AddMemberResponse, error) {
		idx, err := c.node.AddMember(ctx, &command.Member{Id: req.GetId(), PeerAddr: req.GetPeerAddr(), ClientAddr: req.GetClientAddr(), StayLearner: req.GetStayLearner()})
		if err != nil {
			return nil, err
		}
		st, err := c.node.Status(ctx)
		if err != nil {
			return nil, err
		}
		return &rpcpb.AddMemberResponse{Members: memberInfos(st), RaftIndex: idx, ClusterId: st.ClusterID}, nil
	}, func(ctx context.Context, cl rpcpb.ClusterClient) (*rpcpb.AddMemberResponse, error) {
		return cl.AddMember(ctx, req)
	})
}

// RemoveMember implements rdb.v1.Cluster.
func (c *ClusterService) RemoveMember(ctx context.Context, req *rpcpb.RemoveMemberRequest) (*rpcpb.MemberChangeResponse, error) {
	return onLeader(ctx, c, func() (*rpcpb.MemberChangeResponse, error) {
		idx, err := c.node.RemoveMember(ctx, req.GetId(), req.GetForce())
		if err != nil {
			return nil, err
		}
		return &rpcpb.MemberChangeResponse{RaftIndex: idx}, nil
	}, func(ctx context.Context, cl rpcpb.ClusterClient) (*rpcpb.MemberChangeResponse, error) {
		return cl.RemoveMember(ctx, req)
	})
}

// PromoteMember implements rdb.v1.Cluster.
func (c *ClusterService) PromoteMember(ctx context.Context, req *rpcpb.PromoteMemberRequest) (*rpcpb.MemberChangeResponse, error) {
	return onLeader(ctx, c, func() (*rpcpb.MemberChangeResponse, error) {
		idx, err := c.node.PromoteMember(ctx, req.GetId(), req.GetForce())
		if err != nil {
			return nil, err
		}
		return &rpcpb.MemberChangeResponse{RaftIndex: idx}, nil
	}, func(ctx context.Context, cl rpcpb.ClusterClient) (*rpcpb.MemberChangeResponse, error) {
		return cl.PromoteMember(ctx, req)
	})
}

// TransferLeader implements rdb.v1.Cluster.
func (c *ClusterService) TransferLeader(ctx context.Context, req *rpcpb.TransferLeaderRequest) (*rpcpb.TransferLeaderResponse, error) {
	return onLeader(ctx, c, func() (*rpcpb.TransferLeaderResponse, error) {
		if err := c.node.TransferLeader(ctx, req.GetId()); err != nil {
			return nil, err
		}
		id, _ := c.node.Leader()
		return &rpcpb.TransferLeaderResponse{LeaderId: id}, nil
	}, func(ctx context.Context, cl rpcpb.ClusterClient) (*rpcpb.TransferLeaderResponse, error) {
		return cl.TransferLeader(ctx, req)
	})
}
