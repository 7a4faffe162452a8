package rpc

import (
	"bytes"
	"fmt"
	"math"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

func raftU64(v uint64) *uint64 { return &v }

func raftTestEntry(typ raftpb.EntryType, term, index uint64, data []byte) *raftpb.Entry {
	return &raftpb.Entry{Type: typ.Enum(), Term: raftU64(term), Index: raftU64(index), Data: data}
}

// raftTestMessages are hand-built messages covering every field of
// raftpb.Message and raftpb.Entry handled by the fast path.
func raftTestMessages() map[string]*raftpb.Message {
	big := bytes.Repeat([]byte("x"), 300) // multi-byte length prefix
	// More entries than appendRaftMessage caches sizes for.
	many := &raftpb.Message{Type: raftpb.MessageType_MsgApp.Enum(), To: raftU64(2), Index: raftU64(1)}
	for i := range 100 {
		many.Entries = append(many.Entries,
			raftTestEntry(raftpb.EntryType(i%3), 1, uint64(i)<<(i%64), bytes.Repeat([]byte{byte(i)}, i*3)))
	}
	return map[string]*raftpb.Message{
		"manyEntries": many,
		"empty":       {},
		"MsgApp": {
			Type: raftpb.MessageType_MsgApp.Enum(), To: raftU64(2), From: raftU64(1), Term: raftU64(7),
			LogTerm: raftU64(6), Index: raftU64(100), Commit: raftU64(99),
			Entries: []*raftpb.Entry{
				raftTestEntry(raftpb.EntryType_EntryNormal, 7, 101, []byte("insert into t values (1)")),
				raftTestEntry(raftpb.EntryType_EntryNormal, 7, 102, nil),      // nil Data: absent
				raftTestEntry(raftpb.EntryType_EntryNormal, 7, 103, []byte{}), // empty non-nil Data: present
				raftTestEntry(raftpb.EntryType_EntryConfChangeV2, 7, 104, []byte{1, 2, 3}),
				raftTestEntry(raftpb.EntryType_EntryConfChange, math.MaxUint64, 1<<63, big),
				{}, // entry with no fields at all
				{Data: []byte("only data")},
			},
		},
		"MsgAppResp": {
			Type: raftpb.MessageType_MsgAppResp.Enum(), To: raftU64(1), From: raftU64(3), Term: raftU64(7),
			LogTerm: raftU64(5), Index: raftU64(100), Reject: proto.Bool(true), RejectHint: raftU64(90),
		},
		"MsgAppRespAccept": {
			Type: raftpb.MessageType_MsgAppResp.Enum(), To: raftU64(1), From: raftU64(3), Term: raftU64(7),
			Index: raftU64(104), Reject: proto.Bool(false),
		},
		"MsgHeartbeat": {
			Type: raftpb.MessageType_MsgHeartbeat.Enum(), To: raftU64(2), From: raftU64(1), Term: raftU64(7),
			Commit: raftU64(104), Context: []byte("read-index-ctx"),
		},
		"MsgHeartbeatEmptyContext": {
			Type: raftpb.MessageType_MsgHeartbeat.Enum(), To: raftU64(2), From: raftU64(1), Context: []byte{},
		},
		"MsgVote": {
			Type: raftpb.MessageType_MsgVote.Enum(), To: raftU64(2), From: raftU64(1), Term: raftU64(8),
			LogTerm: raftU64(7), Index: raftU64(104), Vote: raftU64(1),
		},
		"MsgHupZeroes": {
			Type: raftpb.MessageType_MsgHup.Enum(), To: raftU64(0), From: raftU64(0), Term: raftU64(0),
			LogTerm: raftU64(0), Index: raftU64(0), Commit: raftU64(0), Reject: proto.Bool(false),
			RejectHint: raftU64(0), Vote: raftU64(0), Entries: []*raftpb.Entry{},
		},
		"allFields": {
			Type: raftpb.MessageType_MsgForgetLeader.Enum(), To: raftU64(math.MaxUint64), From: raftU64(1 << 35),
			Term: raftU64(3), LogTerm: raftU64(4), Index: raftU64(5), Commit: raftU64(8), Reject: proto.Bool(true),
			RejectHint: raftU64(11), Context: []byte{0, 0xff}, Vote: raftU64(13),
			Entries: []*raftpb.Entry{raftTestEntry(raftpb.EntryType_EntryConfChangeV2, 1, 2, []byte("d"))},
		},
		// Not on the fast path: encoded by protobuf-go.
		"fallbackSnapshot": {
			Type: raftpb.MessageType_MsgSnap.Enum(), To: raftU64(2), From: raftU64(1), Term: raftU64(7),
			Snapshot: &raftpb.Snapshot{
				Data: []byte("snap"),
				Metadata: &raftpb.SnapshotMetadata{
					Index: raftU64(100), Term: raftU64(6),
					ConfState: &raftpb.ConfState{Voters: []uint64{1, 2, 3}},
				},
			},
		},
		"fallbackEmptySnapshot": {
			Type: raftpb.MessageType_MsgApp.Enum(), Snapshot: &raftpb.Snapshot{},
			Entries: []*raftpb.Entry{raftTestEntry(raftpb.EntryType_EntryNormal, 1, 1, []byte("a"))},
		},
		"fallbackResponses": {
			Type: raftpb.MessageType_MsgStorageAppend.Enum(), To: raftU64(math.MaxUint64 - 1), From: raftU64(1),
			Term: raftU64(7), Vote: raftU64(1), Commit: raftU64(3),
			Entries: []*raftpb.Entry{raftTestEntry(raftpb.EntryType_EntryNormal, 7, 4, []byte("e"))},
			Responses: []*raftpb.Message{
				{Type: raftpb.MessageType_MsgStorageAppendResp.Enum(), To: raftU64(1), Index: raftU64(4)},
				{Type: raftpb.MessageType_MsgAppResp.Enum(), To: raftU64(2), Reject: proto.Bool(false)},
			},
		},
	}
}

func TestRaftWireFieldOrder(t *testing.T) {
	// Verify (rather than assume) that protobuf-go emits fields in
	// ascending field-number order, which appendRaftMessage relies on.
	m := raftTestMessages()["allFields"]
	m.Entries = append(m.Entries, raftTestEntry(raftpb.EntryType_EntryNormal, 9, 10, []byte("z")))
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var got []protowire.Number
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			t.Fatal(protowire.ParseError(n))
		}
		b = b[n:]
		if num == 7 {
			v, n := protowire.ConsumeBytes(b)
			var inner []protowire.Number
			for len(v) > 0 {
				num, typ, k := protowire.ConsumeTag(v)
				if k < 0 {
					t.Fatal(protowire.ParseError(k))
				}
				inner = append(inner, num)
				v = v[k+protowire.ConsumeFieldValue(num, typ, v[k:]):]
			}
			if fmt.Sprint(inner) != "[1 2 3 4]" {
				t.Errorf("entry field order %v, want [1 2 3 4]", inner)
			}
			got = append(got, num)
			b = b[n:]
			continue
		}
		got = append(got, num)
		b = b[protowire.ConsumeFieldValue(num, typ, b):]
	}
	if want := "[1 2 3 4 5 6 7 7 8 10 11 12 13]"; fmt.Sprint(got) != want {
		t.Errorf("proto.Marshal field order %v, want %s", got, want)
	}
}

