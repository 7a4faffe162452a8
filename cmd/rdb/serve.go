package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"

	"rdb/cluster"
	"rdb/db"
	"rdb/internal/failpoint"
	"rdb/rpc"
	"rdb/rpc/client"
	"rdb/rpc/rpcpb"
)

// serveOptions holds the flags of `rdb serve`.
type serveOptions struct {
	id              uint64
	dataDir         string
	listen          string
	peerListen      string
	advertiseClient string
	advertisePeer   string
	initialCluster  string
	logLevel        string
	logFormat       string
	maxRequestBytes int
	tick            time.Duration
	electionTicks   int
	heartbeatTicks  int
	writeTimeout    time.Duration
	snapEntries     uint64
	snapTrailing    uint64
	snapLogBytes    uint64
	maxMsgBytes     uint64
	maxInflightMsgs int
	debugListen     string
	verifyOnStart   bool
	join            string
	learner         bool
	clusterToken    string
	clusterID       string
	maxApplySteps   int64
	followerProcs   int
}

func newServeCommand() *cobra.Command {
	o := &serveOptions{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run an rdb node",
		Long: `Run an rdb node.

With no flags, runs a single-node database in ./rdb-data, serving clients
on 127.0.0.1:5001.

A local three-node cluster:

  rdb serve --id 1 --data-dir d1 --listen 127.0.0.1:5001 --peer-listen 127.0.0.1:7001 \
    --initial-cluster 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003
  (and the same with ids 2 and 3, ports 5002/7002 and 5003/7003)

Nodes learn each other's client addresses through the log. SIGINT and
SIGTERM stop a node cleanly; a write acknowledged to a client is on a
majority of disks (fsynced) and survives kill -9.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runServe(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.Uint64Var(&o.id, "id", 1, "node id, unique in the cluster, non-zero")
	f.StringVar(&o.dataDir, "data-dir", "rdb-data", "directory for the raft log and the SQLite database")
	f.StringVar(&o.listen, "listen", "127.0.0.1:5001", "client gRPC listen address")
	f.StringVar(&o.peerListen, "peer-listen", "127.0.0.1:7001", "raft peer listen address")
	f.StringVar(&o.advertiseClient, "advertise-client", "", "client address other nodes and clients should dial (default: --listen)")
	f.StringVar(&o.advertisePeer, "advertise-peer", "", "peer address other nodes should dial (default: --peer-listen)")
	f.StringVar(&o.initialCluster, "initial-cluster", "", "bootstrap members as id=peer-addr,... (default: this node alone); ignored on restart")
	f.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	f.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	f.IntVar(&o.maxRequestBytes, "max-request-bytes", rpc.DefaultMaxRequestBytes, "largest accepted request, in bytes")
	f.DurationVar(&o.tick, "tick", cluster.DefaultTickInterval, "raft tick interval")
	f.IntVar(&o.electionTicks, "election-ticks", cluster.DefaultElectionTicks, "election timeout, in ticks")
	f.IntVar(&o.heartbeatTicks, "heartbeat-ticks", cluster.DefaultHeartbeatTicks, "heartbeat interval, in ticks")
	f.Uint64Var(&o.maxMsgBytes, "raft-max-msg-bytes", cluster.DefaultMaxSizePerMsg, fmt.Sprintf("bytes of log entries in one replication message to a follower (at least one entry is always sent; %d to %d)", cluster.MinMaxSizePerMsg, cluster.MaxMaxSizePerMsg))
	f.IntVar(&o.maxInflightMsgs, "raft-max-inflight-msgs", cluster.DefaultMaxInflightMsgs, fmt.Sprintf("replication messages sent to a follower before it acknowledges (1 to %d; the bytes in flight are capped at %d MiB too)", cluster.MaxMaxInflightMsgs, cluster.DefaultMaxInflightBytes>>20))
	f.DurationVar(&o.writeTimeout, "write-timeout", cluster.DefaultWriteTimeout, "deadline for writes whose client set none")
	f.Uint64Var(&o.snapEntries, "snapshot-entries", cluster.DefaultSnapshotEntries, "compact the raft log after this many applied entries")
	f.Uint64Var(&o.snapTrailing, "snapshot-trailing", cluster.DefaultSnapshotTrailing, "entries kept in the log behind a compaction for followers a little behind")
	f.Uint64Var(&o.snapLogBytes, "snapshot-log-bytes", cluster.DefaultSnapshotLogBytes, "compact the raft log once this many bytes were applied since the last compaction")
	f.StringVar(&o.join, "join", "", "client addresses of existing members (a,b,...): a new node asks them to add it; ignored when the data directory already holds a log")
	f.StringVar(&o.clusterToken, "cluster-token", "", "when bootstrapping a new cluster: a name mixed into its cluster id, so clusters started from the same --initial-cluster get different ids (every bootstrapping node must use the same)")
	f.StringVar(&o.clusterID, "cluster-id", "", "the id of the cluster this node belongs to (16 hex digits, see 'rdb status'): with --join, members of another cluster refuse the join; on a restart, a data directory of another cluster is refused")
	f.BoolVar(&o.learner, "learner", false, "with --join: stay a learner (a non-voting member serving reads) instead of being promoted once caught up")
	f.Int64Var(&o.maxApplySteps, "max-apply-steps", db.DefaultMaxApplySteps, "operation budget of one statement when applied, in SQLite VM steps; over it the statement fails the same way on every node (must be equal on all nodes; negative: no budget)")
	f.IntVar(&o.followerProcs, "follower-procs", -1, "GOMAXPROCS while this node is a follower (the leader uses the runtime's default, or the GOMAXPROCS variable when set): fewer threads save a follower much scheduling CPU on small machines; negative: half the leader's, at least 1; 0: the same as the leader's")
	f.BoolVar(&o.verifyOnStart, "verify-on-start", true, "check the database file (every page checksum, then PRAGMA integrity_check; quick_check above 256 MiB) before serving, and rebuild it from the log when it is damaged")
	f.StringVar(&o.debugListen, "debug-listen", "", "serve /metrics (Prometheus) and /debug/pprof on this address (off when empty)")
	return cmd
}

// parseInitialCluster parses "1=host:port,2=host:port".
func parseInitialCluster(s string) (map[uint64]string, error) {
	out := make(map[uint64]string)
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		idStr, addr, ok := strings.Cut(part, "=")
		if !ok || addr == "" {
			return nil, fmt.Errorf("initial cluster entry %q: want id=host:port", part)
		}
		id, err := strconv.ParseUint(strings.TrimSpace(idStr), 10, 64)
		if err != nil || id == 0 {
			return nil, fmt.Errorf("initial cluster entry %q: id must be a positive integer", part)
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("initial cluster entry %q: %w", part, err)
		}
		if _, dup := out[id]; dup {
			return nil, fmt.Errorf("initial cluster: id %d listed twice", id)
		}
		out[id] = strings.TrimSpace(addr)
	}
	return out, nil
}

func newLogger(level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: %w", level, err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("log format %q: want text or json", format)
}

// clientStreamWorkers is the number of long-lived goroutines that serve
// client calls (beyond them, gRPC starts a goroutine per call). On a new
// goroutine every call grew its stack by copying: 7% of the leader's CPU
// for inserts at concurrency 64 (docs/benchmarks.md). A worker whose stack
// has grown keeps it (gRPC replaces each worker after 65,536 calls); at
// most about 64 KiB each, 8 MiB for all.
const clientStreamWorkers = 128

func runServe(ctx context.Context, o *serveOptions) error {
	// SQLite's localtime must not depend on the host's zone: every node
	// computes the same result.
	os.Setenv("TZ", "UTC")
	time.Local = time.UTC

	logger, err := newLogger(o.logLevel, o.logFormat)
	if err != nil {
		return err
	}
	if o.id == 0 {
		return errors.New("--id must be non-zero")
	}
	if err := cluster.CheckMaxSizePerMsg(o.maxMsgBytes); err != nil {
		return fmt.Errorf("--raft-max-msg-bytes %d: %w", o.maxMsgBytes, err)
	}
	if err := cluster.CheckMaxInflightMsgs(o.maxInflightMsgs); err != nil {
		return fmt.Errorf("--raft-max-inflight-msgs %d: %w", o.maxInflightMsgs, err)
	}
	clientAddr := o.advertiseClient
	if clientAddr == "" {
		clientAddr = o.listen
	}
	peerAddr := o.advertisePeer
	if peerAddr == "" {
		peerAddr = o.peerListen
	}
	initial := map[uint64]string{o.id: peerAddr}
	if o.initialCluster != "" {
		if initial, err = parseInitialCluster(o.initialCluster); err != nil {
			return err
		}
		if _, ok := initial[o.id]; !ok {
			return fmt.Errorf("--initial-cluster does not list this node's id %d", o.id)
		}
	}

	// A new node with --join waits to be added; a restarted one (its data
	// directory holds a log) ignores --join and rejoins as itself.
	joining := o.join != "" && !hasRaftLog(o.dataDir)
	if o.join != "" && !joining {
		logger.Info("data directory holds a log: restarting as a member, --join ignored")
	}

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	// Listen first, so a busy port fails before anything is created.
	clientLis, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("client listen: %w", err)
	}
	defer clientLis.Close()
	peerLis, err := net.Listen("tcp", o.peerListen)
	if err != nil {
		return fmt.Errorf("peer listen: %w", err)
	}
	defer peerLis.Close()

	if err := os.MkdirAll(o.dataDir, 0o750); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	unlock, err := lockDataDir(o.dataDir)
	if err != nil {
		return err
	}
	defer func() {
		if err := unlock(); err != nil {
			logger.Warn("release data directory lock", "err", err)
		}
	}()
	dbCfg := db.Config{Path: filepath.Join(o.dataDir, "db.sqlite"), Logger: logger, MaxApplySteps: o.maxApplySteps}
	database, err := openDatabase(ctx, dbCfg, o.verifyOnStart, logger)
	if err != nil {
		return err
	}
	defer database.Close()
	// A database that is not a new node's needs the raft log it came
	// from. cluster.New refuses it; a joining node must refuse before it
	// asks the cluster to add it, which happens before New.
	if joining {
		if err := cluster.CheckLogPresent(ctx, o.dataDir, database); err != nil {
			return err
		}
	}

	registry := newRegistry()
	if o.debugListen != "" {
		dbgLis, err := net.Listen("tcp", o.debugListen)
		if err != nil {
			return fmt.Errorf("debug listen: %w", err)
		}
		dbgSrv := newDebugServer(registry)
		defer dbgSrv.Close()
		go func() {
			if err := dbgSrv.Serve(dbgLis); err != nil && !errors.Is(err, http.ErrServerClosed) {
				logger.Error("debug server", "err", err)
			}
		}()
	}

	// A new node with --join asks the cluster to add it before creating
	// its log, so the log records the cluster id it answered with.
	var joined *rpcpb.AddMemberResponse
	if joining {
		if joined, err = joinCluster(ctx, o, clientAddr, peerAddr, logger); err != nil {
			return err
		}
	}

	// The cluster id: learned when joining, or given to be checked
	// against the one the data directory's log holds.
	clusterID := joined.GetClusterId()
	if o.clusterID != "" && clusterID == 0 {
		if !hasRaftLog(o.dataDir) {
			return errors.New("--cluster-id is for --join or a restart: a new cluster's id is derived from --initial-cluster and --cluster-token")
		}
		if clusterID, err = cluster.ParseClusterID(o.clusterID); err != nil {
			return fmt.Errorf("--cluster-id: %w", err)
		}
	}

	var node *cluster.Node
	transport := rpc.NewPeerTransport(o.id, peerAddr, clientAddr, rpc.PeerCallbacks{
		Unreachable: func(id uint64) {
			if node != nil {
				node.ReportUnreachable(id)
			}
		},
		Removed: func() {
			if node != nil {
				node.ReportRemoved()
			}
		},
	}, logger)
	defer transport.Close()

	// A node starts as a follower.
	procs := newProcsPolicy(o.followerProcs, logger)
	procs.apply(false)
	node, err = cluster.New(cluster.Config{
		ID:               o.id,
		DataDir:          o.dataDir,
		PeerAddr:         peerAddr,
		ClientAddr:       clientAddr,
		InitialCluster:   initial,
		Join:             joining,
		JoinIndex:        joined.GetRaftIndex(),
		JoinPeers:        joinPeers(joined),
		ClusterID:        clusterID,
		ClusterToken:     o.clusterToken,
		TickInterval:     o.tick,
		ElectionTicks:    o.electionTicks,
		HeartbeatTicks:   o.heartbeatTicks,
		WriteTimeout:     o.writeTimeout,
		SnapshotEntries:  o.snapEntries,
		SnapshotTrailing: o.snapTrailing,
		SnapshotLogBytes: o.snapLogBytes,
		MaxSizePerMsg:    o.maxMsgBytes,
		MaxInflightMsgs:  o.maxInflightMsgs,
		OnLeadership:     procs.apply,
		Logger:           logger,
		Registerer:       registry,
	}, database, transport)
	if err != nil {
		return err
	}

	transport.SetClusterID(node.ClusterID())
	if joined != nil {
		// Added, with a log but nothing from the cluster yet.
		failpoint.Inject(failpoint.JoinAfterAdd)
		for _, m := range joined.GetMembers() {
			transport.SetPeer(m.GetId(), m.GetPeerAddr())
		}
		node.SetJoinIndex(joined.GetRaftIndex())
	}
	logger.Info("cluster", "cluster_id", cluster.FormatClusterID(node.ClusterID()))

	rpcMetrics, err := rpc.NewMetrics(registry)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	server := rpc.NewServer(rpc.ServerConfig{
		MaxRequestBytes: o.maxRequestBytes,
		Version:         version,
		DataDir:         o.dataDir,
		Logger:          logger,
		Metrics:         rpcMetrics,
	}, node)
	defer server.Close()

	clientSrv := grpc.NewServer(
		grpc.ChainUnaryInterceptor(rpcMetrics.UnaryInterceptor, rpc.ClusterIDUnaryInterceptor(node)),
		grpc.ChainStreamInterceptor(rpcMetrics.StreamInterceptor, rpc.ClusterIDStreamInterceptor(node)),
		grpc.MaxRecvMsgSize(server.MaxRecvMsgSize()),
		grpc.MaxConcurrentStreams(1024),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		grpc.NumStreamWorkers(clientStreamWorkers),
		grpc.InitialWindowSize(rpc.StreamWindow), grpc.InitialConnWindowSize(rpc.ConnWindow),
		grpc.ForceServerCodecV2(client.Codec),
	)
	rpcpb.RegisterDBServer(clientSrv, server)
	rpcpb.RegisterClusterServer(clientSrv, rpc.NewClusterService(node, server))
	healthSrv := health.NewServer()
	healthpb.RegisterHealthServer(clientSrv, healthSrv)
	reflection.Register(clientSrv)

	// The peer server accepts twice what a sender may send
	// (cluster.MaxPeerMessageBytes): the 128 MiB it always accepted.
	peerSrv := grpc.NewServer(grpc.MaxRecvMsgSize(2*cluster.MaxPeerMessageBytes), grpc.KeepaliveEnforcementPolicy(rpc.PeerKeepalivePolicy),
		grpc.InitialWindowSize(rpc.StreamWindow), grpc.InitialConnWindowSize(rpc.ConnWindow), grpc.ForceServerCodecV2(client.Codec))
	rpcpb.RegisterRaftServer(peerSrv, rpc.NewRaftService(node))

	nodeCtx, cancelNode := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errc := make(chan error, 4)
	wg.Add(3)
	go func() {
		defer wg.Done()
		errc <- node.Run(nodeCtx)
	}()
	go func() {
		defer wg.Done()
		if err := peerSrv.Serve(peerLis); err != nil {
			errc <- fmt.Errorf("peer server: %w", err)
		}
	}()
	go func() {
		defer wg.Done()
		if err := clientSrv.Serve(clientLis); err != nil {
			errc <- fmt.Errorf("client server: %w", err)
		}
	}()
	healthSrv.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	logger.Info("rdb node serving", "id", o.id, "listen", o.listen, "peer_listen", o.peerListen,
		"advertise_client", clientAddr, "advertise_peer", peerAddr, "data_dir", o.dataDir, "version", version)

	var runErr error
	select {
	case <-ctx.Done():
		logger.Info("shutting down", "reason", context.Cause(ctx))
	case runErr = <-errc:
		logger.Error("node failed", "err", runErr)
	}

	// A leader hands leadership to the most up-to-date follower first, so
	// a rolling restart causes no election timeout for clients.
	if runErr == nil && node.IsLeader() {
		tctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		if err := node.TransferLeadershipAway(tctx); err != nil {
			logger.Warn("leadership transfer before shutdown failed", "err", err)
		}
		cancel()
	}
	// Ordered shutdown: stop taking requests, stop the node, then close
	// the transport and the database (deferred, in reverse order).
	healthSrv.Shutdown()
	server.Drain()
	stopGracefully(clientSrv, 3*time.Second)
	cancelNode()
	peerSrv.Stop()
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil && !errors.Is(err, cluster.ErrStopped) && runErr == nil {
			runErr = err
		}
	}
	if errors.Is(runErr, cluster.ErrRemoved) {
		logger.Warn("this node was removed from the cluster and stops serving; to add it again, wipe its data directory and start it with --join")
		return fmt.Errorf("node %d was removed from the cluster", o.id)
	}
	if runErr == nil {
		logger.Info("stopped cleanly")
	}
	return runErr
}

// stopGracefully lets in-flight calls finish for up to d, then stops.
func stopGracefully(s *grpc.Server, d time.Duration) {
	done := make(chan struct{})
	go func() {
		s.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(d):
		s.Stop()
		<-done
	}
}

// joinPeers returns the peer addresses of the members the cluster listed
// when it added this node (nil when it did not join).
func joinPeers(joined *rpcpb.AddMemberResponse) map[uint64]string {
	if joined == nil {
		return nil
	}
	peers := make(map[uint64]string, len(joined.GetMembers()))
	for _, m := range joined.GetMembers() {
		peers[m.GetId()] = m.GetPeerAddr()
	}
	return peers
}
