package client

import (
	"errors"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Error reasons carried in a google.rpc.ErrorInfo detail of rdb errors
// (domain ErrorDomain).
const (
	ErrorDomain = "rdb"
	// ReasonNotApplied: the server refused the request before proposing
	// it; it did not and will not take effect.
	ReasonNotApplied = "NOT_APPLIED"
	// ReasonOutcomeUnknown: the write was proposed but its outcome is not
	// known (leader lost, timeout); it may still be committed.
	ReasonOutcomeUnknown = "OUTCOME_UNKNOWN"
	// ReasonWrongCluster: the node belongs to another cluster than the
	// one the call names (Config.ClusterID, or the cluster of the node
	// that forwarded it); it refused the call, which did not take effect.
	ReasonWrongCluster = "WRONG_CLUSTER"
)

var (
	// ErrNoEndpoints means the client was configured with no endpoints.
	ErrNoEndpoints = errors.New("client: no endpoints")
	// ErrClosed means the client was closed.
	ErrClosed = errors.New("client: closed")
	// ErrBadConfig means a Config field is malformed.
	ErrBadConfig = errors.New("client: bad config")
)

// reason returns the ErrorInfo reason of a gRPC error, or "".
func reason(err error) string {
	st, ok := status.FromError(err)
	if !ok {
		return ""
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == ErrorDomain {
			return info.GetReason()
		}
	}
	return ""
}

// IsNotApplied reports whether err says the request certainly did not
// take effect, so that it is safe to send again: the server refused it
// (reason NOT_APPLIED), or it never left this process (NotSent).
func IsNotApplied(err error) bool {
	return reason(err) == ReasonNotApplied || NotSent(err)
}

// IsWrongCluster reports whether err is a node's refusal of a call that
// names another cluster (reason WRONG_CLUSTER): the endpoint answers for a
// different cluster than the caller's. The call did not take effect.
func IsWrongCluster(err error) bool {
	return reason(err) == ReasonWrongCluster
}

// dialFailure is how gRPC-Go describes a call that failed because no
// connection could be made: the call was never written to a transport.
const dialFailure = `connection error: desc = "transport: Error while dialing`

// NotSent reports whether err is gRPC's fail-fast refusal of a call made
// while its connection could not be established (the node went down
// between the connection check and the call): nothing was sent.
func NotSent(err error) bool {
	st, ok := status.FromError(err)
	return ok && st.Code() == codes.Unavailable && strings.HasPrefix(st.Message(), dialFailure)
}

// ErrorWithReason returns a status error carrying an rdb ErrorInfo with
// reason (ReasonNotApplied, ReasonOutcomeUnknown), as rdb servers send.
func ErrorWithReason(code codes.Code, msg, reason string) error {
	st := status.New(code, msg)
	if withDetails, err := st.WithDetails(&errdetails.ErrorInfo{Domain: ErrorDomain, Reason: reason}); err == nil {
		st = withDetails
	}
	return st.Err()
}

// IsOutcomeUnknown reports whether a failed write may still have been
// committed: it was sent, and the server did not refuse it outright.
func IsOutcomeUnknown(err error) bool {
	if err == nil || IsNotApplied(err) {
		return false
	}
	if reason(err) == ReasonOutcomeUnknown {
		return true
	}
	switch status.Code(err) {
	case codes.InvalidArgument, codes.ResourceExhausted, codes.PermissionDenied, codes.FailedPrecondition, codes.Unimplemented:
		return false
	}
	return true
}
