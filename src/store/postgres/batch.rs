//! A run of decisions in one group, written with one statement per table instead of several
//! per decision.
//!
//! Decisions are the bulk of what a busy service writes, and each costs five to ten statements
//! on the one-at-a-time path (`write::record_decision`, in a savepoint of its own): on the
//! writer's single connection every statement is a round trip to the server, so that path
//! caps the whole service at a few hundred decisions a second however many the group holds.
//! Here the run's premises are read in two queries, checked in order in memory (exactly the
//! checks the one-at-a-time path makes, with the same refusals), and what passes is written
//! with a multi-row `INSERT ... SELECT FROM unnest(...)` per table and one `UPDATE` of the open
//! amounts.
//!
//! The write lock held since the group began is what makes the premises read here still true
//! when the rows are written: every writer of every replica takes it first. The open amounts are
//! still updated conditionally and the counts compared, and the whole run sits in a savepoint:
//! should anything disagree or fail, the savepoint is rolled back and the caller applies the run
//! one decision at a time, as before, so this path can only be faster, never different.

use super::backend;
use super::write::Statements;
use crate::domain::Status;
use crate::store::sqlite::write::{amount_key, json, reason_name, remainder, status_name};
use crate::store::{DecisionRecord, StoreError};
use postgres::Transaction;
use rust_decimal::Decimal;
use std::collections::{HashMap, HashSet};

const DECIDED: &str = "SELECT payment_id FROM decisions WHERE payment_id = ANY($1)";

const OPEN_AMOUNTS: &str = "SELECT id, open_amount::text FROM invoices WHERE id = ANY($1)";

const INSERT_DECISIONS: &str = "
    INSERT INTO decisions (payment_id, status, customer_id, amount, currency, model_version,
        decided_at, payment_json, decision_json, remainder)
    SELECT pid, st, cust, amt::numeric, cur, mv, ts, pj, dj, rem::numeric
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
        $7::text[], $8::text[], $9::text[], $10::text[])
        WITH ORDINALITY AS t(pid, st, cust, amt, cur, mv, ts, pj, dj, rem, ord)
    ORDER BY ord";

/// Numbered after the largest, in the run's order, as `write::record_decision` numbers one.
const INSERT_OUTBOX: &str = "
    INSERT INTO decision_outbox (sequence, payment_id)
    SELECT m.s + t.ord, t.pid
    FROM unnest($1::text[]) WITH ORDINALITY AS t(pid, ord),
        (SELECT COALESCE(MAX(sequence), 0) AS s FROM decision_outbox) AS m
    ORDER BY t.ord";

/// Each invoice once, from what it held before the run to what it holds after.
const UPDATE_OPEN: &str = "
    UPDATE invoices SET open_amount = u.after::numeric
    FROM unnest($1::text[], $2::text[], $3::text[]) AS u(id, before, after)
    WHERE invoices.id = u.id AND invoices.open_amount = u.before::numeric";

const INSERT_POSTINGS: &str = "
    INSERT INTO postings (sequence, kind, payment_id, invoice_id, customer_id, currency, amount,
        reason_code, actor_kind, actor, model_version, rules_version, reverses, at)
    SELECT m.s + t.ord, t.kind, t.pid, t.inv, t.cust, t.cur, t.amt::numeric, t.reason, t.ak,
        t.actor, t.mv, t.rv, t.rev, t.ts
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
        $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::int8[], $13::text[])
        WITH ORDINALITY AS t(kind, pid, inv, cust, cur, amt, reason, ak, actor, mv, rv, rev, ts,
            ord),
        (SELECT COALESCE(MAX(sequence), 0) AS s FROM postings) AS m
    ORDER BY t.ord";

const INSERT_APPLICATIONS: &str = "
    INSERT INTO applications (payment_id, invoice_id, amount, discount, deduction, reason_code,
        source, applied_at)
    SELECT pid, inv, amt::numeric, disc::numeric, ded::numeric, reason, 'auto', ts
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
        $7::text[]) WITH ORDINALITY AS t(pid, inv, amt, disc, ded, reason, ts, ord)
    ORDER BY ord";

