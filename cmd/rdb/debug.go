package main

import (
	"net/http"
	"net/http/pprof"
	"runtime"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"

	"rdb/db"
)

// newDebugServer serves Prometheus metrics from registry and etcd's WAL
// metrics at /metrics, and the Go profiler at /debug/pprof/.
func newDebugServer(registry *prometheus.Registry) *http.Server {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(prometheus.Gatherers{registry, walGatherer}, promhttp.HandlerOpts{}))
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
}

// newRegistry returns a registry with the Go runtime and process
// collectors and the database's page checksum faults.
func newRegistry() *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "rdb", Subsystem: "db", Name: "page_checksum_faults_total",
			Help: "Database pages whose checksum did not match when read (a damaged database file)."},
			func() float64 { n, _ := db.ChecksumFaults(); return float64(n) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "rdb", Name: "gomaxprocs",
			Help: "GOMAXPROCS now: the runtime default (or the GOMAXPROCS variable) while the node leads, --follower-procs while it follows."},
			func() float64 { return float64(runtime.GOMAXPROCS(0)) }))
	return r
}

// walMetricsPrefix names the metrics etcd's WAL package keeps: the time
// of each fdatasync alone (etcd_disk_wal_fsync_duration_seconds), which
// rdb_cluster_wal_save_seconds includes together with encoding and
// writing, the time of its writes (etcd_disk_wal_write_duration_seconds)
// and the bytes written (etcd_disk_wal_write_bytes_total). Their
// buckets start at 1 ms, so sub-millisecond figures come from _sum /
// _count.
const walMetricsPrefix = "etcd_disk_wal_"

// walGatherer gathers etcd's WAL metrics, which that package registers
// with Prometheus's default registry, leaving out everything else there
// (the default Go and process collectors would repeat ours).
var walGatherer = prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
	all, err := prometheus.DefaultGatherer.Gather()
	wal := all[:0]
	for _, mf := range all {
		if strings.HasPrefix(mf.GetName(), walMetricsPrefix) {
			wal = append(wal, mf)
		}
	}
	return wal, err
})
