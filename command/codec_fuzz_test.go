package command

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
)

// codecSeeds are encoded commands covering every field, for the fuzzers.
func codecSeeds(f *testing.F) {
	st, _ := NewStatement("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?)", int64(-1), 1.5, "héllo", []byte{0, 1}, nil, "")
	for _, c := range []*Command{
		{Version: 1, Type: CommandType_COMMAND_TYPE_EXECUTE, ProposerId: 3, RequestId: 99, Statements: []*Statement{st, {Sql: "SELECT :a", Parameters: []*Parameter{{Name: "a", Value: &Value{}}}}}, Transaction: true, TimeUnixNanos: -1234, RandomSeed: 42},
		{Type: CommandType_COMMAND_TYPE_SET_MEMBER, Member: &Member{Id: 2, PeerAddr: "127.0.0.1:7002", ClientAddr: "127.0.0.1:5002", StayLearner: true}},
		{Type: CommandType_COMMAND_TYPE_RESTORE_CHUNK, RestoreChunk: &RestoreChunk{RestoreId: "r1", Offset: 4096, Data: []byte("page")}},
		{Type: CommandType_COMMAND_TYPE_RESTORE_COMMIT, RestoreCommit: &RestoreCommit{RestoreId: "r1", Format: RestoreFormat_RESTORE_FORMAT_SQL, Size: 8192, Sha256: []byte{1, 2, 3}}},
	} {
		b, err := proto.Marshal(c)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0x2a, 0x03, 0x0a, 0x01, 0xff}) // a statement whose sql is not UTF-8
	f.Add([]byte{0x08, 0x80})                   // truncated varint
}

// FuzzVTCodecMatchesProtobuf: decode (the generated vtprotobuf decoder
// with its checks) accepts everything protobuf's decoder accepts and
// decodes it to the same Command; what only it accepts encodes again as
// valid protobuf; the generated encoder writes exactly protobuf's bytes.
func FuzzVTCodecMatchesProtobuf(f *testing.F) {
	codecSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		fast, fastErr := decode(data)
		var slow Command
		slowErr := proto.Unmarshal(data, &slow)
		if fastErr != nil {
			if slowErr == nil {
				t.Fatalf("decode refused what protobuf accepts: %v", fastErr)
			}
			return
		}
		if slowErr != nil {
			// The generated decoder reads a few malformed encodings
			// protobuf refuses (a varint longer than 64 bits, say). What
			// it accepts must encode again as valid protobuf that
			// protobuf decodes to the same Command, so that no node of
			// any version refuses an entry made from it.
			enc, err := fast.MarshalVT()
			if err != nil {
				t.Fatalf("vtprotobuf marshal: %v", err)
			}
			var again Command
			if err := proto.Unmarshal(enc, &again); err != nil || !proto.Equal(&again, fast) {
				t.Fatalf("accepted %x (protobuf: %v), and its encoding %x decodes by protobuf as %v (%v)", data, slowErr, enc, &again, err)
			}
			return
		}
		if !proto.Equal(fast, &slow) {
			t.Fatalf("decoders differ:\nvtprotobuf %v\nprotobuf   %v", fast, &slow)
		}
		want, err := proto.Marshal(&slow)
		if err != nil {
			t.Fatalf("protobuf marshal: %v", err)
		}
		got, err := fast.MarshalVT()
		if err != nil {
			t.Fatalf("vtprotobuf marshal: %v", err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("encoders differ:\nvtprotobuf %x\nprotobuf   %x", got, want)
		}
	})
}

// TestMarshalRefusesInvalidUTF8: Marshal and Unmarshal refuse strings that
// are not UTF-8, as protobuf's codec does.
func TestMarshalRefusesInvalidUTF8(t *testing.T) {
	bad := string([]byte{0xff, 0xfe})
	for _, c := range []*Command{
		{Statements: []*Statement{{Sql: bad}}},
		{Statements: []*Statement{{Sql: "SELECT ?", Parameters: []*Parameter{{Value: Text(bad)}}}}},
		{Statements: []*Statement{{Sql: "SELECT :a", Parameters: []*Parameter{{Name: bad, Value: Integer(1)}}}}},
		{Member: &Member{PeerAddr: bad}},
		{RestoreChunk: &RestoreChunk{RestoreId: bad}},
		{RestoreCommit: &RestoreCommit{RestoreId: bad}},
	} {
		if _, err := Marshal(c); err == nil {
			t.Errorf("Marshal(%v) accepted invalid UTF-8", c)
		}
		if _, err := proto.Marshal(c); err == nil {
			t.Errorf("protobuf accepted %v: the check is stricter than protobuf", c)
		}
		// The generated encoder itself does not check.
		enc, err := c.MarshalVT()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Unmarshal(append([]byte{EncodingV1}, enc...)); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), ErrInvalidUTF8.Error()) {
			t.Errorf("Unmarshal of %v: %v, want ErrCorrupt for invalid UTF-8", c, err)
		}
	}
}
