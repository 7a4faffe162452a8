package client

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"rdb/rpc/rpcpb"
)

// A call to an address where nothing listens fails before anything is
// sent: NotSent (and so IsNotApplied) must say so, and must not say so
// of other Unavailable errors.
func TestNotSentOnRefusedConnection(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = rpcpb.NewDBClient(cc).Execute(ctx, &rpcpb.ExecuteRequest{})
	if !NotSent(err) || !IsNotApplied(err) {
		t.Fatalf("refused connection: NotSent %v, IsNotApplied %v for %v", NotSent(err), IsNotApplied(err), err)
	}
	for _, other := range []error{
		status.Error(codes.Unavailable, "error reading from server: EOF"),
		status.Error(codes.Unavailable, "no leader"),
		status.Error(codes.Internal, `connection error: desc = "transport: Error while dialing: x"`),
		nil,
	} {
		if NotSent(other) {
			t.Errorf("NotSent(%v) = true", other)
		}
	}
}
