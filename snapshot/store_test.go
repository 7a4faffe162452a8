package snapshot

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

func openStore(t testing.TB, dir string) *Store {
	t.Helper()
	s, err := Open(dir)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func payload(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7)
	}
	return b
}

// save writes and commits a snapshot with the given payload.
func save(t testing.TB, s *Store, term, index uint64, data []byte) Meta {
	t.Helper()
	w, err := s.Create(Meta{Term: term, Index: index, ConfState: &raftpb.ConfState{Voters: []uint64{1, 2, 3}}})
	if err != nil {
		t.Fatalf("Create(%d, %d): %v", term, index, err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatalf("Write: %v", err)
	}
	m, err := w.Commit()
	if err != nil {
		t.Fatalf("Commit: %v", err)
	}
	return m
}

func dirNames(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func positions(metas []Meta) [][2]uint64 {
	var out [][2]uint64
	for _, m := range metas {
		out = append(out, [2]uint64{m.Term, m.Index})
	}
	return out
}

func TestStore_CreateCommit(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	data := payload(10_000, 1)
	auto := true
	cs := &raftpb.ConfState{Voters: []uint64{1, 2}, Learners: []uint64{4}, VotersOutgoing: []uint64{1, 3}, LearnersNext: []uint64{3}, AutoLeave: &auto}
	w, err := s.Create(Meta{Term: 2, Index: 42, ConfState: cs})
	if err != nil {
		t.Fatal(err)
	}
	// Nothing is visible before Commit.
	if metas, _ := s.List(); len(metas) != 0 {
		t.Fatalf("List before Commit = %v", metas)
	}
	for i := 0; i < len(data); i += 999 {
		if _, err := w.Write(data[i:min(i+999, len(data))]); err != nil {
			t.Fatal(err)
		}
	}
	m, err := w.Commit()
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if m.Size != int64(len(data)) || !bytes.Equal(m.SHA256, sum[:]) || m.CreatedAt.IsZero() {
		t.Fatalf("Commit meta = %+v", m)
	}
	if got, want := dirNames(t, dir), []string{"0000000000000002-000000000000002a.meta", "0000000000000002-000000000000002a.snap"}; !slices.Equal(got, want) {
		t.Fatalf("files = %v, want %v", got, want)
	}
	if _, err := w.Write([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Write after Commit: %v, want ErrClosed", err)
	}
	if err := w.Abort(); err != nil {
		t.Fatalf("Abort after Commit: %v", err)
	}

	got, path, err := openStore(t, dir).Newest()
	if err != nil {
		t.Fatal(err)
	}
	if path != s.Path(m) {
		t.Fatalf("Newest path = %s, want %s", path, s.Path(m))
	}
	if got.Term != 2 || got.Index != 42 || got.Size != m.Size || !bytes.Equal(got.SHA256, m.SHA256) || !got.CreatedAt.Equal(m.CreatedAt) {
		t.Fatalf("Newest = %+v, want %+v", got, m)
	}
	if err := got.ConfState.Equivalent(cs); err != nil || got.ConfState.AutoLeave == nil {
		t.Fatalf("ConfState = %v, want %v (%v)", got.ConfState, cs, err)
	}
	if b, _ := os.ReadFile(path); !bytes.Equal(b, data) {
		t.Fatal("payload differs")
	}
	if err := s.Verify(got); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	rm := got.RaftMetadata()
	if rm.GetIndex() != 42 || rm.GetTerm() != 2 || rm.GetConfState() != got.ConfState {
		t.Fatalf("RaftMetadata = %v", rm)
	}
}

func TestStore_CreateErrors(t *testing.T) {
	s := openStore(t, t.TempDir())
	save(t, s, 1, 10, []byte("a"))

	if _, err := s.Create(Meta{Term: 1, Index: 10}); !errors.Is(err, ErrExists) {
		t.Errorf("Create committed: %v, want ErrExists", err)
	}
	if _, err := s.Create(Meta{Term: 1, Index: 0}); err == nil {
		t.Errorf("Create index 0: no error")
	}
	w, err := s.Create(Meta{Term: 1, Index: 11})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(Meta{Term: 1, Index: 11}); !errors.Is(err, ErrExists) {
		t.Errorf("Create pending: %v, want ErrExists", err)
	}
	if _, err := s.Import(Meta{Term: 1, Index: 11}, s.Path(Meta{Term: 1, Index: 10})); !errors.Is(err, ErrExists) {
		t.Errorf("Import pending: %v, want ErrExists", err)
	}
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	if err := w.Abort(); err != nil {
		t.Fatalf("second Abort: %v", err)
	}
	if _, err := w.Commit(); !errors.Is(err, ErrClosed) {
		t.Errorf("Commit after Abort: %v, want ErrClosed", err)
	}
	if got, want := dirNames(t, s.Dir()), []string{"0000000000000001-000000000000000a.meta", "0000000000000001-000000000000000a.snap"}; !slices.Equal(got, want) {
		t.Fatalf("after Abort files = %v, want %v", got, want)
	}

	// A reservation is released by Abort: the index can be written again,
	// and a Commit with a mismatching expected SHA-256 leaves nothing.
	w, err = s.Create(Meta{Term: 1, Index: 11, SHA256: bytes.Repeat([]byte{1}, 32)})
	if err != nil {
		t.Fatalf("Create after Abort: %v", err)
	}
	w.Write([]byte("payload"))
	if _, err := w.Commit(); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Commit wrong sha: %v, want ErrCorrupt", err)
	}
	if metas, _ := s.List(); len(metas) != 1 {
		t.Fatalf("List = %v, want only the first snapshot", positions(metas))
	}
	sum := sha256.Sum256([]byte("payload"))
	w, err = s.Create(Meta{Term: 1, Index: 11, SHA256: sum[:]})
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("payload"))
	if _, err := w.Commit(); err != nil {
		t.Fatalf("Commit right sha: %v", err)
	}
}

// TestStore_Crash simulates crashes at each step of the commit protocol by
// building the files a crash would leave, then reopening.
func TestStore_Crash(t *testing.T) {
	const base = "0000000000000001-0000000000000009"
	good, err := encodeMeta(Meta{Term: 1, Index: 9, Size: 3, SHA256: make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	badCRC := bytes.Replace(good, []byte(`"size":3`), []byte(`"size":4`), 1)
	wrongName, _ := encodeMeta(Meta{Term: 1, Index: 8, Size: 3, SHA256: make([]byte, 32)})
	tests := []struct {
		name      string
		files     map[string][]byte
		wantFiles []string // after Open, besides the valid snapshot
		wantOrph  bool     // Reap(10) removes all but the valid snapshot
	}{
		{name: "payload tmp", files: map[string][]byte{base + ".snap.tmp": []byte("abc")}},
		{name: "both tmp", files: map[string][]byte{base + ".snap.tmp": []byte("abc"), base + ".meta.tmp": good}},
		{name: "payload renamed, meta tmp", files: map[string][]byte{base + ".snap": []byte("abc"), base + ".meta.tmp": good},
			wantFiles: []string{base + ".snap"}, wantOrph: true},
		{name: "payload without meta", files: map[string][]byte{base + ".snap": []byte("abc")},
			wantFiles: []string{base + ".snap"}, wantOrph: true},
		{name: "meta without payload", files: map[string][]byte{base + ".meta": good},
			wantFiles: []string{base + ".meta"}, wantOrph: true},
		{name: "meta bad crc", files: map[string][]byte{base + ".snap": []byte("abc"), base + ".meta": badCRC},
			wantFiles: []string{base + ".meta", base + ".snap"}, wantOrph: true},
		{name: "meta names another index", files: map[string][]byte{base + ".snap": []byte("abc"), base + ".meta": wrongName},
			wantFiles: []string{base + ".meta", base + ".snap"}, wantOrph: true},
		{name: "payload wrong size", files: map[string][]byte{base + ".snap": []byte("abcd"), base + ".meta": good},
			wantFiles: []string{base + ".meta", base + ".snap"}, wantOrph: true},
		{name: "garbage meta", files: map[string][]byte{base + ".snap": []byte("abc"), base + ".meta": []byte("{\x00")},
			wantFiles: []string{base + ".meta", base + ".snap"}, wantOrph: true},
		{name: "foreign files untouched", files: map[string][]byte{"README": []byte("x"), "1-2.snap": []byte("x")},
			wantFiles: []string{"1-2.snap", "README"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			valid := save(t, openStore(t, dir), 1, 5, []byte("valid"))
			for name, b := range tt.files {
				if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			s := openStore(t, dir)
			validFiles := []string{"0000000000000001-0000000000000005.meta", "0000000000000001-0000000000000005.snap"}
			want := append(slices.Clone(validFiles), tt.wantFiles...)
			slices.Sort(want)
			if got := dirNames(t, dir); !slices.Equal(got, want) {
				t.Fatalf("files after Open = %v, want %v", got, want)
			}
			metas, err := s.List()
			if err != nil {
				t.Fatal(err)
			}
			if got := positions(metas); !slices.Equal(got, [][2]uint64{{1, 5}}) {
				t.Fatalf("List = %v, want only the valid snapshot", got)
			}
			if err := s.Verify(metas[0]); err != nil || metas[0].Size != valid.Size {
				t.Fatalf("Verify valid: %v", err)
			}
			if err := s.Reap(10); err != nil {
				t.Fatal(err)
			}
			want = validFiles
			if !tt.wantOrph {
				want = append(slices.Clone(validFiles), tt.wantFiles...)
				slices.Sort(want)
			}
			if got := dirNames(t, dir); !slices.Equal(got, want) {
				t.Fatalf("files after Reap = %v, want %v", got, want)
			}
		})
	}
}

func TestStore_List(t *testing.T) {
	tests := []struct {
		name string
		add  [][2]uint64 // term, index in creation order
		want [][2]uint64
	}{
		{name: "empty"},
		{name: "one", add: [][2]uint64{{1, 1}}, want: [][2]uint64{{1, 1}}},
		{name: "by index", add: [][2]uint64{{3, 5}, {1, 100}, {2, 20}}, want: [][2]uint64{{1, 100}, {2, 20}, {3, 5}}},
		{name: "index then term", add: [][2]uint64{{1, 7}, {3, 7}, {2, 7}, {1, 8}}, want: [][2]uint64{{1, 8}, {3, 7}, {2, 7}, {1, 7}}},
		{name: "hex names do not sort numerically by name", add: [][2]uint64{{16, 1}, {2, 255}, {1, 256}}, want: [][2]uint64{{1, 256}, {2, 255}, {16, 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openStore(t, t.TempDir())
			for i, p := range tt.add {
				save(t, s, p[0], p[1], payload(i+1, byte(i)))
			}
			metas, err := s.List()
			if err != nil {
				t.Fatal(err)
			}
			if got := positions(metas); !slices.Equal(got, tt.want) {
				t.Fatalf("List = %v, want %v", got, tt.want)
			}
			m, path, err := s.Newest()
			if len(tt.want) == 0 {
				if !errors.Is(err, ErrNotFound) {
					t.Fatalf("Newest on empty: %v, want ErrNotFound", err)
				}
				return
			}
			if err != nil || m.Term != tt.want[0][0] || m.Index != tt.want[0][1] || path != s.Path(m) {
				t.Fatalf("Newest = %v %s %v", m, path, err)
			}
		})
	}
}

func TestStore_Verify(t *testing.T) {
	data := payload(5000, 3)
	tests := []struct {
		name    string
		corrupt func(path string) error
		want    error
	}{
		{name: "intact", corrupt: func(string) error { return nil }},
		{name: "flipped byte", want: ErrCorrupt, corrupt: func(p string) error {
			b, _ := os.ReadFile(p)
			b[2500] ^= 0x01
			return os.WriteFile(p, b, 0o600)
		}},
		{name: "truncated", want: ErrCorrupt, corrupt: func(p string) error { return os.Truncate(p, 4999) }},
		{name: "extended", want: ErrCorrupt, corrupt: func(p string) error {
			f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				return err
			}
			f.Write([]byte{0})
			return f.Close()
		}},
		{name: "missing", want: ErrNotFound, corrupt: os.Remove},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openStore(t, t.TempDir())
			m := save(t, s, 1, 1, data)
			if err := tt.corrupt(s.Path(m)); err != nil {
				t.Fatal(err)
			}
			err := s.Verify(m)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestStore_Reap(t *testing.T) {
	for _, keep := range []int{0, 1, 2, 4, 10} {
		t.Run(fmt.Sprintf("keep=%d", keep), func(t *testing.T) {
			dir := t.TempDir()
			s := openStore(t, dir)
			all := [][2]uint64{{1, 40}, {1, 30}, {1, 20}, {1, 10}}
			for _, p := range [][2]uint64{{1, 20}, {1, 40}, {1, 10}, {1, 30}} {
				save(t, s, p[0], p[1], payload(int(p[1]), 0))
			}
			// An orphaned payload newer than all of them must not be kept.
			if err := os.WriteFile(filepath.Join(dir, baseName(2, 50)+dataSuffix), []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := s.Reap(keep); err != nil {
				t.Fatal(err)
			}
			metas, err := s.List()
			if err != nil {
				t.Fatal(err)
			}
			want := all[:min(keep, len(all))]
			if got := positions(metas); !slices.Equal(got, want) {
				t.Fatalf("after Reap(%d) List = %v, want %v", keep, got, want)
			}
			if got := len(dirNames(t, dir)); got != 2*len(want) {
				t.Fatalf("after Reap(%d) %d files, want %d: %v", keep, got, 2*len(want), dirNames(t, dir))
			}
		})
	}
	if err := openStore(t, t.TempDir()).Reap(-1); err == nil {
		t.Fatal("Reap(-1): no error")
	}
}

func TestStore_Import(t *testing.T) {
	data := payload(3000, 9)
	sum := sha256.Sum256(data)
	tests := []struct {
		name    string
		sha     []byte
		wantErr error
	}{
		{name: "sha computed"},
		{name: "sha verified", sha: sum[:]},
		{name: "sha mismatch", sha: make([]byte, 32), wantErr: ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openStore(t, filepath.Join(dir, "snaps"))
			src := filepath.Join(dir, "incoming.db")
			if err := os.WriteFile(src, data, 0o600); err != nil {
				t.Fatal(err)
			}
			created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
			m, err := s.Import(Meta{Term: 3, Index: 77, SHA256: tt.sha, CreatedAt: created}, src)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Import = %v, want %v", err, tt.wantErr)
				}
				if _, err := os.Stat(src); err != nil {
					t.Fatalf("source should stay after a failed Import: %v", err)
				}
				if metas, _ := s.List(); len(metas) != 0 {
					t.Fatalf("List after failed Import = %v", positions(metas))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.Size != int64(len(data)) || !bytes.Equal(m.SHA256, sum[:]) || !m.CreatedAt.Equal(created) {
				t.Fatalf("Import meta = %+v", m)
			}
			if _, err := os.Stat(src); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("source still exists: %v", err)
			}
			got, _, err := s.Newest()
			if err != nil || got.Index != 77 {
				t.Fatalf("Newest = %v, %v", got, err)
			}
			if err := s.Verify(got); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Import(Meta{Term: 3, Index: 77}, src); !errors.Is(err, ErrExists) {
				t.Fatalf("second Import = %v, want ErrExists", err)
			}
		})
	}
}

func TestMeta_Encoding(t *testing.T) {
	sum := sha256.Sum256([]byte("x"))
	b, err := encodeMeta(Meta{Term: 1, Index: 2, Size: 1, SHA256: sum[:]})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(fmt.Sprintf(`"sha256":"%x"`, sum))) {
		t.Fatalf("sha256 is not hex in %s", b)
	}
	m, err := decodeMeta(b)
	if err != nil || m.Index != 2 || m.ConfState != nil {
		t.Fatalf("decode = %+v, %v", m, err)
	}
	for _, bad := range []string{
		"", "{}", `{"version":2}`,
		string(bytes.Replace(b, []byte(`"index":2`), []byte(`"index":3`), 1)),
		string(bytes.Replace(b, []byte(`"version":1`), []byte(`"version":9`), 1)),
	} {
		if _, err := decodeMeta([]byte(bad)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("decodeMeta(%q) = %v, want ErrCorrupt", bad, err)
		}
	}
}

// TestStore_Concurrent exercises commits, lists, verifies and reaps in
// parallel; run with -race.
func TestStore_Concurrent(t *testing.T) {
	s := openStore(t, t.TempDir())
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 10 {
				save(t, s, 1, uint64(g*100+i+1), payload(100, byte(i)))
			}
		})
	}
	for range 2 {
		wg.Go(func() {
			for range 20 {
				metas, err := s.List()
				if err != nil {
					t.Error(err)
					return
				}
				if err := s.Reap(3); err != nil {
					t.Error(err)
					return
				}
				for _, m := range metas {
					// A concurrent Reap may have removed it.
					if err := s.Verify(m); err != nil && !errors.Is(err, ErrNotFound) {
						t.Error(err)
					}
				}
			}
		})
	}
	wg.Wait()
	if err := s.Reap(3); err != nil {
		t.Fatal(err)
	}
	metas, _ := s.List()
	if got, want := positions(metas), [][2]uint64{{1, 310}, {1, 309}, {1, 308}}; !slices.Equal(got, want) {
		t.Fatalf("List = %v, want %v", got, want)
	}
}

// TestStore_ImportOtherFileSystem imports from /dev/shm, which on Linux is
// usually a tmpfs, so the rename fails with EXDEV and Import copies.
func TestStore_ImportOtherFileSystem(t *testing.T) {
	f, err := os.CreateTemp("/dev/shm", "rdb-snapshot-test-*")
	if err != nil {
		t.Skipf("no /dev/shm: %v", err)
	}
	t.Cleanup(func() { os.Remove(f.Name()) })
	data := payload(10_000, 4)
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	f.Close()
	s := openStore(t, t.TempDir())
	m, err := s.Import(Meta{Term: 1, Index: 5}, f.Name())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(m); err != nil || m.Size != int64(len(data)) {
		t.Fatalf("Verify: %v, size %d", err, m.Size)
	}
	if _, err := os.Stat(f.Name()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("source still exists: %v", err)
	}
}

// TestStore_Discard: a discarded snapshot is gone from Newest and List,
// and the same term and index can be stored again (the cluster replaces
// a stored snapshot that failed Verify by a fresh copy).
func TestStore_Discard(t *testing.T) {
	s := openStore(t, t.TempDir())
	old := save(t, s, 1, 5, payload(3000, 1))
	m := save(t, s, 1, 9, payload(3000, 2))
	if err := s.Discard(m); err != nil {
		t.Fatal(err)
	}
	if got, _, err := s.Newest(); err != nil || got.Index != old.Index {
		t.Fatalf("Newest after Discard = %v, %v; want index %d", got, err, old.Index)
	}
	if _, err := os.Stat(s.Path(m)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("payload still there: %v", err)
	}
	again := save(t, s, 1, 9, payload(3000, 3))
	if err := s.Verify(again); err != nil {
		t.Fatalf("stored again: %v", err)
	}
}