const INSERT_REVIEWS: &str = "
    INSERT INTO review_items (payment_id, customer_id, amount, amount_key, currency, reason,
        confidence, created_at, created_ms, state)
    SELECT pid, cust, amt::numeric, akey, cur, reason, conf, ts, ms, 'open'
    FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::text[], $6::text[],
        $7::float8[], $8::text[], $9::int8[])
        WITH ORDINALITY AS t(pid, cust, amt, akey, cur, reason, conf, ts, ms, ord)
    ORDER BY ord";

/// The columns of each table's rows, one vector per column.
#[derive(Default)]
struct Rows {
    /// Every column but the customer and the remainder, in the order of `INSERT_DECISIONS`
    /// less those.
    decisions: [Vec<String>; 8],
    decision_customers: Vec<Option<String>>,
    decision_remainders: Vec<Option<String>>,
    postings: PostingColumns,
    applications: ApplicationColumns,
    reviews: ReviewColumns,
}

#[derive(Default)]
struct PostingColumns {
    kind: Vec<String>,
    payment: Vec<String>,
    invoice: Vec<Option<String>>,
    customer: Vec<Option<String>>,
    currency: Vec<String>,
    amount: Vec<String>,
    reason: Vec<Option<String>>,
    actor_kind: Vec<String>,
    actor: Vec<String>,
    model: Vec<Option<String>>,
    rules: Vec<Option<String>>,
    reverses: Vec<Option<i64>>,
    at: Vec<String>,
}

#[derive(Default)]
struct ApplicationColumns {
    payment: Vec<String>,
    invoice: Vec<String>,
    amount: Vec<String>,
    discount: Vec<String>,
    deduction: Vec<String>,
    reason: Vec<Option<String>>,
    at: Vec<String>,
}

#[derive(Default)]
struct ReviewColumns {
    payment: Vec<String>,
    customer: Vec<Option<String>>,
    amount: Vec<String>,
    amount_key: Vec<i64>,
    currency: Vec<String>,
    reason: Vec<Option<String>>,
    confidence: Vec<f64>,
    at: Vec<String>,
    at_ms: Vec<i64>,
}

/// Writes the run `records` and returns each one's result in its place (a refused decision is a
/// [`StoreError::Conflict`] worded as the one-at-a-time path words it). `Err`: nothing of the run
/// was written, and the caller applies it one at a time.
pub(super) fn record_decisions(
    tx: &mut Transaction<'_>,
    stmts: &mut Statements,
    records: &[&DecisionRecord],
) -> Result<Vec<Result<(), StoreError>>, StoreError> {
    let mut sp = tx
        .savepoint("decisions")
        .map_err(backend("opening a savepoint"))?;
    let results = write_run(&mut sp, stmts, records)?;
    sp.commit().map_err(backend("releasing a savepoint"))?;
    Ok(results)
}

