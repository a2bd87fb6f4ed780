//! The audit chain of a PostgreSQL store, read by `cashmatch audit verify --store URL` and
//! `audit export --store URL`: the walk, the checks and the export file are the SQLite store's
//! (`store::sqlite::audit`), over one read-only `REPEATABLE READ` transaction, so that the chain
//! is seen as of one instant beside running replicas.
//!
//! One difference: event ids are the head's plus one, taken under the write lock, and no
//! sequence remembers the ids handed out, so events deleted from the *end* of the trail leave
//! no gap to see. `audit verify --expect ID:HASH`, with a head kept outside the database, is what
//! catches that (docs/operations.md).

use super::{StoreUrl, backend, connect};
use crate::store::StoreError;
use crate::store::sqlite::audit::{
    ChainReport, ChainSource, ChainedEvent, Item, Witness, export_with, walk_source,
};
use postgres::{GenericClient, IsolationLevel, Transaction};
use std::path::Path;

/// The anchor the first event follows: read by the writer for the first event and by `verify`.
pub(super) fn anchor(c: &mut impl GenericClient) -> Result<String, StoreError> {
    let w = "reading the audit chain's anchor";
    c.query_opt("SELECT value FROM settings WHERE key = 'audit_anchor'", &[])
        .map_err(backend(w))?
        .ok_or_else(|| {
            super::corrupt(
                "the audit chain",
                "the store has no anchor (settings.audit_anchor)",
            )
        })?
        .try_get(0)
        .map_err(backend(w))
}

struct PgChain<'a, 'b>(&'a mut Transaction<'b>);

impl ChainSource for PgChain<'_, '_> {
    fn anchor(&mut self) -> Result<String, StoreError> {
        anchor(self.0)
    }

    fn events(&mut self, after: i64, limit: i64) -> Result<Vec<ChainedEvent>, StoreError> {
        let w = "reading the audit chain";
        self.0
            .query(
                "SELECT id, at, actor, action, subject, before_json, after_json, prev_hash, hash
                 FROM audit_events WHERE id > $1 ORDER BY id LIMIT $2",
                &[&after, &limit],
            )
            .map_err(backend(w))?
            .iter()
            .map(|r| {
                Ok(ChainedEvent {
                    id: r.try_get(0).map_err(backend(w))?,
                    at: r.try_get(1).map_err(backend(w))?,
                    actor: r.try_get(2).map_err(backend(w))?,
                    action: r.try_get(3).map_err(backend(w))?,
                    subject: r.try_get(4).map_err(backend(w))?,
                    before_json: r.try_get(5).map_err(backend(w))?,
                    after_json: r.try_get(6).map_err(backend(w))?,
                    prev_hash: r.try_get(7).map_err(backend(w))?,
                    hash: r.try_get(8).map_err(backend(w))?,
                })
            })
            .collect()
    }

    fn issued(&mut self) -> Result<Option<i64>, StoreError> {
        Ok(None)
    }
}

/// Runs `f` over the chain of the database at `url`, on a thread of its own: the `postgres`
/// client drives a runtime of its own, which cannot start inside the CLI's.
fn with_chain<T: Send + 'static>(
    url: &StoreUrl,
    f: impl FnOnce(&mut dyn ChainSource) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    let url = url.as_str().to_string();
    std::thread::spawn(move || {
        let mut conn = connect(&url)?;
        let mut tx = conn
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .map_err(backend("reading the audit chain"))?;
        f(&mut PgChain(&mut tx))
    })
    .join()
    .unwrap_or_else(|p| std::panic::resume_unwind(p))
}

/// `cashmatch audit verify --store URL`.
pub fn verify(url: &StoreUrl, expect: Option<&Witness>) -> Result<ChainReport, StoreError> {
    let expect = expect.cloned();
    with_chain(url, move |src| {
        walk_source(src, expect.as_ref(), |_: Item<'_>| Ok(()))
    })
}

/// `cashmatch audit export --store URL --out FILE`: the file [`crate::store::sqlite::audit::export`]
/// writes, from this store.
pub fn export(url: &StoreUrl, out: &Path) -> Result<ChainReport, StoreError> {
    let out = out.to_path_buf();
    with_chain(url, move |src| {
        export_with(&out, |visit| walk_source(src, None, visit))
    })
}
