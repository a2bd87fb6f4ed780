//! Held receipts and advices and their links in PostgreSQL (`crate::store::advice`). Mirrors
//! `store::sqlite::advice`, with an identity column `seq` for the order rows were first stored in.

use super::backend;
use super::write::insert_audit;
use crate::store::sqlite::read::from_json;
use crate::store::sqlite::write::json;
use crate::store::{AdviceBook, AdviceWrite, StoreError};
use postgres::{GenericClient, Transaction};

/// Migration 6.
pub(super) const V6: &str = "
CREATE TABLE held_items (
    side TEXT NOT NULL,
    payment_id TEXT NOT NULL,
    seq BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    state TEXT NOT NULL,
    link_id TEXT,
    item_json TEXT NOT NULL,
    PRIMARY KEY (side, payment_id)
);
CREATE INDEX held_items_state ON held_items (state);
CREATE TABLE advice_links (
    id TEXT PRIMARY KEY,
    seq BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    active BOOLEAN NOT NULL,
    link_json TEXT NOT NULL
);
";

/// Stores items and links whole, replacing those with the same keys, and the audit events.
pub(super) fn write(tx: &mut Transaction<'_>, w: &AdviceWrite) -> Result<(), StoreError> {
    let AdviceWrite {
        items,
        links,
        audit,
        expect,
    } = w;
    // Checked inside the writer's transaction, which holds the store's write lock, and with FOR
    // UPDATE: another replica's write to these rows is either committed and read here, or comes
    // after this one and finds what it wrote. A refusal rolls back the write's savepoint whole.
    for e in expect {
        let stored: Option<String> = tx
            .query_opt(
                "SELECT state FROM held_items WHERE side = $1 AND payment_id = $2 FOR UPDATE",
                &[&e.side.name(), &e.payment_id],
            )
            .map_err(backend("checking a held receipt or advice"))?
            .map(|r| r.try_get(0))
            .transpose()
            .map_err(backend("checking a held receipt or advice"))?;
        if !e.admits(stored.as_deref()) {
            return Err(e.refusal(stored.as_deref()));
        }
    }
    for item in items {
        let body = json(item, "held item")?;
        tx.execute(
            "INSERT INTO held_items (side, payment_id, state, link_id, item_json)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (side, payment_id) DO UPDATE SET state = excluded.state,
                 link_id = excluded.link_id, item_json = excluded.item_json",
            &[
                &item.side.name(),
                &item.payment.payment_id,
                &item.state.name(),
                &item.link_id,
                &body,
            ],
        )
        .map_err(backend("storing a held receipt or advice"))?;
    }
    for link in links {
        let body = json(link, "advice link")?;
        tx.execute(
            "INSERT INTO advice_links (id, active, link_json) VALUES ($1, $2, $3)
             ON CONFLICT (id) DO UPDATE SET active = excluded.active,
                 link_json = excluded.link_json",
            &[&link.id, &link.unlinked.is_none(), &body],
        )
        .map_err(backend("storing an advice link"))?;
    }
    for a in audit {
        insert_audit(tx, a)?;
    }
    Ok(())
}

/// Every item and link, in the order first stored.
pub(super) fn book(c: &mut impl GenericClient) -> Result<AdviceBook, StoreError> {
    let w = "reading held receipts and advices";
    let mut book = AdviceBook::default();
    for r in c
        .query(
            "SELECT payment_id, item_json FROM held_items ORDER BY seq",
            &[],
        )
        .map_err(backend(w))?
    {
        let id: String = r.try_get(0).map_err(backend(w))?;
        let body: String = r.try_get(1).map_err(backend(w))?;
        book.items
            .push(from_json(&body, &format!("held item {id}"))?);
    }
    for r in c
        .query("SELECT id, link_json FROM advice_links ORDER BY seq", &[])
        .map_err(backend(w))?
    {
        let id: String = r.try_get(0).map_err(backend(w))?;
        let body: String = r.try_get(1).map_err(backend(w))?;
        book.links
            .push(from_json(&body, &format!("advice link {id}"))?);
    }
    Ok(book)
}
