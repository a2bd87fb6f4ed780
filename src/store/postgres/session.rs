//! Workbench sessions in PostgreSQL (`crate::store::session`): the table every replica reads, so
//! that a sign-in on one is valid on all. Mirrors `store::sqlite::session`.

use super::backend;
use crate::store::sqlite::session::{instant, split_roles};
use crate::store::{SessionRecord, SessionWrite, StoreError};
use postgres::{GenericClient, Transaction};

/// Migration 3.
pub(super) const V3: &str = "
CREATE TABLE sessions (
    id_hash TEXT PRIMARY KEY,
    analyst TEXT NOT NULL,
    roles TEXT NOT NULL,
    authenticated BOOLEAN NOT NULL,
    token_hash TEXT,
    csrf TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    last_seen_ms BIGINT NOT NULL
);
CREATE INDEX sessions_last_seen ON sessions (last_seen_ms);
";

pub(super) fn write(tx: &mut Transaction<'_>, w: &SessionWrite) -> Result<(), StoreError> {
    match w {
        SessionWrite::Start {
            record,
            expired_before,
            keep,
        } => {
            tx.execute(
                "DELETE FROM sessions WHERE last_seen_ms < $1",
                &[&expired_before.timestamp_millis()],
            )
            .map_err(backend("ending expired sessions"))?;
            let SessionRecord {
                id_hash,
                analyst,
                roles,
                authenticated,
                token_hash,
                csrf,
                created_at,
                last_seen,
            } = record;
            tx.execute(
                "INSERT INTO sessions (id_hash, analyst, roles, authenticated, token_hash, csrf,
                 created_ms, last_seen_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (id_hash) DO NOTHING",
                &[
                    id_hash,
                    analyst,
                    &roles.join(","),
                    authenticated,
                    token_hash,
                    csrf,
                    &created_at.timestamp_millis(),
                    &last_seen.timestamp_millis(),
                ],
            )
            .map_err(backend("starting a session"))?;
            tx.execute(
                "DELETE FROM sessions WHERE id_hash NOT IN
                 (SELECT id_hash FROM sessions ORDER BY last_seen_ms DESC LIMIT $1)",
                &[&i64::from(*keep)],
            )
            .map_err(backend("ending the least recently used sessions"))?;
            Ok(())
        }
        SessionWrite::Touch { id_hash, at } => tx
            .execute(
                "UPDATE sessions SET last_seen_ms = GREATEST(last_seen_ms, $2) WHERE id_hash = $1",
                &[id_hash, &at.timestamp_millis()],
            )
            .map(drop)
            .map_err(backend("marking a session used")),
        SessionWrite::End { id_hash } => tx
            .execute("DELETE FROM sessions WHERE id_hash = $1", &[id_hash])
            .map(drop)
            .map_err(backend("ending a session")),
    }
}

pub(super) fn read(
    c: &mut impl GenericClient,
    id_hash: &str,
) -> Result<Option<SessionRecord>, StoreError> {
    let w = "reading a session";
    let Some(r) = c
        .query_opt(
            "SELECT analyst, roles, authenticated, token_hash, csrf, created_ms, last_seen_ms
             FROM sessions WHERE id_hash = $1",
            &[&id_hash],
        )
        .map_err(backend(w))?
    else {
        return Ok(None);
    };
    let roles: String = r.try_get(1).map_err(backend(w))?;
    Ok(Some(SessionRecord {
        id_hash: id_hash.to_string(),
        analyst: r.try_get(0).map_err(backend(w))?,
        roles: split_roles(&roles),
        authenticated: r.try_get(2).map_err(backend(w))?,
        token_hash: r.try_get(3).map_err(backend(w))?,
        csrf: r.try_get(4).map_err(backend(w))?,
        created_at: instant(r.try_get(5).map_err(backend(w))?),
        last_seen: instant(r.try_get(6).map_err(backend(w))?),
    }))
}
