package db

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"sync/atomic"

	sqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Kept snapshots.
//
// Beginning and ending a read transaction is half of a point SELECT's cost
// in SQLite (the WAL read mark is taken and dropped with fcntl locks, the
// WAL index header is read again; profile of `none` reads, issue 7). A
// reader of the pool therefore keeps its read transaction open between
// queries for as long as nothing has been written since it began, and
// begins a new one otherwise.
//
// Whether anything has been written is told by DB.writes, a counter the
// writer connection increments before and after every statement it runs
// (sconn.run): it is odd while a writer statement runs and changes with
// every statement that may make a commit visible. A query may reuse the
// snapshot of a transaction begun when the counter read g, g even, if the
// counter still reads g: any commit visible now made its first increment
// before it became visible, so before g was read, and (g being even) its
// second increment too, so it was visible before the snapshot began. A
// query therefore sees exactly what a fresh transaction would.
//
// A kept snapshot holds back the WAL (a checkpoint copies frames only up to
// the oldest reader's mark, and the WAL starts over only when no reader
// needs it). After every apply the releaser ends the stale transactions of
// idle readers, so a reader left idle during writes does not make the WAL
// grow.

// reader is a connection of the read pool. It is checked out of
// database/sql for as long as the pool lives, so that its transaction
// state stays with it.
type reader struct {
	conn *sql.Conn
	c    *sconn
	// open: this code began a read transaction that is still open; gen is
	// DB.writes when it began.
	open bool
	gen  uint64
	// begin and commit are prepared BEGIN and COMMIT (0 until first used).
	begin, commit uintptr
	// slot identifies r to the progress handler (see Interrupting reads
	// in interrupt.go).
	slot uintptr
	// mu guards ctx, the context of the query running (nil between
	// queries), and interrupted, set once the watchdog interrupted it. The
	// goroutine that runs the query reads ctx without mu.
	mu          sync.Mutex
	ctx         context.Context
	interrupted bool
}

// readerPool holds the read connections: at most max, opened on first use.
type readerPool struct {
	max  int
	idle chan *reader

	mu  sync.Mutex
	all []*reader // every reader opened, idle or not; guarded by mu
}

func newReaderPool(max int) *readerPool {
	return &readerPool{max: max, idle: make(chan *reader, max)}
}