func TestRaftWireRoundTrip(t *testing.T) {
	for name, m := range raftTestMessages() {
		t.Run(name, func(t *testing.T) {
			want, err := proto.MarshalOptions{}.MarshalAppend(nil, m)
			if err != nil {
				t.Fatal(err)
			}
			got, err := appendRaftMessage(nil, m)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("appendRaftMessage:\n got %x\nwant %x", got, want)
			}
			// Appending to a non-empty buffer keeps the prefix.
			prefix := []byte("prefix")
			got2, err := appendRaftMessage(append([]byte(nil), prefix...), m)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got2, append(prefix, want...)) {
				t.Fatalf("appendRaftMessage with prefix: got %x", got2)
			}

			var dec raftpb.Message
			if err := unmarshalRaftMessage(want, &dec); err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(&dec, m) {
				t.Fatalf("unmarshalRaftMessage: got %v, want %v", &dec, m)
			}
			var ref raftpb.Message
			if err := proto.Unmarshal(want, &ref); err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(&dec, &ref) {
				t.Fatalf("unmarshalRaftMessage %v != proto.Unmarshal %v", &dec, &ref)
			}
			// The decoded message re-encodes identically.
			again, err := appendRaftMessage(nil, &dec)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again, want) {
				t.Fatalf("re-encode: got %x want %x", again, want)
			}
		})
	}
}

