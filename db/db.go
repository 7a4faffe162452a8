package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"sync"
	"sync/atomic"

	"modernc.org/libc"
	sqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Defaults of Config.
const (
	DefaultMaxReaders = 4
	// DefaultMaxLength is SQLITE_LIMIT_LENGTH: the largest string or blob.
	DefaultMaxLength = 4 << 20
	// DefaultMaxSQLLength is SQLITE_LIMIT_SQL_LENGTH.
	DefaultMaxSQLLength = 1 << 20
	// DefaultMaxApplySteps is the default operation budget of one statement
	// during apply, in SQLite virtual machine instructions.
	DefaultMaxApplySteps = 20_000_000
	// DefaultStmtCacheSize is the number of prepared statements the writer keeps.
	DefaultStmtCacheSize = 256
)

// Fixed hardening limits (reliability.md).
const (
	limitExprDepth      = 100
	limitTriggerDepth   = 100
	limitVariables      = 32766
	limitLikePattern    = 1000
	readerBusyTimeoutMs = 5000
)

// Config configures Open. The zero value of a field selects its default.
type Config struct {
	// Path is the SQLite file; it is created if missing (its directory must exist).
	Path string
	// Logger receives diagnostics; nil discards them.
	Logger *slog.Logger
	// MaxReaders is the size of the read-only connection pool (default 4).
	MaxReaders int
	// MaxLength is the largest string or blob value in bytes (default 4 MiB).
	MaxLength int
	// MaxApplySteps bounds the virtual machine instructions of one statement
	// during apply (default 2e7, about half a second of CPU here; negative disables). Over the budget the
	// statement fails with a deterministic error. Every replica must use the
	// same value.
	MaxApplySteps int64
}

func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.MaxReaders <= 0 {
		c.MaxReaders = DefaultMaxReaders
	}
	if c.MaxLength <= 0 {
		c.MaxLength = DefaultMaxLength
	}
	if c.MaxApplySteps == 0 {
		c.MaxApplySteps = DefaultMaxApplySteps
	}
	return c
}

// Validate reports whether c is usable.
func (c Config) Validate() error {
	if c.Path == "" {
		return errors.New("db: config: empty Path")
	}
	return nil
}

// DB is the SQLite database of one node: one writer connection used by the
// apply goroutine and a pool of read-only connections. See the package
// documentation for the concurrency contract.
type DB struct {
	cfg Config
	log *slog.Logger

	vfs *clockVFS

	// Writer side: owned by the goroutine calling ApplyBatch/Apply.
	wmu     sync.Mutex // serializes writer use (ApplyBatch is single-goroutine; this guards Close)
	wdb     *sql.DB
	wconn   *sql.Conn
	w       *sconn
	det     *detState
	detMem  uintptr
	cache   map[string]uintptr // prepared user statements of the writer
	icache  map[string]uintptr // prepared internal statements of the writer
	applied atomic.Uint64
	// carefulRedos counts batches redone with savepoints after a statement
	// failed on the fast path (execute).
	carefulRedos atomic.Uint64

	rdb *sql.DB

	// pageSums: the database reserves 8 bytes per page for checksums
	// (pagesum.go); copies made of it keep them.
	pageSums bool

	closed atomic.Bool

	// rw is held shared by every use of the read pool or of a dedicated
	// reading connection (Query, Hash, Snapshot, Dump...) and exclusively by
	// Install and Close, which replace or close the connections.
	rw sync.RWMutex

	// checked caches SQL texts CheckWrite passed (checkedN counts them).
	checked  sync.Map
	checkedN atomic.Int64

	// readers are the connections of the read pool (rdb), nil while it is
	// closed; replaced with it.
	readers *readerPool
	keptCounters
	// releaseWake wakes the releaser (see Kept snapshots in readers.go),
	// which runs until stopReleaser is closed.
	releaseWake  chan struct{}
	stopReleaser chan struct{}
	releaserDone chan struct{}
	// warm runs reads on long-lived goroutines (see warmPool).
	warm *warmPool
	// watch interrupts reads whose context ended (see Interrupting reads
	// in interrupt.go).
	watch *watchdog
}

