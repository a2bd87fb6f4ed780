//! The tables and indexes of the SQLite store, created if missing when a store is opened, and
//! the migrations that bring an older store up to date (`PRAGMA user_version` counts those
//! applied). Money is decimal text (exact) beside an integer key in minor units where SQL must
//! order or compare amounts.

use super::audit::AUDIT_CHAIN_VERSION;
use super::{backend, corrupt};
use crate::store::StoreError;
use rusqlite::{Connection, params};
use rust_decimal::Decimal;
use std::collections::HashMap;

/// The schema version this build writes: the number of migrations in [`migrate`].
pub(super) const VERSION: i64 = 8;

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS customers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    parent_id TEXT,
    bank_accounts TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS invoices (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    number TEXT NOT NULL,
    po_number TEXT,
    invoice_date TEXT NOT NULL,
    due_date TEXT NOT NULL,
    currency TEXT NOT NULL,
    amount TEXT NOT NULL,
    open_amount TEXT NOT NULL,
    terms TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS decisions (
    payment_id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    customer_id TEXT,
    amount TEXT NOT NULL,
    currency TEXT NOT NULL,
    model_version TEXT NOT NULL,
    decided_at TEXT NOT NULL,
    payment_json TEXT NOT NULL,
    decision_json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS applications (
    id INTEGER PRIMARY KEY,
    payment_id TEXT NOT NULL,
    invoice_id TEXT NOT NULL,
    amount TEXT NOT NULL,
    discount TEXT NOT NULL,
    deduction TEXT NOT NULL,
    reason_code TEXT,
    -- auto, review, or reversed (a return or an unapply undid it; the journal says when).
    source TEXT NOT NULL,
    applied_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS applications_payment ON applications (payment_id);
CREATE INDEX IF NOT EXISTS applications_invoice ON applications (invoice_id);
CREATE TABLE IF NOT EXISTS review_items (
    payment_id TEXT PRIMARY KEY,
    customer_id TEXT,
    amount TEXT NOT NULL,
    -- Ten-thousandths of the amount, to filter and order by; the amount itself is the text.
    amount_key INTEGER NOT NULL,
    currency TEXT NOT NULL,
    reason TEXT,
    confidence REAL NOT NULL,
    created_at TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    state TEXT NOT NULL,
    resolution_json TEXT,
    resolved_at TEXT
);
CREATE INDEX IF NOT EXISTS review_items_state ON review_items (state, customer_id);
-- The dashboard's per-day figures.
CREATE INDEX IF NOT EXISTS decisions_decided_at ON decisions (decided_at);
CREATE INDEX IF NOT EXISTS review_items_created_at ON review_items (created_at);
CREATE INDEX IF NOT EXISTS review_items_resolved_at ON review_items (resolved_at);
CREATE TABLE IF NOT EXISTS audit_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    before_json TEXT NOT NULL,
    after_json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_events_subject ON audit_events (subject, id);
CREATE TABLE IF NOT EXISTS settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
-- The original of a returned item is looked for by currency and amount (created if missing,
-- so that an older store needs no migration).
CREATE INDEX IF NOT EXISTS decisions_amount ON decisions (currency, amount);
-- Payments the bank returned: one row each, written with the reversal of their postings. (A
-- table of its own, created if missing, so that an older store needs no migration.)
CREATE TABLE IF NOT EXISTS payment_returns (
    payment_id TEXT PRIMARY KEY,
    return_code TEXT NOT NULL,
    reason TEXT NOT NULL,
    actor_kind TEXT NOT NULL,
    actor TEXT NOT NULL,
    at TEXT NOT NULL
);
";

/// Version 1: the postings journal. The sequence is the rowid: SQLite gives a new row the
/// largest rowid plus one, rows are never deleted, and a rolled-back insert leaves no trace, so
/// the sequence has no gaps and grows in commit order.
const POSTINGS: &str = "
CREATE TABLE IF NOT EXISTS postings (
    sequence INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    payment_id TEXT NOT NULL,
    invoice_id TEXT,
    customer_id TEXT,
    currency TEXT NOT NULL,
    amount TEXT NOT NULL,
    reason_code TEXT,
    actor_kind TEXT NOT NULL,
    actor TEXT NOT NULL,
    model_version TEXT,
    rules_version TEXT,
    reverses INTEGER,
    at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS postings_payment ON postings (payment_id, sequence);
CREATE INDEX IF NOT EXISTS postings_invoice ON postings (invoice_id, sequence)
    WHERE invoice_id IS NOT NULL;
";

/// Version 3: review items have an owner (claimed by or assigned to an analyst). The column is
/// added only where missing: SQLite has no `ADD COLUMN IF NOT EXISTS`.
const OWNERS: &str = "ALTER TABLE review_items ADD COLUMN owner TEXT;";
const OWNERS_INDEX: &str =
    "CREATE INDEX IF NOT EXISTS review_items_owner ON review_items (state, owner);";

/// Version 4: the event bus's outbox (`store::outbox`). The decision outbox's sequence is the
/// rowid, gap-free in commit order as the journal's is; the decisions stored before it are
/// numbered in the order they were stored, so that a bus started on an older store publishes
/// them too. (Those already queued are left out by a look-up, not by a unique index: version 8
/// drops it.)
const OUTBOX: &str = "
CREATE TABLE IF NOT EXISTS decision_outbox (
    sequence INTEGER PRIMARY KEY,
    payment_id TEXT NOT NULL UNIQUE
);
INSERT INTO decision_outbox (payment_id)
    SELECT payment_id FROM decisions
    WHERE payment_id NOT IN (SELECT payment_id FROM decision_outbox) ORDER BY rowid;
CREATE TABLE IF NOT EXISTS bus_cursors (
    name TEXT PRIMARY KEY,
    position INTEGER NOT NULL
);
";

/// Version 5: a customer's postings by index. Waiting cash (`service::balances`), the workbench's
/// cash page and the re-match after an upsert read them by customer; without it each read scans
/// the whole journal.
const POSTINGS_CUSTOMER: &str = "
CREATE INDEX IF NOT EXISTS postings_customer ON postings (customer_id, sequence)
    WHERE customer_id IS NOT NULL;
";

/// Version 7: the cash an auto decision left unapplied (overpayments, which are few) in a column
/// of its own, written by the writer, and indexed where it is set. The dashboard reads only those
/// decisions. The index it replaces selected them with `json_extract` over the decision's JSON,
/// which SQLite parsed for every auto decision inserted to find out.
const REMAINDER: &str = "
UPDATE decisions SET remainder = json_extract(decision_json, '$.unapplied')
    WHERE status = 'auto' AND json_extract(decision_json, '$.unapplied') GLOB '*[1-9]*';
DROP INDEX IF EXISTS decisions_auto_remainder;
CREATE INDEX IF NOT EXISTS decisions_remainder ON decisions (decided_at)
    WHERE status = 'auto' AND remainder IS NOT NULL;
";

/// Version 8: the decision outbox without a unique index on the payment id. A decision's row is
/// written only beside the decision it queues, whose primary key already refuses a payment
/// decided twice, so the index only cost every decision one more B-tree insert (a page of WAL
/// where payment ids do not come in order). SQLite cannot drop a column's UNIQUE, so the table
/// is copied, sequences kept.
const OUTBOX_UNINDEXED: &str = "
CREATE TABLE decision_outbox_v8 (
    sequence INTEGER PRIMARY KEY,
    payment_id TEXT NOT NULL
);
INSERT INTO decision_outbox_v8 (sequence, payment_id)
    SELECT sequence, payment_id FROM decision_outbox ORDER BY sequence;
DROP TABLE decision_outbox;
ALTER TABLE decision_outbox_v8 RENAME TO decision_outbox;
";

/// Brings the store to [`VERSION`], each step in one transaction with its version bump. A store
/// newer than this build is refused rather than written with an older idea of the schema.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(backend("reading the schema version"))?;
    if version > VERSION {
        return Err(StoreError::Backend {
            context: "opening the store".into(),
            message: format!(
                "its schema is version {version}, newer than this build's {VERSION}: upgrade cashmatch"
            ),
        });
    }
    if version < 1 {
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(backend("beginning a migration"))?;
        tx.execute_batch(POSTINGS)
            .map_err(backend("creating the postings journal"))?;
        backfill_postings(&tx)?;
        tx.execute_batch("PRAGMA user_version = 1")
            .map_err(backend("setting the schema version"))?;
        tx.commit().map_err(backend("committing a migration"))?;
    }
    if version < AUDIT_CHAIN_VERSION {
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(backend("beginning a migration"))?;
        super::audit::add_chain(&tx)?;
        tx.execute_batch(&format!("PRAGMA user_version = {AUDIT_CHAIN_VERSION}"))
            .map_err(backend("setting the schema version"))?;
        tx.commit().map_err(backend("committing a migration"))?;
    }
    if version < 3 {
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(backend("beginning a migration"))?;
        let has_owner: i64 = tx
            .query_row(
                "SELECT COUNT(*) FROM pragma_table_info('review_items') WHERE name = 'owner'",
                [],
                |r| r.get(0),
            )
            .map_err(backend("reading the review items' columns"))?;
        if has_owner == 0 {
            tx.execute_batch(OWNERS)
                .map_err(backend("adding review item owners"))?;
        }
        tx.execute_batch(OWNERS_INDEX)
            .map_err(backend("indexing review item owners"))?;
        tx.execute_batch("PRAGMA user_version = 3")
            .map_err(backend("setting the schema version"))?;
        tx.commit().map_err(backend("committing a migration"))?;
    }
    if version < 4 {
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(backend("beginning a migration"))?;
        tx.execute_batch(OUTBOX)
            .map_err(backend("creating the bus outbox"))?;
        tx.execute_batch("PRAGMA user_version = 4")
            .map_err(backend("setting the schema version"))?;
        tx.commit().map_err(backend("committing a migration"))?;
    }
    if version < 5 {
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(backend("beginning a migration"))?;
        tx.execute_batch(POSTINGS_CUSTOMER)
            .map_err(backend("indexing the postings by customer"))?;
        tx.execute_batch("PRAGMA user_version = 5")
            .map_err(backend("setting the schema version"))?;
        tx.commit().map_err(backend("committing a migration"))?;
    }
    if version < 6 {
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(backend("beginning a migration"))?;
        tx.execute_batch(super::advice::SCHEMA)
            .map_err(backend("creating the held receipts and advices"))?;
        tx.execute_batch("PRAGMA user_version = 6")
            .map_err(backend("setting the schema version"))?;
        tx.commit().map_err(backend("committing a migration"))?;
    }
    if version < 7 {
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(backend("beginning a migration"))?;
        let has_remainder: i64 = tx
            .query_row(
                "SELECT COUNT(*) FROM pragma_table_info('decisions') WHERE name = 'remainder'",
                [],
                |r| r.get(0),
            )
            .map_err(backend("reading the decisions' columns"))?;
        if has_remainder == 0 {
            tx.execute_batch("ALTER TABLE decisions ADD COLUMN remainder TEXT;")
                .map_err(backend("adding the decisions' remainders"))?;
        }
        tx.execute_batch(REMAINDER)
            .map_err(backend("indexing the decisions' remainders"))?;
        tx.execute_batch("PRAGMA user_version = 7")
            .map_err(backend("setting the schema version"))?;
        tx.commit().map_err(backend("committing a migration"))?;
    }
    if version < 8 {
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(backend("beginning a migration"))?;
        tx.execute_batch(OUTBOX_UNINDEXED)
            .map_err(backend("copying the decision outbox"))?;
        tx.execute_batch("PRAGMA user_version = 8")
            .map_err(backend("setting the schema version"))?;
        tx.commit().map_err(backend("committing a migration"))?;
    }
    Ok(())
}

/// A store written before the journal: its applications become postings (dated as applied), and
/// whatever else moved an invoice's open amount (the AR system's opening balances and closures)
/// one `ar_adjustment` per invoice, so that replaying the journal gives today's open amounts.
/// Cash left unapplied by earlier decisions is not journalled (it moved no open amount).
fn backfill_postings(conn: &Connection) -> Result<(), StoreError> {
    let migrated_at = crate::store::now().to_rfc3339();
    let mut relieved: HashMap<String, Decimal> = HashMap::new();
    {
        let mut s = conn
            .prepare(
                "SELECT a.payment_id, a.invoice_id, a.amount, a.discount, a.deduction,
                 a.reason_code, a.source, a.applied_at, i.currency, i.customer_id, d.model_version,
                 json_extract(d.decision_json, '$.rules_version')
                 FROM applications a JOIN invoices i ON i.id = a.invoice_id
                 LEFT JOIN decisions d ON d.payment_id = a.payment_id ORDER BY a.id",
            )
            .map_err(backend("reading applications to journal"))?;
        let rows = s
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    [
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                    ],
                    r.get::<_, Option<String>>(5)?,
                    r.get::<_, String>(6)?,
                    r.get::<_, String>(7)?,
                    r.get::<_, String>(8)?,
                    r.get::<_, String>(9)?,
                    r.get::<_, Option<String>>(10)?,
                    r.get::<_, Option<String>>(11)?,
                ))
            })
            .map_err(backend("reading applications to journal"))?;
        for row in rows {
            let (payment, invoice, amounts, code, source, at, currency, customer, model, rules) =
                row.map_err(backend("reading applications to journal"))?;
            let (actor_kind, actor, model, rules) = if source == "auto" {
                ("engine", "engine", model, rules)
            } else {
                ("analyst", "analyst", None, None)
            };
            for (kind, text) in ["applied", "discount", "deduction"]
                .into_iter()
                .zip(amounts)
            {
                let amount: Decimal = text
                    .parse()
                    .map_err(|e| corrupt(format!("application of {payment}"), e))?;
                if amount.is_zero() {
                    continue;
                }
                *relieved.entry(invoice.clone()).or_default() += amount;
                conn.execute(
                    "INSERT INTO postings (kind, payment_id, invoice_id, customer_id, currency,
                     amount, reason_code, actor_kind, actor, model_version, rules_version, at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                    params![
                        kind,
                        payment,
                        invoice,
                        customer,
                        currency,
                        amount.to_string(),
                        if kind == "deduction" {
                            code.clone()
                        } else {
                            None
                        },
                        actor_kind,
                        actor,
                        model,
                        rules,
                        at
                    ],
                )
                .map_err(backend("journalling an application"))?;
            }
        }
    }
    let mut s = conn
        .prepare(
            "SELECT id, customer_id, currency, amount, open_amount FROM invoices ORDER BY rowid",
        )
        .map_err(backend("reading invoices to journal"))?;
    let rows = s
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
            ))
        })
        .map_err(backend("reading invoices to journal"))?;
    for row in rows {
        let (id, customer, currency, amount, open) =
            row.map_err(backend("reading invoices to journal"))?;
        let parse = |t: &str| -> Result<Decimal, StoreError> {
            t.parse().map_err(|e| corrupt(format!("invoice {id}"), e))
        };
        let rest = parse(&amount)? - parse(&open)? - relieved.get(&id).copied().unwrap_or_default();
        if rest.is_zero() {
            continue;
        }
        conn.execute(
            "INSERT INTO postings (kind, payment_id, invoice_id, customer_id, currency, amount,
             actor_kind, actor, at) VALUES ('ar_adjustment', '', ?1, ?2, ?3, ?4, 'ar_system',
             'migration', ?5)",
            params![id, customer, currency, rest.to_string(), migrated_at],
        )
        .map_err(backend("journalling an invoice's balance"))?;
    }
    Ok(())
}
