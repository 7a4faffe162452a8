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
// A query ends early when its context ends. Readers poll the context from
// SQLite's progress handler, every progressPeriod virtual machine
// instructions, instead of arming a context.AfterFunc per query: that
// joined the query's context to its parent (a map of children, a lock) on
// every read and made the caller's context build its Done channel and
// timer, 14% of a node's CPU under `none` point reads at concurrency 64
// (issue 7). A point SELECT runs fewer instructions than one period and
// pays nothing.

// readerSlots maps the progress handler's argument to its reader: C code
// cannot hold Go pointers.
var readerSlots struct {
	mu   sync.RWMutex
	next uintptr
	free []uintptr
	m    map[uintptr]*reader
}

// registerReader gives r a slot and installs the progress handler on its
// connection.
func registerReader(r *reader) {
	readerSlots.mu.Lock()
	if readerSlots.m == nil {
		readerSlots.m = map[uintptr]*reader{}
	}
	var slot uintptr
	if n := len(readerSlots.free); n > 0 {
		slot = readerSlots.free[n-1]
		readerSlots.free = readerSlots.free[:n-1]
	} else {
		readerSlots.next++
		slot = readerSlots.next
	}
	readerSlots.m[slot] = r
	readerSlots.mu.Unlock()
	r.slot = slot
	sqlite3.Xsqlite3_progress_handler(r.c.tls, r.c.db, progressPeriod, cFuncPointer(readerProgress), slot)
}

// unregisterReader removes r's progress handler and frees its slot.
func unregisterReader(r *reader) {
	if r.slot == 0 {
		return
	}
	sqlite3.Xsqlite3_progress_handler(r.c.tls, r.c.db, 0, 0, 0)
	readerSlots.mu.Lock()
	delete(readerSlots.m, r.slot)
	readerSlots.free = append(readerSlots.free, r.slot)
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
	r.ctx = ctx
	err := fn(r.c)
	r.ctx = nil
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("db: %w (%v)", context.Cause(ctx), err)
	}
	return err
}
