//! Four-eyes approvals in SQLite: one row per request, the record whole as JSON beside the
//! columns it is looked up by (`crate::store::approval`).

use super::write::{insert_audit, json};
use super::{backend, corrupt};
use crate::store::{Approval, ApprovalState, ApprovalWrite, StoreError};
use rusqlite::{Connection, params};

/// Created if missing, so that an older store needs no migration.
pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS approvals (
    id TEXT PRIMARY KEY,
    payment_id TEXT NOT NULL,
    state TEXT NOT NULL,
    approval_json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS approvals_state ON approvals (state, payment_id);
";

/// Stores a request or its outcome, with its audit event. A request decided already is a
/// conflict: a decision is final.
pub(super) fn write(conn: &Connection, w: &ApprovalWrite) -> Result<(), StoreError> {
    let ApprovalWrite { approval, audit } = w;
    let body = json(approval, "approval")?;
    let n = conn
        .prepare_cached(
            "INSERT INTO approvals (id, payment_id, state, approval_json) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (id) DO UPDATE SET state = excluded.state,
                 approval_json = excluded.approval_json
             WHERE approvals.state = 'pending'",
        )
        .and_then(|mut s| {
            s.execute(params![
                approval.id,
                approval.payment_id,
                approval.state.name(),
                body
            ])
        })
        .map_err(backend("storing an approval"))?;
    if n == 0 {
        return Err(StoreError::Conflict(format!(
            "approval {} was decided already",
            approval.id
        )));
    }
    if let Some(a) = audit {
        insert_audit(conn, a)?;
    }
    Ok(())
}

/// The requests still pending, oldest first.
pub(super) fn pending(conn: &Connection) -> Result<Vec<Approval>, StoreError> {
    let mut s = conn
        .prepare_cached("SELECT id, approval_json FROM approvals WHERE state = ?1 ORDER BY rowid")
        .map_err(backend("reading approvals"))?;
    let rows = s
        .query_map(params![ApprovalState::Pending.name()], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })
        .map_err(backend("reading approvals"))?;
    let mut out = Vec::new();
    for row in rows {
        let (id, body) = row.map_err(backend("reading approvals"))?;
        let a: Approval =
            serde_json::from_str(&body).map_err(|e| corrupt(format!("approval {id}"), e))?;
        out.push(a);
    }
    Ok(out)
}
