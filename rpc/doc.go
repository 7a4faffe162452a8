// Package rpc owns rdb's gRPC surface: the generated API (rpcpb), the
// server that maps client requests onto a cluster node (Server), the peer
// transport that carries raft messages between nodes over long-lived gRPC
// streams (PeerTransport, RaftService), and the translation of domain
// errors into gRPC status codes (the only place that happens).
//
// The Go client lives in the subpackage client, so that programs using it
// do not link the server.
//
// # Errors
//
// Every error a client can cause maps to a status code: SQL errors and
// malformed requests to InvalidArgument (with the 1-based statement
// number), refused statements to PermissionDenied, oversized requests to
// ResourceExhausted, no leader to Unavailable, stale reads to
// FailedPrecondition, timed-out writes to DeadlineExceeded. Errors that
// prove a write did not take effect carry a google.rpc.ErrorInfo with
// reason NOT_APPLIED; writes whose fate is unknown carry OUTCOME_UNKNOWN.
// Clients may repeat a write only after NOT_APPLIED.
//
// # Forwarding
//
// Writes, STRONG reads and weak reads are accepted by any node: a
// follower forwards them to the leader's client address (at most one hop;
// a forwarded call is marked and not forwarded again). The forwarding
// connection pings every 5 s and reconnects within about 2 s, so that a
// healed partition does not leave forwarded calls waiting on a dead
// connection. A call that never reached the leader comes back NOT_APPLIED.
//
// # Pipelines
//
// The Pipeline stream carries many Execute, Query and Request calls per
// message each way; each call runs as the unary call it carries, on a
// pooled worker goroutine (workers.go: the last idle first, so that a few
// stay busy and keep the deep stacks reads need; reads run SQLite there,
// db.OnCaller), with its own deadline, and is answered as soon as it is
// done. The
// server answers every call it started before it ends a stream, and Drain
// ends streams on shutdown. docs/design.md ("Pipelined calls") has the
// rules; client.Pipeline is the sending side, which forwarding uses too.
// A follower hands the Execute calls of a stream straight to its pipeline
// to the leader (pipeline_forward.go), without a worker waiting for each.
//
// # Encoding
//
// Every rdb connection and both servers use client.Codec: protobuf on the
// wire, encoded and decoded by the code vtprotobuf generates for rdb's
// messages (rdb_vtproto.pb.go, command_vtproto.pb.go) with protobuf's rules
// kept (UTF-8 strings, unknown fields decoded by protobuf). Raft messages
// on the peer streams are encoded and decoded by raftwire.go, by hand: raft's
// messages have a pointer per field, which protobuf's reflective decoder
// allocates one by one.
//
// # Cluster ids
//
// Peer streams and snapshot streams carry the sender's cluster id, and
// clients pinned with client.Config.ClusterID send theirs; a node of
// another cluster refuses either with FailedPrecondition before doing
// anything (checkCluster, ClusterIDUnaryInterceptor,
// ClusterIDStreamInterceptor).
package rpc
