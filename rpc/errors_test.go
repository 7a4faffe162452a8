package rpc

import (
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"rdb/db"
)

func TestToStatus_DamagedDatabase(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want codes.Code
	}{
		// A read that reached a damaged page of this node's database.
		{"corrupt database", fmt.Errorf("db: statement 1: %w: page checksum mismatch", db.ErrCorruptFile), codes.DataLoss},
		// A user's restore file that is corrupt is the request's fault.
		{"corrupt restore file", fmt.Errorf("%w: %w", db.ErrInvalidRestore, db.ErrCorruptFile), codes.InvalidArgument},
		{"sql error", &db.StatementError{Index: 0, Err: errors.New("no such table: x")}, codes.InvalidArgument},
	} {
		if got := status.Code(toStatus(tc.err)); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
