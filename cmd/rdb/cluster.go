package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"
	"google.golang.org/grpc/status"

	"rdb/cluster"
	"rdb/rpc/client"
	"rdb/rpc/rpcpb"
)

// clusterOptions are the flags every `rdb cluster` subcommand shares.
type clusterOptions struct {
	endpoints string
	timeout   time.Duration
	clusterID string
}

// withClient runs fn with a client of the endpoints and a context bounded
// by --timeout.
func (o *clusterOptions) withClient(parent context.Context, fn func(ctx context.Context, c *client.Client) error) error {
	c, err := client.New(client.Config{Endpoints: strings.Split(o.endpoints, ","), RequestTimeout: o.timeout, ClusterID: o.clusterID})
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(parent, o.timeout)
	defer cancel()
	return fn(ctx, c)
}

// clusterError turns a gRPC error into one clear line.
func clusterError(what string, err error) error {
	return fmt.Errorf("%s: %s", what, status.Convert(err).Message())
}

func newClusterCommand() *cobra.Command {
	o := &clusterOptions{}
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Inspect and change cluster membership",
		Long: `Inspect and change cluster membership. Every subcommand may be sent to
any member: followers forward to the leader. Only one membership change
runs at a time.`,
	}
	cmd.PersistentFlags().StringVar(&o.endpoints, "endpoint", "127.0.0.1:5001", "client address of a member (or several, comma-separated)")
	cmd.PersistentFlags().DurationVar(&o.timeout, "timeout", 30*time.Second, "deadline for the call")
	cmd.PersistentFlags().StringVar(&o.clusterID, "cluster-id", "", "refuse nodes of any other cluster (the id `rdb status` prints)")
	cmd.AddCommand(newMembersCommand(o), newAddCommand(o), newRemoveCommand(o), newPromoteCommand(o), newTransferCommand(o))
	return cmd
}

// memberJSONOut is one member in `rdb cluster members --format json`.
type memberJSONOut struct {
	ID          uint64 `json:"id"`
	Role        string `json:"role"`
	Voter       bool   `json:"voter"`
	ClientAddr  string `json:"client_addr"`
	PeerAddr    string `json:"peer_addr"`
	MatchIndex  uint64 `json:"match_index"`
	Lag         uint64 `json:"lag"`
	Reachable   bool   `json:"reachable"`
	StayLearner bool   `json:"stay_learner"`
}

func newMembersCommand(o *clusterOptions) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "members",
		Short: "List members: role, voter or learner, addresses, replication progress",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format == "" {
				format = "json"
				if isatty.IsTerminal(os.Stdout.Fd()) {
					format = "table"
				}
			}
			if format != "json" && format != "table" {
				return fmt.Errorf("--format must be table or json, not %q", format)
			}
			return o.withClient(cmd.Context(), func(ctx context.Context, c *client.Client) error {
				resp, err := c.Members(ctx)
				if err != nil {
					return clusterError("members", err)
				}
				out := []memberJSONOut{}
				for _, m := range resp.GetMembers() {
					out = append(out, memberJSONOut{ID: m.GetId(), Role: m.GetRole(), Voter: m.GetVoter(), ClientAddr: m.GetClientAddr(),
						PeerAddr: m.GetPeerAddr(), MatchIndex: m.GetMatchIndex(), Lag: m.GetLag(), Reachable: m.GetReachable(), StayLearner: m.GetStayLearner()})
				}
				if format == "json" {
					enc := json.NewEncoder(os.Stdout)
					enc.SetIndent("", "  ")
					return enc.Encode(out)
				}
				if id := resp.GetClusterId(); id != 0 {
					fmt.Printf("cluster %s\n", cluster.FormatClusterID(id))
				}
				tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tROLE\tVOTER\tCLIENT\tPEER\tMATCH\tLAG\tREACHABLE")
				for _, m := range out {
					fmt.Fprintf(tw, "%d\t%s\t%v\t%s\t%s\t%d\t%d\t%v\n", m.ID, m.Role, m.Voter, m.ClientAddr, m.PeerAddr, m.MatchIndex, m.Lag, m.Reachable)
				}
				return tw.Flush()
			})
		},
	}
	cmd.Flags().StringVar(&format, "format", "", "table or json (default: table on a terminal, json otherwise)")
	return cmd
}

