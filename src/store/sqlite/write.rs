//! The SQL of the writes: each [`Write`] applied to a connection inside the transaction the
//! writer opened for its group.

use super::{backend, corrupt};
use crate::domain::{Customer, Invoice, ReviewReason, Status};
use crate::domain::{Decision, Payment};
use crate::store::writer::Write;
use crate::store::{
    AssignmentWrite, AuditRecord, CashRecord, DecisionRecord, OpenAmountChange, PaymentReturn,
    PostingRecord, ResolutionRecord, ReversalKind, ReversalRecord, StoreError,
};
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

pub(super) fn apply_write(conn: &Connection, write: &Write) -> Result<(), StoreError> {
    match write {
        Write::Ledger(w) => {
            for c in &w.customers {
                upsert_customer(conn, c)?;
            }
            for inv in &w.invoices {
                upsert_invoice(conn, inv)?;
            }
            if let Some(a) = &w.audit {
                insert_audit(conn, a)?;
            }
            insert_postings(conn, &w.postings)
        }
        Write::Decision(r) => record_decision(conn, r),
        Write::Resolve(r) => resolve(conn, r),
        Write::Reverse(r) => reverse(conn, r),
        Write::Approval(w) => super::approval::write(conn, w),
        Write::Session(w) => super::session::write(conn, w),
        Write::Assign(w) => assign(conn, w),
        Write::BusCursor(outbox, position) => conn
            .prepare_cached(
                "INSERT INTO bus_cursors (name, position) VALUES (?1, ?2)
                 ON CONFLICT (name) DO UPDATE SET position = MAX(position, excluded.position)",
            )
            .and_then(|mut s| s.execute(params![outbox.name(), *position as i64]))
            .map(drop)
            .map_err(backend("storing the bus cursor")),
        Write::Cash(r) => apply_cash(conn, r),
        Write::Advice(w) => super::advice::write(conn, w),
        Write::ActiveModel(dir, audit) => {
            conn.execute(
                "INSERT INTO settings (key, value) VALUES ('active_model', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![dir],
            )
            .map_err(backend("storing the active model"))?;
            insert_audit(conn, audit)
        }
    }
}

/// The owner of an open review item changes, with its audit event.
fn assign(conn: &Connection, w: &AssignmentWrite) -> Result<(), StoreError> {
    let n = conn
        .prepare_cached(
            "UPDATE review_items SET owner = ?2 WHERE payment_id = ?1 AND state = 'open'
             AND (?3 IS NULL OR owner IS NULL OR owner = ?3)",
        )
        .and_then(|mut s| s.execute(params![w.payment_id, w.owner, w.unless_owned_by_other_than]))
        .map_err(backend("assigning a review item"))?;
    if n == 0 {
        return Err(assignment_refused(&w.payment_id));
    }
    insert_audit(conn, &w.audit)
}

/// What both stores answer when an assignment finds the item closed or taken meanwhile.
pub(in crate::store) fn assignment_refused(payment_id: &str) -> StoreError {
    StoreError::Conflict(format!(
        "review item {payment_id} is not open, or another analyst took it first"
    ))
}

pub(in crate::store) fn json<T: serde::Serialize>(v: &T, what: &str) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| corrupt(what, e))
}

pub(super) fn upsert_customer(conn: &Connection, c: &Customer) -> Result<(), StoreError> {
    let Customer {
        id,
        name,
        parent_id,
        bank_accounts,
    } = c;
    let accounts = json(bank_accounts, "bank accounts")?;
    conn.prepare_cached(
        "INSERT INTO customers (id, name, parent_id, bank_accounts) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, parent_id = excluded.parent_id,
         bank_accounts = excluded.bank_accounts",
    )
    .and_then(|mut s| s.execute(params![id, name, parent_id, accounts]))
    .map_err(backend("storing a customer"))?;
    Ok(())
}

