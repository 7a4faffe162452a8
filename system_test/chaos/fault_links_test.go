package chaos

import (
	"net"
	"slices"
	"testing"
)

func TestNetns_NodeOf(t *testing.T) {
	nw := &netns{subnet: "10.1.2.", nodes: 3}
	for _, tc := range []struct {
		ip   string
		want int
	}{
		{"10.1.2.1", 1}, {"10.1.2.3", 3}, {"10.1.2.4", AnySource}, {"10.1.2.254", AnySource},
		{"10.1.20.1", AnySource}, {"127.0.0.1", AnySource},
	} {
		if got := nw.nodeOf(&net.TCPAddr{IP: net.ParseIP(tc.ip), Port: 40000}); got != tc.want {
			t.Errorf("nodeOf(%s) = %d, want %d", tc.ip, got, tc.want)
		}
	}
}

func TestWithFailpointsTag(t *testing.T) {
	for in, want := range map[string]string{
		"":                      "failpoints",
		"failpoints":            "failpoints",
		"broken_localread":      "broken_localread,failpoints",
		"a failpoints":          "a failpoints",
		"broken_failpoints_not": "broken_failpoints_not,failpoints",
	} {
		if got := WithFailpointsTag(in); got != want {
			t.Errorf("WithFailpointsTag(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseScenarios_Links(t *testing.T) {
	got, err := ParseScenarios("links")
	if err != nil {
		t.Fatal(err)
	}
	want := []Scenario{SlowLinks, LossyLinks, BlackholeUntilSnapshot}
	if !slices.Equal(got, want) {
		t.Fatalf("links = %v, want %v", got, want)
	}
	all, _ := ParseScenarios("all")
	for _, s := range want {
		if !slices.Contains(all, s) {
			t.Errorf("all lacks %s", s)
		}
		if !s.usesProxies() || s.NeedsPartitions() {
			t.Errorf("%s: usesProxies %v NeedsPartitions %v", s, s.usesProxies(), s.NeedsPartitions())
		}
	}
	if !NeedsFailpoints([]Scenario{KillLeader, BlackholeUntilSnapshot}) || NeedsFailpoints(all[:3]) {
		t.Error("NeedsFailpoints")
	}
}
