package main

import (
	"net/http"
	"net/http/pprof"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"rdb/db"
)

// newDebugServer serves Prometheus metrics from registry at /metrics and
// the Go profiler at /debug/pprof/.
func newDebugServer(registry *prometheus.Registry) *http.Server {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(registry, promhttp.HandlerOpts{}))
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