func TestRaftWireUnmarshalPresence(t *testing.T) {
	m := raftTestMessages()["MsgApp"]
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var dec raftpb.Message
	if err := unmarshalRaftMessage(b, &dec); err != nil {
		t.Fatal(err)
	}
	if dec.Entries[1].Data != nil {
		t.Errorf("absent Data decoded as %q, want nil", dec.Entries[1].Data)
	}
	if dec.Entries[2].Data == nil || len(dec.Entries[2].Data) != 0 {
		t.Errorf("present empty Data decoded as %#v, want non-nil empty", dec.Entries[2].Data)
	}
	if dec.Entries[5].Type != nil || dec.Entries[5].Term != nil || dec.Entries[5].Data != nil {
		t.Errorf("empty entry decoded as %v", dec.Entries[5])
	}
	if dec.Context != nil || dec.Reject != nil || dec.Vote != nil {
		t.Errorf("absent fields set: %v", &dec)
	}
	// Data aliases the input and cannot grow into it.
	d := dec.Entries[0].Data
	if cap(d) != len(d) {
		t.Errorf("Data cap %d != len %d", cap(d), len(d))
	}
	if i := bytes.Index(b, d); i < 0 || &b[i] != &d[0] {
		t.Errorf("Data does not alias the input")
	}

	var hb raftpb.Message
	if b, err = proto.Marshal(raftTestMessages()["MsgHeartbeatEmptyContext"]); err != nil {
		t.Fatal(err)
	}
	if err := unmarshalRaftMessage(b, &hb); err != nil {
		t.Fatal(err)
	}
	if hb.Context == nil || len(hb.Context) != 0 {
		t.Errorf("present empty Context decoded as %#v", hb.Context)
	}

	// A non-zero message is reset first, as proto.Unmarshal does.
	dirty := proto.Clone(raftTestMessages()["allFields"]).(*raftpb.Message)
	if b, err = proto.Marshal(raftTestMessages()["MsgVote"]); err != nil {
		t.Fatal(err)
	}
	if err := unmarshalRaftMessage(b, dirty); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(dirty, raftTestMessages()["MsgVote"]) {
		t.Errorf("decoding into a used message: got %v", dirty)
	}
}

// raftRaw builds wire bytes field by field.
type raftRaw []byte

func (r raftRaw) varint(num protowire.Number, v uint64) raftRaw {
	r = protowire.AppendTag(r, num, protowire.VarintType)
	return protowire.AppendVarint(r, v)
}

func (r raftRaw) bytes(num protowire.Number, v []byte) raftRaw {
	r = protowire.AppendTag(r, num, protowire.BytesType)
	return protowire.AppendBytes(r, v)
}

func (r raftRaw) fixed32(num protowire.Number, v uint32) raftRaw {
	r = protowire.AppendTag(r, num, protowire.Fixed32Type)
	return protowire.AppendFixed32(r, v)
}

// checkRaftUnmarshalAgrees asserts that unmarshalRaftMessage and proto.Unmarshal
// agree on data: both fail, or both succeed with proto.Equal results.
func checkRaftUnmarshalAgrees(t *testing.T, data []byte) {
	t.Helper()
	var ref raftpb.Message
	refErr := proto.Unmarshal(data, &ref)
	var got raftpb.Message
	gotErr := unmarshalRaftMessage(bytes.Clone(data), &got)
	if (refErr == nil) != (gotErr == nil) {
		t.Fatalf("input %x: proto.Unmarshal err=%v, unmarshalRaftMessage err=%v", data, refErr, gotErr)
	}
	if refErr == nil && !proto.Equal(&ref, &got) {
		t.Fatalf("input %x:\nproto.Unmarshal      %v\nunmarshalRaftMessage %v", data, &ref, &got)
	}
	if refErr != nil && refErr.Error() != gotErr.Error() {
		t.Fatalf("input %x: error %q, want %q", data, gotErr, refErr)
	}
}

