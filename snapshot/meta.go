package snapshot

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

// metaVersion is the version of the .meta file envelope.
const metaVersion = 1

// File name suffixes. See doc.go for the naming scheme.
const (
	dataSuffix = ".snap"
	metaSuffix = ".meta"
	tmpSuffix  = ".tmp"
)

// castagnoli is the CRC-32C table used for chunks and .meta files.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Meta describes one snapshot: the raft position it captures and the
// size and SHA-256 of its payload.
//
// Meta values returned by the package own their ConfState and SHA256;
// callers may keep them but should not modify them while a Store method
// is using the same value.
type Meta struct {
	// Index and Term are the raft index and term of the last entry the
	// snapshot includes.
	Index, Term uint64
	// ConfState is the membership at Index. It may be nil.
	ConfState *raftpb.ConfState
	// Size is the payload length in bytes.
	Size int64
	// SHA256 is the SHA-256 of the payload (hex in JSON).
	SHA256 []byte
	// CreatedAt is when the snapshot was committed to the store.
	CreatedAt time.Time
}

// RaftMetadata returns the raft form of m's position and membership, for
// a raftpb.Snapshot. The ConfState pointer is shared with m.
func (m Meta) RaftMetadata() *raftpb.SnapshotMetadata {
	index, term := m.Index, m.Term
	return &raftpb.SnapshotMetadata{ConfState: m.ConfState, Index: &index, Term: &term}
}

// String returns a short description of m for logs and errors.
func (m Meta) String() string {
	return fmt.Sprintf("snapshot term=%d index=%d size=%d", m.Term, m.Index, m.Size)
}

// confStateJSON mirrors raftpb.ConfState with stable JSON names. It
// exists because encoding/json must not be pointed at generated protobuf
// structs, and importing protojson would widen this package's imports.
type confStateJSON struct {
	Voters           []uint64 `json:"voters,omitempty"`
	Learners         []uint64 `json:"learners,omitempty"`
	VotersOutgoing   []uint64 `json:"voters_outgoing,omitempty"`
	LearnersNext     []uint64 `json:"learners_next,omitempty"`
	AutoLeave        bool     `json:"auto_leave,omitempty"`
	AutoLeavePresent bool     `json:"auto_leave_present,omitempty"`
}

type metaJSON struct {
	Index     uint64         `json:"index"`
	Term      uint64         `json:"term"`
	ConfState *confStateJSON `json:"conf_state,omitempty"`
	Size      int64          `json:"size"`
	SHA256    string         `json:"sha256"`
	CreatedAt time.Time      `json:"created_at"`
}

// MarshalJSON encodes m with snake_case keys and SHA256 as hex.
func (m Meta) MarshalJSON() ([]byte, error) {
	j := metaJSON{
		Index:     m.Index,
		Term:      m.Term,
		Size:      m.Size,
		SHA256:    hex.EncodeToString(m.SHA256),
		CreatedAt: m.CreatedAt,
	}
	if cs := m.ConfState; cs != nil {
		j.ConfState = &confStateJSON{
			Voters:           cs.GetVoters(),
			Learners:         cs.GetLearners(),
			VotersOutgoing:   cs.GetVotersOutgoing(),
			LearnersNext:     cs.GetLearnersNext(),
			AutoLeave:        cs.GetAutoLeave(),
			AutoLeavePresent: cs.AutoLeave != nil,
		}
	}
	return json.Marshal(j)
}

// UnmarshalJSON decodes the form written by MarshalJSON.
func (m *Meta) UnmarshalJSON(b []byte) error {
	var j metaJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	sum, err := hex.DecodeString(j.SHA256)
	if err != nil {
		return fmt.Errorf("sha256: %w", err)
	}
	if len(sum) == 0 {
		sum = nil
	}
	*m = Meta{Index: j.Index, Term: j.Term, Size: j.Size, SHA256: sum, CreatedAt: j.CreatedAt}
	if c := j.ConfState; c != nil {
		cs := &raftpb.ConfState{
			Voters:         c.Voters,
			Learners:       c.Learners,
			VotersOutgoing: c.VotersOutgoing,
			LearnersNext:   c.LearnersNext,
		}
		if c.AutoLeavePresent || c.AutoLeave {
			v := c.AutoLeave
			cs.AutoLeave = &v
		}
		m.ConfState = cs
	}
	return nil
}

// metaFile is the on-disk envelope of a .meta file. CRC32C covers the
// exact bytes of Meta as stored.
type metaFile struct {
	Version int             `json:"version"`
	CRC32C  uint32          `json:"crc32c"`
	Meta    json.RawMessage `json:"meta"`
}

// encodeMeta returns the contents of a .meta file for m.
func encodeMeta(m Meta) ([]byte, error) {
	body, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	out, err := json.Marshal(metaFile{Version: metaVersion, CRC32C: crc32.Checksum(body, castagnoli), Meta: body})
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// decodeMeta parses a .meta file; any damage yields ErrCorrupt.
func decodeMeta(b []byte) (Meta, error) {
	var f metaFile
	if err := json.Unmarshal(bytes.TrimSpace(b), &f); err != nil {
		return Meta{}, fmt.Errorf("%w: meta: %v", ErrCorrupt, err)
	}
	if f.Version != metaVersion {
		return Meta{}, fmt.Errorf("%w: meta: unknown version %d", ErrCorrupt, f.Version)
	}
	if got := crc32.Checksum(f.Meta, castagnoli); got != f.CRC32C {
		return Meta{}, fmt.Errorf("%w: meta: crc32c %08x, want %08x", ErrCorrupt, got, f.CRC32C)
	}
	var m Meta
	if err := json.Unmarshal(f.Meta, &m); err != nil {
		return Meta{}, fmt.Errorf("%w: meta: %v", ErrCorrupt, err)
	}
	if m.Size < 0 || len(m.SHA256) != 32 {
		return Meta{}, fmt.Errorf("%w: meta: bad size or sha256", ErrCorrupt)
	}
	return m, nil
}

// baseName returns "<term 16 hex>-<index 16 hex>", the common prefix of
// a snapshot's files. Term comes first so that names of one term sort by
// index; List sorts by parsed values anyway.
func baseName(term, index uint64) string {
	return fmt.Sprintf("%016x-%016x", term, index)
}

// parseName splits a file name into term, index and suffix (".snap" or
// ".meta"). ok is false for any other name, including temporary files.
func parseName(name string) (term, index uint64, suffix string, ok bool) {
	const hexLen = 16
	base, suffix, found := strings.Cut(name, ".")
	if !found || (suffix != dataSuffix[1:] && suffix != metaSuffix[1:]) {
		return 0, 0, "", false
	}
	if len(base) != 2*hexLen+1 || base[hexLen] != '-' {
		return 0, 0, "", false
	}
	t, ok1 := parseHex(base[:hexLen])
	i, ok2 := parseHex(base[hexLen+1:])
	if !ok1 || !ok2 {
		return 0, 0, "", false
	}
	return t, i, "." + suffix, true
}

func parseHex(s string) (uint64, bool) {
	if strings.ToLower(s) != s {
		return 0, false
	}
	v, err := strconv.ParseUint(s, 16, 64)
	return v, err == nil
}
