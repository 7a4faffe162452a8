package db

import (
	"fmt"
	"sync/atomic"
	"unsafe"

	"modernc.org/libc"
	sqlite3 "modernc.org/sqlite/lib"
)

// Determinism of the writer connection.
//
// Time: the writer opens its file through a private copy of SQLite's default
// VFS whose xCurrentTime and xCurrentTimeInt64 return the entry's fixed time
// while an entry is applied. Every form of "now" in SQLite (CURRENT_*,
// date/time/datetime/julianday/strftime/unixepoch with 'now' or no argument)
// asks the VFS, also inside DEFAULTs and triggers, so all of them follow the
// entry's clock with SQLite's own date semantics. Readers use the default VFS
// and the real clock.
//
// Randomness: random() and randomblob() are overridden on the writer
// connection only by functions flagged SQLITE_INNOCUOUS (so they work in
// DEFAULTs and triggers under trusted_schema=0), drawing from a splitmix64
// generator reseeded from each entry's random_seed.
//
// Cost: a progress handler on the writer counts virtual machine steps per
// statement and interrupts a statement over the budget; the count is the
// same on every replica, so the error is a deterministic result.

// clockVFS is a registered copy of the default VFS with a settable clock.
// Its C memory is laid out as a sqlite3_vfs followed by clockState.
type clockVFS struct {
	p    uintptr // *sqlite3_vfs (C memory)
	name uintptr // C string
}

type clockState struct {
	active int64 // 1: return nowMs; 0: delegate to the real clock
	nowMs  int64 // julian day number in milliseconds
	real   uintptr
}

const vfsSize = unsafe.Sizeof(sqlite3.Tsqlite3_vfs{})

// unixEpochJulianMs is the Unix epoch as a julian day in milliseconds,
// as SQLite's unix VFS computes it.
const unixEpochJulianMs = 24405875 * 8640000

var vfsSeq atomic.Uint64

func clockOf(pVfs uintptr) *clockState {
	return (*clockState)(cptr(pVfs + vfsSize))
}

func newClockVFS() (*clockVFS, error) {
	tls := libc.NewTLS()
	defer tls.Close()
	def := sqlite3.Xsqlite3_vfs_find(tls, 0)
	if def == 0 {
		return nil, fmt.Errorf("db: no default sqlite vfs")
	}
	p := libc.Xcalloc(tls, 1, uint64(vfsSize+unsafe.Sizeof(clockState{})))
	if p == 0 {
		return nil, fmt.Errorf("db: out of memory")
	}
	name := fmt.Sprintf("rdb-clock-%d", vfsSeq.Add(1))
	zname, err := libc.CString(name)
	if err != nil {
		libc.Xfree(tls, p)
		return nil, err
	}
	v := (*sqlite3.Tsqlite3_vfs)(cptr(p))
	*v = *(*sqlite3.Tsqlite3_vfs)(cptr(def))
	v.FpNext = 0
	v.FzName = zname
	clockOf(p).real = def
	v.FxCurrentTime = cFuncPointer(vfsCurrentTime)
	if v.FiVersion < 2 {
		v.FiVersion = 2
	}
	v.FxCurrentTimeInt64 = cFuncPointer(vfsCurrentTimeInt64)
	if rc := sqlite3.Xsqlite3_vfs_register(tls, p, 0); rc != sqlite3.SQLITE_OK {
		libc.Xfree(tls, zname)
		libc.Xfree(tls, p)
		return nil, fmt.Errorf("db: register vfs: rc %d", rc)
	}
	return &clockVFS{p: p, name: zname}, nil
}

func (v *clockVFS) Name() string { return libc.GoString(v.name) }

// set makes the clock return unixNanos (truncated to the millisecond, as
// SQLite's own clock is).
func (v *clockVFS) set(unixNanos int64) {
	ms := unixNanos / 1e6
	if unixNanos < 0 && unixNanos%1e6 != 0 {
		ms--
	}
	st := clockOf(v.p)
	atomic.StoreInt64(&st.nowMs, unixEpochJulianMs+ms)
	atomic.StoreInt64(&st.active, 1)
}

// clear returns the clock to real time.
func (v *clockVFS) clear() { atomic.StoreInt64(&clockOf(v.p).active, 0) }

// close unregisters and frees the VFS; no connection may still use it.
func (v *clockVFS) close() {
	tls := libc.NewTLS()
	defer tls.Close()
	sqlite3.Xsqlite3_vfs_unregister(tls, v.p)
	libc.Xfree(tls, v.name)
	libc.Xfree(tls, v.p)
}

