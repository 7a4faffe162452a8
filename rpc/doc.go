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
// Writes are accepted by any node: raft forwards a follower's proposal to
// the leader, and the follower answers once it has applied the entry
// itself. Weak reads are forwarded to the leader's client address by the
// receiving node (at most one hop).
package rpc
