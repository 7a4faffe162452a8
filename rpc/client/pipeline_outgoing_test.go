package client

import (
	"context"
	"slices"
	"testing"

	"google.golang.org/grpc/metadata"
)

// TestPipelineOutgoingReplacesItsKeys checks the metadata of a Pipeline's
// unary calls: the pipeline's keys replace the caller's values for them
// (a forwarding node put its cluster id in both and sent it twice), and
// the caller's other keys stay.
func TestPipelineOutgoingReplacesItsKeys(t *testing.T) {
	p := &Pipeline{md: metadata.Pairs(MetadataClusterID, "pipeline-id", "rdb-forwarded", "1")}
	ctx := metadata.NewOutgoingContext(context.Background(), metadata.Pairs(MetadataClusterID, "caller-id", "caller-key", "kept"))
	md, _ := metadata.FromOutgoingContext(p.outgoing(ctx))
	for key, want := range map[string][]string{
		MetadataClusterID: {"pipeline-id"},
		"rdb-forwarded":   {"1"},
		"caller-key":      {"kept"},
	} {
		if got := md.Get(key); !slices.Equal(got, want) {
			t.Errorf("%s = %q, want %q", key, got, want)
		}
	}
	// A caller without metadata gets the pipeline's.
	md, _ = metadata.FromOutgoingContext(p.outgoing(context.Background()))
	if got := md.Get(MetadataClusterID); !slices.Equal(got, []string{"pipeline-id"}) {
		t.Errorf("without caller metadata: %s = %q", MetadataClusterID, got)
	}
}
