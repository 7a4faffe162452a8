package db

import (
	"context"
	"fmt"
	"sync"

	"modernc.org/libc"
	sqlite3 "modernc.org/sqlite/lib"
)

// Interrupting reads.
//
// A query ends early when its context ends, by two means. context.AfterFunc
// calls sqlite3_interrupt at once. But SQLite forgets an interrupt that
// arrives while none of the connection's statements is running (before the
// first step, or between two statements of a query): with a deadline of a
// few milliseconds, a runaway query could then run for ever, holding its
// reader (TestReaders_ShortDeadlinesStopRunawayQueries hangs without the
// second means). So each reader also polls its query's context from
// SQLite's progress handler, every progressPeriod virtual machine
// instructions, as the modernc driver does for its own queries.

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
// ends.
func (r *reader) interruptible(ctx context.Context, fn func(c *sconn) error) error {
	c := r.c
	var fired sync.WaitGroup
	fired.Add(1)
	stop := context.AfterFunc(ctx, func() {
		defer fired.Done()
		tls := libc.NewTLS()
		sqlite3.Xsqlite3_interrupt(tls, c.db)
		tls.Close()
	})
	r.ctx = ctx
	defer func() {
		r.ctx = nil
		if !stop() {
			// The interrupt ran or is running: wait, so it cannot hit
			// the next user of this connection.
			fired.Wait()
		}
	}()
	err := fn(c)
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("db: %w (%v)", ctx.Err(), err)
	}
	return err
}
