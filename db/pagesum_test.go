package db

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"rdb/command"
)

func TestPageChecksum_KnownValues(t *testing.T) {
	page := make([]byte, 512)
	if s1, s2 := pageChecksum(page); s1 != 0 || s2 != 0 {
		t.Fatalf("zero page: %d %d", s1, s2)
	}
	if !pageSumOK(page) {
		t.Fatal("an all-zero page (a never-written page of a grown file) must verify")
	}
	// s1 += w0 + s2; s2 += w1 + s1, over little-endian words.
	// Over two data words (1, 2): s1 = 1, s2 = 2+1 = 3; a third and
	// fourth (3, 4): s1 = 1+3+3 = 7, s2 = 3+4+7 = 14.
	small := make([]byte, 24)
	binary.LittleEndian.PutUint32(small[0:], 1)
	binary.LittleEndian.PutUint32(small[4:], 2)
	if s1, s2 := pageChecksum(small[:16]); s1 != 1 || s2 != 3 {
		t.Fatalf("got %d %d, want 1 3", s1, s2)
	}
	binary.LittleEndian.PutUint32(small[8:], 3)
	binary.LittleEndian.PutUint32(small[12:], 4)
	if s1, s2 := pageChecksum(small); s1 != 7 || s2 != 14 {
		t.Fatalf("got %d %d, want 7 14", s1, s2)
	}
	binary.LittleEndian.PutUint32(page[0:], 1)
	setPageSum(page)
	if !pageSumOK(page) {
		t.Fatal("setPageSum did not verify")
	}
	page[100] ^= 0x10
	if pageSumOK(page) {
		t.Fatal("a flipped bit verified")
	}
}

// fillRows applies n rows of about size bytes each, starting at index idx.
func fillRows(t testing.TB, d *DB, idx uint64, n, size int) uint64 {
	t.Helper()
	mustApply(t, d, idx, execCmd(false, stmt(t, "CREATE TABLE IF NOT EXISTS r (id INTEGER PRIMARY KEY, v TEXT)")))
	for i := 0; i < n; i += 100 {
		idx++
		var ss = make([]*command.Statement, 0, 100)
		for j := i; j < i+100 && j < n; j++ {
			ss = append(ss, stmt(t, "INSERT INTO r (id, v) VALUES (?, ?)", j, fmt.Sprintf("value-%08d-%s", j, strings.Repeat("x", size))))
		}
		mustApply(t, d, idx, execCmd(true, ss...))
	}
	return idx
}

func header20(t testing.TB, path string) byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 100 {
		t.Fatalf("%s: %d bytes", path, len(b))
	}
	return b[20]
}

func TestPageChecksums_NewDatabaseAndFlip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db.sqlite")
	d, err := Open(context.Background(), Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	fillRows(t, d, 1, 2000, 200)
	if err := d.Close(); err != nil { // checkpoints the WAL into the file
		t.Fatal(err)
	}
	if got := header20(t, path); got != reserveBytes {
		t.Fatalf("reserve bytes %d, want %d", got, reserveBytes)
	}
	pages, err := scanPageChecksums(path)
	if err != nil || pages < 50 {
		t.Fatalf("scan: %d pages, %v", pages, err)
	}
	if _, err := VerifyFile(context.Background(), path); err != nil {
		t.Fatalf("verify an intact file: %v", err)
	}

	// Flip one bit inside a stored value: the row stays well-formed, so
	// only the page checksum can tell.
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	at := bytes.Index(b, []byte("value-00001234-"))
	if at < 0 {
		t.Fatal("value not found in the database file")
	}
	b[at+7] ^= 0x01 // '1' -> '0'
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	before, _ := ChecksumFaults()
	if _, err := VerifyFile(context.Background(), path); !errors.Is(err, ErrCorruptFile) {
		t.Fatalf("VerifyFile after a flip: %v, want ErrCorruptFile", err)
	}
	d, err = Open(context.Background(), Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Check(context.Background()); !errors.Is(err, ErrCorruptFile) {
		t.Fatalf("Check after a flip: %v, want ErrCorruptFile", err)
	}
	// A read that reaches the page fails instead of returning the value,
	// as the node's damage, not the statement's.
	_, err = d.Query(context.Background(), []*command.Statement{stmt(t, "SELECT v FROM r WHERE id = 1234")})
	if !errors.Is(err, ErrCorruptFile) || errors.Is(err, ErrSQL) {
		t.Fatalf("a read of the damaged page: %v, want ErrCorruptFile and not ErrSQL", err)
	}
	if after, last := ChecksumFaults(); after <= before || !strings.Contains(last, "page checksum mismatch") {
		t.Fatalf("faults %d -> %d, last %q", before, after, last)
	}
}

func TestPageChecksums_AddedToAnOldDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db.sqlite")
	// A database written before rdb kept checksums: no reserve bytes.
	old, err := sql.Open("sqlite", path+"?_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.Exec("CREATE TABLE r (id INTEGER PRIMARY KEY, v TEXT)"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 500; i++ {
		if _, err := old.Exec("INSERT INTO r VALUES (?, ?)", i, strings.Repeat("y", 300)); err != nil {
			t.Fatal(err)
		}
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	if got := header20(t, path); got != 0 {
		t.Fatalf("old database has %d reserve bytes", got)
	}
	d, err := Open(context.Background(), Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if got := header20(t, path); got != reserveBytes {
		t.Fatalf("after Open: %d reserve bytes, want %d", got, reserveBytes)
	}
	if n := mustQuery(t, d, "SELECT count(*) FROM r").Rows[0].Values[0].GetInteger(); n != 500 {
		t.Fatalf("%d rows after conversion", n)
	}
	if err := d.Check(context.Background()); err != nil {
		t.Fatalf("Check after conversion: %v", err)
	}
	// Writes after the conversion keep every page checksummed.
	fillRows(t, d, 1, 1000, 100)
	if err := d.Check(context.Background()); err != nil {
		t.Fatalf("Check after writes: %v", err)
	}
}

func TestPageChecksums_SnapshotLargerThanTheCache(t *testing.T) {
	d := openTest(t)
	// About 6 MB: more than the copy's 2 MB page cache, so SQLite spills
	// pages of the copy before its page 1.
	fillRows(t, d, 1, 12000, 500)
	snap := filepath.Join(t.TempDir(), "snap.sqlite")
	if _, err := d.Snapshot(context.Background(), snap); err != nil {
		t.Fatal(err)
	}
	if got := header20(t, snap); got != reserveBytes {
		t.Fatalf("snapshot reserve bytes %d", got)
	}
	pages, err := scanPageChecksums(snap)
	if err != nil {
		t.Fatalf("snapshot scan (%d pages): %v", pages, err)
	}
	if pages < 1000 {
		t.Fatalf("only %d pages", pages)
	}
	if _, err := VerifyFile(context.Background(), snap); err != nil {
		t.Fatal(err)
	}
	// The live file, after the writer checkpoints, verifies too.
	if err := d.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkPageChecksum(b *testing.B) {
	page := make([]byte, 4096)
	for i := range page {
		page[i] = byte(i * 7)
	}
	b.SetBytes(int64(len(page)))
	for b.Loop() {
		setPageSum(page)
	}
}
