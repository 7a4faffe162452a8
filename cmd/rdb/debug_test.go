package main

import (
	"net/http/httptest"
	"regexp"
	"strconv"
	"testing"

	"go.etcd.io/etcd/server/v3/storage/wal"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
)

// The debug server's /metrics shows etcd's WAL fsync latency next to
// rdb's own metrics, once, without a second copy of the Go and process
// collectors.
func TestDebugServer_MetricsIncludeWALFsync(t *testing.T) {
	w, err := wal.Create(zap.NewNop(), t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	term, index := uint64(1), uint64(1)
	// Entries make the save fsync (raft.MustSync).
	if err := w.Save(&raftpb.HardState{Term: &term}, []*raftpb.Entry{{Term: &term, Index: &index, Data: []byte("x")}}); err != nil {
		t.Fatal(err)
	}

	srv := newDebugServer(newRegistry())
	rec := httptest.NewRecorder()
	srv.Handler.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.Bytes()
	if rec.Code != 200 {
		t.Fatalf("GET /metrics: %d\n%s", rec.Code, body)
	}
	m := regexp.MustCompile(`(?m)^etcd_disk_wal_fsync_duration_seconds_count (\d+)$`).FindSubmatch(body)
	if m == nil {
		t.Fatalf("no etcd_disk_wal_fsync_duration_seconds_count in /metrics:\n%s", body)
	}
	if n, _ := strconv.Atoi(string(m[1])); n < 1 {
		t.Fatalf("etcd_disk_wal_fsync_duration_seconds_count %d after an fsynced save", n)
	}
	for _, name := range []string{"rdb_gomaxprocs", "go_goroutines", "process_cpu_seconds_total"} {
		if c := len(regexp.MustCompile(`(?m)^`+name+` `).FindAll(body, -1)); c != 1 {
			t.Errorf("%s appears %d times in /metrics, want once", name, c)
		}
	}
}
