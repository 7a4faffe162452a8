package command

import (
	"fmt"
	"strings"
)

// Limits bound what one request may carry. They are checked before a
// request is proposed, so nothing over them reaches the log.
type Limits struct {
	// MaxStatements is the most statements in one request.
	MaxStatements int
	// MaxParameters is the most parameters in one statement.
	MaxParameters int
	// MaxSQLBytes is the longest SQL text of one statement.
	MaxSQLBytes int
}

// Default limits.
const (
	DefaultMaxStatements = 10_000
	DefaultMaxParameters = 32_766 // SQLite's SQLITE_MAX_VARIABLE_NUMBER
	DefaultMaxSQLBytes   = 1 << 20
)

// DefaultLimits returns the default request limits.
func DefaultLimits() Limits {
	return Limits{MaxStatements: DefaultMaxStatements, MaxParameters: DefaultMaxParameters, MaxSQLBytes: DefaultMaxSQLBytes}
}

// Validate checks statements against the limits and basic rules: at
// least one statement, no empty SQL, parameter names well formed. Errors
// wrap ErrInvalidRequest and name the statement (1-based).
func (l Limits) Validate(stmts []*Statement) error {
	if len(stmts) == 0 {
		return fmt.Errorf("%w: no statements", ErrInvalidRequest)
	}
	if l.MaxStatements > 0 && len(stmts) > l.MaxStatements {
		return fmt.Errorf("%w: %d statements, at most %d allowed", ErrInvalidRequest, len(stmts), l.MaxStatements)
	}
	for i, st := range stmts {
		if st == nil || strings.TrimSpace(st.GetSql()) == "" {
			return fmt.Errorf("%w: statement %d: empty SQL", ErrInvalidRequest, i+1)
		}
		if strings.IndexByte(st.GetSql(), 0) >= 0 {
			// SQLite would stop reading at the NUL and silently drop the rest.
			return fmt.Errorf("%w: statement %d: SQL contains a NUL byte", ErrInvalidRequest, i+1)
		}
		if l.MaxSQLBytes > 0 && len(st.GetSql()) > l.MaxSQLBytes {
			return fmt.Errorf("%w: statement %d: SQL of %d bytes, at most %d allowed", ErrInvalidRequest, i+1, len(st.GetSql()), l.MaxSQLBytes)
		}
		if l.MaxParameters > 0 && len(st.GetParameters()) > l.MaxParameters {
			return fmt.Errorf("%w: statement %d: %d parameters, at most %d allowed", ErrInvalidRequest, i+1, len(st.GetParameters()), l.MaxParameters)
		}
		for j, p := range st.GetParameters() {
			name := strings.TrimLeft(p.GetName(), ":@$")
			if p.GetName() != "" && name == "" {
				return fmt.Errorf("%w: statement %d parameter %d: empty name", ErrInvalidRequest, i+1, j+1)
			}
			if strings.ContainsAny(name, " \t\n;'\"") {
				return fmt.Errorf("%w: statement %d parameter %d: bad name %q", ErrInvalidRequest, i+1, j+1, p.GetName())
			}
		}
	}
	return nil
}
