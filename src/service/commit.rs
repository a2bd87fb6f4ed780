//! Commits: a store write queued under the write lock is awaited on a task of its own, so that
//! the bookkeeping after it happens even if the request that caused it is cancelled, and a failed
//! write stops the service (memory is then ahead of the disk).

use super::Service;
use super::api::*;
use crate::store::StoreFuture;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// A queued store write being awaited by a task of its own, so that the bookkeeping after the
/// commit happens even when the request that caused it is cancelled.
pub(super) type Commit = tokio::task::JoinHandle<Result<(), ServiceError>>;

impl Service {
    /// Watches a queued store write on a task of its own, then runs `then` (with whether it
    /// committed). A failure stops the service: memory is ahead of the disk. Must be called
    /// within the tokio runtime (the blocking pool is).
    pub(super) fn spawn_commit(
        self: &Arc<Self>,
        write: StoreFuture<()>,
        then: impl FnOnce(&Self, bool) + Send + 'static,
    ) -> Commit {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let r = write.await;
            if let Err(e @ crate::store::StoreError::Conflict(_)) = &r {
                // Nothing was written: another writer changed the rows first. The caller
                // reloads them (`service/conflict.rs`); memory and store still agree elsewhere.
                tracing::debug!(error = %e, "a store write was refused");
            } else if let Err(e) = &r {
                this.stopped.store(true, Ordering::SeqCst);
                tracing::error!(error = %e, "a store write failed: no more changes until a restart");
            }
            then(&this, r.is_ok());
            if r.is_ok() {
                // Watchers re-read the journal from their last sequence: a bump with nothing new
                // for them costs one empty read, a missed bump would cost a stalled stream.
                this.journal.send_modify(|n| *n = n.wrapping_add(1));
            }
            r.map_err(ServiceError::Store)
        })
    }

    /// Awaits a watched write.
    pub(super) async fn commit(commit: Commit) -> Result<(), ServiceError> {
        commit
            .await
            .map_err(|e| ServiceError::Internal(e.to_string()))?
    }
}