fn write_run(
    tx: &mut Transaction<'_>,
    stmts: &mut Statements,
    records: &[&DecisionRecord],
) -> Result<Vec<Result<(), StoreError>>, StoreError> {
    let ids: Vec<&str> = records
        .iter()
        .map(|r| r.payment.payment_id.as_str())
        .collect();
    let w = "reading what a run of decisions depends on";
    let st = stmts.get(tx, DECIDED)?;
    let mut decided: HashSet<String> = HashSet::new();
    for row in tx.query(&st, &[&ids]).map_err(backend(w))? {
        decided.insert(row.try_get(0).map_err(backend(w))?);
    }
    let invoice_ids: Vec<&str> = {
        let mut seen = HashSet::new();
        records
            .iter()
            .flat_map(|r| r.changes.iter().map(|c| c.invoice_id.as_str()))
            .filter(|id| seen.insert(*id))
            .collect()
    };
    // What each invoice holds now, and then after each decision of the run that passes.
    let mut open: HashMap<String, Decimal> = HashMap::new();
    if !invoice_ids.is_empty() {
        let st = stmts.get(tx, OPEN_AMOUNTS)?;
        for row in tx.query(&st, &[&invoice_ids]).map_err(backend(w))? {
            let id: String = row.try_get(0).map_err(backend(w))?;
            let text: String = row.try_get(1).map_err(backend(w))?;
            let amount: Decimal = text
                .parse()
                .map_err(|e| super::corrupt(format!("invoice {id}: open amount {text:?}"), e))?;
            open.insert(id, amount);
        }
    }
    let before: HashMap<String, Decimal> = open.clone();

    let mut rows = Rows::default();
    let mut outbox: Vec<&str> = Vec::new();
    let mut results = Vec::with_capacity(records.len());
    for r in records {
        let verdict = check(r, &decided, &open);
        if verdict.is_ok() {
            decided.insert(r.payment.payment_id.clone());
            for ch in &r.changes {
                open.insert(ch.invoice_id.clone(), ch.after);
            }
            add_rows(&mut rows, r)?;
            outbox.push(&r.payment.payment_id);
        }
        results.push(verdict);
    }
    if outbox.is_empty() {
        return Ok(results);
    }

    let n = outbox.len() as u64;
    let [pid, st, amt, cur, mv, at, pj, dj] = &rows.decisions;
    let stmt = stmts.get(tx, INSERT_DECISIONS)?;
    let written = tx
        .execute(
            &stmt,
            &[
                pid,
                st,
                &rows.decision_customers,
                amt,
                cur,
                mv,
                at,
                pj,
                dj,
                &rows.decision_remainders,
            ],
        )
        .map_err(backend("storing decisions"))?;
    expect_rows("decisions", written, n)?;
    let stmt = stmts.get(tx, INSERT_OUTBOX)?;
    let written = tx
        .execute(&stmt, &[&outbox])
        .map_err(backend("queueing decisions for the bus"))?;
    expect_rows("decision outbox", written, n)?;

    // Only the invoices whose open amount the run moved, each from its stored value.
    let (mut ids, mut befores, mut afters) = (Vec::new(), Vec::new(), Vec::new());
    for id in &invoice_ids {
        if let (Some(b), Some(a)) = (before.get(*id), open.get(*id))
            && (b != a || b.scale() != a.scale())
        {
            ids.push(*id);
            befores.push(b.to_string());
            afters.push(a.to_string());
        }
    }
    if !ids.is_empty() {
        let stmt = stmts.get(tx, UPDATE_OPEN)?;
        let written = tx
            .execute(&stmt, &[&ids, &befores, &afters])
            .map_err(backend("updating open amounts"))?;
        expect_rows("open amounts", written, ids.len() as u64)?;
    }

    let p = &rows.postings;
    if !p.kind.is_empty() {
        let stmt = stmts.get(tx, INSERT_POSTINGS)?;
        let written = tx
            .execute(
                &stmt,
                &[
                    &p.kind,
                    &p.payment,
                    &p.invoice,
                    &p.customer,
                    &p.currency,
                    &p.amount,
                    &p.reason,
                    &p.actor_kind,
                    &p.actor,
                    &p.model,
                    &p.rules,
                    &p.reverses,
                    &p.at,
                ],
            )
            .map_err(backend("journalling postings"))?;
        expect_rows("postings", written, p.kind.len() as u64)?;
    }
    let a = &rows.applications;
    if !a.payment.is_empty() {
        let stmt = stmts.get(tx, INSERT_APPLICATIONS)?;
        let written = tx
            .execute(
                &stmt,
                &[
                    &a.payment,
                    &a.invoice,
                    &a.amount,
                    &a.discount,
                    &a.deduction,
                    &a.reason,
                    &a.at,
                ],
            )
            .map_err(backend("storing applications"))?;
        expect_rows("applications", written, a.payment.len() as u64)?;
    }
    let v = &rows.reviews;
    if !v.payment.is_empty() {
        let stmt = stmts.get(tx, INSERT_REVIEWS)?;
        let written = tx
            .execute(
                &stmt,
                &[
                    &v.payment,
                    &v.customer,
                    &v.amount,
                    &v.amount_key,
                    &v.currency,
                    &v.reason,
                    &v.confidence,
                    &v.at,
                    &v.at_ms,
                ],
            )
            .map_err(backend("storing review items"))?;
        expect_rows("review items", written, v.payment.len() as u64)?;
    }
    Ok(results)
}