// getReader takes an idle reader, opens a new one if fewer than max exist, or
// waits for one until ctx ends.
func (d *DB) getReader(ctx context.Context) (*reader, error) {
	p := d.readers
	select {
	case r := <-p.idle:
		return r, nil
	default:
	}
	p.mu.Lock()
	if len(p.all) < p.max {
		r := &reader{}
		p.all = append(p.all, r)
		p.mu.Unlock()
		if err := d.openReader(ctx, r); err != nil {
			p.mu.Lock()
			for i, x := range p.all {
				if x == r {
					p.all = append(p.all[:i], p.all[i+1:]...)
					break
				}
			}
			p.mu.Unlock()
			return nil, err
		}
		return r, nil
	}
	p.mu.Unlock()
	select {
	case r := <-p.idle:
		return r, nil
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

// putReader returns r to the idle readers.
func (d *DB) putReader(r *reader) { d.readers.idle <- r }

// openReader opens r's connection on the read pool.
func (d *DB) openReader(ctx context.Context, r *reader) error {
	conn, err := d.rdb.Conn(ctx)
	if err != nil {
		if d.closed.Load() {
			return ErrClosed
		}
		return fmt.Errorf("db: reader: %w", err)
	}
	err = conn.Raw(func(dc any) error {
		c, err := newSconn(dc)
		if err != nil {
			return err
		}
		c.auth = &authState{mode: authRead}
		if err := dc.(sqlite.AuthorizerRegisterer).RegisterAuthorizer(c.auth.authorizer()); err != nil {
			c.free()
			return fmt.Errorf("db: register authorizer: %w", err)
		}
		d.setLimits(c)
		r.c = c
		d.watch.add(r)
		return nil
	})
	if err != nil {
		conn.Close()
		return fmt.Errorf("db: reader: %w", err)
	}
	r.conn = conn
	return nil
}

// closeReaders ends every reader's transaction and returns its connection to
// database/sql. The caller holds rw exclusively, so no reader is in use.
func (d *DB) closeReaders(p *readerPool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var first error
	for _, r := range p.all {
		if r.open {
			r.open = false
			d.keptOpen.Add(-1) // closing the connection ends it
		}
		d.watch.remove(r)
		r.c.finalize(r.begin)
		r.c.finalize(r.commit)
		r.c.free()
		if err := r.conn.Close(); err != nil && first == nil {
			first = err
		}
	}
	p.all = nil
	return first
}

// keep makes sure r has a read transaction whose snapshot is as fresh as a
// new one would be (see Kept snapshots), beginning one if needed.
func (d *DB) keep(r *reader) error {
	g := d.writes.Load()
	if r.open && (r.gen != g || g%2 != 0) {
		if err := d.endRead(r); err != nil {
			return err
		}
	}
	if r.open {
		d.reused.Add(1)
		return nil
	}
	if err := r.step(&r.begin, "BEGIN"); err != nil {
		return fmt.Errorf("db: begin read: %w", err)
	}
	r.open, r.gen = true, g
	d.keptOpen.Add(1)
	d.begun.Add(1)
	return nil
}

// endRead ends r's read transaction, if one is open.
func (d *DB) endRead(r *reader) error {
	if !r.open {
		return nil
	}
	r.open = false
	d.keptOpen.Add(-1)
	if r.c.autocommit() {
		return nil // SQLite ended it (an error, an interrupt)
	}
	if err := r.step(&r.commit, "COMMIT"); err != nil {
		if !r.c.autocommit() {
			if rerr := inMode(r.c, authInternal, func() error { return r.c.exec("ROLLBACK") }); rerr != nil {
				err = fmt.Errorf("%w; rollback: %w", err, rerr)
			}
		}
		return fmt.Errorf("db: end read: %w", err)
	}
	return nil
}

// step runs the internal statement sql on r, preparing it into *st once.
func (r *reader) step(st *uintptr, sql string) error {
	return inMode(r.c, authInternal, func() error {
		if *st == 0 {
			s, err := r.c.prepare(sql, sqlite3.SQLITE_PREPARE_PERSISTENT)
			if err != nil {
				return err
			}
			*st = s
		}
		_, err := r.c.run(*st, false)
		return err
	})
}

// releaseStale ends the transactions of idle readers begun before the last
// write, so that they do not hold back the WAL.
func (d *DB) releaseStale() {
	d.rw.RLock()
	defer d.rw.RUnlock()
	if d.closed.Load() || d.readers == nil {
		return
	}
	g := d.writes.Load()
	for range cap(d.readers.idle) {
		var r *reader
		select {
		case r = <-d.readers.idle:
		default:
			return
		}
		if r.open && r.gen != g {
			d.released.Add(1)
			if err := d.endRead(r); err != nil {
				d.log.Warn("ending a stale read transaction", "err", err)
			}
		}
		d.putReader(r)
	}
}

// nudgeReleaser asks the releaser to look at the idle readers, when any
// keeps a transaction open. Called by the apply goroutine after a batch.
func (d *DB) nudgeReleaser() {
	if d.keptOpen.Load() == 0 {
		return
	}
	select {
	case d.releaseWake <- struct{}{}:
	default:
	}
}

// runReleaser is the releaser's goroutine; it ends when stop is closed.
func (d *DB) runReleaser(stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-d.releaseWake:
			d.releaseStale()
		}
	}
}

// keptCounters are the DB fields of kept snapshots.
type keptCounters struct {
	// writes counts the writer's statements twice (see Kept snapshots).
	writes atomic.Uint64
	// keptOpen counts readers with an open transaction.
	keptOpen atomic.Int64
	// begun, reused and released count read transactions begun, reused
	// by a later query, and ended by the releaser.
	begun, reused, released atomic.Uint64
}

// ReadSnapshotStats counts the read transactions of the read pool since
// Open.
type ReadSnapshotStats struct {
	// Begun counts read transactions begun.
	Begun uint64
	// Reused counts queries that ran in a transaction begun earlier,
	// nothing having been written since.
	Reused uint64
	// Released counts stale transactions ended on idle readers after
	// writes.
	Released uint64
}

// ReadSnapshots returns the counts of the read pool's transactions. Safe
// for concurrent use.
func (d *DB) ReadSnapshots() ReadSnapshotStats {
	return ReadSnapshotStats{Begun: d.begun.Load(), Reused: d.reused.Load(), Released: d.released.Load()}
}
