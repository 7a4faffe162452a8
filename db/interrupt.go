package db

import (
	"context"
	"fmt"
	"sync"

	"modernc.org/libc"
	sqlite3 "modernc.org/sqlite/lib"
)

// interruptible runs fn on r's connection, interrupting its SQL
// (sqlite3_interrupt) when ctx ends.
//
// Polling the context from SQLite's progress handler instead, with no
// context.AfterFunc per query, made `none` reads at c=64 cheaper by a
// tenth (issue 7), but a full run of the hostile-input system tests under
// load left runaway queries uninterrupted on two nodes, and the cause was
// not found; this is the mechanism those tests have always passed with.
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
	defer func() {
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
