package cluster

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
)

// DeriveClusterID returns the id of a cluster bootstrapped from initial
// (node ids to peer addresses) and token: the first 8 bytes of a SHA-256
// over the token and the sorted members. Every node bootstrapped with the
// same --initial-cluster and --cluster-token computes the same id without
// talking to the others (etcd derives its cluster id the same way). Two
// clusters bootstrapped from identical settings share an id; a distinct
// token per cluster tells them apart. The result is never 0, which means
// "unknown" (a data directory written before cluster ids existed).
func DeriveClusterID(initial map[uint64]string, token string) uint64 {
	ids := make([]uint64, 0, len(initial))
	for id := range initial {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	h := sha256.New()
	fmt.Fprintf(h, "rdb-cluster\x00%s\x00", token)
	for _, id := range ids {
		h.Write([]byte(strconv.FormatUint(id, 10) + "=" + initial[id] + "\n"))
	}
	id := binary.BigEndian.Uint64(h.Sum(nil)[:8])
	if id == 0 {
		id = 1
	}
	return id
}

// FormatClusterID renders a cluster id the way rdb prints and accepts it:
// 16 hex digits.
func FormatClusterID(id uint64) string { return fmt.Sprintf("%016x", id) }

// ParseClusterID reads a cluster id as printed by FormatClusterID.
func ParseClusterID(s string) (uint64, error) {
	id, err := strconv.ParseUint(s, 16, 64)
	if err != nil || id == 0 {
		return 0, fmt.Errorf("cluster id %q: want up to 16 hex digits, not zero", s)
	}
	return id, nil
}

// ClusterID returns the id of the cluster this node belongs to, fixed
// when its log was created; 0 for a log written before cluster ids
// existed, in which case no check is made.
func (n *Node) ClusterID() uint64 { return n.store.clusterID }

// CheckClusterID returns ErrWrongCluster when other is a known cluster id
// that differs from this node's.
func (n *Node) CheckClusterID(other uint64) error { return CheckClusterIDs(n.ClusterID(), other) }

// CheckClusterIDs returns ErrWrongCluster when own and other are both
// known cluster ids (not 0) and differ: own is this side's, other the
// one a peer, a joining node or a call announced.
func CheckClusterIDs(own, other uint64) error {
	if other == 0 || own == 0 || other == own {
		return nil
	}
	return fmt.Errorf("%w: this node belongs to cluster %s, the other side to cluster %s",
		ErrWrongCluster, FormatClusterID(own), FormatClusterID(other))
}
