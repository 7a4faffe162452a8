package client

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"rdb/command"
	"rdb/rpc/rpcpb"
)

func insertCall(id uint64, text string) *rpcpb.PipelineCall {
	return &rpcpb.PipelineCall{Id: id, TimeoutMs: 5000, Call: &rpcpb.PipelineCall_Execute{Execute: &rpcpb.ExecuteRequest{
		Statements: []*command.Statement{{Sql: "INSERT INTO t(id, v) VALUES(?, ?)", Parameters: []*command.Parameter{
			{Value: command.Integer(int64(id))}, {Name: "v", Value: command.Text(text)}}}}, Transaction: true}}}
}

// codecMessages are messages of every kind Codec handles, and one it
// leaves to protobuf (the health check's).
func codecMessages() []proto.Message {
	rows := []*command.Row{{Values: []*command.Value{command.Integer(1), command.Text("héllo"), command.Blob([]byte{0, 1}), command.Null(), command.Real(2.5)}}}
	res := []*command.Result{{Columns: []string{"id", "v"}, Types: []string{"INTEGER", ""}, Rows: rows, RowsAffected: 3, LastInsertId: 7}, {Error: "no such table: x"}}
	return []proto.Message{
		&rpcpb.PipelineRequest{Calls: []*rpcpb.PipelineCall{insertCall(1, "a"), insertCall(2, strings.Repeat("b", 100)),
			{Id: 3, Call: &rpcpb.PipelineCall_Query{Query: &rpcpb.QueryRequest{Statements: []*command.Statement{{Sql: "SELECT 1"}}, Consistency: rpcpb.Consistency_CONSISTENCY_NONE, MinIndex: 9, MaxStalenessMs: 100}}},
			{Id: 4, Call: &rpcpb.PipelineCall_Request{Request: &rpcpb.RequestRequest{Statements: []*command.Statement{{Sql: "SELECT 2"}}}}}}},
		&rpcpb.PipelineResponse{Replies: []*rpcpb.PipelineReply{
			{Id: 1, Reply: &rpcpb.PipelineReply_Execute{Execute: &rpcpb.ExecuteResponse{Results: res, RaftIndex: 12}}},
			{Id: 3, Reply: &rpcpb.PipelineReply_Query{Query: &rpcpb.QueryResponse{Results: res, RaftIndex: 12, NodeId: 2}}},
			{Id: 4, Reply: &rpcpb.PipelineReply_Request{Request: &rpcpb.RequestResponse{Results: res, Wrote: true}}},
			{Id: 5, Reply: &rpcpb.PipelineReply_Error{Error: &rpcpb.CallStatus{Code: 14, Message: "not leader"}}}}},
		&rpcpb.ExecuteRequest{Statements: []*command.Statement{{Sql: "DELETE FROM t"}}},
		&rpcpb.QueryResponse{Results: res},
		&rpcpb.RaftMessage{Data: []byte{1, 2, 3}},
		&rpcpb.RaftAck{},
		&grpc_health_v1.HealthCheckResponse{Status: grpc_health_v1.HealthCheckResponse_SERVING},
	}
}

func encode(t testing.TB, m proto.Message) []byte {
	data, err := Codec.Marshal(m)
	if err != nil {
		t.Fatalf("marshal %T: %v", m, err)
	}
	return data.Materialize()
}

// TestCodecMatchesProtobuf: Codec writes protobuf's bytes and reads them
// back to equal messages.
func TestCodecMatchesProtobuf(t *testing.T) {
	for _, m := range codecMessages() {
		want, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		got := encode(t, m)
		if !bytes.Equal(got, want) {
			t.Errorf("%T: codec wrote %x, protobuf %x", m, got, want)
		}
		back := m.ProtoReflect().New().Interface()
		if err := Codec.Unmarshal(mem.BufferSlice{mem.SliceBuffer(got)}, back); err != nil {
			t.Fatalf("%T: unmarshal: %v", m, err)
		}
		if !proto.Equal(back, m) {
			t.Errorf("%T: read back %v, want %v", m, back, m)
		}
	}
}