func TestRaftWireUnmarshalEdgeCases(t *testing.T) {
	ent := raftRaw(nil).varint(1, 0).varint(2, 3).varint(3, 4).bytes(4, []byte("abc"))
	cases := map[string][]byte{
		"nil":                    nil,
		"emptyNonNil":            {},
		"repeatedScalarsLastWin": raftRaw(nil).varint(2, 1).varint(2, 5).varint(1, 3).varint(1, 4).varint(10, 1).varint(10, 0),
		"boolNonOne":             raftRaw(nil).varint(10, 300),
		"boolHuge":               raftRaw(nil).varint(10, math.MaxUint64),
		"entriesInterleaved":     raftRaw(nil).bytes(7, ent).varint(2, 9).bytes(7, nil).bytes(12, []byte("c")).bytes(7, ent).bytes(12, nil),
		"entryRepeatedFields":    raftRaw(nil).bytes(7, raftRaw(nil).varint(2, 1).bytes(4, []byte("a")).varint(2, 2).bytes(4, nil).varint(1, 1).varint(1, 2)),
		"nonMinimalVarint":       {0x10, 0x81, 0x80, 0x80, 0x00},
		"nonMinimalTag":          {0x90, 0x00, 0x05, 0x3a, 0x03, 0x90, 0x00, 0x07, 0xe2, 0x00, 0x01, 0x07},
		"enumTruncatedToInt32":   raftRaw(nil).varint(1, 1<<32|3).bytes(7, raftRaw(nil).varint(1, 1<<40|2)),
		"fieldsOutOfOrder":       raftRaw(nil).varint(13, 1).varint(8, 2).bytes(7, ent).varint(1, 3),
		// Fallback cases.
		"undefinedMessageType": raftRaw(nil).varint(1, 99).varint(2, 1),
		"negativeMessageType":  raftRaw(nil).varint(1, math.MaxUint64),
		"undefinedEntryType":   raftRaw(nil).bytes(7, raftRaw(nil).varint(1, 3)),
		"unknownField":         raftRaw(nil).varint(2, 1).varint(99, 7),
		"unknownFieldInEntry":  raftRaw(nil).bytes(7, raftRaw(nil).varint(2, 1).fixed32(5, 7)),
		"wrongWireType":        raftRaw(nil).fixed32(2, 1),
		"wrongWireTypeBytes":   raftRaw(nil).varint(7, 1),
		"wrongWireTypeInEntry": raftRaw(nil).bytes(7, raftRaw(nil).bytes(2, []byte{1})),
		"snapshotField":        raftRaw(nil).varint(1, 7).bytes(9, raftRaw(nil).bytes(1, []byte("s"))),
		"responsesField":       raftRaw(nil).bytes(14, raftRaw(nil).varint(2, 1)).bytes(7, ent),
		"groupField":           {0x7b, 0x7c}, // start/end group 15
		"truncatedVarint":      {0x10, 0x80},
		"truncatedBytes":       {0x3a, 0x05, 0x01},
		"truncatedEntry":       raftRaw(nil).bytes(7, []byte{0x10, 0x80}),
		"fieldZero":            {0x00, 0x01},
		"overflowVarint":       {0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
		"badEntryTag":          raftRaw(nil).bytes(7, []byte{0x80}),
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) { checkRaftUnmarshalAgrees(t, data) })
	}
}

func TestRaftWireMarshalFallbacks(t *testing.T) {
	// Unknown fields on the message and on an entry are preserved exactly as
	// protobuf-go preserves them.
	withUnknown := raftRaw(nil).varint(1, 3).varint(2, 2).
		bytes(7, raftRaw(nil).varint(2, 1).varint(3, 1).fixed32(9, 42).bytes(4, []byte("d"))).
		varint(99, 1)
	var m raftpb.Message
	if err := proto.Unmarshal(withUnknown, &m); err != nil {
		t.Fatal(err)
	}
	checkRaftMarshalEqual(t, &m)
	m.ProtoReflect().SetUnknown(nil)
	checkRaftMarshalEqual(t, &m)

	// A nil entry.
	checkRaftMarshalEqual(t, &raftpb.Message{To: raftU64(1), Entries: []*raftpb.Entry{nil, raftTestEntry(0, 1, 2, nil)}})

	// Undefined and negative enum values (not produced by raft, but encoded
	// the protobuf way: int32 sign-extended to 64 bits).
	bad := raftpb.MessageType(-5)
	badE := raftpb.EntryType(math.MinInt32)
	checkRaftMarshalEqual(t, &raftpb.Message{Type: &bad, Entries: []*raftpb.Entry{{Type: &badE}}})
	undef := raftpb.MessageType(1000)
	checkRaftMarshalEqual(t, &raftpb.Message{Type: &undef})

	// A nil message.
	checkRaftMarshalEqual(t, nil)
}

