package rpc

import "sync"

// pipelineWorkers is the number of long-lived goroutines that run
// pipeline calls. A fresh goroutine per call spent 8% of the leader's CPU
// growing its stack (profile of c=64 inserts, issue 7); calls beyond the
// workers still get a goroutine of their own.
const pipelineWorkers = 128

// workerPool runs functions on long-lived goroutines, started as needed
// and stopped by stop. The most recently idle worker takes the next
// function: under a steady load a few workers do the work and keep the
// deep stacks SQLite needs (reads run on them, see pipelineCall), while
// the others stay parked. Handing out work round-robin instead let every
// worker's stack be halved by the garbage collector between two uses.
type workerPool struct {
	mu      sync.Mutex
	idle    []*worker // a stack: the last one idled is used first
	started int
	stopped bool
	wg      sync.WaitGroup
}

type worker struct {
	tasks chan func() // buffered: run never waits for the worker
}

// run runs fn on an idle worker, on a new one while fewer than
// pipelineWorkers exist, or else on a goroutine of its own.
func (p *workerPool) run(fn func()) {
	p.mu.Lock()
	if !p.stopped {
		if n := len(p.idle); n > 0 {
			w := p.idle[n-1]
			p.idle = p.idle[:n-1]
			p.mu.Unlock()
			w.tasks <- fn
			return
		}
		if p.started < pipelineWorkers {
			p.started++
			p.wg.Add(1)
			p.mu.Unlock()
			go p.loop(&worker{tasks: make(chan func(), 1)}, fn)
			return
		}
	}
	p.mu.Unlock()
	go fn()
}

// loop is a worker's goroutine: it runs fn, then whatever it is given,
// until the pool stops.
func (p *workerPool) loop(w *worker, fn func()) {
	defer p.wg.Done()
	for {
		fn()
		p.mu.Lock()
		if p.stopped {
			p.mu.Unlock()
			return
		}
		p.idle = append(p.idle, w)
		p.mu.Unlock()
		var ok bool
		if fn, ok = <-w.tasks; !ok {
			return
		}
	}
}

// stop ends the workers once they finish what they run; later functions
// get goroutines of their own.
func (p *workerPool) stop() {
	p.mu.Lock()
	p.stopped = true
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, w := range idle {
		close(w.tasks)
	}
	p.wg.Wait()
}