pub(super) fn upsert_invoice(conn: &Connection, inv: &Invoice) -> Result<(), StoreError> {
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
    conn.prepare_cached(
        "INSERT INTO invoices (id, customer_id, number, po_number, invoice_date, due_date,
         currency, amount, open_amount, terms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT (id) DO UPDATE SET customer_id = excluded.customer_id,
         number = excluded.number, po_number = excluded.po_number,
         invoice_date = excluded.invoice_date, due_date = excluded.due_date,
         currency = excluded.currency, amount = excluded.amount,
         open_amount = excluded.open_amount, terms = excluded.terms",
    )
    .and_then(|mut s| {
        s.execute(params![
            id,
            customer_id,
            number,
            po_number,
            invoice_date.to_string(),
            due_date.to_string(),
            currency.as_str(),
            amount.to_string(),
            open_amount.to_string(),
            terms.to_string(),
        ])
    })
    .map_err(backend("storing an invoice"))?;
    Ok(())
}

/// Appends an audit event to the chain (`audit`), in the caller's transaction.
pub(super) fn insert_audit(conn: &Connection, a: &AuditRecord) -> Result<(), StoreError> {
    let AuditRecord {
        at,
        actor,
        action,
        subject,
        before,
        after,
    } = a;
    super::audit::append(
        conn,
        at.to_rfc3339(),
        actor,
        action,
        subject,
        before.to_string(),
        after.to_string(),
    )
}

/// Moves open amounts, refusing when a stored amount is not what the writer saw.
pub(super) fn apply_changes(
    conn: &Connection,
    changes: &[OpenAmountChange],
) -> Result<(), StoreError> {
    for ch in changes {
        // The stored text is almost always what the writer saw, written the same way: then the
        // update alone checks and moves it, one look-up of the invoice instead of two. Otherwise
        // the amounts are compared as decimals ("100.0" is "100.00") before refusing.
        let moved = conn
            .prepare_cached(
                "UPDATE invoices SET open_amount = ?1 WHERE id = ?2 AND open_amount = ?3",
            )
            .and_then(|mut s| {
                s.execute(params![
                    ch.after.to_string(),
                    ch.invoice_id,
                    ch.before.to_string()
                ])
            })
            .map_err(backend("updating an open amount"))?;
        if moved == 1 {
            continue;
        }
        let stored: Option<String> = conn
            .prepare_cached("SELECT open_amount FROM invoices WHERE id = ?1")
            .and_then(|mut s| s.query_row(params![ch.invoice_id], |r| r.get(0)).optional())
            .map_err(backend("reading an open amount"))?;
        let Some(stored) = stored else {
            return Err(StoreError::Conflict(format!(
                "invoice {} is not stored",
                ch.invoice_id
            )));
        };
        let stored: Decimal = stored
            .parse()
            .map_err(|e| corrupt(format!("open amount of invoice {}", ch.invoice_id), e))?;
        if stored != ch.before {
            return Err(StoreError::Conflict(format!(
                "invoice {}: open amount is {stored}, not {}",
                ch.invoice_id, ch.before
            )));
        }
        conn.prepare_cached("UPDATE invoices SET open_amount = ?1 WHERE id = ?2")
            .and_then(|mut s| s.execute(params![ch.after.to_string(), ch.invoice_id]))
            .map_err(backend("updating an open amount"))?;
    }
    Ok(())
}

pub(super) fn insert_applications(
    conn: &Connection,
    payment_id: &str,
    allocations: &[crate::domain::Allocation],
    source: &str,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    for a in allocations {
        conn.prepare_cached(
            "INSERT INTO applications (payment_id, invoice_id, amount, discount, deduction,
             reason_code, source, applied_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .and_then(|mut s| {
            s.execute(params![
                payment_id,
                a.invoice_id,
                a.amount.to_string(),
                a.discount.to_string(),
                a.deduction.to_string(),
                a.reason_code,
                source,
                at.to_rfc3339(),
            ])
        })
        .map_err(backend("storing an application"))?;
    }
    Ok(())
}

/// Ten-thousandths of an amount, saturating: a sort and filter key, never money.
pub(crate) fn amount_key(d: Decimal) -> i64 {
    let saturated = if d.is_sign_negative() {
        i64::MIN
    } else {
        i64::MAX
    };
    d.checked_mul(Decimal::from(10_000))
        .and_then(|k| k.trunc().to_i64())
        .unwrap_or(saturated)
}

pub(in crate::store) fn status_name(s: Status) -> &'static str {
    match s {
        Status::Auto => "auto",
        Status::Review => "review",
        Status::Returned => "returned",
    }
}

