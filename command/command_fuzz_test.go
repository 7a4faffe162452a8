package command

import (
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
)

// FuzzUnmarshal: decoding a log entry never panics, fails only with the
// package's errors, and what decodes survives Marshal and Unmarshal
// unchanged.
func FuzzUnmarshal(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{EncodingV1})
	f.Add([]byte{0x7f, 1, 2})
	f.Add([]byte{EncodingV1, 0xff, 0xff, 0xff})
	st, _ := NewStatement("INSERT INTO t VALUES (?, ?, ?, ?, ?)", int64(-1), 1.5, "héllo", []byte{0, 1}, nil)
	for _, c := range []*Command{
		{Type: CommandType_COMMAND_TYPE_EXECUTE, ProposerId: 3, RequestId: 99, Statements: []*Statement{st}, Transaction: true, TimeUnixNanos: 1234, RandomSeed: 42},
		{Type: CommandType_COMMAND_TYPE_QUERY, Statements: []*Statement{{Sql: "SELECT :a", Parameters: []*Parameter{{Name: "a", Value: &Value{}}}}}},
		{Type: CommandType_COMMAND_TYPE_SET_MEMBER, Member: &Member{Id: 2, PeerAddr: "127.0.0.1:7002", ClientAddr: "127.0.0.1:5002", StayLearner: true}},
		{Version: Version + 1},
	} {
		b, err := Marshal(c)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cmd, err := Unmarshal(data)
		if err != nil {
			if !errors.Is(err, ErrEmpty) && !errors.Is(err, ErrUnknownEncoding) && !errors.Is(err, ErrUnsupportedVersion) && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("unexpected error type: %v", err)
			}
			return
		}
		if cmd.GetVersion() > Version {
			t.Fatalf("accepted version %d", cmd.GetVersion())
		}
		want := proto.Clone(cmd).(*Command)
		if want.GetVersion() == 0 {
			want.Version = Version // Marshal stamps it
		}
		out, err := Marshal(cmd)
		if err != nil {
			t.Fatalf("marshal of a decoded command: %v", err)
		}
		if out[0] != EncodingV1 {
			t.Fatalf("marker %#x", out[0])
		}
		back, err := Unmarshal(out)
		if err != nil {
			t.Fatalf("round trip: %v", err)
		}
		if !proto.Equal(back, want) {
			t.Fatalf("round trip changed the command:\n%v\n%v", want, back)
		}
	})
}

// FuzzLimitsValidate: Validate never panics, its errors wrap
// ErrInvalidRequest, and it accepts exactly the requests that keep the
// documented rules (a reference check below).
func FuzzLimitsValidate(f *testing.F) {
	f.Add(uint8(3), uint8(2), uint16(16), "SELECT 1", "")
	f.Add(uint8(0), uint8(0), uint16(0), "SELECT 1\x00INSERT INTO t VALUES(?)", "a,:b")
	f.Add(uint8(1), uint8(1), uint16(4), "SELECT 1\x00SELECT 2", "")
	f.Add(uint8(2), uint8(1), uint16(100), "SELECT :a", ":")
	f.Add(uint8(2), uint8(3), uint16(100), "SELECT :a", "a b,$c,'d")
	f.Add(uint8(5), uint8(5), uint16(5), " \t\n", "")
	f.Add(uint8(5), uint8(5), uint16(5), "", "")
	f.Fuzz(func(t *testing.T, maxStmts, maxParams uint8, maxSQL uint16, sqls, names string) {
		l := Limits{MaxStatements: int(maxStmts), MaxParameters: int(maxParams), MaxSQLBytes: int(maxSQL)}
		var stmts []*Statement
		if sqls != "" {
			for _, s := range strings.Split(sqls, "\x00") {
				stmts = append(stmts, &Statement{Sql: s})
			}
		}
		if len(stmts) > 0 && names != "" {
			for i, n := range strings.Split(names, ",") {
				st := stmts[i%len(stmts)]
				st.Parameters = append(st.Parameters, &Parameter{Name: n, Value: Integer(int64(i))})
			}
		}
		err := l.Validate(stmts)
		if err != nil && !errors.Is(err, ErrInvalidRequest) {
			t.Fatalf("error does not wrap ErrInvalidRequest: %v", err)
		}
		if ok := referenceValid(l, stmts); ok != (err == nil) {
			t.Fatalf("Validate = %v, reference says valid=%v (limits %+v, %d statements)", err, ok, l, len(stmts))
		}
	})
}

func referenceValid(l Limits, stmts []*Statement) bool {
	if len(stmts) == 0 || (l.MaxStatements > 0 && len(stmts) > l.MaxStatements) {
		return false
	}
	for _, st := range stmts {
		if strings.TrimSpace(st.GetSql()) == "" || (l.MaxSQLBytes > 0 && len(st.GetSql()) > l.MaxSQLBytes) {
			return false
		}
		if l.MaxParameters > 0 && len(st.GetParameters()) > l.MaxParameters {
			return false
		}
		for _, p := range st.GetParameters() {
			name := strings.TrimLeft(p.GetName(), ":@$")
			if p.GetName() != "" && name == "" {
				return false
			}
			if strings.ContainsAny(name, " \t\n;'\"") {
				return false
			}
		}
	}
	return true
}