func newAddCommand(o *clusterOptions) *cobra.Command {
	var id uint64
	var peer, clientAddr string
	var learner bool
	cmd := &cobra.Command{
		Use:   "add",
		Short: "Add a node as a learner (promoted to voter once caught up, unless --learner)",
		Long: `Add a node as a learner. It is promoted to voter automatically once it
has caught up, unless --learner is given. Start the node itself with
'rdb serve --join ...' (which does this for you) or with an empty data
directory and --join.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if id == 0 || peer == "" || clientAddr == "" {
				return fmt.Errorf("--id, --peer-addr and --client-addr are required")
			}
			return o.withClient(cmd.Context(), func(ctx context.Context, c *client.Client) error {
				resp, err := c.AddMember(ctx, &rpcpb.AddMemberRequest{Id: id, PeerAddr: peer, ClientAddr: clientAddr, StayLearner: learner})
				if err != nil {
					return clusterError("add", err)
				}
				fmt.Printf("added node %d as a learner at raft index %d\n", id, resp.GetRaftIndex())
				return nil
			})
		},
	}
	cmd.Flags().Uint64Var(&id, "id", 0, "id of the new node")
	cmd.Flags().StringVar(&peer, "peer-addr", "", "its peer (raft) address")
	cmd.Flags().StringVar(&clientAddr, "client-addr", "", "its client (gRPC) address")
	cmd.Flags().BoolVar(&learner, "learner", false, "keep it a learner")
	return cmd
}

func parseID(s string) (uint64, error) {
	id, err := strconv.ParseUint(s, 10, 64)
	if err != nil || id == 0 {
		return 0, fmt.Errorf("node id must be a positive integer, not %q", s)
	}
	return id, nil
}

func newRemoveCommand(o *clusterOptions) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "remove ID",
		Short: "Remove a node from the cluster",
		Long: `Remove a node from the cluster. The removed node stops serving. A removal
that would leave fewer live voters than a quorum is refused unless --force.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID(args[0])
			if err != nil {
				return err
			}
			return o.withClient(cmd.Context(), func(ctx context.Context, c *client.Client) error {
				resp, err := c.RemoveMember(ctx, &rpcpb.RemoveMemberRequest{Id: id, Force: force})
				if err != nil {
					return clusterError("remove", err)
				}
				fmt.Printf("removed node %d at raft index %d\n", id, resp.GetRaftIndex())
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "remove even if the remaining live voters are no quorum")
	return cmd
}

func newPromoteCommand(o *clusterOptions) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "promote ID",
		Short: "Make a learner a voter",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID(args[0])
			if err != nil {
				return err
			}
			return o.withClient(cmd.Context(), func(ctx context.Context, c *client.Client) error {
				resp, err := c.PromoteMember(ctx, &rpcpb.PromoteMemberRequest{Id: id, Force: force})
				if err != nil {
					return clusterError("promote", err)
				}
				fmt.Printf("promoted node %d to voter at raft index %d\n", id, resp.GetRaftIndex())
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "promote even if the learner is behind or live voters would be no quorum")
	return cmd
}

func newTransferCommand(o *clusterOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "transfer-leader ID",
		Short: "Move leadership to the given voter",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID(args[0])
			if err != nil {
				return err
			}
			return o.withClient(cmd.Context(), func(ctx context.Context, c *client.Client) error {
				resp, err := c.TransferLeader(ctx, &rpcpb.TransferLeaderRequest{Id: id})
				if err != nil {
					return clusterError("transfer-leader", err)
				}
				fmt.Printf("node %d is the leader\n", resp.GetLeaderId())
				return nil
			})
		},
	}
}
