//! Held receipts and advices and their links in SQLite (`crate::store::advice`): one row per
//! item and per link, the record whole as JSON beside the columns it is looked up by.

use super::write::{insert_audit, json};
use super::{backend, corrupt};
use crate::store::{AdviceBook, AdviceLink, AdviceWrite, HeldItem, StoreError};
use rusqlite::{Connection, OptionalExtension, params};

/// Migration 6.
pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS held_items (
    side TEXT NOT NULL,
    payment_id TEXT NOT NULL,
    state TEXT NOT NULL,
    link_id TEXT,
    item_json TEXT NOT NULL,
    PRIMARY KEY (side, payment_id)
);
CREATE INDEX IF NOT EXISTS held_items_state ON held_items (state);
CREATE TABLE IF NOT EXISTS advice_links (
    id TEXT PRIMARY KEY,
    active INTEGER NOT NULL,
    link_json TEXT NOT NULL
);
";

/// Stores items and links whole, replacing those with the same keys, and the audit events.
pub(super) fn write(conn: &Connection, w: &AdviceWrite) -> Result<(), StoreError> {
    let AdviceWrite {
        items,
        links,
        audit,
        expect,
    } = w;
    // The writer is the only one on the file and runs this in its transaction: what it reads is
    // what the write replaces.
    for e in expect {
        let stored: Option<String> = conn
            .prepare_cached("SELECT state FROM held_items WHERE side = ?1 AND payment_id = ?2")
            .and_then(|mut s| {
                s.query_row(params![e.side.name(), e.payment_id], |r| r.get(0))
                    .optional()
            })
            .map_err(backend("checking a held receipt or advice"))?;
        if !e.admits(stored.as_deref()) {
            return Err(e.refusal(stored.as_deref()));
        }
    }
    for item in items {
        let body = json(item, "held item")?;
        conn.prepare_cached(
            "INSERT INTO held_items (side, payment_id, state, link_id, item_json)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (side, payment_id) DO UPDATE SET state = excluded.state,
                 link_id = excluded.link_id, item_json = excluded.item_json",
        )
        .and_then(|mut s| {
            s.execute(params![
                item.side.name(),
                item.payment.payment_id,
                item.state.name(),
                item.link_id,
                body
            ])
        })
        .map_err(backend("storing a held receipt or advice"))?;
    }
    for link in links {
        let body = json(link, "advice link")?;
        conn.prepare_cached(
            "INSERT INTO advice_links (id, active, link_json) VALUES (?1, ?2, ?3)
             ON CONFLICT (id) DO UPDATE SET active = excluded.active,
                 link_json = excluded.link_json",
        )
        .and_then(|mut s| s.execute(params![link.id, link.unlinked.is_none(), body]))
        .map_err(backend("storing an advice link"))?;
    }
    for a in audit {
        insert_audit(conn, a)?;
    }
    Ok(())
}

/// Every item and link, in the order first stored.
pub(super) fn book(conn: &Connection) -> Result<AdviceBook, StoreError> {
    let w = "reading held receipts and advices";
    let mut s = conn
        .prepare_cached("SELECT payment_id, item_json FROM held_items ORDER BY rowid")
        .map_err(backend(w))?;
    let rows = s
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .map_err(backend(w))?;
    let mut items = Vec::new();
    for row in rows {
        let (id, body) = row.map_err(backend(w))?;
        let item: HeldItem =
            serde_json::from_str(&body).map_err(|e| corrupt(format!("held item {id}"), e))?;
        items.push(item);
    }
    let mut s = conn
        .prepare_cached("SELECT id, link_json FROM advice_links ORDER BY rowid")
        .map_err(backend(w))?;
    let rows = s
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .map_err(backend(w))?;
    let mut links = Vec::new();
    for row in rows {
        let (id, body) = row.map_err(backend(w))?;
        let link: AdviceLink =
            serde_json::from_str(&body).map_err(|e| corrupt(format!("advice link {id}"), e))?;
        links.push(link);
    }
    Ok(AdviceBook { items, links })
}
