//! The SQL of the writes: each [`Write`] applied inside the savepoint the writer opened for it,
//! in the transaction of its group, which holds the write lock (see the module doc).
//!
//! What is refused mirrors the SQLite store's writes (`store::sqlite::write`) one for one; the
//! checks are made by the database in the statement that changes the row (a conditional
//! `UPDATE`, `ON CONFLICT DO NOTHING`), so that they hold whichever replica wrote first.

use super::backend;
use crate::domain::{Customer, Decision, Invoice, Payment, Status};
use crate::store::sqlite::audit::{ChainedEvent, anchor_hash, event_hash};
use crate::store::sqlite::write::{
    amount_key, assignment_refused, json, reason_name, remainder, status_name,
};
use crate::store::writer::Write;
use crate::store::{
    ApprovalWrite, AssignmentWrite, AuditRecord, CashRecord, DecisionRecord, OpenAmountChange,
    PaymentReturn, PostingRecord, ResolutionRecord, ReversalKind, ReversalRecord, StoreError,
};
use chrono::{DateTime, Utc};
use postgres::{Statement, Transaction};
use std::collections::HashMap;

type Tx<'a> = Transaction<'a>;

/// The writer's prepared statements, by their text. A statement sent as text costs a round trip
/// of its own to be parsed and described before the one that runs it; on the single writing
/// connection, where round trips are what a group waits on, the writer prepares each once.
/// Tied to the connection: cleared when the writer connects again.
#[derive(Default)]
pub(super) struct Statements(HashMap<&'static str, Statement>);

impl Statements {
    pub(super) fn get(
        &mut self,
        tx: &mut Tx<'_>,
        sql: &'static str,
    ) -> Result<Statement, StoreError> {
        if let Some(s) = self.0.get(sql) {
            return Ok(s.clone());
        }
        let s = tx.prepare(sql).map_err(backend("preparing a statement"))?;
        self.0.insert(sql, s.clone());
        Ok(s)
    }

    pub(super) fn clear(&mut self) {
        self.0.clear();
    }
}

pub(super) fn apply_write(tx: &mut Tx<'_>, write: &Write) -> Result<(), StoreError> {
    match write {
        Write::Ledger(w) => {
            for chunk in last_wins(&w.customers, |c| c.id.as_str()).chunks(LEDGER_CHUNK) {
                upsert_customers(tx, chunk)?;
            }
            for chunk in last_wins(&w.invoices, |i| i.id.as_str()).chunks(LEDGER_CHUNK) {
                upsert_invoices(tx, chunk)?;
            }
            if let Some(a) = &w.audit {
                insert_audit(tx, a)?;
            }
            insert_postings(tx, &w.postings)
        }
        Write::Decision(r) => record_decision(tx, r),
        Write::Resolve(r) => resolve(tx, r),
        Write::Reverse(r) => reverse(tx, r),
        Write::Approval(w) => write_approval(tx, w),
        Write::Session(w) => super::session::write(tx, w),
        Write::Assign(w) => assign(tx, w),
        Write::Advice(w) => super::advice::write(tx, w),
        Write::BusCursor(outbox, position) => tx
            .execute(
                "INSERT INTO bus_cursors (name, position) VALUES ($1, $2)
                 ON CONFLICT (name) DO UPDATE
                 SET position = GREATEST(bus_cursors.position, excluded.position)",
                &[
                    &outbox.name(),
                    &i64::try_from(*position).unwrap_or(i64::MAX),
                ],
            )
            .map(drop)
            .map_err(backend("storing the bus cursor")),
        Write::Cash(r) => apply_cash(tx, r),
        Write::ActiveModel(dir, audit) => {
            tx.execute(
                "INSERT INTO settings (key, value) VALUES ('active_model', $1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                &[dir],
            )
            .map_err(backend("storing the active model"))?;
            insert_audit(tx, audit)
        }
    }
}

/// Ledger rows per statement: a bulk load of a million invoices is a few hundred statements,
/// not a million round trips, and no statement's arrays grow without bound.
const LEDGER_CHUNK: usize = 5_000;

/// Each id once, at the place it first appears, with what it was given last: what upserting the
/// rows one by one leaves behind. (One statement may not upsert a row twice.)
fn last_wins<'a, T>(rows: &'a [T], id: impl Fn(&'a T) -> &'a str) -> Vec<&'a T> {
    let mut at: HashMap<&'a str, usize> = HashMap::with_capacity(rows.len());
    let mut out: Vec<&'a T> = Vec::with_capacity(rows.len());
    for r in rows {
        match at.get(id(r)) {
            Some(&i) => out[i] = r,
            None => {
                at.insert(id(r), out.len());
                out.push(r);
            }
        }
    }
    out
}

