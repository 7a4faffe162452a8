package rpc

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"

	"rdb/cluster"
	"rdb/command"
	"rdb/db"
	"rdb/rpc/client"
)

// toStatus maps a domain error to a gRPC status error. It is the only
// place where errors become status codes.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok && !isDomainError(err) {
		return err
	}
	var stmtErr *db.StatementError
	switch {
	case errors.As(err, &stmtErr):
		return status.Error(codes.InvalidArgument, fmt.Sprintf("statement %d: %v", stmtErr.Index+1, stmtErr.Err))
	case errors.Is(err, command.ErrTooLarge), errors.Is(err, cluster.ErrTooLarge):
		return client.ErrorWithReason(codes.ResourceExhausted, userMessage(err), client.ReasonNotApplied)
	case errors.Is(err, command.ErrInvalidRequest):
		return status.Error(codes.InvalidArgument, userMessage(err))
	case errors.Is(err, db.ErrInvalidRestore), errors.Is(err, cluster.ErrRestoreFailed):
		return status.Error(codes.InvalidArgument, userMessage(err))
	case errors.Is(err, db.ErrRefused):
		return status.Error(codes.PermissionDenied, userMessage(err))
	case errors.Is(err, db.ErrCorruptFile):
		// This node's database is damaged (a user's bad restore file
		// wraps ErrInvalidRestore, above).
		return status.Error(codes.DataLoss, userMessage(err))
	case errors.Is(err, db.ErrNotReadOnly), errors.Is(err, cluster.ErrNotReadOnly):
		return status.Error(codes.InvalidArgument, userMessage(err)+": send it with Execute")
	case errors.Is(err, db.ErrSQL):
		return status.Error(codes.InvalidArgument, userMessage(err))
	case errors.Is(err, cluster.ErrNoLeader), errors.Is(err, cluster.ErrProposalDropped):
		return client.ErrorWithReason(codes.Unavailable, userMessage(err), client.ReasonNotApplied)
	case errors.Is(err, cluster.ErrLeaderLost), errors.Is(err, cluster.ErrStopped):
		return client.ErrorWithReason(codes.Unavailable, userMessage(err), client.ReasonOutcomeUnknown)
	case errors.Is(err, cluster.ErrTimeout):
		return client.ErrorWithReason(codes.DeadlineExceeded, err.Error(), client.ReasonOutcomeUnknown)
	case errors.Is(err, cluster.ErrMemberExists):
		return status.Error(codes.AlreadyExists, userMessage(err))
	case errors.Is(err, cluster.ErrUnknownMember):
		return status.Error(codes.NotFound, userMessage(err))
	case errors.Is(err, cluster.ErrConfChangeInProgress):
		return client.ErrorWithReason(codes.Aborted, userMessage(err), client.ReasonNotApplied)
	case errors.Is(err, cluster.ErrWouldLoseQuorum), errors.Is(err, cluster.ErrNotLearner):
		return status.Error(codes.FailedPrecondition, userMessage(err))
	case errors.Is(err, cluster.ErrNotLeader):
		return client.ErrorWithReason(codes.Unavailable, userMessage(err), client.ReasonNotApplied)
	case errors.Is(err, cluster.ErrRemovedMember), errors.Is(err, cluster.ErrRemoved):
		return status.Error(codes.PermissionDenied, userMessage(err))
	case errors.Is(err, cluster.ErrWrongCluster):
		return client.ErrorWithReason(codes.FailedPrecondition, userMessage(err), client.ReasonWrongCluster)
	case errors.Is(err, cluster.ErrStale):
		return status.Error(codes.FailedPrecondition, userMessage(err))
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	}
	return status.Error(codes.Internal, err.Error())
}

// isDomainError reports whether err wraps one of rdb's sentinels even
// though it also looks like a status error.
func isDomainError(err error) bool {
	return errors.Is(err, db.ErrSQL) || errors.Is(err, db.ErrRefused)
}

// userMessage is err's text without the package prefixes that mean
// nothing to a client.
func userMessage(err error) string {
	msg := err.Error()
	for _, p := range []string{"db: ", "cluster: ", "command: "} {
		msg = strings.TrimPrefix(msg, p)
	}
	return msg
}

// statementFailure returns the InvalidArgument error for the first failed
// statement of results, carrying the full response as a detail, or nil.
func statementFailure(results []*command.Result, full protoadapt.MessageV1) error {
	for i, r := range results {
		if r.GetError() == "" {
			continue
		}
		st := status.New(codes.InvalidArgument, fmt.Sprintf("statement %d: %s", i+1, r.GetError()))
		if withDetails, err := st.WithDetails(full); err == nil {
			st = withDetails
		}
		return st.Err()
	}
	return nil
}
