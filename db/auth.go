package db

import (
	"strings"

	sqlite "modernc.org/sqlite"
)

// authMode selects what the authorizer of a connection does.
type authMode int

const (
	// authWrite: the writer applying user statements; refused actions are
	// denied (the statement fails with the reason as its Result.Error).
	authWrite authMode = iota
	// authInternal: the package's own statements; everything is allowed.
	authInternal
	// authCheck: CheckWrite; refused actions are denied and recorded.
	authCheck
	// authRead: read classification; actions that are not read-only are
	// recorded in notReadOnly (ATTACH/DETACH and load_extension are denied).
	authRead
	// authRestore: a SQL script being restored into a fresh database
	// (restore.go): like authWrite, but transaction control, PRAGMA
	// foreign_keys and the _rdb_* tables are allowed.
	authRestore
)

// authState is the per-connection state of the authorizer. It is used only
// by the goroutine that owns the connection at the time.
type authState struct {
	mode authMode
	// reason is the first refusal of the statement being prepared.
	reason string
	// notReadOnly is set when classification saw a non-read-only action.
	notReadOnly bool
	// schemaWrite and ddl detect direct writes to sqlite_schema: SQLite
	// authorizes an INSERT/DELETE on it for every CREATE/DROP too.
	schemaWrite, ddl bool
}

func (a *authState) reset() {
	a.reason, a.notReadOnly, a.schemaWrite, a.ddl = "", false, false, false
}

const refusedTx = "transaction control (BEGIN, COMMIT, ROLLBACK, SAVEPOINT, RELEASE, END) is not allowed; use the request's transaction flag"

// argPragmas are PRAGMAs that take an argument but only read.
var argPragmas = map[string]bool{
	"table_info": true, "table_xinfo": true, "table_list": true, "index_list": true, "index_info": true,
	"index_xinfo": true, "foreign_key_list": true, "foreign_key_check": true, "integrity_check": true,
	"quick_check": true,
}

// readPragmas are PRAGMAs that only read when given no value.
var readPragmas = map[string]bool{
	"user_version": true, "application_id": true, "schema_version": true, "data_version": true,
	"page_count": true, "page_size": true, "freelist_count": true, "encoding": true,
	"foreign_keys": true, "journal_mode": true, "compile_options": true, "function_list": true,
	"pragma_list": true, "collation_list": true, "database_list": true, "module_list": true,
	"max_page_count": true, "auto_vacuum": true,
}

// pragmaAllowed reports whether PRAGMA name with value arg only reads.
func pragmaAllowed(name, arg string) bool {
	name = strings.ToLower(name)
	if argPragmas[name] {
		return true
	}
	return arg == "" && (readPragmas[name] || argPragmas[name])
}

func isInternalName(s string) bool {
	return len(s) >= 5 && strings.EqualFold(s[:5], "_rdb_")
}

// refusal returns why an action cannot be replicated faithfully, or "".
func refusal(action sqlite.AuthorizerActionCode, arg1, arg2 string) string {
	switch action {
	case sqlite.AuthAttach, sqlite.AuthDetach:
		return "ATTACH, DETACH and VACUUM INTO are not allowed"
	case sqlite.AuthTransaction, sqlite.AuthSavepoint:
		return refusedTx
	case sqlite.AuthPragma:
		if !pragmaAllowed(arg1, arg2) {
			if arg2 != "" {
				return "PRAGMA " + arg1 + " = ... is not allowed"
			}
			return "PRAGMA " + arg1 + " is not allowed"
		}
	case sqlite.AuthFunction:
		if strings.EqualFold(arg2, "load_extension") {
			return "load_extension is not allowed"
		}
		if strings.EqualFold(arg2, "total_changes") {
			return "total_changes() depends on the connection's history and is not allowed in writes"
		}
	case sqlite.AuthRead:
		if strings.EqualFold(arg1, "sqlite_dbpage") {
			return "access to sqlite_dbpage is not allowed"
		}

	case sqlite.AuthInsert, sqlite.AuthUpdate, sqlite.AuthDelete:
		if strings.EqualFold(arg1, "sqlite_dbpage") {
			return "access to sqlite_dbpage is not allowed"
		}
		if isInternalName(arg1) {
			return "writing the internal table " + arg1 + " is not allowed"
		}
	case sqlite.AuthCreateTable, sqlite.AuthCreateTempTable, sqlite.AuthDropTable, sqlite.AuthDropTempTable,
		sqlite.AuthCreateIndex, sqlite.AuthCreateTempIndex, sqlite.AuthDropIndex, sqlite.AuthDropTempIndex,
		sqlite.AuthCreateTrigger, sqlite.AuthCreateTempTrigger, sqlite.AuthDropTrigger, sqlite.AuthDropTempTrigger,
		sqlite.AuthCreateView, sqlite.AuthCreateTempView, sqlite.AuthDropView, sqlite.AuthDropTempView,
		sqlite.AuthAlterTable, sqlite.AuthCreateVTable, sqlite.AuthDropVTable:
		if isInternalName(arg1) || isInternalName(arg2) {
			return "changing the internal table " + arg1 + " is not allowed"
		}
		switch action {
		case sqlite.AuthCreateTempTable, sqlite.AuthCreateTempIndex, sqlite.AuthCreateTempTrigger, sqlite.AuthCreateTempView:
			return "TEMP tables, indexes, triggers and views are not allowed: they live on one connection of one node and do not replicate"
		}
	}
	return ""
}

