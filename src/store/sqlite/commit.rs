//! How SQLite commits a group and keeps its WAL short: the [`GroupBackend`] the writer thread
//! drives, and the checkpointer thread beside it (see the module doc of `store::sqlite`).

use super::backend;
use super::write::apply_write;
use crate::store::StoreError;
use crate::store::writer::{GroupBackend, Write};
use rusqlite::Connection;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;

/// The WAL file is cut back to this size when it starts over after a bulk load made it large.
pub(super) const WAL_KEEP_BYTES: i64 = 64 * 1024 * 1024;

/// How often the checkpointer looks at what the writer has committed.
const CHECKPOINT_POLL: std::time::Duration = std::time::Duration::from_millis(250);

/// Writes committed since the last checkpoint that call for the next one. A decision writes
/// about twenty pages since it also journals its postings (three indexes) and queues itself for
/// the bus, so this is some 44 MiB of WAL: less than the WAL file kept ([`WAL_KEEP_BYTES`]),
/// which is then written over rather than grown and cut back each round. Rounds of 1,024 writes
/// overflowed it once decisions grew (the WAL stood at the 64 MiB cap after the steady phase of
/// `bench serve`), as rounds of 4,096 did when a decision wrote ten pages (docs/benchmarks.md).
pub(super) const CHECKPOINT_WRITES: u64 = 512;

/// The longest a committed write waits to be checkpointed when writes trickle in.
const CHECKPOINT_MAX_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// What the writer and the checkpointer tell each other.
#[derive(Default)]
pub(super) struct Progress {
    /// Writes committed, counted by the writer.
    written: AtomicU64,
    /// Set by the checkpointer after a round, taken by the writer: copy what was committed
    /// during the round, so that the WAL can start over.
    finish: AtomicBool,
}

/// The writing connection, owned by the writer thread.
pub(super) struct SqliteWriter {
    pub(super) conn: Connection,
    pub(super) progress: Arc<Progress>,
}

impl GroupBackend for SqliteWriter {
    /// First without savepoints, and only if a write is refused, again with a savepoint per
    /// write: writes are refused rarely, and savepoints cost on every write.
    fn apply_group(&mut self, writes: &[Write]) -> Vec<Result<(), StoreError>> {
        match run_plain(&mut self.conn, writes) {
            Ok(()) => writes.iter().map(|_| Ok(())).collect(),
            Err(()) => run_savepoints(&mut self.conn, writes),
        }
    }

    fn committed(&mut self, writes: usize, bulk: bool) {
        self.progress
            .written
            .fetch_add(writes as u64, Ordering::Relaxed);
        if bulk {
            // TRUNCATE also empties the WAL the load filled, so the next payment's commit does
            // not pay for cutting it back.
            if let Err(e) = self
                .conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            {
                tracing::warn!(error = %e, "the checkpoint after a bulk load failed");
            }
        }
    }

    fn between_groups(&mut self) {
        if self.progress.finish.swap(false, Ordering::Relaxed) {
            checkpoint(&self.conn, "writer");
        }
    }
}

/// Copies the WAL into the database file as far as no reader's snapshot prevents it (PASSIVE:
/// never waits). False when it failed (logged; the next round retries).
fn checkpoint(conn: &Connection, who: &str) -> bool {
    match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(error = %e, by = who, "a WAL checkpoint failed; the next round retries");
            false
        }
    }
}

/// Copies the WAL into the database file after [`CHECKPOINT_WRITES`] writes or
/// [`CHECKPOINT_MAX_WAIT`], whichever comes first, until the store closes; then once more,
/// truncating the WAL so that a closed store is one file.
pub(super) fn checkpoint_loop(conn: Connection, stop: mpsc::Receiver<()>, progress: &Progress) {
    let (mut done, mut last) = (0u64, std::time::Instant::now());
    // A message or a hang-up both mean the store is closing.
    while let Err(mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(CHECKPOINT_POLL) {
        // The writer has not yet copied what the last round could not reach. Starting another
        // round now would hold the checkpoint lock when it tries (a PASSIVE checkpoint gives up
        // at once), and on a starved machine the rounds then follow each other so closely that
        // the writer never finishes one and the WAL never starts over.
        if progress.finish.load(Ordering::Relaxed) {
            continue;
        }
        let now = progress.written.load(Ordering::Relaxed);
        let pending = now - done;
        if pending >= CHECKPOINT_WRITES || (pending > 0 && last.elapsed() >= CHECKPOINT_MAX_WAIT) {
            // What this round could not reach (committed meanwhile), the writer copies next.
            if checkpoint(&conn, "checkpointer") {
                progress.finish.store(true, Ordering::Relaxed);
            }
            (done, last) = (now, std::time::Instant::now());
        }
    }
    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
        tracing::warn!(error = %e, "the closing WAL checkpoint failed; the next open replays it");
    }
}

/// The whole group or nothing: `Err` (after rolling back) when any write is refused or the
/// commit fails.
fn run_plain(conn: &mut Connection, writes: &[Write]) -> Result<(), ()> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(|_| ())?;
    for write in writes {
        // Dropping the transaction rolls it back.
        apply_write(&tx, write).map_err(|_| ())?;
    }
    tx.commit().map_err(|_| ())
}

/// Each write in its own savepoint, so that a refused write leaves the others in.
fn run_savepoints(conn: &mut Connection, writes: &[Write]) -> Vec<Result<(), StoreError>> {
    let fail_all = |e: StoreError| -> Vec<Result<(), StoreError>> {
        writes
            .iter()
            .map(|_| {
                Err(StoreError::Backend {
                    context: "commit".into(),
                    message: e.to_string(),
                })
            })
            .collect()
    };
    let mut tx = match conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => return fail_all(backend("beginning a transaction")(e)),
    };
    let mut results = Vec::with_capacity(writes.len());
    for write in writes {
        let r = match tx.savepoint() {
            Ok(sp) => {
                let r = apply_write(&sp, write);
                match r {
                    Ok(()) => sp.commit().map_err(backend("releasing a savepoint")),
                    // Dropping the savepoint rolls it back.
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(backend("opening a savepoint")(e)),
        };
        results.push(r);
    }
    match tx.commit() {
        Ok(()) => results,
        Err(e) => fail_all(backend("committing")(e)),
    }
}
