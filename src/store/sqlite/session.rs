//! Workbench sessions in SQLite (`crate::store::session`).

use super::backend;
use crate::store::{SessionRecord, SessionWrite, StoreError};
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

/// Created if missing, so that an older store needs no migration. Instants are milliseconds
/// since the epoch: compared in SQL when expired sessions go.
pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS sessions (
    id_hash TEXT PRIMARY KEY,
    analyst TEXT NOT NULL,
    roles TEXT NOT NULL,
    authenticated INTEGER NOT NULL,
    token_hash TEXT,
    csrf TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    last_seen_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_last_seen ON sessions (last_seen_ms);
";

pub(super) fn write(conn: &Connection, w: &SessionWrite) -> Result<(), StoreError> {
    match w {
        SessionWrite::Start {
            record,
            expired_before,
            keep,
        } => {
            conn.prepare_cached("DELETE FROM sessions WHERE last_seen_ms < ?1")
                .and_then(|mut s| s.execute(params![expired_before.timestamp_millis()]))
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
            conn.prepare_cached(
                "INSERT INTO sessions (id_hash, analyst, roles, authenticated, token_hash, csrf,
                 created_ms, last_seen_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (id_hash) DO NOTHING",
            )
            .and_then(|mut s| {
                s.execute(params![
                    id_hash,
                    analyst,
                    roles.join(","),
                    authenticated,
                    token_hash,
                    csrf,
                    created_at.timestamp_millis(),
                    last_seen.timestamp_millis()
                ])
            })
            .map_err(backend("starting a session"))?;
            conn.prepare_cached(
                "DELETE FROM sessions WHERE id_hash NOT IN
                 (SELECT id_hash FROM sessions ORDER BY last_seen_ms DESC LIMIT ?1)",
            )
            .and_then(|mut s| s.execute(params![keep]))
            .map_err(backend("ending the least recently used sessions"))?;
            Ok(())
        }
        SessionWrite::Touch { id_hash, at } => conn
            .prepare_cached(
                "UPDATE sessions SET last_seen_ms = MAX(last_seen_ms, ?2) WHERE id_hash = ?1",
            )
            .and_then(|mut s| s.execute(params![id_hash, at.timestamp_millis()]))
            .map(drop)
            .map_err(backend("marking a session used")),
        SessionWrite::End { id_hash } => conn
            .prepare_cached("DELETE FROM sessions WHERE id_hash = ?1")
            .and_then(|mut s| s.execute(params![id_hash]))
            .map(drop)
            .map_err(backend("ending a session")),
    }
}

pub(super) fn read(conn: &Connection, id_hash: &str) -> Result<Option<SessionRecord>, StoreError> {
    conn.prepare_cached(
        "SELECT analyst, roles, authenticated, token_hash, csrf, created_ms, last_seen_ms
         FROM sessions WHERE id_hash = ?1",
    )
    .and_then(|mut s| {
        s.query_row(params![id_hash], |r| {
            Ok(SessionRecord {
                id_hash: id_hash.to_string(),
                analyst: r.get(0)?,
                roles: split_roles(&r.get::<_, String>(1)?),
                authenticated: r.get(2)?,
                token_hash: r.get(3)?,
                csrf: r.get(4)?,
                created_at: instant(r.get(5)?),
                last_seen: instant(r.get(6)?),
            })
        })
        .optional()
    })
    .map_err(backend("reading a session"))
}

/// The roles column, as [`write`] joined it.
pub(in crate::store) fn split_roles(text: &str) -> Vec<String> {
    text.split(',')
        .filter(|r| !r.is_empty())
        .map(str::to_string)
        .collect()
}

/// An instant stored as milliseconds; one out of range reads as the epoch (an expired session).
pub(in crate::store) fn instant(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}
