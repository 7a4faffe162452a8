package command

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// ErrInvalidUTF8 is returned for a message with a string field that is not
// valid UTF-8. Protobuf's own codec refuses such messages (proto3 strings
// must be UTF-8); the faster generated codec (vtprotobuf) does not check,
// so CheckUTF8 does it to keep protobuf's behaviour.
var ErrInvalidUTF8 = errors.New("string field contains invalid UTF-8")

// CheckString returns ErrInvalidUTF8, naming field, when s is not UTF-8.
func CheckString(field, s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s: %w", field, ErrInvalidUTF8)
	}
	return nil
}

// CheckUTF8 reports whether every string field of v is valid UTF-8.
func (v *Value) CheckUTF8() error {
	if t, ok := v.GetKind().(*Value_Text); ok {
		return CheckString("value text", t.Text)
	}
	return nil
}

// CheckUTF8 reports whether every string field of s is valid UTF-8.
func (s *Statement) CheckUTF8() error {
	if err := CheckString("statement sql", s.GetSql()); err != nil {
		return err
	}
	for _, p := range s.GetParameters() {
		if err := CheckString("parameter name", p.GetName()); err != nil {
			return err
		}
		if err := p.GetValue().CheckUTF8(); err != nil {
			return err
		}
	}
	return nil
}

// UTF8Checker is a message that can check its strings (CheckUTF8).
type UTF8Checker interface{ CheckUTF8() error }

// CheckAllUTF8 checks every message of ms (see the CheckUTF8 methods).
func CheckAllUTF8[T UTF8Checker](ms []T) error {
	for _, m := range ms {
		if err := m.CheckUTF8(); err != nil {
			return err
		}
	}
	return nil
}

// CheckUTF8 reports whether every string field of r is valid UTF-8.
func (r *Result) CheckUTF8() error {
	for _, c := range r.GetColumns() {
		if err := CheckString("result column", c); err != nil {
			return err
		}
	}
	for _, t := range r.GetTypes() {
		if err := CheckString("result type", t); err != nil {
			return err
		}
	}
	for _, row := range r.GetRows() {
		for _, v := range row.GetValues() {
			if err := v.CheckUTF8(); err != nil {
				return err
			}
		}
	}
	return CheckString("result error", r.GetError())
}

// CheckUTF8 reports whether every string field of m is valid UTF-8.
func (m *Member) CheckUTF8() error {
	if err := CheckString("member peer_addr", m.GetPeerAddr()); err != nil {
		return err
	}
	return CheckString("member client_addr", m.GetClientAddr())
}

// CheckUTF8 reports whether every string field of c is valid UTF-8.
func (c *Command) CheckUTF8() error {
	if err := CheckAllUTF8(c.GetStatements()); err != nil {
		return err
	}
	if err := c.GetMember().CheckUTF8(); err != nil {
		return err
	}
	if err := CheckString("restore_chunk restore_id", c.GetRestoreChunk().GetRestoreId()); err != nil {
		return err
	}
	return CheckString("restore_commit restore_id", c.GetRestoreCommit().GetRestoreId())
}

// The generated decoder (UnmarshalVT) skips unknown fields more leniently
// than protobuf's (a malformed group passes), so a decoder that must
// refuse exactly what protobuf refuses decodes again with protobuf when
// HasUnknownFields reports any. rdb never writes unknown fields: only a
// newer peer or a hostile client sends them.

// HasUnknownFields reports whether v holds unknown fields.
func (v *Value) HasUnknownFields() bool { return v != nil && len(v.unknownFields) > 0 }

// HasUnknownFields reports whether s or any message in it holds unknown
// fields.
func (s *Statement) HasUnknownFields() bool {
	if s == nil {
		return false
	}
	if len(s.unknownFields) > 0 {
		return true
	}
	for _, p := range s.Parameters {
		if p != nil && (len(p.unknownFields) > 0 || p.Value.HasUnknownFields()) {
			return true
		}
	}
	return false
}

// UnknownFieldsReporter is a message that can tell whether it holds
// unknown fields (HasUnknownFields).
type UnknownFieldsReporter interface{ HasUnknownFields() bool }

// AnyUnknownFields reports whether any message of ms holds unknown fields.
func AnyUnknownFields[T UnknownFieldsReporter](ms []T) bool {
	for _, m := range ms {
		if m.HasUnknownFields() {
			return true
		}
	}
	return false
}

// HasUnknownFields reports whether r or any message in it holds unknown
// fields.
func (r *Result) HasUnknownFields() bool {
	if r == nil {
		return false
	}
	if len(r.unknownFields) > 0 {
		return true
	}
	for _, row := range r.Rows {
		if row == nil {
			continue
		}
		if len(row.unknownFields) > 0 {
			return true
		}
		for _, v := range row.Values {
			if v.HasUnknownFields() {
				return true
			}
		}
	}
	return false
}

// HasUnknownFields reports whether c or any message in it holds unknown
// fields.
func (c *Command) HasUnknownFields() bool {
	return c != nil && (len(c.unknownFields) > 0 || AnyUnknownFields(c.Statements) ||
		(c.Member != nil && len(c.Member.unknownFields) > 0) ||
		(c.RestoreChunk != nil && len(c.RestoreChunk.unknownFields) > 0) ||
		(c.RestoreCommit != nil && len(c.RestoreCommit.unknownFields) > 0))
}