func vfsCurrentTimeInt64(tls *libc.TLS, pVfs uintptr, piNow uintptr) int32 {
	st := clockOf(pVfs)
	if atomic.LoadInt64(&st.active) != 0 {
		*(*int64)(cptr(piNow)) = atomic.LoadInt64(&st.nowMs)
		return sqlite3.SQLITE_OK
	}
	real := (*sqlite3.Tsqlite3_vfs)(cptr(st.real))
	return (*(*func(*libc.TLS, uintptr, uintptr) int32)(unsafe.Pointer(&struct{ uintptr }{real.FxCurrentTimeInt64})))(tls, st.real, piNow)
}

func vfsCurrentTime(tls *libc.TLS, pVfs uintptr, prNow uintptr) int32 {
	var ms int64
	rc := vfsCurrentTimeInt64(tls, pVfs, uintptr(unsafe.Pointer(&ms)))
	*(*float64)(cptr(prNow)) = float64(ms) / 86400000.0
	return rc
}

// cFuncPointer converts a top-level Go function to a C function pointer
// for the transpiled SQLite, as modernc.org/sqlite does internally.
func cFuncPointer[T any](f T) uintptr {
	return *(*uintptr)(unsafe.Pointer(&struct{ f T }{f}))
}

// detState is C memory shared with the writer's callbacks: the PRNG state
// and the operation budget. It lives in C memory so that the callbacks need
// no Go registry.
type detState struct {
	rng      uint64
	steps    int64 // progress callbacks so far in the current statement
	maxSteps int64 // budget in callbacks; 0 = unlimited
	exceeded int64
}

// progressPeriod is the number of VM instructions between progress callbacks.
const progressPeriod = 1000

func newDetState(tls *libc.TLS) (*detState, uintptr) {
	p := libc.Xcalloc(tls, 1, uint64(unsafe.Sizeof(detState{})))
	return (*detState)(cptr(p)), p
}

func (s *detState) next() uint64 {
	s.rng += 0x9e3779b97f4a7c15
	z := s.rng
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

func progressCB(tls *libc.TLS, arg uintptr) int32 {
	s := (*detState)(cptr(arg))
	s.steps++
	if s.maxSteps > 0 && s.steps > s.maxSteps {
		s.exceeded = 1
		return 1
	}
	return 0
}

func randomFunc(tls *libc.TLS, ctx uintptr, argc int32, argv uintptr) {
	s := (*detState)(cptr(sqlite3.Xsqlite3_user_data(tls, ctx)))
	sqlite3.Xsqlite3_result_int64(tls, ctx, int64(s.next()))
}

func randomblobFunc(tls *libc.TLS, ctx uintptr, argc int32, argv uintptr) {
	s := (*detState)(cptr(sqlite3.Xsqlite3_user_data(tls, ctx)))
	n := sqlite3.Xsqlite3_value_int64(tls, *(*uintptr)(cptr(argv)))
	if n < 1 {
		n = 1
	}
	db := sqlite3.Xsqlite3_context_db_handle(tls, ctx)
	if n > int64(sqlite3.Xsqlite3_limit(tls, db, sqlite3.SQLITE_LIMIT_LENGTH, -1)) {
		sqlite3.Xsqlite3_result_error_toobig(tls, ctx)
		return
	}
	p := libc.Xmalloc(tls, uint64(n))
	if p == 0 {
		sqlite3.Xsqlite3_result_error_nomem(tls, ctx)
		return
	}
	defer libc.Xfree(tls, p)
	b := unsafe.Slice((*byte)(cptr(p)), n)
	for i := 0; i < len(b); i += 8 {
		x := s.next()
		for j := i; j < len(b) && j < i+8; j++ {
			b[j] = byte(x)
			x >>= 8
		}
	}
	sqlite3.Xsqlite3_result_blob(tls, ctx, p, int32(n), transient)
}

// installDeterminism registers random()/randomblob() overrides and the
// progress handler on the writer connection c.
func installDeterminism(c *sconn, st uintptr) error {
	for _, f := range []struct {
		name string
		nArg int32
		fn   uintptr
	}{
		{"random", 0, cFuncPointer(randomFunc)},
		{"randomblob", 1, cFuncPointer(randomblobFunc)},
	} {
		z, err := libc.CString(f.name)
		if err != nil {
			return err
		}
		rc := sqlite3.Xsqlite3_create_function_v2(c.tls, c.db, z, f.nArg,
			sqlite3.SQLITE_UTF8|sqlite3.SQLITE_INNOCUOUS, st, f.fn, 0, 0, 0)
		libc.Xfree(c.tls, z)
		if rc != sqlite3.SQLITE_OK {
			return fmt.Errorf("db: override %s: %w", f.name, c.err(rc))
		}
	}
	sqlite3.Xsqlite3_progress_handler(c.tls, c.db, progressPeriod, cFuncPointer(progressCB), st)
	return nil
}
