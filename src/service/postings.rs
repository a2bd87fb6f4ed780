//! The postings journal through the service: pages of it, and a signal to follow it live.

use super::api::*;
use super::{Posting, PostingFilter, Service};
use tokio::sync::watch;

impl Service {
    /// Postings after sequence `after` that `filter` selects, in sequence order, at most `limit`.
    /// Only committed postings, and never one without every posting before it.
    pub async fn postings(
        &self,
        filter: PostingFilter,
        after: u64,
        limit: u32,
    ) -> Result<Vec<Posting>, ServiceError> {
        Ok(self.store.postings(filter, after, limit).await?)
    }

    /// Changes after every committed write. A follower marks the value seen, reads the journal
    /// after its last sequence, and waits for a change only when that read was empty: a commit
    /// between its read and its wait then wakes it at once, so it never sleeps past a posting.
    pub fn journal_changes(&self) -> watch::Receiver<u64> {
        self.journal.subscribe()
    }
}