fn upsert_customers(tx: &mut Tx<'_>, rows: &[&Customer]) -> Result<(), StoreError> {
    let n = rows.len();
    let (mut ids, mut names, mut parents, mut accounts) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for c in rows {
        let Customer {
            id,
            name,
            parent_id,
            bank_accounts,
        } = c;
        ids.push(id.as_str());
        names.push(name.as_str());
        parents.push(parent_id.as_deref());
        accounts.push(json(bank_accounts, "bank accounts")?);
    }
    tx.execute(
        "INSERT INTO customers (id, name, parent_id, bank_accounts)
         SELECT id, name, parent, accounts
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])
             WITH ORDINALITY AS t(id, name, parent, accounts, ord)
         ORDER BY ord
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, parent_id = excluded.parent_id,
         bank_accounts = excluded.bank_accounts",
        &[&ids, &names, &parents, &accounts],
    )
    .map_err(backend("storing customers"))?;
    Ok(())
}

fn upsert_invoices(tx: &mut Tx<'_>, rows: &[&Invoice]) -> Result<(), StoreError> {
    let n = rows.len();
    let mut cols: [Vec<String>; 8] = Default::default();
    let (mut ids, mut pos) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for inv in rows {
        let Invoice {
            id,
            customer_id,
            number,
            po_number,
            invoice_date,
            due_date,
            currency,
            amount,
            open_amount,
            terms,
        } = inv;
        ids.push(id.as_str());
        pos.push(po_number.as_deref());
        for (col, v) in cols.iter_mut().zip([
            customer_id.clone(),
            number.clone(),
            invoice_date.to_string(),
            due_date.to_string(),
            currency.as_str().to_string(),
            amount.to_string(),
            open_amount.to_string(),
            terms.to_string(),
        ]) {
            col.push(v);
        }
    }
    let [
        customers,
        numbers,
        invoice_dates,
        due_dates,
        currencies,
        amounts,
        opens,
        terms,
    ] = &cols;
    tx.execute(
        "INSERT INTO invoices (id, customer_id, number, po_number, invoice_date, due_date,
         currency, amount, open_amount, terms)
         SELECT id, cust, num, po, idate, ddate, cur, amt::numeric, opn::numeric, terms
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
             $7::text[], $8::text[], $9::text[], $10::text[])
             WITH ORDINALITY AS t(id, cust, num, po, idate, ddate, cur, amt, opn, terms, ord)
         ORDER BY ord
         ON CONFLICT (id) DO UPDATE SET customer_id = excluded.customer_id,
         number = excluded.number, po_number = excluded.po_number,
         invoice_date = excluded.invoice_date, due_date = excluded.due_date,
         currency = excluded.currency, amount = excluded.amount,
         open_amount = excluded.open_amount, terms = excluded.terms",
        &[
            &ids,
            customers,
            numbers,
            &pos,
            invoice_dates,
            due_dates,
            currencies,
            amounts,
            opens,
            terms,
        ],
    )
    .map_err(backend("storing invoices"))?;
    Ok(())
}

/// Appends an audit event to the hash chain. The id is the last plus one: the write lock, held
/// since the group began, makes that the next id on every replica.
pub(super) fn insert_audit(tx: &mut Tx<'_>, a: &AuditRecord) -> Result<(), StoreError> {
    let AuditRecord {
        at,
        actor,
        action,
        subject,
        before,
        after,
    } = a;
    let last = tx
        .query_opt(
            "SELECT id, hash FROM audit_events ORDER BY id DESC LIMIT 1",
            &[],
        )
        .map_err(backend("reading the audit chain's head"))?;
    let (id, prev_hash) = match last {
        Some(row) => {
            let id: i64 = row
                .try_get(0)
                .map_err(backend("reading the audit chain's head"))?;
            let hash: String = row
                .try_get(1)
                .map_err(backend("reading the audit chain's head"))?;
            (id + 1, hash)
        }
        None => {
            let anchor = super::audit::anchor(tx)?;
            (1, anchor_hash(&anchor))
        }
    };
    let mut e = ChainedEvent {
        id,
        at: at.to_rfc3339(),
        actor: actor.clone(),
        action: action.clone(),
        subject: subject.clone(),
        before_json: before.to_string(),
        after_json: after.to_string(),
        prev_hash,
        hash: String::new(),
    };
    e.hash = event_hash(&e.prev_hash, &e);
    tx.execute(
        "INSERT INTO audit_events (id, at, actor, action, subject, before_json, after_json,
         prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        &[
            &e.id,
            &e.at,
            &e.actor,
            &e.action,
            &e.subject,
            &e.before_json,
            &e.after_json,
            &e.prev_hash,
            &e.hash,
        ],
    )
    .map_err(backend("storing an audit event"))?;
    Ok(())
}

