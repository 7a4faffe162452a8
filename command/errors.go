package command

import "errors"

var (
	// ErrEmpty means an entry carried no command (raft's empty entries).
	ErrEmpty = errors.New("command: empty entry")
	// ErrUnknownEncoding means the entry's marker byte is not known.
	ErrUnknownEncoding = errors.New("command: unknown encoding")
	// ErrUnsupportedVersion means the command is newer than this build.
	ErrUnsupportedVersion = errors.New("command: unsupported version")
	// ErrCorrupt means the entry's bytes do not decode.
	ErrCorrupt = errors.New("command: corrupt command")
	// ErrInvalidRequest means a request breaks a limit or rule (see Limits).
	ErrInvalidRequest = errors.New("command: invalid request")
	// ErrTooLarge means a request exceeds the size limit.
	ErrTooLarge = errors.New("command: request too large")
)
