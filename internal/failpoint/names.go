package failpoint

// Names of the failpoints. Each sits at one persistence boundary.
const (
	// RaftBeforeSave is hit in the raft loop before a Ready's entries and
	// HardState are written to the WAL (and fsynced).
	RaftBeforeSave = "raftBeforeSave"
	// RaftAfterSave is hit right after that WAL write returned, before
	// the entries are visible to raft and before followers send.
	RaftAfterSave = "raftAfterSave"
	// ApplyAfterCommit is hit right after the SQLite transaction of an
	// applied batch committed, before anything else (results, conf
	// changes, compaction).
	ApplyAfterCommit = "applyAfterCommit"
	// SnapshotBeforeSave is hit before a database copy made for a
	// follower is saved into the snapshot store.
	SnapshotBeforeSave = "snapshotBeforeSave"
	// SnapshotAfterSave is hit after that copy was saved, before it is
	// streamed.
	SnapshotAfterSave = "snapshotAfterSave"
	// SnapshotBeforeInstall is hit on a follower before a received
	// database file replaces the live database.
	SnapshotBeforeInstall = "snapshotBeforeInstall"
	// SnapshotAfterInstall is hit right after the received database was
	// swapped in, before the WAL records the snapshot: the database is
	// then ahead of the log.
	SnapshotAfterInstall = "snapshotAfterInstall"
	// CompactBeforePurge is hit during log compaction after the WAL
	// snapshot record was written, before the in-memory log is compacted
	// and old WAL segments are purged.
	CompactBeforePurge = "compactBeforePurge"
	// JoinAfterAdd is hit on a node started with --join right after the
	// cluster added it and its log was created, before it has received
	// anything from the cluster.
	JoinAfterAdd = "joinAfterAdd"
)

// Names lists every failpoint, for tests and documentation.
var Names = []string{
	RaftBeforeSave, RaftAfterSave, ApplyAfterCommit,
	SnapshotBeforeSave, SnapshotAfterSave,
	SnapshotBeforeInstall, SnapshotAfterInstall,
	CompactBeforePurge, JoinAfterAdd,
}
