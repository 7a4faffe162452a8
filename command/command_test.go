package command

import (
	"errors"
	"math"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
)

func TestMarshal_RoundTrip(t *testing.T) {
	st, err := NewStatement("INSERT INTO t VALUES (?, ?, ?, ?, ?)", int64(math.MinInt64), 1.5, "héllo", []byte{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cmd := &Command{Type: CommandType_COMMAND_TYPE_EXECUTE, ProposerId: 3, RequestId: 99, Statements: []*Statement{st}, Transaction: true, TimeUnixNanos: 1234, RandomSeed: 42}
	data, err := Marshal(cmd)
	if err != nil {
		t.Fatal(err)
	}
	if data[0] != EncodingV1 {
		t.Fatalf("marker %x", data[0])
	}
	got, err := Unmarshal(data)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(got, cmd) || got.GetVersion() != Version {
		t.Fatalf("round trip: %v != %v", got, cmd)
	}
	p := got.GetStatements()[0].GetParameters()
	if p[0].GetValue().GetInteger() != math.MinInt64 || p[3].GetValue().GetBlob() == nil && p[3].GetValue().GetKind() == nil || !p[4].GetValue().IsNull() {
		t.Fatalf("values: %v", p)
	}
}

func TestUnmarshal_Errors(t *testing.T) {
	future, _ := Marshal(&Command{Version: Version + 1})
	cases := []struct {
		name string
		data []byte
		want error
	}{
		{"empty", nil, ErrEmpty},
		{"unknown marker", []byte{0x7f, 1, 2}, ErrUnknownEncoding},
		{"corrupt", []byte{EncodingV1, 0xff, 0xff, 0xff}, ErrCorrupt},
		{"newer version", future, ErrUnsupportedVersion},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Unmarshal(tc.data); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestFromGo(t *testing.T) {
	if _, err := FromGo(uint64(math.MaxUint64)); !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("uint64 overflow: %v", err)
	}
	if _, err := FromGo(struct{}{}); !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("struct: %v", err)
	}
	v, _ := FromGo(true)
	if v.GetInteger() != 1 {
		t.Fatal("bool true")
	}
	if Blob(nil).ToGo() == nil {
		t.Fatal("nil blob must stay a blob, not NULL")
	}
}

func TestLimits_Validate(t *testing.T) {
	l := Limits{MaxStatements: 2, MaxParameters: 1, MaxSQLBytes: 10}
	ok := &Statement{Sql: "SELECT 1"}
	cases := []struct {
		name  string
		stmts []*Statement
		msg   string
	}{
		{"none", nil, "no statements"},
		{"too many", []*Statement{ok, ok, ok}, "3 statements"},
		{"empty sql", []*Statement{{Sql: "  "}}, "empty SQL"},
		{"long sql", []*Statement{{Sql: strings.Repeat("x", 11)}}, "SQL of 11 bytes"},
		{"params", []*Statement{{Sql: "SELECT ?", Parameters: []*Parameter{{}, {}}}}, "2 parameters"},
		{"bad name", []*Statement{{Sql: "SELECT :a", Parameters: []*Parameter{{Name: "a b"}}}}, "bad name"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := l.Validate(tc.stmts)
			if !errors.Is(err, ErrInvalidRequest) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("got %v, want %q", err, tc.msg)
			}
		})
	}
	if err := l.Validate([]*Statement{ok}); err != nil {
		t.Fatal(err)
	}
}

func TestPeekRequestID(t *testing.T) {
	st, err := NewStatement("INSERT INTO t VALUES (?)", "x")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []uint64{0, 1, 300, 1 << 63} {
		data, err := Marshal(&Command{Type: CommandType_COMMAND_TYPE_EXECUTE, ProposerId: 2, RequestId: id, Statements: []*Statement{st}, TimeUnixNanos: 5})
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := PeekRequestID(data); !ok || got != id {
			t.Errorf("PeekRequestID = %d, %v; want %d", got, ok, id)
		}
		if _, ok := PeekRequestID(data[:len(data)-1]); ok {
			t.Errorf("id %d: a truncated encoding peeked as well-formed", id)
		}
	}
	for _, bad := range [][]byte{nil, {0x7f}, {EncodingV1, 0xff}} {
		if _, ok := PeekRequestID(bad); ok {
			t.Errorf("PeekRequestID(%x) ok", bad)
		}
	}
}