// TestCodecRefusesInvalidUTF8: as protobuf, Codec neither writes nor reads
// strings that are not UTF-8, wherever they are in a message.
func TestCodecRefusesInvalidUTF8(t *testing.T) {
	bad := string([]byte{'a', 0xff})
	for _, m := range []proto.Message{
		&rpcpb.PipelineRequest{Calls: []*rpcpb.PipelineCall{insertCall(1, bad)}},
		&rpcpb.ExecuteRequest{Statements: []*command.Statement{{Sql: bad}}},
		&rpcpb.QueryRequest{Statements: []*command.Statement{{Sql: "SELECT :x", Parameters: []*command.Parameter{{Name: bad, Value: command.Integer(1)}}}}},
		&rpcpb.PipelineResponse{Replies: []*rpcpb.PipelineReply{{Reply: &rpcpb.PipelineReply_Query{Query: &rpcpb.QueryResponse{Results: []*command.Result{{Columns: []string{bad}}}}}}}},
		&rpcpb.PipelineResponse{Replies: []*rpcpb.PipelineReply{{Reply: &rpcpb.PipelineReply_Request{Request: &rpcpb.RequestResponse{Results: []*command.Result{{Rows: []*command.Row{{Values: []*command.Value{command.Text(bad)}}}}}}}}}},
		&rpcpb.PipelineResponse{Replies: []*rpcpb.PipelineReply{{Reply: &rpcpb.PipelineReply_Error{Error: &rpcpb.CallStatus{Message: bad}}}}},
		&rpcpb.ExecuteResponse{Results: []*command.Result{{Error: bad}}},
	} {
		if _, err := proto.Marshal(m); err == nil {
			t.Fatalf("%T: protobuf accepts it; the test is wrong", m)
		}
		if _, err := Codec.Marshal(m); !errors.Is(err, command.ErrInvalidUTF8) {
			t.Errorf("%T: marshal: %v, want ErrInvalidUTF8", m, err)
		}
		enc, err := m.(interface{ MarshalVT() ([]byte, error) }).MarshalVT() // does not check
		if err != nil {
			t.Fatal(err)
		}
		back := m.ProtoReflect().New().Interface()
		if err := Codec.Unmarshal(mem.BufferSlice{mem.SliceBuffer(enc)}, back); !errors.Is(err, command.ErrInvalidUTF8) {
			t.Errorf("%T: unmarshal: %v, want ErrInvalidUTF8", m, err)
		}
	}
}

// TestCodecDetailsGoToProtobuf: call statuses with details (Any messages,
// whose fields the checks cannot see) are decoded by protobuf, and read
// back whole.
func TestCodecDetailsGoToProtobuf(t *testing.T) {
	detail, err := anypb.New(&rpcpb.RaftAck{})
	if err != nil {
		t.Fatal(err)
	}
	m := &rpcpb.PipelineResponse{Replies: []*rpcpb.PipelineReply{{Id: 1, Reply: &rpcpb.PipelineReply_Error{Error: &rpcpb.CallStatus{Code: 9, Message: "x", Details: []*anypb.Any{detail}}}}}}
	back := &rpcpb.PipelineResponse{}
	if err := Codec.Unmarshal(mem.BufferSlice{mem.SliceBuffer(encode(t, m))}, back); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(back, m) {
		t.Fatalf("read back %v, want %v", back, m)
	}
}

// FuzzCodecUnmarshal: for any input, Codec accepts everything protobuf
// accepts, with the same result; what only Codec accepts (an over-long
// varint, say) encodes again as valid protobuf with the same content; and
// what it reads it writes as protobuf would.
func FuzzCodecUnmarshal(f *testing.F) {
	for _, m := range codecMessages()[:2] {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, false)
		f.Add(b, true)
	}
	f.Add([]byte{0x0a, 0x02, 0x08, 0x80}, false)
	f.Fuzz(func(t *testing.T, data []byte, response bool) {
		var fast, slow proto.Message = &rpcpb.PipelineRequest{}, &rpcpb.PipelineRequest{}
		if response {
			fast, slow = &rpcpb.PipelineResponse{}, &rpcpb.PipelineResponse{}
		}
		fastErr := Codec.Unmarshal(mem.BufferSlice{mem.SliceBuffer(data)}, fast)
		slowErr := proto.Unmarshal(data, slow)
		if fastErr != nil {
			if slowErr == nil {
				t.Fatalf("codec refused what protobuf accepts: %v", fastErr)
			}
			return
		}
		enc := encode(t, fast)
		if slowErr != nil {
			again := fast.ProtoReflect().New().Interface()
			if err := proto.Unmarshal(enc, again); err != nil || !proto.Equal(again, fast) {
				t.Fatalf("accepted %x (protobuf: %v); its encoding decodes by protobuf as %v (%v)", data, slowErr, again, err)
			}
			return
		}
		if !proto.Equal(fast, slow) {
			t.Fatalf("codec read %v, protobuf %v", fast, slow)
		}
		if want, err := proto.Marshal(slow); err != nil || !bytes.Equal(enc, want) {
			t.Fatalf("codec wrote %x, protobuf %x (%v)", enc, want, err)
		}
	})
}

// BenchmarkCodec compares Codec with protobuf's codec on a Pipeline
// message of 8 inserts with 100-byte values.
func BenchmarkCodec(b *testing.B) {
	m := &rpcpb.PipelineRequest{}
	for i := range 8 {
		m.Calls = append(m.Calls, insertCall(uint64(i), strings.Repeat("x", 100)))
	}
	data, err := proto.Marshal(m)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("marshal/protobuf", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := proto.Marshal(m); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("marshal/codec", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			data, err := Codec.Marshal(m)
			if err != nil {
				b.Fatal(err)
			}
			data.Free() // as gRPC does once the message is written
		}
	})
	b.Run("unmarshal/protobuf", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := proto.Unmarshal(data, &rpcpb.PipelineRequest{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("unmarshal/codec", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := Codec.Unmarshal(mem.BufferSlice{mem.SliceBuffer(data)}, &rpcpb.PipelineRequest{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