/// Moves open amounts, each only if the row still holds what the writer saw: the database
/// compares, so a replica that changed the row first wins and this record is refused.
fn apply_changes(tx: &mut Tx<'_>, changes: &[OpenAmountChange]) -> Result<(), StoreError> {
    for ch in changes {
        let n = tx
            .execute(
                "UPDATE invoices SET open_amount = $1::text::numeric
                 WHERE id = $2 AND open_amount = $3::text::numeric",
                &[
                    &ch.after.to_string(),
                    &ch.invoice_id,
                    &ch.before.to_string(),
                ],
            )
            .map_err(backend("updating an open amount"))?;
        if n == 0 {
            let stored = tx
                .query_opt(
                    "SELECT open_amount::text FROM invoices WHERE id = $1",
                    &[&ch.invoice_id],
                )
                .map_err(backend("reading an open amount"))?;
            return Err(StoreError::Conflict(match stored {
                None => format!("invoice {} is not stored", ch.invoice_id),
                Some(row) => {
                    let now: String = row.try_get(0).map_err(backend("reading an open amount"))?;
                    format!(
                        "invoice {}: open amount is {now}, not {}",
                        ch.invoice_id, ch.before
                    )
                }
            }));
        }
    }
    Ok(())
}

fn insert_applications(
    tx: &mut Tx<'_>,
    payment_id: &str,
    allocations: &[crate::domain::Allocation],
    source: &str,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    for a in allocations {
        tx.execute(
            "INSERT INTO applications (payment_id, invoice_id, amount, discount, deduction,
             reason_code, source, applied_at)
             VALUES ($1, $2, $3::text::numeric, $4::text::numeric, $5::text::numeric, $6, $7, $8)",
            &[
                &payment_id,
                &a.invoice_id,
                &a.amount.to_string(),
                &a.discount.to_string(),
                &a.deduction.to_string(),
                &a.reason_code,
                &source,
                &at.to_rfc3339(),
            ],
        )
        .map_err(backend("storing an application"))?;
    }
    Ok(())
}

/// A decision, once per payment id: the insert does nothing when another replica stored the
/// payment first, and that is a conflict (the service then replays the stored decision).
fn record_decision(tx: &mut Tx<'_>, r: &DecisionRecord) -> Result<(), StoreError> {
    let DecisionRecord {
        payment,
        decision,
        changes,
        at,
        postings,
    } = r;
    let (payment_json, decision_json) = (json(payment, "payment")?, json(decision, "decision")?);
    let n = tx
        .execute(
            "INSERT INTO decisions (payment_id, status, customer_id, amount, currency,
             model_version, decided_at, payment_json, decision_json, remainder)
             VALUES ($1, $2, $3, $4::text::numeric, $5, $6, $7, $8, $9, $10::text::numeric)
             ON CONFLICT (payment_id) DO NOTHING",
            &[
                &payment.payment_id,
                &status_name(decision.status),
                &decision.customer_id,
                &payment.amount.to_string(),
                &payment.currency.as_str(),
                &decision.model_version,
                &at.to_rfc3339(),
                &payment_json,
                &decision_json,
                &remainder(decision),
            ],
        )
        .map_err(backend("storing a decision"))?;
    if n == 0 {
        return Err(StoreError::Conflict(format!(
            "payment {} is already decided",
            payment.payment_id
        )));
    }
    // The largest plus one under the write lock, as the journal's sequence (see the schema).
    tx.execute(
        "INSERT INTO decision_outbox (sequence, payment_id)
         SELECT COALESCE(MAX(sequence), 0) + 1, $1 FROM decision_outbox",
        &[&payment.payment_id],
    )
    .map_err(backend("queueing a decision for the bus"))?;
    apply_changes(tx, changes)?;
    insert_postings(tx, postings)?;
    match decision.status {
        Status::Auto => {
            insert_applications(tx, &payment.payment_id, &decision.allocations, "auto", *at)
        }
        Status::Review => insert_review_item(tx, payment, decision, *at),
        Status::Returned => Err(StoreError::Conflict(format!(
            "payment {}: a new decision cannot be a return",
            payment.payment_id
        ))),
    }
}