pub(in crate::store) fn reason_name(r: ReviewReason) -> String {
    // The serde name, so the column reads like the decisions JSON.
    serde_json::to_value(r)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// The `remainder` column of a decision (both stores): the cash an auto decision left
/// unapplied, when any.
pub(in crate::store) fn remainder(decision: &Decision) -> Option<String> {
    (decision.status == Status::Auto && !decision.unapplied.is_zero())
        .then(|| decision.unapplied.to_string())
}

pub(super) fn record_decision(conn: &Connection, r: &DecisionRecord) -> Result<(), StoreError> {
    let DecisionRecord {
        payment,
        decision,
        changes,
        at,
        postings,
    } = r;
    let (payment_json, decision_json) = (json(payment, "payment")?, json(decision, "decision")?);
    // The primary key decides whether the payment is new: a look-up before the insert would
    // walk the same index twice for every decision, to refuse one in a great many.
    let inserted = conn
        .prepare_cached(
            "INSERT INTO decisions (payment_id, status, customer_id, amount, currency,
             model_version, decided_at, payment_json, decision_json, remainder)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT (payment_id) DO NOTHING",
        )
        .and_then(|mut s| {
            s.execute(params![
                payment.payment_id,
                status_name(decision.status),
                decision.customer_id,
                payment.amount.to_string(),
                payment.currency.as_str(),
                decision.model_version,
                at.to_rfc3339(),
                payment_json,
                decision_json,
                remainder(decision),
            ])
        })
        .map_err(backend("storing a decision"))?;
    if inserted == 0 {
        return Err(StoreError::Conflict(format!(
            "payment {} is already decided",
            payment.payment_id
        )));
    }
    conn.prepare_cached("INSERT INTO decision_outbox (payment_id) VALUES (?1)")
        .and_then(|mut s| s.execute(params![payment.payment_id]))
        .map_err(backend("queueing a decision for the bus"))?;
    apply_changes(conn, changes)?;
    insert_postings(conn, postings)?;
    match decision.status {
        Status::Auto => insert_applications(
            conn,
            &payment.payment_id,
            &decision.allocations,
            "auto",
            *at,
        ),
        Status::Review => insert_review_item(conn, payment, decision, *at),
        Status::Returned => Err(StoreError::Conflict(format!(
            "payment {}: a new decision cannot be a return",
            payment.payment_id
        ))),
    }
}

/// Puts a payment in the review queue, open since `at`.
fn insert_review_item(
    conn: &Connection,
    payment: &Payment,
    decision: &Decision,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO review_items (payment_id, customer_id, amount, amount_key, currency,
         reason, confidence, created_at, created_ms, state)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'open')",
    )
    .and_then(|mut s| {
        s.execute(params![
            payment.payment_id,
            decision.customer_id,
            payment.amount.to_string(),
            amount_key(payment.amount),
            payment.currency.as_str(),
            decision.review_reason.map(reason_name),
            decision.confidence,
            at.to_rfc3339(),
            at.timestamp_millis(),
        ])
    })
    .map_err(backend("storing a review item"))?;
    Ok(())
}

pub(super) fn resolve(conn: &Connection, r: &ResolutionRecord) -> Result<(), StoreError> {
    let ResolutionRecord {
        payment_id,
        resolution,
        changes,
        audit,
        postings,
    } = r;
    let resolution_json = json(resolution, "resolution")?;
    let n = conn
        .prepare_cached(
            "UPDATE review_items SET state = 'resolved', resolution_json = ?1, resolved_at = ?2
             WHERE payment_id = ?3 AND state = 'open'",
        )
        .and_then(|mut s| {
            s.execute(params![
                resolution_json,
                resolution.resolved_at.to_rfc3339(),
                payment_id
            ])
        })
        .map_err(backend("resolving a review item"))?;
    if n == 0 {
        return Err(StoreError::Conflict(format!(
            "review item {payment_id} is not open"
        )));
    }
    apply_changes(conn, changes)?;
    insert_applications(
        conn,
        payment_id,
        &resolution.allocations,
        "review",
        resolution.resolved_at,
    )?;
    insert_postings(conn, postings)?;
    insert_audit(conn, audit)
}

