package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"

	"github.com/peterh/liner"
)

// Prompts of the interactive shell.
const (
	promptMain = "rdb> "
	promptTx   = "rdb*> " // inside BEGIN ... COMMIT: statements are being collected
	promptMore = "  ...> "
	// historyFile is the history's name in the home directory.
	historyFile  = ".rdb_history"
	historyLimit = 1000
)

// historyPath returns ~/.rdb_history ($HOME is honoured), or "" when there
// is no home directory.
func historyPath() string {
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		return ""
	}
	return filepath.Join(home, historyFile)
}

// repl runs the interactive loop with liner until Ctrl-D or .quit.
// Ctrl-C at the prompt drops the statement being typed; Ctrl-C while a
// statement runs cancels it. Both leave the shell running.
func (s *shell) repl(ctx context.Context) {
	ln := liner.NewLiner()
	defer ln.Close()
	ln.SetCtrlCAborts(true)
	ln.SetMultiLineMode(true)
	ln.SetTabCompletionStyle(liner.TabPrints)
	ln.SetWordCompleter(s.complete)

	hist := historyPath()
	if hist != "" {
		if f, err := os.Open(hist); err == nil {
			_, _ = ln.ReadHistory(f) // a damaged history is not worth failing for
			f.Close()
		}
	}

	// While a statement runs the terminal is in normal mode, so Ctrl-C is
	// a SIGINT: it cancels the statement rather than ending the shell.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt)
	defer signal.Stop(sig)
	go func() {
		for range sig {
			s.interrupt()
		}
	}()

	var sp splitter
	var lines []string
	for !s.quit {
		prompt := promptMain
		switch {
		case sp.pending():
			prompt = promptMore
		case s.inTx:
			prompt = promptTx
		}
		line, err := ln.Prompt(prompt)
		if errors.Is(err, liner.ErrPromptAborted) {
			sp.reset()
			lines = nil
			continue
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				fmt.Fprintf(s.stderr, "Error: %v\n", err)
			}
			fmt.Fprintln(s.stdout)
			break
		}
		lines = append(lines, line)
		items := sp.feed(line)
		if !sp.pending() {
			s.addHistory(ln, lines)
			lines = nil
		}
		for _, it := range items {
			s.run(ctx, it)
			if s.quit {
				break
			}
		}
	}
	if s.inTx {
		fmt.Fprintf(s.stderr, "Warning: transaction not committed; %d statements discarded\n", len(s.tx))
	}
	if hist != "" {
		if err := writeHistory(ln, hist); err != nil {
			fmt.Fprintf(s.stderr, "Warning: save history: %v\n", err)
		}
	}
}

// addHistory records what was typed for one or more complete statements
// as a single history entry, so that the up arrow recalls a multi-line
// statement whole. Lines with a -- comment (which would swallow what
// follows if joined) are recorded one by one.
func (s *shell) addHistory(ln *liner.State, lines []string) {
	var kept []string
	for _, l := range lines {
		if strings.TrimSpace(l) != "" {
			kept = append(kept, strings.TrimSpace(l))
		}
	}
	if len(kept) == 0 {
		return
	}
	for _, l := range kept[:len(kept)-1] {
		if strings.Contains(l, "--") {
			for _, l := range kept {
				ln.AppendHistory(l)
			}
			return
		}
	}
	ln.AppendHistory(strings.Join(kept, " "))
}

func writeHistory(ln *liner.State, path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := ln.WriteHistory(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// sqlKeywords are offered by tab completion.
var sqlKeywords = []string{
	"ABORT", "ADD", "ALL", "ALTER", "ANALYZE", "AND", "AS", "ASC", "AUTOINCREMENT", "BEGIN", "BETWEEN", "BLOB", "BY",
	"CASCADE", "CASE", "CAST", "CHECK", "COLLATE", "COLUMN", "COMMIT", "CONFLICT", "CONSTRAINT", "CREATE", "CROSS",
	"CURRENT_DATE", "CURRENT_TIME", "CURRENT_TIMESTAMP", "DEFAULT", "DELETE", "DESC", "DISTINCT", "DO", "DROP",
	"EACH", "ELSE", "END", "ESCAPE", "EXCEPT", "EXISTS", "EXPLAIN", "FAIL", "FALSE", "FOR", "FOREIGN", "FROM", "GLOB",
	"GROUP", "HAVING", "IF", "IGNORE", "IN", "INDEX", "INNER", "INSERT", "INSTEAD", "INTEGER", "INTERSECT", "INTO",
	"IS", "JOIN", "KEY", "LEFT", "LIKE", "LIMIT", "NOT", "NOTHING", "NULL", "OF", "OFFSET", "ON", "OR", "ORDER",
	"OUTER", "OVER", "PARTITION", "PRAGMA", "PRIMARY", "QUERY", "PLAN", "REAL", "RECURSIVE", "REFERENCES",
	"REINDEX", "RENAME", "REPLACE", "RETURNING", "RIGHT", "ROLLBACK", "ROW", "ROWID", "SELECT", "SET", "STRICT",
	"TABLE", "TEMP", "TEXT", "THEN", "TO", "TRANSACTION", "TRIGGER", "TRUE", "UNION", "UNIQUE", "UPDATE", "USING",
	"VACUUM", "VALUES", "VIEW", "WHEN", "WHERE", "WINDOW", "WITH", "WITHOUT",
}

// complete is liner's word completer: dot-command names at the start of a
// line, their arguments after them, and SQL keywords and table names
// elsewhere. Matching ignores case; keywords come back in the case the
// word was typed in.
func (s *shell) complete(line string, pos int) (head string, completions []string, tail string) {
	if pos > len(line) {
		pos = len(line)
	}
	head, tail = line[:pos], line[pos:]
	start := len(head)
	for start > 0 && (isIdentChar(head[start-1]) || head[start-1] == '.') {
		start--
	}
	word := head[start:]
	head = head[:start]

	trimmed := strings.TrimLeft(line, " \t")
	if strings.HasPrefix(trimmed, ".") {
		if strings.TrimSpace(head) == "" {
			for _, c := range dotCommands() {
				if strings.HasPrefix("."+c.name, word) {
					completions = append(completions, "."+c.name+" ")
				}
			}
			return head, completions, tail
		}
		name := strings.Fields(trimmed)[0]
		c, err := lookupDot(strings.TrimPrefix(name, "."))
		if err != nil || c.complete == nil {
			return head, nil, tail
		}
		return head, matchPrefix(c.complete(s), word, false), tail
	}
	if word == "" {
		return head, nil, tail
	}
	completions = matchPrefix(sqlKeywords, word, true)
	completions = append(completions, matchPrefix(s.tableNames(), word, false)...)
	sort.Strings(completions)
	return head, completions, tail
}

// matchPrefix returns the candidates that start with word, ignoring case.
// With keyword set, a candidate is returned in lower case when word starts
// with a lower-case letter.
func matchPrefix(cands []string, word string, keyword bool) []string {
	lower := word != "" && word[0] >= 'a' && word[0] <= 'z'
	var out []string
	for _, c := range cands {
		if len(c) >= len(word) && strings.EqualFold(c[:len(word)], word) {
			if keyword && lower {
				c = strings.ToLower(c)
			}
			out = append(out, c)
		}
	}
	return out
}