// Open opens (creating if needed) the database at cfg.Path, configures the
// writer and the read pool, and creates the internal tables.
func Open(ctx context.Context, cfg Config) (_ *DB, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	d := &DB{cfg: cfg, log: cfg.Logger, cache: map[string]uintptr{}, icache: map[string]uintptr{}}
	d.warm = newWarmPool(cfg.MaxReaders)
	d.watch = newWatchdog()
	d.releaseWake, d.stopReleaser, d.releaserDone = make(chan struct{}, 1), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(d.releaserDone)
		d.runReleaser(d.stopReleaser)
	}()
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	if d.vfs, err = newClockVFS(); err != nil {
		return nil, err
	}
	if err := d.openConns(ctx); err != nil {
		return nil, err
	}
	return d, nil
}

// openConns opens the writer and the read pool on cfg.Path and creates the
// internal tables. It is used by Open and, after a swap, by Install. On
// error the caller closes what was opened (closeConns).
func (d *DB) openConns(ctx context.Context) (err error) {
	cfg := d.cfg
	d.cache, d.icache = map[string]uintptr{}, map[string]uintptr{}

	on, note, err := preparePageChecksums(ctx, cfg.Path)
	if err != nil {
		return fmt.Errorf("db: page checksums: %w", err)
	}
	d.pageSums = on
	if note != "" {
		d.log.Info(note, "path", cfg.Path)
	}

	q := url.Values{}
	q.Set("vfs", d.vfs.Name())
	q.Set("_defensive", "1")
	q.Add("_pragma", "journal_mode(WAL)")
	// The raft log is the source of truth: no fsync per commit. But not
	// OFF: in WAL mode NORMAL fsyncs nothing per commit either, only around
	// checkpoints (the WAL before its frames are copied, the database file
	// after, the WAL header when the WAL is reused). Under OFF a power cut
	// after a checkpoint could keep the reused WAL but lose the
	// checkpointed pages, leaving a malformed database that opens cleanly
	// and stops the node (docs/powercut-findings.md).
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "trusted_schema(0)")
	q.Add("_pragma", "cell_size_check(1)")
	q.Add("_pragma", "busy_timeout(10000)")
	if d.wdb, err = sql.Open("sqlite", cfg.Path+"?"+q.Encode()); err != nil {
		return fmt.Errorf("db: open writer: %w", err)
	}
	d.wdb.SetMaxOpenConns(1)
	d.wdb.SetMaxIdleConns(1)
	if d.wconn, err = d.wdb.Conn(ctx); err != nil {
		return fmt.Errorf("db: open writer: %w", err)
	}
	err = d.wconn.Raw(func(dc any) error {
		w, err := newSconn(dc)
		if err != nil {
			return err
		}
		d.w = w
		w.writes = &d.writes
		w.auth = &authState{mode: authInternal}
		if err := dc.(sqlite.AuthorizerRegisterer).RegisterAuthorizer(w.auth.authorizer()); err != nil {
			return fmt.Errorf("register authorizer: %w", err)
		}
		d.setLimits(w)
		d.det, d.detMem = newDetState(w.tls)
		if d.detMem == 0 {
			return errors.New("out of memory")
		}
		return installDeterminism(w, d.detMem)
	})
	if err != nil {
		return fmt.Errorf("db: open writer: %w", err)
	}
	if err := d.initSchema(); err != nil {
		return err
	}

	rq := url.Values{}
	rq.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", readerBusyTimeoutMs))
	rq.Add("_pragma", "trusted_schema(0)")
	rq.Add("_pragma", "query_only(1)")
	if d.rdb, err = sql.Open("sqlite", cfg.Path+"?"+rq.Encode()); err != nil {
		return fmt.Errorf("db: open readers: %w", err)
	}
	// One more than the pool keeps, for Check.
	d.rdb.SetMaxOpenConns(cfg.MaxReaders + 1)
	d.readers = newReaderPool(cfg.MaxReaders)
	d.rdb.SetMaxIdleConns(cfg.MaxReaders)
	d.rdb.SetConnMaxLifetime(0)
	d.rdb.SetConnMaxIdleTime(0)
	return nil
}