/// Puts a payment in the review queue, open since `at`.
fn insert_review_item(
    tx: &mut Tx<'_>,
    payment: &Payment,
    decision: &Decision,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO review_items (payment_id, customer_id, amount, amount_key, currency,
         reason, confidence, created_at, created_ms, state)
         VALUES ($1, $2, $3::text::numeric, $4, $5, $6, $7, $8, $9, 'open')",
        &[
            &payment.payment_id,
            &decision.customer_id,
            &payment.amount.to_string(),
            &amount_key(payment.amount),
            &payment.currency.as_str(),
            &decision.review_reason.map(reason_name),
            &decision.confidence,
            &at.to_rfc3339(),
            &at.timestamp_millis(),
        ],
    )
    .map_err(backend("storing a review item"))?;
    Ok(())
}

fn resolve(tx: &mut Tx<'_>, r: &ResolutionRecord) -> Result<(), StoreError> {
    let ResolutionRecord {
        payment_id,
        resolution,
        changes,
        audit,
        postings,
    } = r;
    let resolution_json = json(resolution, "resolution")?;
    let n = tx
        .execute(
            "UPDATE review_items SET state = 'resolved', resolution_json = $1, resolved_at = $2
             WHERE payment_id = $3 AND state = 'open'",
            &[
                &resolution_json,
                &resolution.resolved_at.to_rfc3339(),
                payment_id,
            ],
        )
        .map_err(backend("resolving a review item"))?;
    if n == 0 {
        return Err(StoreError::Conflict(format!(
            "review item {payment_id} is not open"
        )));
    }
    apply_changes(tx, changes)?;
    insert_applications(
        tx,
        payment_id,
        &resolution.allocations,
        "review",
        resolution.resolved_at,
    )?;
    insert_postings(tx, postings)?;
    insert_audit(tx, audit)
}

/// Waiting cash applied to invoices, as in the SQLite store.
fn apply_cash(tx: &mut Tx<'_>, r: &CashRecord) -> Result<(), StoreError> {
    let CashRecord {
        payment_id,
        allocations,
        changes,
        audit,
        postings,
    } = r;
    apply_changes(tx, changes)?;
    insert_applications(tx, payment_id, allocations, "waiting_cash", audit.at)?;
    insert_postings(tx, postings)?;
    insert_audit(tx, audit)
}

/// A bank return or an unapply, as in the SQLite store: the decision rewritten (refused once
/// returned), the review item closed as returned, reopened or opened, then the open amounts,
/// postings and audit event.
fn reverse(tx: &mut Tx<'_>, r: &ReversalRecord) -> Result<(), StoreError> {
    let ReversalRecord {
        payment,
        decision,
        kind,
        changes,
        postings,
        audit,
        at,
    } = r;
    let id = &payment.payment_id;
    let decision_json = json(decision, "decision")?;
    let n = tx
        .execute(
            "UPDATE decisions SET status = $1, decision_json = $2,
             remainder = $4::text::numeric
             WHERE payment_id = $3 AND status <> 'returned'",
            &[
                &status_name(decision.status),
                &decision_json,
                id,
                &remainder(decision),
            ],
        )
        .map_err(backend("rewriting a decision"))?;
    if n == 0 {
        return Err(StoreError::Conflict(format!(
            "payment {id} is not decided, or was returned already"
        )));
    }
    match kind {
        ReversalKind::Return(ret) => {
            // An item still open leaves the queue now; a resolved one keeps when it was resolved.
            tx.execute(
                "UPDATE review_items SET state = 'returned', resolved_at = COALESCE(resolved_at, $1)
                 WHERE payment_id = $2",
                &[&at.to_rfc3339(), id],
            )
            .map_err(backend("closing a returned payment's review item"))?;
            insert_return(tx, id, ret)?;
        }
        ReversalKind::Unapply { reopen: true } => {
            let n = tx
                .execute(
                    "UPDATE review_items SET state = 'open', resolution_json = NULL,
                     resolved_at = NULL WHERE payment_id = $1 AND state = 'resolved'",
                    &[id],
                )
                .map_err(backend("reopening a review item"))?;
            if n == 0 {
                return Err(StoreError::Conflict(format!(
                    "review item {id} is not resolved"
                )));
            }
        }
        ReversalKind::Unapply { reopen: false } => insert_review_item(tx, payment, decision, *at)?,
    }
    apply_changes(tx, changes)?;
    // The applications no longer paid anything: a restart must not remember the payment as the
    // one that settled an invoice.
    tx.execute(
        "UPDATE applications SET source = 'reversed' WHERE payment_id = $1",
        &[id],
    )
    .map_err(backend("marking applications reversed"))?;
    insert_postings(tx, postings)?;
    insert_audit(tx, audit)
}

