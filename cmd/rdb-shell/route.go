package main

import (
	"strings"
)

// route is where the shell sends a statement.
type route int

const (
	// routeExecute sends the statement through the raft log (Execute).
	routeExecute route = iota
	// routeQuery sends it as a read at the shell's consistency (Query).
	routeQuery
	// routeBegin, routeCommit and routeRollback are transaction control,
	// which the shell handles itself (see shell.runStatement).
	routeBegin
	routeCommit
	routeRollback
	// routeSavepoint is SAVEPOINT, RELEASE or ROLLBACK TO, which the shell
	// refuses: a transaction is sent as one request, so it has nothing to
	// roll back to.
	routeSavepoint
)

func (r route) String() string {
	switch r {
	case routeQuery:
		return "query"
	case routeBegin:
		return "begin"
	case routeCommit:
		return "commit"
	case routeRollback:
		return "rollback"
	case routeSavepoint:
		return "savepoint"
	default:
		return "execute"
	}
}

// classify decides, client side, where a statement goes. The rule:
//
//   - SELECT, VALUES and EXPLAIN statements are queries;
//   - PRAGMA is a query unless it contains '=' (PRAGMA x = y sets
//     something, so it is a write);
//   - WITH is followed past its common table expressions (everything in
//     parentheses is skipped) to the main verb: SELECT or VALUES make it a
//     query, anything else (INSERT, UPDATE, DELETE, REPLACE) a write;
//   - BEGIN, COMMIT/END, ROLLBACK are transaction control, SAVEPOINT,
//     RELEASE and ROLLBACK TO are refused;
//   - everything else is a write and goes through Execute.
//
// Leading whitespace, comments and opening parentheses are skipped. A
// query that is not read-only after all is refused by the server, so a
// wrong guess fails loudly rather than writing at the wrong consistency.
func classify(sql string) route {
	toks := sqlWords(sql, 64)
	if len(toks) == 0 {
		return routeExecute
	}
	switch toks[0] {
	case "SELECT", "VALUES", "EXPLAIN":
		return routeQuery
	case "PRAGMA":
		if strings.Contains(sql, "=") {
			return routeExecute
		}
		return routeQuery
	case "WITH":
		for _, w := range toks[1:] {
			switch w {
			case "SELECT", "VALUES":
				return routeQuery
			case "INSERT", "UPDATE", "DELETE", "REPLACE":
				return routeExecute
			}
		}
		return routeExecute
	case "BEGIN":
		return routeBegin
	case "COMMIT", "END":
		return routeCommit
	case "ROLLBACK":
		// ROLLBACK [TRANSACTION] [TO [SAVEPOINT] name]
		for _, w := range toks[1:] {
			if w == "TO" {
				return routeSavepoint
			}
		}
		return routeRollback
	case "SAVEPOINT", "RELEASE":
		return routeSavepoint
	}
	return routeExecute
}

// sqlWords returns up to max upper-cased bare words of sql that are at
// parenthesis depth zero, skipping comments, string literals and quoted
// identifiers. A leading '(' (as in "(SELECT 1)") does not count as depth.
func sqlWords(sql string, max int) []string {
	var words []string
	depth := 0
	seenWord := false
	for i := 0; i < len(sql) && len(words) < max; {
		c := sql[i]
		switch {
		case c == '-' && i+1 < len(sql) && sql[i+1] == '-':
			j := strings.IndexByte(sql[i:], '\n')
			if j < 0 {
				return words
			}
			i += j + 1
		case c == '/' && i+1 < len(sql) && sql[i+1] == '*':
			j := strings.Index(sql[i+2:], "*/")
			if j < 0 {
				return words
			}
			i += j + 4
		case c == '\'' || c == '"' || c == '`' || c == '[':
			end := c
			if c == '[' {
				end = ']'
			}
			j := i + 1
			for j < len(sql) {
				if sql[j] == end {
					if end != ']' && j+1 < len(sql) && sql[j+1] == end {
						j += 2
						continue
					}
					break
				}
				j++
			}
			i = j + 1
			seenWord = true
		case c == '(':
			if seenWord {
				depth++
			}
			i++
		case c == ')':
			if depth > 0 {
				depth--
			}
			i++
		case isIdentStart(c):
			j := i + 1
			for j < len(sql) && isIdentChar(sql[j]) {
				j++
			}
			if depth == 0 {
				words = append(words, strings.ToUpper(sql[i:j]))
			}
			seenWord = true
			i = j
		default:
			i++
		}
	}
	return words
}