func isSchemaTable(s string) bool {
	switch strings.ToLower(s) {
	case "sqlite_master", "sqlite_schema", "sqlite_temp_master", "sqlite_temp_schema":
		return true
	}
	return false
}

// authorizer returns the authorizer function of a connection with state a.
func (a *authState) authorizer() sqlite.AuthorizerFn {
	return func(action sqlite.AuthorizerActionCode, arg1, arg2, dbName, trigger string) sqlite.AuthorizerReturnCode {
		switch a.mode {
		case authInternal:
			return sqlite.AuthorizerOK
		case authRead:
			switch action {
			case sqlite.AuthAttach, sqlite.AuthDetach:
				a.notReadOnly = true
				return sqlite.AuthorizerDeny
			case sqlite.AuthFunction:
				if strings.EqualFold(arg2, "load_extension") {
					a.notReadOnly = true
					return sqlite.AuthorizerDeny
				}
			case sqlite.AuthTransaction, sqlite.AuthSavepoint:
				a.notReadOnly = true
			case sqlite.AuthPragma:
				if !pragmaAllowed(arg1, arg2) {
					a.notReadOnly = true
				}
			case sqlite.AuthRead:
				if strings.EqualFold(arg1, "sqlite_dbpage") {
					a.notReadOnly = true
					return sqlite.AuthorizerDeny
				}
			case sqlite.AuthSelect, sqlite.AuthRecursive:
			default:
				a.notReadOnly = true
			}
			return sqlite.AuthorizerOK
		}
		// authWrite, authCheck, authRestore
		switch action {
		case sqlite.AuthInsert, sqlite.AuthUpdate, sqlite.AuthDelete:
			if isSchemaTable(arg1) {
				a.schemaWrite = true
			}
		case sqlite.AuthCreateTable, sqlite.AuthCreateTempTable, sqlite.AuthDropTable, sqlite.AuthDropTempTable,
			sqlite.AuthCreateIndex, sqlite.AuthCreateTempIndex, sqlite.AuthDropIndex, sqlite.AuthDropTempIndex,
			sqlite.AuthCreateTrigger, sqlite.AuthCreateTempTrigger, sqlite.AuthDropTrigger, sqlite.AuthDropTempTrigger,
			sqlite.AuthCreateView, sqlite.AuthCreateTempView, sqlite.AuthDropView, sqlite.AuthDropTempView,
			sqlite.AuthAlterTable, sqlite.AuthCreateVTable, sqlite.AuthDropVTable:
			a.ddl = true
		}
		r := refusal(action, arg1, arg2)
		if a.mode == authRestore && r != "" && restoreAllowed(action, arg1, arg2) {
			r = ""
		}
		if r != "" {
			if a.reason == "" {
				a.reason = r
			}
			return sqlite.AuthorizerDeny
		}
		return sqlite.AuthorizerOK
	}
}

// restoreAllowed reports whether a restore script may do what refusal
// refuses to ordinary statements: transaction control, PRAGMA foreign_keys
// (written by sqlite3's .dump) and the internal tables (they are replaced
// after the script has run).
func restoreAllowed(action sqlite.AuthorizerActionCode, arg1, arg2 string) bool {
	switch action {
	case sqlite.AuthTransaction, sqlite.AuthSavepoint:
		return true
	case sqlite.AuthPragma:
		return strings.EqualFold(arg1, "foreign_keys") || strings.EqualFold(arg1, "defer_foreign_keys")
	case sqlite.AuthRead:
		return false
	}
	return !strings.EqualFold(arg1, "sqlite_dbpage") && (isInternalName(arg1) || isInternalName(arg2)) &&
		action != sqlite.AuthAttach && action != sqlite.AuthDetach && action != sqlite.AuthFunction
}
