package main

import (
	"strings"
)

// item is one unit of shell input: a complete SQL statement or a
// dot-command line.
type item struct {
	// text is the statement without its leading whitespace and comments
	// and without the terminating semicolon, or the whole dot-command line
	// without leading whitespace.
	text string
	// dot is true for a dot-command.
	dot bool
	// line is the 1-based input line the item starts on.
	line int
	// incomplete is set on the item flush returns when the input ended
	// inside a string, quoted identifier or trigger body.
	incomplete bool
}

// lexState is what the scanner is inside of at a line boundary.
type lexState int

const (
	lexNormal       lexState = iota
	lexSingle                // '...'
	lexDouble                // "..."
	lexBacktick              // `...`
	lexBracket               // [...]
	lexBlockComment          // /* ... */
)

// Token classes and states of SQLite's sqlite3_complete() automaton,
// which decides where a statement ends: a ';' ends it, except inside a
// CREATE [TEMP] TRIGGER body, where only "; END ;" does.
const (
	tkSemi = iota
	tkWS
	tkOther
	tkExplain
	tkCreate
	tkTemp
	tkTrigger
	tkEnd
)

const (
	stInvalid = iota
	stStart
	stNormal
	stExplain
	stCreate
	stTrigger
	stSemi
	stEnd
)

// completeTrans is sqlite3_complete's transition table, indexed
// [state][token].
var completeTrans = [8][8]int{
	/* INVALID */ {stStart, stInvalid, stNormal, stExplain, stCreate, stNormal, stNormal, stNormal},
	/* START   */ {stStart, stStart, stNormal, stExplain, stCreate, stNormal, stNormal, stNormal},
	/* NORMAL  */ {stStart, stNormal, stNormal, stNormal, stNormal, stNormal, stNormal, stNormal},
	/* EXPLAIN */ {stStart, stExplain, stExplain, stNormal, stCreate, stNormal, stNormal, stNormal},
	/* CREATE  */ {stStart, stCreate, stNormal, stNormal, stNormal, stCreate, stTrigger, stNormal},
	/* TRIGGER */ {stSemi, stTrigger, stTrigger, stTrigger, stTrigger, stTrigger, stTrigger, stTrigger},
	/* SEMI    */ {stSemi, stSemi, stTrigger, stTrigger, stTrigger, stTrigger, stTrigger, stEnd},
	/* END     */ {stStart, stEnd, stTrigger, stTrigger, stTrigger, stTrigger, stTrigger, stTrigger},
}

// splitter cuts a stream of input lines into statements and dot-commands.
// It is incremental: feed it one line at a time, and it returns the items
// those lines completed. It understands '...' strings, "...", `...` and
// [...] quoted identifiers, -- and /* */ comments, and BEGIN ... END
// bodies of CREATE TRIGGER, using the same rule as sqlite3_complete. A
// line starting with '.' outside any statement is a dot-command.
//
// A splitter is not safe for concurrent use.
type splitter struct {
	buf     strings.Builder // text of the statement being read
	lex     lexState
	state   int  // sqlite3_complete state of the current statement
	content bool // the current statement has a token other than whitespace or comments
	start   int  // offset in buf where the statement's first token starts
	line    int  // lines fed so far
	first   int  // line of the current statement's first token
}

// pending reports whether a statement has been started and not finished,
// which is when an interactive shell shows its continuation prompt.
func (s *splitter) pending() bool {
	return s.content || s.lex != lexNormal
}

// reset drops any partial statement (Ctrl-C at the prompt).
func (s *splitter) reset() {
	line := s.line
	*s = splitter{line: line}
}

