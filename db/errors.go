package db

import (
	"errors"
	"fmt"

	sqlite3 "modernc.org/sqlite/lib"
)

// Sentinel errors of package db. Test with errors.Is.
var (
	// ErrClosed is returned by every method called after Close.
	ErrClosed = errors.New("db: closed")
	// ErrNotReadOnly is returned by Query for a statement that could write
	// or change connection state.
	ErrNotReadOnly = errors.New("db: statement is not read-only")
	// ErrRefused is returned by CheckWrite for a statement that cannot be
	// replicated faithfully.
	ErrRefused = errors.New("db: statement refused")
	// ErrSQL marks an error reported by SQLite for a statement (syntax,
	// constraint, no such table...). The concrete type is *StatementError.
	ErrSQL = errors.New("db: sql error")
	// ErrNotSQLite is returned by VerifyFile (and restore validation) for a
	// file that is empty, too short or does not start with the SQLite
	// header.
	ErrNotSQLite = errors.New("db: not a SQLite database")
	// ErrCorruptFile is returned by VerifyFile and Check for a SQLite file
	// that is truncated, has a page whose checksum does not match, or fails
	// PRAGMA integrity_check / quick_check, and by Query and ReadOnly when a
	// statement reaches such damage.
	ErrCorruptFile = errors.New("db: corrupt SQLite database")
	// ErrInvalidRestore is returned by ValidateRestoreFile for data that
	// cannot be restored (SQL that fails to run, a corrupt file, a bad
	// format).
	ErrInvalidRestore = errors.New("db: invalid restore data")
)

// errUnavailable: a swap (Install, restore) failed after the rename and the
// database could not be reopened.
var errUnavailable = errors.New("db: database unavailable after a failed swap")

// StatementError is a SQL error of one statement of a request. It matches
// ErrSQL with errors.Is.
type StatementError struct {
	// Index is the 0-based position of the statement in the request.
	Index int
	// Err is SQLite's error.
	Err error
}

// Error implements error.
func (e *StatementError) Error() string {
	return fmt.Sprintf("db: statement %d: %v", e.Index+1, e.Err)
}

// Unwrap returns the underlying error.
func (e *StatementError) Unwrap() error { return e.Err }

// Is reports whether target is ErrSQL.
func (e *StatementError) Is(target error) bool { return target == ErrSQL }

// statementErr classifies the error of statement i of a read: a damaged
// database (a page checksum mismatch, SQLITE_CORRUPT, SQLITE_NOTADB) is the
// node's failure, not the statement's, and wraps ErrCorruptFile; anything
// else is a *StatementError.
func statementErr(i int, err error) error {
	var se *sqliteError
	if errors.As(err, &se) {
		switch {
		case se.code == sqlite3.SQLITE_IOERR_DATA:
			return fmt.Errorf("db: statement %d: %w: page checksum mismatch (%s)", i+1, ErrCorruptFile, se.msg)
		case se.primary() == sqlite3.SQLITE_CORRUPT, se.primary() == sqlite3.SQLITE_NOTADB:
			return fmt.Errorf("db: statement %d: %w: %s", i+1, ErrCorruptFile, se.msg)
		}
	}
	return &StatementError{Index: i, Err: err}
}

// sqliteError is an error reported by SQLite with its (extended) result code.
type sqliteError struct {
	code int32 // extended result code
	msg  string
}

func (e *sqliteError) Error() string { return e.msg }

// primary returns the primary result code.
func (e *sqliteError) primary() int32 { return e.code & 0xff }
