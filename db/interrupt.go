package db

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"modernc.org/libc"
	sqlite3 "modernc.org/sqlite/lib"
)

// Interrupting reads.
//
// A query ends early when its context ends, by two means, neither of which
// costs a point read more than two uncontended locks:
//
//   - Each reader polls its query's context from SQLite's progress
//     handler, every progressPeriod virtual machine instructions, as the
//     modernc driver does for its own queries. This ends a long query
//     within microseconds of its deadline.
//   - The DB's watchdog goroutine looks at the running queries every
//     watchdogPeriod and calls sqlite3_interrupt on each whose context has
//     ended, again at every look until the query returns. SQLite forgets an
//     interrupt that arrives while none of the connection's statements
//     runs (before the first step, or between two statements of a query),
//     and a single long instruction never reaches the progress handler;
//     the repeated interrupt covers both.
//
// Before b9fc84e the second means was a context.AfterFunc per query,
// which interrupted once (with nothing else, the forgotten interrupt let
// runaway queries with deadlines of a few milliseconds run for ever:
// TestReaders_ShortDeadlinesStopRunawayQueries). Its join of the query's
// context to its parent cost 5% of a node's CPU under `none` point reads
// at concurrency 64, and it needed each Pipeline call's context to carry
// a timer, another 6% (issue 7).

// watchdogPeriod is how often the watchdog looks at the running queries;
// it sleeps after watchdogQuietLooks looks that found none running.
const (
	watchdogPeriod     = 5 * time.Millisecond
	watchdogQuietLooks = 200
)

// watchdog interrupts the queries of a DB's readers whose context has
// ended. Its goroutine is started by newWatchdog and stopped by close.
type watchdog struct {
	mu      sync.Mutex
	readers map[*reader]struct{} // the open readers; guarded by mu

	asleep atomic.Bool   // the goroutine waits on wake
	wake   chan struct{} // capacity 1
	stop   chan struct{}
	done   chan struct{}
	// interrupted counts queries interrupted by the watchdog.
	interrupted atomic.Uint64
}

func newWatchdog() *watchdog {
	w := &watchdog{readers: map[*reader]struct{}{}, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go w.run()
	return w
}

// close stops the goroutine and waits for it.
func (w *watchdog) close() {
	close(w.stop)
	<-w.done
}

// add makes r's queries interruptible by both means: it installs the
// progress handler on r's connection and lets the watchdog look at r.
// remove undoes it; r's connection must stay valid until remove returns.
func (w *watchdog) add(r *reader) {
	registerReader(r)
	w.mu.Lock()
	w.readers[r] = struct{}{}
	w.mu.Unlock()
}

func (w *watchdog) remove(r *reader) {
	w.mu.Lock()
	delete(w.readers, r)
	w.mu.Unlock()
	unregisterReader(r)
}

// started wakes the goroutine if it sleeps; a query just started.
func (w *watchdog) started() {
	if w.asleep.Load() {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

func (w *watchdog) run() {
	defer close(w.done)
	tls := libc.NewTLS()
	defer tls.Close()
	t := time.NewTicker(watchdogPeriod)
	defer t.Stop()
	quiet := 0
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
		}
		if w.look(tls) > 0 {
			quiet = 0
			continue
		}
		if quiet++; quiet < watchdogQuietLooks {
			continue
		}
		// Sleep. A query that starts after the look below sees asleep set
		// (started loads it after setting its context) and wakes us.
		w.asleep.Store(true)
		if w.look(tls) > 0 {
			w.asleep.Store(false)
			quiet = 0
			continue
		}
		t.Stop()
		select {
		case <-w.stop:
			return
		case <-w.wake:
		}
		w.asleep.Store(false)
		t.Reset(watchdogPeriod)
		quiet = 0
	}
}

// look interrupts the running queries whose context has ended and returns
// how many queries run.
func (w *watchdog) look(tls *libc.TLS) (running int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for r := range w.readers {
		r.mu.Lock()
		if r.ctx != nil {
			running++
			if r.ctx.Err() != nil {
				sqlite3.Xsqlite3_interrupt(tls, r.c.db)
				if !r.interrupted {
					r.interrupted = true
					w.interrupted.Add(1)
				}
			}
		}
		r.mu.Unlock()
	}
	return running
}

// InterruptedReads counts the queries of the read pool that the watchdog
// interrupted since Open because their context ended (a query the
// progress handler ended first is not counted).
func (d *DB) InterruptedReads() uint64 { return d.watch.interrupted.Load() }

// readerSlots maps the progress handler's argument to its reader: C code
// cannot hold Go pointers. Slots are never reused.
var readerSlots struct {
	mu   sync.RWMutex
	last uintptr
	m    map[uintptr]*reader
}

// registerReader gives r a slot and installs the progress handler on its
// connection.
func registerReader(r *reader) {
	readerSlots.mu.Lock()
	if readerSlots.m == nil {
		readerSlots.m = map[uintptr]*reader{}
	}
	readerSlots.last++
	r.slot = readerSlots.last
	readerSlots.m[r.slot] = r
	readerSlots.mu.Unlock()
	sqlite3.Xsqlite3_progress_handler(r.c.tls, r.c.db, progressPeriod, cFuncPointer(readerProgress), r.slot)
}

// unregisterReader removes r's progress handler and its slot.
func unregisterReader(r *reader) {
	if r.slot == 0 {
		return
	}
	sqlite3.Xsqlite3_progress_handler(r.c.tls, r.c.db, 0, 0, 0)
	readerSlots.mu.Lock()
	delete(readerSlots.m, r.slot)
	readerSlots.mu.Unlock()
	r.slot = 0
}

// readerProgress is the readers' progress handler: a non-zero result
// interrupts the statement (SQLITE_INTERRUPT). It runs on the goroutine
// that steps the statement, the one that set r.ctx.
func readerProgress(_ *libc.TLS, slot uintptr) int32 {
	readerSlots.mu.RLock()
	r := readerSlots.m[slot]
	readerSlots.mu.RUnlock()
	if r != nil && r.ctx != nil && r.ctx.Err() != nil {
		return 1
	}
	return 0
}

// interruptible runs fn on r's connection, interrupting its SQL when ctx
// ends (see Interrupting reads).
func (r *reader) interruptible(w *watchdog, ctx context.Context, fn func(c *sconn) error) error {
	r.setQuery(ctx)
	w.started()
	err := fn(r.c)
	r.setQuery(nil)
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("db: %w (%v)", ctx.Err(), err)
	}
	return err
}

// setQuery records the context of the query r runs (nil: none). Once it
// returns, the watchdog no longer interrupts r for the previous one; an
// interrupt it sent meanwhile is forgotten by SQLite when the next
// statement starts.
func (r *reader) setQuery(ctx context.Context) {
	r.mu.Lock()
	r.ctx = ctx
	r.interrupted = false
	r.mu.Unlock()
}