func checkRaftMarshalEqual(t *testing.T, m *raftpb.Message) {
	t.Helper()
	want, wantErr := proto.MarshalOptions{}.MarshalAppend([]byte{0xaa}, m)
	got, gotErr := appendRaftMessage([]byte{0xaa}, m)
	if (wantErr == nil) != (gotErr == nil) {
		t.Fatalf("errors differ: %v vs %v", gotErr, wantErr)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("appendRaftMessage(%v):\n got %x\nwant %x", m, got, want)
	}
}

func TestRaftWireUnmarshalAllocs(t *testing.T) {
	m := benchRaftMessage()
	b, _ := proto.Marshal(m)
	allocs := testing.AllocsPerRun(100, func() {
		var dec raftpb.Message
		if err := unmarshalRaftMessage(b, &dec); err != nil {
			t.Fatal(err)
		}
	})
	// Entries, entry pointers, Term/Index block, Type block, message block
	// (and dec itself, which escapes).
	if allocs > 6 {
		t.Errorf("unmarshalRaftMessage: %v allocs for %d entries, want <= 6", allocs, len(m.Entries))
	}
	allocs = testing.AllocsPerRun(100, func() {
		if _, err := appendRaftMessage(b[:0:len(b)], m); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("appendRaftMessage into a large enough buffer: %v allocs, want 0", allocs)
	}
}

func FuzzUnmarshalRaftMessage(f *testing.F) {
	for _, m := range raftTestMessages() {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	b, _ := proto.Marshal(benchRaftMessage())
	f.Add(b)
	f.Add([]byte{})
	f.Add([]byte{0x08, 0x63})                   // undefined MessageType
	f.Add([]byte{0x3a, 0x02, 0x08, 0x05})       // undefined EntryType
	f.Add([]byte{0x3a, 0x03, 0x10, 0x80})       // truncated entry
	f.Add([]byte{0x10, 0xff, 0xff, 0xff, 0xff}) // truncated varint
	f.Add([]byte{0x7b, 0x7c, 0x10, 0x01})       // group
	f.Add([]byte{0x4a, 0x00, 0x72, 0x00})       // empty snapshot, empty response
	f.Add([]byte("\x00\x01\x02junk\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkRaftUnmarshalAgrees(t, data)
	})
}

func FuzzAppendRaftMessage(f *testing.F) {
	f.Add(uint16(0xffff), int32(3), uint64(2), uint64(1), uint64(7), uint64(6), uint64(100),
		uint64(99), true, uint64(90), uint64(1), []byte("ctx"), uint8(3), []byte("entry data"), uint64(101))
	f.Add(uint16(0), int32(0), uint64(0), uint64(0), uint64(0), uint64(0), uint64(0),
		uint64(0), false, uint64(0), uint64(0), []byte(nil), uint8(0), []byte(nil), uint64(0))
	f.Add(uint16(0x5555), int32(-1), uint64(math.MaxUint64), uint64(1<<63), uint64(127), uint64(128), uint64(16383),
		uint64(16384), false, uint64(1<<35), uint64(3), []byte{}, uint8(0xff), bytes.Repeat([]byte{7}, 200), uint64(math.MaxUint64))
	f.Fuzz(func(t *testing.T, presence uint16, typ int32, to, from, term, logTerm, index, commit uint64,
		reject bool, rejectHint, vote uint64, context []byte, nEnt uint8, data []byte, entBase uint64) {
		bit := func(i int) bool { return presence&(1<<i) != 0 }
		m := &raftpb.Message{}
		if bit(0) {
			m.Type = raftpb.MessageType(typ).Enum()
		}
		if bit(1) {
			m.To = raftU64(to)
		}
		if bit(2) {
			m.From = raftU64(from)
		}
		if bit(3) {
			m.Term = raftU64(term)
		}
		if bit(4) {
			m.LogTerm = raftU64(logTerm)
		}
		if bit(5) {
			m.Index = raftU64(index)
		}
		if bit(6) {
			m.Commit = raftU64(commit)
		}
		if bit(7) {
			m.Reject = proto.Bool(reject)
		}
		if bit(8) {
			m.RejectHint = raftU64(rejectHint)
		}
		if bit(9) {
			m.Vote = raftU64(vote)
		}
		if bit(10) {
			m.Context = context
			if m.Context == nil {
				m.Context = []byte{}
			}
		}
		// Entries: nEnt&7 of them, each with fields chosen by bits of
		// entBase and a slice of data.
		for i := range int(nEnt & 7) {
			e := &raftpb.Entry{}
			sel := nEnt>>3 ^ uint8(i*5)
			if sel&1 != 0 {
				e.Type = raftpb.EntryType(int32(entBase>>(i*3)) % 4).Enum()
			}
			if sel&2 != 0 {
				e.Term = raftU64(entBase + uint64(i))
			}
			if sel&4 != 0 {
				e.Index = raftU64(entBase << i)
			}
			if sel&8 != 0 {
				e.Data = data[:min(len(data), i*17):min(len(data), i*17)]
			} else if sel&16 != 0 && len(data) > i {
				e.Data = data[i:]
			}
			m.Entries = append(m.Entries, e)
		}
		if bit(11) && len(m.Entries) > 0 {
			m.Entries[0].Type = raftpb.EntryType(typ).Enum() // arbitrary, possibly negative
		}
		if bit(12) {
			m.Responses = []*raftpb.Message{{To: raftU64(to)}}
		}
		if bit(13) {
			m.Snapshot = &raftpb.Snapshot{Data: data}
		}
		want, err := proto.MarshalOptions{}.MarshalAppend([]byte("p"), m)
		if err != nil {
			t.Fatal(err)
		}
		got, err := appendRaftMessage([]byte("p"), m)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("appendRaftMessage(%v):\n got %x\nwant %x", m, got, want)
		}
		// And the decoder agrees with protobuf on the result.
		checkRaftUnmarshalAgrees(t, want[1:])
	})
}

// benchRaftMessage is a MsgApp with 32 entries of ~160 bytes, as the leader
// sends under concurrent inserts.
func benchRaftMessage() *raftpb.Message {
	m := &raftpb.Message{
		Type: raftpb.MessageType_MsgApp.Enum(), To: raftU64(2), From: raftU64(1), Term: raftU64(5),
		LogTerm: raftU64(5), Index: raftU64(123456), Commit: raftU64(123450),
	}
	for i := range 32 {
		data := bytes.Repeat([]byte{byte('a' + i%26)}, 160)
		m.Entries = append(m.Entries, raftTestEntry(raftpb.EntryType_EntryNormal, 5, 123457+uint64(i), data))
	}
	return m
}

func BenchmarkRaftMessageMarshal(b *testing.B) {
	m := benchRaftMessage()
	b.Run("proto", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			var err error
			buf, err = proto.MarshalOptions{}.MarshalAppend(buf[:0], m)
			if err != nil {
				b.Fatal(err)
			}
		}
		b.SetBytes(int64(len(buf)))
	})
	b.Run("wire", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			var err error
			buf, err = appendRaftMessage(buf[:0], m)
			if err != nil {
				b.Fatal(err)
			}
		}
		b.SetBytes(int64(len(buf)))
	})
}

func BenchmarkRaftMessageUnmarshal(b *testing.B) {
	data, err := proto.Marshal(benchRaftMessage())
	if err != nil {
		b.Fatal(err)
	}
	b.Run("proto", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			m := &raftpb.Message{}
			if err := proto.Unmarshal(data, m); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("wire", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			m := &raftpb.Message{}
			if err := unmarshalRaftMessage(data, m); err != nil {
				b.Fatal(err)
			}
		}
	})
}
