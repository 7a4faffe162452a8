package cluster

import (
	"errors"
	"path/filepath"
	"testing"
)

func TestDeriveClusterID(t *testing.T) {
	a := map[uint64]string{1: "h1:7001", 2: "h2:7001", 3: "h3:7001"}
	b := map[uint64]string{3: "h3:7001", 1: "h1:7001", 2: "h2:7001"}
	if DeriveClusterID(a, "") != DeriveClusterID(b, "") {
		t.Fatal("the same members in another map order give another id")
	}
	if DeriveClusterID(a, "") == DeriveClusterID(a, "prod") {
		t.Fatal("the token does not change the id")
	}
	if DeriveClusterID(a, "") == DeriveClusterID(map[uint64]string{1: "h1:7001", 2: "h2:7001", 3: "h3:7002"}, "") {
		t.Fatal("another address gives the same id")
	}
	id := DeriveClusterID(a, "x")
	got, err := ParseClusterID(FormatClusterID(id))
	if err != nil || got != id {
		t.Fatalf("round trip %016x: %016x, %v", id, got, err)
	}
	for _, bad := range []string{"", "0", "xyz", "12345678901234567"} {
		if _, err := ParseClusterID(bad); err == nil {
			t.Errorf("ParseClusterID(%q) accepted", bad)
		}
	}
}

func TestLogStoreKeepsItsClusterID(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "n")
	ls, err := openLogStore(dir, 1, 0xabc, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	ls.close()
	// A restart with no expected id (or the same) reads the stored one;
	// an id derived from edited settings is not checked.
	for _, id := range []uint64{0, 0xabc} {
		ls, err = openLogStore(dir, 1, 0x999, id, 0)
		if err != nil {
			t.Fatalf("reopen with %x: %v", id, err)
		}
		if ls.clusterID != 0xabc {
			t.Fatalf("cluster id after restart: %x", ls.clusterID)
		}
		ls.close()
	}
	if _, err := openLogStore(dir, 1, 0x999, 0xdef, 0); !errors.Is(err, ErrWrongCluster) {
		t.Fatalf("reopen for another cluster: %v", err)
	}
}
