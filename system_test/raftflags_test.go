package system_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRaftMessageFlags runs clusters with the smallest replication
// messages and one in flight (--raft-max-msg-bytes 4096
// --raft-max-inflight-msgs 1), and with the largest messages (16 MiB): a
// follower stopped while rows were written catches up after its restart,
// and every replica ends with the same data. Out-of-range values are
// refused before the data directory is touched.
func TestRaftMessageFlags(t *testing.T) {
	for _, tc := range []struct {
		flag, value, want string
	}{
		{"--raft-max-msg-bytes", "100", "--raft-max-msg-bytes 100: must be 4096 to"},
		{"--raft-max-msg-bytes", "1073741824", "must be 4096 to 16777216"},
		{"--raft-max-inflight-msgs", "0", "--raft-max-inflight-msgs 0: must be 1 to 65536"},
	} {
		dir := filepath.Join(t.TempDir(), "data")
		out, code, exited := runFor(rdbBin, []string{"serve", "--data-dir", dir, "--listen", freeAddr(t), "--peer-listen", freeAddr(t), tc.flag, tc.value}, 30*time.Second)
		if !exited || code == 0 || !strings.Contains(out, tc.want) {
			t.Errorf("%s %s: exited %v with %d, want a refusal saying %q:\n%s", tc.flag, tc.value, exited, code, tc.want, tail(out, 10))
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%s %s: the data directory was created (stat: %v)", tc.flag, tc.value, err)
		}
	}

	for _, tc := range []struct {
		name, size, inflight string
		rows, valueBytes     int
	}{
		// The smallest messages, one at a time.
		{"smallest", "4096", "1", 200, 2000},
		// The largest messages: 12 entries of 3 MiB catch up in MsgApps
		// of up to 16 MiB over the real transport.
		{"largest", "16777216", "256", 12, 3 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := StartCluster(t, 3, "--raft-max-msg-bytes", tc.size, "--raft-max-inflight-msgs", tc.inflight)
			cl := c.Client(t)
			mustExec(t, cl, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
			leader := c.WaitLeader(t)
			follower := c.Followers(leader)[0]
			follower.Stop(t)
			var idx uint64
			for i := range tc.rows {
				idx = mustExec(t, cl, "INSERT INTO t VALUES (?, ?)", i, fmt.Sprintf("%d-%s", i, strings.Repeat("x", tc.valueBytes))).GetRaftIndex()
			}
			follower.Start(t)
			c.waitConverged(t, idx, 2*time.Minute)
			res := mustQuery(t, NodeClient(t, follower), lvNone, idx, "SELECT count(*), sum(length(v)) FROM t")
			row := res.GetRows()[0].GetValues()
			if n, size := row[0].GetInteger(), row[1].GetInteger(); n != int64(tc.rows) || size < int64(tc.rows*tc.valueBytes) {
				t.Fatalf("restarted follower has %d rows of %d bytes, want %d rows of at least %d", n, size, tc.rows, tc.rows*tc.valueBytes)
			}
		})
	}
}
