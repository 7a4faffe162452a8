package command

import "testing"

func BenchmarkMarshal(b *testing.B) {
	st, _ := NewStatement("INSERT INTO t (id, v) VALUES (?, ?)", 12345, string(make([]byte, 100)))
	cmd := &Command{Type: CommandType_COMMAND_TYPE_EXECUTE, ProposerId: 1, RequestId: 2, Statements: []*Statement{st}, TimeUnixNanos: 3, RandomSeed: 4}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Marshal(cmd); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUnmarshal(b *testing.B) {
	st, _ := NewStatement("INSERT INTO t (id, v) VALUES (?, ?)", 12345, string(make([]byte, 100)))
	data, _ := Marshal(&Command{Type: CommandType_COMMAND_TYPE_EXECUTE, ProposerId: 1, RequestId: 2, Statements: []*Statement{st}})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Unmarshal(data); err != nil {
			b.Fatal(err)
		}
	}
}