// feed adds one line of input (without its newline) and returns the items
// it completes.
func (s *splitter) feed(line string) []item {
	s.line++
	if !s.pending() {
		if t := strings.TrimLeft(line, " \t\r\f\v"); strings.HasPrefix(t, ".") {
			s.reset()
			return []item{{text: strings.TrimRight(t, " \t\r\n\f\v"), dot: true, line: s.line}}
		}
	}
	var out []item
	base := s.buf.Len()
	s.buf.WriteString(line)
	s.buf.WriteByte('\n')
	text := s.buf.String()
	i := base
	for i < len(text) {
		switch s.lex {
		case lexSingle, lexDouble, lexBacktick, lexBracket:
			end := closer(s.lex)
			j := strings.IndexByte(text[i:], end)
			if j < 0 {
				i = len(text)
				continue
			}
			i += j + 1
			// A doubled quote is an escaped quote, not the end (but
			// ']]' is not special in brackets).
			if s.lex != lexBracket && i < len(text) && text[i] == end {
				i++
				continue
			}
			s.lex = lexNormal
			continue
		case lexBlockComment:
			j := strings.Index(text[i:], "*/")
			if j < 0 {
				i = len(text)
				continue
			}
			i += j + 2
			s.lex = lexNormal
			continue
		}
		c := text[i]
		switch {
		case c == ';':
			s.step(tkSemi, i)
			i++
			if s.state == stStart {
				if s.content {
					out = append(out, item{text: strings.TrimSpace(text[s.start : i-1]), line: s.first})
				}
				// Keep the rest of this line as the start of the next
				// statement.
				rest := text[i:]
				s.buf.Reset()
				s.buf.WriteString(rest)
				text = s.buf.String()
				i = 0
				s.content = false
				s.state = stStart
			}
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			i++
		case c == '-' && i+1 < len(text) && text[i+1] == '-':
			j := strings.IndexByte(text[i:], '\n')
			if j < 0 {
				i = len(text)
			} else {
				i += j
			}
		case c == '/' && i+1 < len(text) && text[i+1] == '*':
			s.lex = lexBlockComment
			i += 2
		case c == '\'':
			s.step(tkOther, i)
			s.lex = lexSingle
			i++
		case c == '"':
			s.step(tkOther, i)
			s.lex = lexDouble
			i++
		case c == '`':
			s.step(tkOther, i)
			s.lex = lexBacktick
			i++
		case c == '[':
			s.step(tkOther, i)
			s.lex = lexBracket
			i++
		case isIdentStart(c):
			j := i + 1
			for j < len(text) && isIdentChar(text[j]) {
				j++
			}
			s.step(keywordToken(text[i:j]), i)
			i = j
		default:
			s.step(tkOther, i)
			i++
		}
	}
	return out
}

// step advances the sqlite3_complete automaton by one token starting at
// offset at in the buffer.
func (s *splitter) step(tok, at int) {
	if tok != tkSemi && tok != tkWS && !s.content {
		s.content = true
		s.start = at
		s.first = s.line
	}
	s.state = completeTrans[s.state][tok]
}

// flush is called at the end of input. It returns the unfinished
// statement, if there is one with any content; incomplete is set when the
// input ended inside a string, quoted identifier or trigger body. A final
// statement without a ';' is otherwise complete, as in sqlite3.
func (s *splitter) flush() (item, bool) {
	defer s.reset()
	if !s.content {
		return item{}, false
	}
	text := s.buf.String()[s.start:]
	it := item{text: strings.TrimSpace(text), line: s.first}
	switch {
	case s.lex == lexSingle || s.lex == lexDouble || s.lex == lexBacktick || s.lex == lexBracket:
		it.incomplete = true
	case s.state == stTrigger || s.state == stSemi || s.state == stEnd:
		it.incomplete = true
	}
	return it, true
}

func closer(l lexState) byte {
	switch l {
	case lexSingle:
		return '\''
	case lexDouble:
		return '"'
	case lexBacktick:
		return '`'
	default:
		return ']'
	}
}

func isIdentStart(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}

func isIdentChar(c byte) bool {
	return isIdentStart(c) || c >= '0' && c <= '9' || c == '$'
}

func keywordToken(w string) int {
	switch strings.ToUpper(w) {
	case "EXPLAIN":
		return tkExplain
	case "CREATE":
		return tkCreate
	case "TEMP", "TEMPORARY":
		return tkTemp
	case "TRIGGER":
		return tkTrigger
	case "END":
		return tkEnd
	}
	return tkOther
}

// splitAll splits a whole text (a -c argument, a file) into items. A last
// statement without ';' is included; it is marked incomplete if the text
// ends inside a string or trigger body.
func splitAll(text string) []item {
	var s splitter
	var out []item
	text = strings.TrimSuffix(text, "\n")
	for _, line := range strings.Split(text, "\n") {
		out = append(out, s.feed(line)...)
	}
	if it, ok := s.flush(); ok {
		out = append(out, it)
	}
	return out
}