/// The checks of `write::record_decision`, in its order and with its words.
fn check(
    r: &DecisionRecord,
    decided: &HashSet<String>,
    open: &HashMap<String, Decimal>,
) -> Result<(), StoreError> {
    let id = &r.payment.payment_id;
    if decided.contains(id) {
        return Err(StoreError::Conflict(format!(
            "payment {id} is already decided"
        )));
    }
    // A decision may name an invoice twice: each change then starts where the last left it.
    let mut mine: HashMap<&str, Decimal> = HashMap::new();
    for ch in &r.changes {
        let now = mine
            .get(ch.invoice_id.as_str())
            .or_else(|| open.get(&ch.invoice_id))
            .copied();
        match now {
            None => {
                return Err(StoreError::Conflict(format!(
                    "invoice {} is not stored",
                    ch.invoice_id
                )));
            }
            Some(now) if now != ch.before => {
                return Err(StoreError::Conflict(format!(
                    "invoice {}: open amount is {now}, not {}",
                    ch.invoice_id, ch.before
                )));
            }
            Some(_) => {
                mine.insert(&ch.invoice_id, ch.after);
            }
        }
    }
    if r.decision.status == Status::Returned {
        return Err(StoreError::Conflict(format!(
            "payment {id}: a new decision cannot be a return"
        )));
    }
    Ok(())
}

fn add_rows(rows: &mut Rows, r: &DecisionRecord) -> Result<(), StoreError> {
    let DecisionRecord {
        payment,
        decision,
        changes: _,
        at,
        postings,
    } = r;
    let at_text = at.to_rfc3339();
    let d = &mut rows.decisions;
    d[0].push(payment.payment_id.clone());
    d[1].push(status_name(decision.status).to_string());
    d[2].push(payment.amount.to_string());
    d[3].push(payment.currency.as_str().to_string());
    d[4].push(decision.model_version.clone());
    d[5].push(at_text.clone());
    d[6].push(json(payment, "payment")?);
    d[7].push(json(decision, "decision")?);
    rows.decision_customers.push(decision.customer_id.clone());
    rows.decision_remainders.push(remainder(decision));
    for p in postings {
        let c = &mut rows.postings;
        c.kind.push(p.kind.name().to_string());
        c.payment.push(p.payment_id.clone());
        c.invoice.push(p.invoice_id.clone());
        c.customer.push(p.customer_id.clone());
        c.currency.push(p.currency.as_str().to_string());
        c.amount.push(p.amount.to_string());
        c.reason.push(p.reason_code.clone());
        c.actor_kind.push(p.actor_kind.name().to_string());
        c.actor.push(p.actor.clone());
        c.model.push(p.model_version.clone());
        c.rules.push(p.rules_version.clone());
        c.reverses
            .push(p.reverses.map(|s| i64::try_from(s).unwrap_or(i64::MAX)));
        c.at.push(p.at.to_rfc3339());
    }
    match decision.status {
        Status::Auto => {
            for a in &decision.allocations {
                let c = &mut rows.applications;
                c.payment.push(payment.payment_id.clone());
                c.invoice.push(a.invoice_id.clone());
                c.amount.push(a.amount.to_string());
                c.discount.push(a.discount.to_string());
                c.deduction.push(a.deduction.to_string());
                c.reason.push(a.reason_code.clone());
                c.at.push(at_text.clone());
            }
        }
        Status::Review => {
            let c = &mut rows.reviews;
            c.payment.push(payment.payment_id.clone());
            c.customer.push(decision.customer_id.clone());
            c.amount.push(payment.amount.to_string());
            c.amount_key.push(amount_key(payment.amount));
            c.currency.push(payment.currency.as_str().to_string());
            c.reason.push(decision.review_reason.map(reason_name));
            c.confidence.push(decision.confidence);
            c.at.push(at_text);
            c.at_ms.push(at.timestamp_millis());
        }
        // Refused by `check`.
        Status::Returned => {}
    }
    Ok(())
}

/// A statement that wrote other than the rows the run's checks let through: the premises were
/// wrong, so the run goes the one-at-a-time way, which finds out which.
fn expect_rows(table: &str, written: u64, expected: u64) -> Result<(), StoreError> {
    if written == expected {
        Ok(())
    } else {
        Err(StoreError::Conflict(format!(
            "{table}: {written} rows written, {expected} expected"
        )))
    }
}
