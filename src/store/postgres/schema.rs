//! The PostgreSQL schema as embedded, numbered migrations. `schema_version` holds one row per
//! migration applied; the binary applies the missing ones in order, each in one transaction with
//! its row, under an advisory lock so that replicas started together migrate once. A database
//! migrated by a newer build is refused rather than written with an older idea of the schema.
//!
//! The tables mirror the SQLite store's (`store::sqlite::schema`), with money as `NUMERIC` and an
//! identity column `seq` where SQLite orders by rowid: the order rows were first stored in.

use super::{MIGRATE_LOCK, backend};
use crate::store::StoreError;
use postgres::Client;

/// The migrations, in order; the version of each is its position plus one.
const MIGRATIONS: &[&str] = &[
    V1,
    V2,
    super::session::V3,
    V4,
    V5,
    super::advice::V6,
    V7,
    V8,
];

/// The version this build writes.
pub(super) const VERSION: i64 = MIGRATIONS.len() as i64;

const V1: &str = "
CREATE TABLE customers (
    id TEXT PRIMARY KEY,
    seq BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    name TEXT NOT NULL,
    parent_id TEXT,
    bank_accounts TEXT NOT NULL
);
CREATE TABLE invoices (
    id TEXT PRIMARY KEY,
    seq BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    customer_id TEXT NOT NULL,
    number TEXT NOT NULL,
    po_number TEXT,
    invoice_date TEXT NOT NULL,
    due_date TEXT NOT NULL,
    currency TEXT NOT NULL,
    amount NUMERIC NOT NULL,
    open_amount NUMERIC NOT NULL,
    terms TEXT NOT NULL
);
CREATE TABLE decisions (
    payment_id TEXT PRIMARY KEY,
    seq BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    status TEXT NOT NULL,
    customer_id TEXT,
    amount NUMERIC NOT NULL,
    currency TEXT NOT NULL,
    model_version TEXT NOT NULL,
    decided_at TEXT NOT NULL,
    payment_json TEXT NOT NULL,
    decision_json TEXT NOT NULL
);
CREATE INDEX decisions_decided_at ON decisions (decided_at);
CREATE INDEX decisions_amount ON decisions (currency, amount);
CREATE TABLE applications (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    payment_id TEXT NOT NULL,
    invoice_id TEXT NOT NULL,
    amount NUMERIC NOT NULL,
    discount NUMERIC NOT NULL,
    deduction NUMERIC NOT NULL,
    reason_code TEXT,
    -- auto, review, or reversed (a return or an unapply undid it; the journal says when).
    source TEXT NOT NULL,
    applied_at TEXT NOT NULL
);
CREATE INDEX applications_payment ON applications (payment_id);
CREATE INDEX applications_invoice ON applications (invoice_id);
CREATE TABLE review_items (
    payment_id TEXT PRIMARY KEY,
    seq BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    customer_id TEXT,
    amount NUMERIC NOT NULL,
    -- Ten-thousandths of the amount, to order by (as in SQLite); the amount itself is exact.
    amount_key BIGINT NOT NULL,
    currency TEXT NOT NULL,
    reason TEXT,
    confidence DOUBLE PRECISION NOT NULL,
    created_at TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    state TEXT NOT NULL,
    resolution_json TEXT,
    resolved_at TEXT
);
CREATE INDEX review_items_state ON review_items (state, customer_id);
CREATE INDEX review_items_created_at ON review_items (created_at);
CREATE INDEX review_items_resolved_at ON review_items (resolved_at);
-- Ids are the largest plus one, taken under the write lock: gap-free, in commit order.
CREATE TABLE audit_events (
    id BIGINT PRIMARY KEY,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    before_json TEXT NOT NULL,
    after_json TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_events_subject ON audit_events (subject, id);
CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE payment_returns (
    payment_id TEXT PRIMARY KEY,
    return_code TEXT NOT NULL,
    reason TEXT NOT NULL,
    actor_kind TEXT NOT NULL,
    actor TEXT NOT NULL,
    at TEXT NOT NULL
);
-- The sequence is the largest plus one, taken under the write lock: gap-free, in commit order
-- (a sequence object would leave gaps on rollback and hand out numbers out of commit order).
CREATE TABLE postings (
    sequence BIGINT PRIMARY KEY,
    kind TEXT NOT NULL,
    payment_id TEXT NOT NULL,
    invoice_id TEXT,
    customer_id TEXT,
    currency TEXT NOT NULL,
    amount NUMERIC NOT NULL,
    reason_code TEXT,
    actor_kind TEXT NOT NULL,
    actor TEXT NOT NULL,
    model_version TEXT,
    rules_version TEXT,
    reverses BIGINT,
    at TEXT NOT NULL
);
CREATE INDEX postings_payment ON postings (payment_id, sequence);
CREATE INDEX postings_invoice ON postings (invoice_id, sequence) WHERE invoice_id IS NOT NULL;
CREATE TABLE approvals (
    id TEXT PRIMARY KEY,
    seq BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    payment_id TEXT NOT NULL,
    state TEXT NOT NULL,
    approval_json TEXT NOT NULL
);
CREATE INDEX approvals_state ON approvals (state, payment_id);
";

/// The change feed between replicas (`store::postgres::feed`): one row per committed write
/// group, naming the rows it changed. The sequence is the largest plus one, taken under the
/// write lock, so a replica reading `seq > last` never skips a row that commits later with a
/// smaller one. `replica` and `grp` name the group, so that a writer whose connection died during
/// a commit can tell whether the commit happened.
const V2: &str = "
CREATE TABLE changes (
    seq BIGINT PRIMARY KEY,
    replica TEXT NOT NULL,
    grp BIGINT NOT NULL,
    committed_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    customers TEXT[] NOT NULL,
    invoices TEXT[] NOT NULL,
    -- Decisions, review items and four-eyes requests, by payment id.
    payments TEXT[] NOT NULL,
    approvals BOOLEAN NOT NULL,
    model BOOLEAN NOT NULL
);
";

/// Review items have an owner (claimed by or assigned to an analyst).
const V4: &str = "
ALTER TABLE review_items ADD COLUMN owner TEXT;
CREATE INDEX review_items_owner ON review_items (state, owner);
";

/// The event bus's outbox (`store::outbox`): the decision outbox numbered like the journal (the
/// largest plus one under the write lock), the decisions stored before it numbered in the order
/// they were stored; and the publishers' cursors, which every replica moves forward only.
const V5: &str = "
CREATE TABLE decision_outbox (
    sequence BIGINT PRIMARY KEY,
    payment_id TEXT NOT NULL UNIQUE
);
INSERT INTO decision_outbox (sequence, payment_id)
    SELECT row_number() OVER (ORDER BY seq), payment_id FROM decisions;
CREATE TABLE bus_cursors (
    name TEXT PRIMARY KEY,
    position BIGINT NOT NULL
);
";

/// The cash an auto decision left unapplied (overpayments, which are few) in a column of its
/// own, set by the writer and indexed where set, as in the SQLite store's version 7: the
/// dashboard reads those decisions without parsing every decision's JSON.
const V7: &str = "
ALTER TABLE decisions ADD COLUMN remainder NUMERIC;
UPDATE decisions SET remainder = (decision_json::jsonb ->> 'unapplied')::numeric
    WHERE status = 'auto' AND decision_json::jsonb ->> 'unapplied' ~ '[1-9]';
CREATE INDEX decisions_remainder ON decisions (decided_at)
    WHERE status = 'auto' AND remainder IS NOT NULL;
";

/// The decision outbox without its unique index on the payment id, as in the SQLite store's
/// version 8: a row is written only beside its decision, whose primary key already refuses a
/// payment decided twice on any replica.
const V8: &str = "
ALTER TABLE decision_outbox DROP CONSTRAINT IF EXISTS decision_outbox_payment_id_key;
";

/// Brings the database to [`VERSION`].
pub(super) fn migrate(conn: &mut Client) -> Result<(), StoreError> {
    let mut tx = conn
        .transaction()
        .map_err(backend("beginning a migration"))?;
    // The lock first: two replicas must not both see version 0 and both create the tables.
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATE_LOCK])
        .map_err(backend("taking the migration lock"))?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_version (
             version BIGINT PRIMARY KEY,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
         )",
    )
    .map_err(backend("creating schema_version"))?;
    let version: i64 = tx
        .query_one("SELECT COALESCE(MAX(version), 0) FROM schema_version", &[])
        .and_then(|r| r.try_get(0))
        .map_err(backend("reading the schema version"))?;
    if version > VERSION {
        return Err(StoreError::Backend {
            context: "opening the store".into(),
            message: format!(
                "its schema is version {version}, newer than this build's {VERSION}: upgrade cashmatch"
            ),
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let v = i as i64 + 1;
        tx.batch_execute(sql)
            .map_err(|e| backend(&format!("applying migration {v}"))(e))?;
        if v == 1 {
            write_anchor(&mut tx)?;
        }
        tx.execute("INSERT INTO schema_version (version) VALUES ($1)", &[&v])
            .map_err(backend("recording the schema version"))?;
    }
    tx.commit().map_err(backend("committing the migrations"))
}

/// The audit chain's anchor, written once with the tables (see `store::sqlite::audit`).
fn write_anchor(tx: &mut postgres::Transaction<'_>) -> Result<(), StoreError> {
    let mut nonce = [0u8; 16];
    getrandom::fill(&mut nonce).map_err(|e| StoreError::Backend {
        context: "making the audit chain's anchor".into(),
        message: e.to_string(),
    })?;
    let nonce: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
    let anchor = format!(
        "cashmatch store {nonce}: audit chain started {} over 0 earlier events",
        crate::store::now().to_rfc3339()
    );
    tx.execute(
        "INSERT INTO settings (key, value) VALUES ('audit_anchor', $1)",
        &[&anchor],
    )
    .map_err(backend("writing the audit chain's anchor"))?;
    Ok(())
}
