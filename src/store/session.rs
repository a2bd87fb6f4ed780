//! Workbench sessions as stored: one row per signed-in analyst, in the store every replica
//! shares, so that a sign-in on one replica is valid on the others and survives a restart.
//!
//! The row is keyed by the SHA-256 of the session id, never the id itself: whoever can read the
//! database cannot take over a session. The service (`crate::service::sessions`) decides when a
//! session has been idle too long; the store only keeps the rows.

use chrono::{DateTime, Utc};

/// A session as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRecord {
    /// The SHA-256 of the session id, 64 hex digits.
    pub id_hash: String,
    /// The analyst's name, recorded with what they do.
    pub analyst: String,
    /// The roles, by their config names (`analyst`, `admin`).
    pub roles: Vec<String>,
    /// False when the service ran without authentication at sign-in.
    pub authenticated: bool,
    /// The SHA-256 of the token signed in with, if any: the session lasts only while the config
    /// still has it.
    pub token_hash: Option<String>,
    /// The CSRF token of the session's forms.
    pub csrf: String,
    pub created_at: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
}

/// A change to the sessions.
#[derive(Clone, Debug)]
pub enum SessionWrite {
    /// A new session. Sessions idle since before `expired_before` go in the same transaction, and
    /// the least recently used beyond `keep` (a bound on what sign-ins can make the store hold).
    Start {
        record: SessionRecord,
        expired_before: DateTime<Utc>,
        keep: u32,
    },
    /// The session was used at `at` (written only now and then, not on every page).
    Touch { id_hash: String, at: DateTime<Utc> },
    /// Signed out, or expired.
    End { id_hash: String },
}
