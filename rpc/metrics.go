package rpc

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Metrics counts client API requests by method and status code and
// times them (namespace rdb, subsystem rpc).
type Metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	batch    prometheus.Histogram
	replies  prometheus.Histogram
	// forwarded counts the Execute calls of Pipeline streams a follower
	// handed straight to its pipeline to the leader (forwardCall).
	forwarded prometheus.Counter
	// byMethod caches, by method, its latency observer and its counter of
	// successful calls (method -> *methodMetrics): looking them up by
	// label values on every call was 4% of a node's CPU under point reads
	// (issue 7).
	byMethod sync.Map
}

type methodMetrics struct {
	latency prometheus.Observer
	ok      prometheus.Counter
}

// NewMetrics creates the collectors and registers them on reg (if not nil).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "rdb", Subsystem: "rpc", Name: "requests_total",
			Help: "Client API requests by method and gRPC status code."}, []string{"method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "rdb", Subsystem: "rpc", Name: "request_seconds",
			Help:    "Client API request latency by method.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10}}, []string{"method"}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "rdb", Subsystem: "rpc", Name: "pipeline_calls_per_message",
			Help:    "Calls per message received on Pipeline streams (how many calls shared one message).",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512}}),
		replies: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "rdb", Subsystem: "rpc", Name: "pipeline_replies_per_message",
			Help:    "Replies per message sent on Pipeline streams (how many replies shared one message).",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512}}),
		forwarded: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "rdb", Subsystem: "rpc", Name: "pipeline_forwarded_total",
			Help: "Execute calls of Pipeline streams this follower handed straight to the leader's pipeline, without a worker goroutine."}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.requests, m.latency, m.batch, m.replies, m.forwarded} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// UnaryInterceptor records every unary call.
func (m *Metrics) UnaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := handler(ctx, req)
	m.observe(info.FullMethod, time.Since(start), err)
	return resp, err
}

// observe records one call of method.
func (m *Metrics) observe(method string, d time.Duration, err error) {
	m.observeCode(method, d, status.Code(err))
}

// observeCode records one call of method that ended with code.
func (m *Metrics) observeCode(method string, d time.Duration, code codes.Code) {
	mm, ok := m.byMethod.Load(method)
	if !ok {
		// Methods are the server's own (a few constants and gRPC's
		// registered methods), so the cache stays small.
		mm, _ = m.byMethod.LoadOrStore(method, &methodMetrics{
			latency: m.latency.WithLabelValues(method),
			ok:      m.requests.WithLabelValues(method, codes.OK.String()),
		})
	}
	c := mm.(*methodMetrics)
	c.latency.Observe(d.Seconds())
	if code == codes.OK {
		c.ok.Inc()
		return
	}
	m.requests.WithLabelValues(method, code.String()).Inc()
}

// StreamInterceptor records every streaming call.
func (m *Metrics) StreamInterceptor(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	start := time.Now()
	err := handler(srv, ss)
	m.observe(info.FullMethod, time.Since(start), err)
	return err
}