func (d *DB) setLimits(c *sconn) {
	c.setLimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
	c.setLimit(sqlite3.SQLITE_LIMIT_LENGTH, int32(d.cfg.MaxLength))
	c.setLimit(sqlite3.SQLITE_LIMIT_SQL_LENGTH, DefaultMaxSQLLength)
	c.setLimit(sqlite3.SQLITE_LIMIT_EXPR_DEPTH, limitExprDepth)
	c.setLimit(sqlite3.SQLITE_LIMIT_TRIGGER_DEPTH, limitTriggerDepth)
	c.setLimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, limitVariables)
	c.setLimit(sqlite3.SQLITE_LIMIT_LIKE_PATTERN_LENGTH, limitLikePattern)
}

// Close closes the database. It is idempotent; it waits for an apply in
// progress. Readers in progress finish before the pool closes.
func (d *DB) Close() error {
	if d.closed.Swap(true) {
		return nil
	}
	close(d.stopReleaser)
	<-d.releaserDone
	// Same order as Install (wmu, then rw).
	d.wmu.Lock()
	defer d.wmu.Unlock()
	d.rw.Lock()
	defer d.rw.Unlock()
	err := d.closeConns()
	if d.warm != nil {
		d.warm.close()
	}
	d.watch.close()
	if d.vfs != nil {
		d.vfs.close()
	}
	if err != nil {
		return fmt.Errorf("db: close: %w", err)
	}
	return nil
}

// closeConns closes the read pool and the writer and frees their C memory.
// The caller holds rw exclusively and wmu (or is the only user of d).
func (d *DB) closeConns() error {
	var errs []error
	if d.rdb != nil {
		if d.readers != nil {
			errs = append(errs, d.closeReaders(d.readers))
			d.readers = nil
		}
		errs = append(errs, d.rdb.Close())
		d.rdb = nil
	}
	if d.w != nil {
		for _, st := range d.cache {
			d.w.finalize(st)
		}
		for _, st := range d.icache {
			d.w.finalize(st)
		}
		d.cache, d.icache = nil, nil
		if d.detMem != 0 {
			// Unhook before freeing the memory the callbacks use.
			sqlite3.Xsqlite3_progress_handler(d.w.tls, d.w.db, 0, 0, 0)
		}
	}
	if d.wconn != nil {
		errs = append(errs, d.wconn.Close())
		d.wconn = nil
	}
	if d.wdb != nil {
		errs = append(errs, d.wdb.Close())
		d.wdb = nil
	}
	if d.w != nil {
		tls := libc.NewTLS()
		if d.detMem != 0 {
			libc.Xfree(tls, d.detMem)
		}
		tls.Close()
		d.w.free()
		d.w, d.det, d.detMem = nil, nil, 0
	}
	return errors.Join(errs...)
}

// withReader runs fn on a connection of the read pool, inside a read
// transaction whose snapshot is as fresh as a new one's (see Kept
// snapshots in readers.go). ctx's end interrupts the SQL in progress.
func (d *DB) withReader(ctx context.Context, fn func(c *sconn) error) error {
	return d.withReadPool(func(*sql.DB) error {
		if onCaller(ctx) {
			return d.onReader(ctx, fn)
		}
		var err error
		if perr := d.warm.run(ctx, func() { err = d.onReader(ctx, fn) }); perr != nil {
			return fmt.Errorf("db: waiting for a reader: %w", perr)
		}
		return err
	})
}

// withReadPool runs fn with the read pool, holding rw for reading so that
// no Install or Close swaps it meanwhile.
func (d *DB) withReadPool(fn func(rdb *sql.DB) error) error {
	d.rw.RLock()
	defer d.rw.RUnlock()
	if d.closed.Load() {
		return ErrClosed
	}
	if d.rdb == nil {
		return errUnavailable
	}
	return fn(d.rdb)
}

// onReader runs fn on a connection of the read pool, in a kept read
// transaction, interrupting it when ctx ends. The caller holds rw for
// reading.
func (d *DB) onReader(ctx context.Context, fn func(c *sconn) error) error {
	r, err := d.getReader(ctx)
	if err != nil {
		return err
	}
	defer d.putReader(r)
	if err := d.keep(r); err != nil {
		return err
	}
	if err = r.interruptible(d.watch, ctx, fn); err != nil {
		// The transaction may be in any state after an error: end it.
		if eerr := d.endRead(r); eerr != nil {
			d.log.Warn("ending a read transaction after an error", "err", eerr)
		}
	}
	return err
}
