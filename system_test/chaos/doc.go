// Package chaos is rdb's linearizability-checked fault-injection harness.
// It runs real `rdb serve` processes, drives them with concurrent
// recording clients while a nemesis injects faults, heals, and judges the
// recorded history. It is library code so that both the short tier
// (TestChaos, part of `make test`) and the long runner (cmd/chaos,
// `make chaos`) use it.
//
// # A run
//
// Run performs one run from a Config (seed, scenario, duration):
//
//  1. From the seed: cluster size (3, or 5 for membership and some
//     partition-halves runs), raft tick and election timeout (10ms/100ms, 100ms/1s or
//     100ms/2s), --snapshot-entries (50, 1000 or 10000) and
//     --snapshot-trailing (10, 100 or 5000), the workload mix, the order
//     in which each client tries the endpoints, and the fault choices.
//  2. Each node runs in its own network namespace (rdbchaos-<pid>-<run>-<n>),
//     joined by a veth pair to a bridge (rcb<run>) in the root namespace
//     on a private 10.x.y.0/24 subnet picked at random and checked to be
//     unused. Clients reach the nodes through the bridge. Without root,
//     ip or iptables, nodes run on loopback and partition scenarios fail
//     with ErrNoNetns (callers skip them).
//  3. Up to MaxClients workers run workloads, each through its own
//     RecordingClient, while the nemesis injects the scenario's fault
//     again and again (heal, pause, inject).
//  4. Heal everything (SIGCONT, restart killed nodes, remove iptables
//     rules); a final write must succeed within FinalWriteWithin; every
//     node must reach the same applied index with the same Hash; then
//     each workload's checker runs, PRAGMA integrity_check runs on every
//     replica, and node logs are scanned for panics and races.
//
// A failed run keeps its directory (seed and configuration in run.json,
// histories as JSON lines, porcupine's HTML visualization per failing
// key, the fault timeline, node logs and data directories); a passing
// one removes it.
//
// # Recording
//
// A RecordingClient wraps rpc/client. The client repeats a write only
// when the server said it certainly did not apply (NOT_APPLIED, or never
// sent); the harness adds no retries. Every operation records call and
// return times on the monotonic clock, input, output and the raft index
// of the response. A write that fails in a way that may still commit
// (timeout, lost connection or leader; client.IsOutcomeUnknown) is
// Unknown: porcupine sees it with return time infinity, and the client
// continues under a new porcupine client id. Each operation has its own
// deadline, so the end of a run does not turn writes in flight into
// unknown ones.
//
// # Workloads and checkers
//
//   - register (W1): reg(k, v) with unique values per write; writes and
//     LINEARIZABLE and STRONG reads are checked with porcupine per key,
//     keys retired after 500 operations; a checker timeout is a failure.
//     WEAK and NONE reads must return a value that was written (or 0).
//     Each write also appends (v, k) to reg_log in its transaction; at
//     the end a STRONG read of reg_log must hold every acknowledged write
//     once and no failed or never issued one, and it resolves the unknown
//     writes: those absent never took effect and are checked as failed
//     (so a read of their value is an anomaly), as etcd's robustness
//     suite resolves them against its WAL.
//   - bank (W2): 8 accounts of 100; a transfer is one transactional
//     request whose debit requires the balance and whose credit requires
//     the debit (changes() = 1). Every read at every level, and every
//     replica at the end, must see 8 accounts summing to 800, none
//     negative.
//   - set (W3): unique inserts into a table without a uniqueness
//     constraint; at the end a STRONG read through every node and a NONE
//     read of every replica: no acknowledged insert lost, no duplicate,
//     no definitely failed insert present, nothing never inserted.
//   - ddl (W5, W6): CREATE TABLE, ALTER TABLE ADD COLUMN ... DEFAULT,
//     CREATE INDEX, and inserts using random(), randomblob(),
//     datetime('now'), AUTOINCREMENT and last_insert_rowid(); checked by
//     the replica hash and by reading back the defaults on every replica.
//
// # Faults
//
// See Scenario: kill -9 of the leader (F1) or a follower (F2) with a
// restart 1-3 s later, SIGSTOP of the leader for longer than the election
// timeout (F3), isolating the leader (F4), random halves (F5), the
// leader's inbound peer traffic dropped while its outbound passes (F6),
// kill -9 of every node (F15), slow and lossy peer links (F7:
// slow-links, lossy-links), a follower blackholed until the leader's
// log is compacted past it and then killed inside the snapshot install
// (F11: blackhole-until-snapshot), a full disk (F12, disk-full), a
// wall-clock offset (F13, clock-offset), a corrupted file (F14,
// bitflip), and membership changes (F10, see Membership): learner add
// and promotion, removal and re-add of a voter or the leader, and
// replacement of a node with a wiped data directory, some proposed on an
// isolated leader, with a partition that leaves no quorum of voters
// while a learner is present. In a membership run the final checks cover
// the members read from the cluster after healing.
// failpoint-crash (F9) arms one persistence-boundary failpoint
// (raftBeforeSave, raftAfterSave, applyAfterCommit, snapshotBeforeSave,
// snapshotAfterSave, compactBeforePurge) with the kill action at one of
// its next five hits on the leader or a follower, waits up to 10 s for
// the node to SIGKILL itself there, disarms and restarts it; an exit not
// at the armed failpoint is left down as a crash. power-cut (F8) puts
// every data directory on a lazyfs mount (package lazyfs: written data
// reaches the disk only at fsync), kills the leader or a follower either
// at a random moment or while its fsyncs are held and it has unsynced
// data, drops every unsynced write (raft WAL, snapshots, SQLite file and
// WAL), and restarts it on the same disk.
// Partitions are iptables DROP rules in
// the namespaces: a two-way cut drops everything from the other side; the
// one-way cut drops only packets to the victim's peer port, so replies on
// connections the victim opened still pass. Namespaces, veths, the bridge
// and the root FORWARD rule are removed after every run, and stale ones
// of harness processes that no longer exist are removed before a run.
//
// Link faults go through Proxy, a fault-injecting TCP proxy per node in
// front of its peer listener (the node advertises the proxy with
// --advertise-peer); rules per source node and direction pass, delay
// (75±50 ms per chunk, order kept), drop (a lost chunk resets its
// connection: "50%" is even odds per chunk) or blackhole (accept, read,
// forward nothing) the links, switchable at runtime. Proxied traffic
// comes from the bridge address, which partition rules do not match, so
// only the link scenarios use proxies (fault_links.go). F11 forces
// compaction to 50 entries and kills the follower through the failpoints
// snapshotBeforeInstall/snapshotAfterInstall=kill, armed in its
// RDB_FAILPOINTS_FILE, or by SIGKILL while the snapshot file is received;
// the runner and TestChaos build rdb with -tags failpoints for it
// (fault_snapshot.go).
//
// disk-full gives every node's data directory its own 384 MiB tmpfs
// (source "rdbchaos-<harness pid>", so stale mounts of dead harness
// processes are unmounted before the next such run; a kept run's data is
// copied out before unmounting), fills one node's with a balloon file (a
// follower, then the leader, alternating), holds, deletes the balloon and
// restarts the node if it exited. clock-offset needs rdb built with the
// failpoints tag (Run builds one when Config.Binary lacks it): every node
// gets RDB_CLOCK_OFFSET_FILE=<run dir>/node<N>.clock, and the nemesis
// writes offsets of 5-30 s either way into the leader's file (then a
// random node's), proves with a write of julianday('now') that the stamp
// moved, strobes the offset every 20-200 ms, and resets it. bitflip stops
// a follower (SIGTERM or kill -9), truncates its last WAL segment's tail
// or flips a bit in a WAL segment, a snapshot file or the SQLite file,
// and starts it; a node that refuses to start is replaced as README
// says (remove the member, wipe, --join with a new id); each outcome is
// in the timeline, and the next fault waits until the node caught up.
//
// # Concurrency
//
// Each run has its own namespaces and directory, so runs may overlap, but
// they compete for the machine: run them one after another. Recorder is
// safe for concurrent use; a RecordingClient belongs to one worker
// goroutine.
//
// The design is described in docs/design.md ("Fault-injection harness").
package chaos