/// Waiting cash applied to invoices: the open amounts (refused when one moved meanwhile), the
/// applications, the postings and the audit event.
fn apply_cash(conn: &Connection, r: &CashRecord) -> Result<(), StoreError> {
    let CashRecord {
        payment_id,
        allocations,
        changes,
        audit,
        postings,
    } = r;
    apply_changes(conn, changes)?;
    insert_applications(conn, payment_id, allocations, "waiting_cash", audit.at)?;
    insert_postings(conn, postings)?;
    insert_audit(conn, audit)
}

/// A bank return or an unapply: the decision rewritten (refused once returned), the review item
/// closed as returned, reopened or opened, then the open amounts, postings and audit event.
pub(super) fn reverse(conn: &Connection, r: &ReversalRecord) -> Result<(), StoreError> {
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
    let n = conn
        .prepare_cached(
            "UPDATE decisions SET status = ?1, decision_json = ?2, remainder = ?4
             WHERE payment_id = ?3 AND status != 'returned'",
        )
        .and_then(|mut s| {
            s.execute(params![
                status_name(decision.status),
                decision_json,
                id,
                remainder(decision)
            ])
        })
        .map_err(backend("rewriting a decision"))?;
    if n == 0 {
        return Err(StoreError::Conflict(format!(
            "payment {id} is not decided, or was returned already"
        )));
    }
    match kind {
        ReversalKind::Return(ret) => {
            // An item still open leaves the queue now; a resolved one keeps when it was resolved.
            conn.prepare_cached(
                "UPDATE review_items SET state = 'returned', resolved_at = COALESCE(resolved_at, ?1)
                 WHERE payment_id = ?2",
            )
            .and_then(|mut s| s.execute(params![at.to_rfc3339(), id]))
            .map_err(backend("closing a returned payment's review item"))?;
            insert_return(conn, id, ret)?;
        }
        ReversalKind::Unapply { reopen: true } => {
            let n = conn
                .prepare_cached(
                    "UPDATE review_items SET state = 'open', resolution_json = NULL,
                     resolved_at = NULL WHERE payment_id = ?1 AND state = 'resolved'",
                )
                .and_then(|mut s| s.execute(params![id]))
                .map_err(backend("reopening a review item"))?;
            if n == 0 {
                return Err(StoreError::Conflict(format!(
                    "review item {id} is not resolved"
                )));
            }
        }
        ReversalKind::Unapply { reopen: false } => {
            insert_review_item(conn, payment, decision, *at)?
        }
    }
    apply_changes(conn, changes)?;
    // The applications no longer paid anything: a restart must not remember the payment as the
    // one that settled an invoice (a later remittance quoting it would be called its duplicate).
    conn.prepare_cached("UPDATE applications SET source = 'reversed' WHERE payment_id = ?1")
        .and_then(|mut s| s.execute(params![id]))
        .map_err(backend("marking applications reversed"))?;
    insert_postings(conn, postings)?;
    insert_audit(conn, audit)
}

fn insert_return(conn: &Connection, payment_id: &str, r: &PaymentReturn) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO payment_returns (payment_id, return_code, reason, actor_kind, actor, at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .and_then(|mut s| {
        s.execute(params![
            payment_id,
            r.return_code,
            r.reason,
            r.actor_kind.name(),
            r.actor,
            r.at.to_rfc3339()
        ])
    })
    .map_err(backend("storing a payment's return"))?;
    Ok(())
}

/// Appends postings to the journal; the sequence is the rowid (see the schema).
pub(super) fn insert_postings(
    conn: &Connection,
    postings: &[PostingRecord],
) -> Result<(), StoreError> {
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
        conn.prepare_cached(
            "INSERT INTO postings (kind, payment_id, invoice_id, customer_id, currency, amount,
             reason_code, actor_kind, actor, model_version, rules_version, reverses, at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        )
        .and_then(|mut s| {
            s.execute(params![
                kind.name(),
                payment_id,
                invoice_id,
                customer_id,
                currency.as_str(),
                amount.to_string(),
                reason_code,
                actor_kind.name(),
                actor,
                model_version,
                rules_version,
                reverses,
                at.to_rfc3339(),
            ])
        })
        .map_err(backend("journalling a posting"))?;
    }
    Ok(())
}