fn insert_return(tx: &mut Tx<'_>, payment_id: &str, r: &PaymentReturn) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO payment_returns (payment_id, return_code, reason, actor_kind, actor, at)
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            &payment_id,
            &r.return_code,
            &r.reason,
            &r.actor_kind.name(),
            &r.actor,
            &r.at.to_rfc3339(),
        ],
    )
    .map_err(backend("storing a payment's return"))?;
    Ok(())
}

/// Appends postings to the journal, each at the last sequence plus one (see the schema).
fn insert_postings(tx: &mut Tx<'_>, postings: &[PostingRecord]) -> Result<(), StoreError> {
    for p in postings {
        let PostingRecord {
            kind,
            payment_id,
            invoice_id,
            customer_id,
            currency,
            amount,
            reason_code,
            actor_kind,
            actor,
            model_version,
            rules_version,
            reverses,
            at,
        } = p;
        let reverses = reverses.map(|r| i64::try_from(r).unwrap_or(i64::MAX));
        tx.execute(
            "INSERT INTO postings (sequence, kind, payment_id, invoice_id, customer_id, currency,
             amount, reason_code, actor_kind, actor, model_version, rules_version, reverses, at)
             SELECT COALESCE(MAX(sequence), 0) + 1, $1, $2, $3, $4, $5, $6::text::numeric, $7,
                    $8, $9, $10, $11, $12, $13
             FROM postings",
            &[
                &kind.name(),
                payment_id,
                invoice_id,
                customer_id,
                &currency.as_str(),
                &amount.to_string(),
                reason_code,
                &actor_kind.name(),
                actor,
                model_version,
                rules_version,
                &reverses,
                &at.to_rfc3339(),
            ],
        )
        .map_err(backend("journalling a posting"))?;
    }
    Ok(())
}

/// A four-eyes request or its outcome, with its audit event; a request decided already is a
/// conflict (a decision is final).
/// The owner of an open review item changes, with its audit event (as the SQLite store).
fn assign(tx: &mut Tx<'_>, w: &AssignmentWrite) -> Result<(), StoreError> {
    let n = tx
        .execute(
            "UPDATE review_items SET owner = $2 WHERE payment_id = $1 AND state = 'open'
             AND ($3::text IS NULL OR owner IS NULL OR owner = $3)",
            &[&w.payment_id, &w.owner, &w.unless_owned_by_other_than],
        )
        .map_err(backend("assigning a review item"))?;
    if n == 0 {
        return Err(assignment_refused(&w.payment_id));
    }
    insert_audit(tx, &w.audit)
}

fn write_approval(tx: &mut Tx<'_>, w: &ApprovalWrite) -> Result<(), StoreError> {
    let ApprovalWrite { approval, audit } = w;
    let body = json(approval, "approval")?;
    let n = tx
        .execute(
            "INSERT INTO approvals (id, payment_id, state, approval_json) VALUES ($1, $2, $3, $4)
             ON CONFLICT (id) DO UPDATE SET state = excluded.state,
                 approval_json = excluded.approval_json
             WHERE approvals.state = 'pending'",
            &[
                &approval.id,
                &approval.payment_id,
                &approval.state.name(),
                &body,
            ],
        )
        .map_err(backend("storing an approval"))?;
    if n == 0 {
        return Err(StoreError::Conflict(format!(
            "approval {} was decided already",
            approval.id
        )));
    }
    if let Some(a) = audit {
        insert_audit(tx, a)?;
    }
    Ok(())
}
