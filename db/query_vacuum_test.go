package db

import "testing"

var vacuumCases = []struct {
	sql  string
	want bool
}{
	{"VACUUM INTO '/tmp/x'", true},
	{"  vacuum\n\tinto 'x'", true},
	{"/* c */ VACUUM -- c\n INTO 'x'", true},
	{"-- only\nVACUUM main INTO 'x'", true},
	{";VACUUM INTO 'x'", true},
	{"VACUUM", false},
	{"INSERT INTO t VALUES (1)", false},
	{"SELECT 'VACUUM INTO'", false},
	{"/* unterminated VACUUM INTO", false},
	{"", false},
	{"\u00a0VACUUM INTO 'x'", true}, // not SQL, but refused all the same
}

func TestIsVacuumInto(t *testing.T) {
	for _, c := range vacuumCases {
		if got := isVacuumInto(c.sql); got != c.want {
			t.Errorf("isVacuumInto(%q) = %v, want %v", c.sql, got, c.want)
		}
	}
}

// FuzzIsVacuumInto checks that the fast path never clears a statement the
// full word scan refuses.
func FuzzIsVacuumInto(f *testing.F) {
	for _, c := range vacuumCases {
		f.Add(c.sql)
	}
	f.Fuzz(func(t *testing.T, sql string) {
		if got, want := isVacuumInto(sql), vacuumIntoWords(sql); got != want {
			t.Fatalf("isVacuumInto(%q) = %v, word scan says %v", sql, got, want)
		}
	})
}

func BenchmarkIsVacuumInto(b *testing.B) {
	sql := "INSERT INTO t(id, v) VALUES(?, ?)"
	for b.Loop() {
		isVacuumInto(sql)
	}
}
