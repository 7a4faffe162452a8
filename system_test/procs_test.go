package system_test

import (
	"bufio"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A follower runs with fewer Ps than the leader (--follower-procs, by
// default half of GOMAXPROCS): each node's rdb_gomaxprocs follows its
// role, through an election and a leadership transfer.
func TestGOMAXPROCSFollowsTheRole(t *testing.T) {
	c := newCluster(t, 3)
	debug := map[uint64]string{}
	for _, n := range c.Nodes {
		debug[n.ID] = freeAddr(t)
		n.Args = append(n.Args, "--debug-listen", debug[n.ID])
		n.Env = append(n.Env, "GOMAXPROCS=4")
	}
	for _, n := range c.Nodes {
		n.Start(t)
	}
	expect := func(leader *Node) {
		t.Helper()
		waitFor(t, 30*time.Second, fmt.Sprintf("GOMAXPROCS 4 on leader %d, 2 on the others", leader.ID), func() error {
			for _, n := range c.Nodes {
				want := 2
				if n == leader {
					want = 4
				}
				got, err := gomaxprocs(debug[n.ID])
				if err != nil {
					return fmt.Errorf("node %d: %w", n.ID, err)
				}
				if got != want {
					return fmt.Errorf("node %d: rdb_gomaxprocs %d, want %d", n.ID, got, want)
				}
			}
			return nil
		})
	}
	leader := c.WaitLeader(t)
	expect(leader)
	next := c.Followers(leader)[0]
	placeLeader(t, c, next, true)
	expect(next)
}

// gomaxprocs reads rdb_gomaxprocs from a node's /metrics.
func gomaxprocs(addr string) (int, error) {
	client := http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "rdb_gomaxprocs "); ok {
			var n int
			if _, err := fmt.Sscan(v, &n); err != nil {
				return 0, fmt.Errorf("rdb_gomaxprocs %q: %w", v, err)
			}
			return n, nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no rdb_gomaxprocs in /metrics")
}
