// Package command owns rdb's replicated command format: the protobuf
// messages carried by raft log entries (statements, parameters, typed
// values, the fixed time and random seed, the transaction flag), their
// encoding with a format marker and version, and request limits checked
// before anything is proposed.
//
// The package is pure: no I/O, no SQLite, no raft. Everything may import it.
//
// Wire format of a log entry's data: one marker byte (EncodingV1 = 0x01)
// followed by a protobuf-encoded Command. Command.version says which
// semantics the command needs; a reader refuses versions newer than
// Version with ErrUnsupportedVersion rather than misapplying them. Entries
// with empty data (raft's own leader entries) carry no command.
package command
