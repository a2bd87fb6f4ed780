//! The SQL of the reads, each on a reader connection of its own. Rows become records through the
//! SQLite store's parsers (`store::sqlite::read`): both stores keep the same text for instants,
//! JSON and (read back as `::text`) money, so there is one way to read a row.

use super::{backend, corrupt};
use crate::domain::{Currency, Customer, Invoice, ReviewReason};
use crate::store::sqlite::read::{
    count, currency, decimal, from_json, invoice_from_text, reason_from_name, review_where_in,
    stored_decision, summary, time, training_example,
};
use crate::store::sqlite::write::reason_name;
use crate::store::{
    ActorKind, Approval, ApprovalState, AuditEvent, AuditRecord, DayActivity, DecisionEvent,
    ExportQuery, LastApplied, Outbox, PaymentReturn, Posting, PostingFilter, PostingKind,
    PostingRecord, QueueSpan, Remainder, RemainderKind, Resolution, ReviewFilter, ReviewRecord,
    ReviewSummary, ReviewTotals, Sla, Snapshot, StoreError, StoredDecision, TrainingExample,
};
use chrono::{DateTime, NaiveDate, Utc};
use postgres::types::ToSql;
use postgres::{Client, Row};
use rust_decimal::Decimal;
use std::collections::BTreeMap;

/// A column of a row, or the store's error naming what was being read.
fn get<'a, T: postgres::types::FromSql<'a>>(
    r: &'a Row,
    i: usize,
    what: &str,
) -> Result<T, StoreError> {
    r.try_get(i).map_err(backend(what))
}

pub(super) const INVOICE_COLUMNS: &str = "id, customer_id, number, po_number, invoice_date, due_date, \
                               currency, amount::text, open_amount::text, terms";

pub(super) fn invoice_row(r: &Row) -> Result<Invoice, StoreError> {
    let w = "reading an invoice";
    invoice_from_text(
        get(r, 0, w)?,
        get(r, 1, w)?,
        get(r, 2, w)?,
        get(r, 3, w)?,
        [
            get(r, 4, w)?,
            get(r, 5, w)?,
            get(r, 6, w)?,
            get(r, 7, w)?,
            get(r, 8, w)?,
            get(r, 9, w)?,
        ],
    )
}

pub(super) const CUSTOMER_COLUMNS: &str = "id, name, parent_id, bank_accounts";

pub(super) fn customer_row(r: &Row) -> Result<Customer, StoreError> {
    let w = "reading a customer";
    let id: String = get(r, 0, w)?;
    let accounts: String = get(r, 3, w)?;
    Ok(Customer {
        bank_accounts: from_json(&accounts, &format!("customer {id} bank accounts"))?,
        name: get(r, 1, w)?,
        parent_id: get(r, 2, w)?,
        id,
    })
}

/// Who last paid each invoice (applications not reversed), for the invoices `ids`, or all.
pub(super) fn last_applied(
    c: &mut impl postgres::GenericClient,
    ids: Option<&[String]>,
) -> Result<Vec<LastApplied>, StoreError> {
    let w = "reading applications";
    let sql = format!(
        "SELECT a.invoice_id, a.payment_id, d.payment_json::jsonb ->> 'payment_date'
         FROM applications a
         JOIN (SELECT MAX(id) AS id FROM applications WHERE source <> 'reversed' {}
               GROUP BY invoice_id) last ON last.id = a.id
         LEFT JOIN decisions d ON d.payment_id = a.payment_id",
        if ids.is_some() {
            "AND invoice_id = ANY($1)"
        } else {
            ""
        }
    );
    let rows = match ids {
        Some(ids) => c.query(&sql, &[&ids]),
        None => c.query(&sql, &[]),
    }
    .map_err(backend(w))?;
    rows.iter()
        .map(|r| {
            let date: Option<String> = get(r, 2, w)?;
            Ok(LastApplied {
                invoice_id: get(r, 0, w)?,
                payment_id: get(r, 1, w)?,
                paid_on: date
                    .map(|d| d.parse().map_err(|e| corrupt("a stored payment date", e)))
                    .transpose()?,
            })
        })
        .collect()
}

pub(super) fn load(c: &mut Client) -> Result<Snapshot, StoreError> {
    // One snapshot for the whole load, so that it sees no write half-way.
    let mut tx = c
        .build_transaction()
        .isolation_level(postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .map_err(backend("beginning the load"))?;
    let mut snap = Snapshot::default();
    for r in tx
        .query(
            &format!("SELECT {CUSTOMER_COLUMNS} FROM customers ORDER BY seq"),
            &[],
        )
        .map_err(backend("reading customers"))?
    {
        snap.customers.push(customer_row(&r)?);
    }
    for r in tx
        .query(
            &format!("SELECT {INVOICE_COLUMNS} FROM invoices ORDER BY seq"),
            &[],
        )
        .map_err(backend("reading invoices"))?
    {
        snap.invoices.push(invoice_row(&r)?);
    }
    snap.last_applied = last_applied(&mut tx, None)?;
    snap.decided = strings(&mut tx, "SELECT payment_id FROM decisions ORDER BY seq")?;
    snap.open_reviews = strings(
        &mut tx,
        "SELECT payment_id FROM review_items WHERE state = 'open' ORDER BY seq",
    )?;
    snap.active_model = tx
        .query_opt("SELECT value FROM settings WHERE key = 'active_model'", &[])
        .map_err(backend("reading settings"))?
        .map(|r| get(&r, 0, "reading settings"))
        .transpose()?;
    let seq: i64 = tx
        .query_one("SELECT COALESCE(MAX(seq), 0) FROM changes", &[])
        .and_then(|r| r.try_get(0))
        .map_err(backend("reading the change feed's position"))?;
    snap.change_seq = u64::try_from(seq).unwrap_or(0);
    tx.commit().map_err(backend("ending the load"))?;
    Ok(snap)
}

fn strings(tx: &mut postgres::Transaction<'_>, sql: &str) -> Result<Vec<String>, StoreError> {
    tx.query(sql, &[])
        .map_err(backend("reading ids"))?
        .iter()
        .map(|r| get(r, 0, "reading ids"))
        .collect()
}

fn decision_row(r: &Row) -> Result<StoredDecision, StoreError> {
    let w = "reading a decision";
    let (p, d, at, id): (String, String, String, String) =
        (get(r, 0, w)?, get(r, 1, w)?, get(r, 2, w)?, get(r, 3, w)?);
    stored_decision(&p, &d, &at, &id)
}

/// First decisions after an outbox sequence, in sequence order (`store::outbox`). The outbox
/// sequence is taken under the write lock, so a row committed later never has a smaller one.
pub(super) fn decision_events(
    c: &mut Client,
    after: u64,
    limit: u32,
) -> Result<Vec<DecisionEvent>, StoreError> {
    let w = "reading the decision outbox";
    c.query(
        "SELECT d.payment_json, d.decision_json, d.decided_at, d.payment_id, o.sequence
         FROM decision_outbox o JOIN decisions d ON d.payment_id = o.payment_id
         WHERE o.sequence > $1 ORDER BY o.sequence LIMIT $2",
        &[&i64::try_from(after).unwrap_or(i64::MAX), &i64::from(limit)],
    )
    .map_err(backend(w))?
    .iter()
    .map(|r| {
        let seq: i64 = get(r, 4, w)?;
        Ok(DecisionEvent {
            sequence: u64::try_from(seq).map_err(|e| corrupt(format!("outbox row {seq}"), e))?,
            decision: decision_row(r)?,
        })
    })
    .collect()
}

/// How far the bus publisher got in `outbox`.
pub(super) fn bus_cursor(c: &mut Client, outbox: Outbox) -> Result<u64, StoreError> {
    let w = "reading the bus cursor";
    c.query_opt(
        "SELECT position FROM bus_cursors WHERE name = $1",
        &[&outbox.name()],
    )
    .map_err(backend(w))?
    .map_or(Ok(0), |r| get::<i64>(&r, 0, w).map(|p| p.max(0) as u64))
}

pub(super) fn decision(c: &mut Client, id: &str) -> Result<Option<StoredDecision>, StoreError> {
    c.query_opt(
        "SELECT payment_json, decision_json, decided_at, payment_id FROM decisions
         WHERE payment_id = $1",
        &[&id],
    )
    .map_err(backend("reading a decision"))?
    .map(|r| decision_row(&r))
    .transpose()
}

/// NUMERIC compares by value, so `100`, `100.0` and `100.00` are one amount here without the
/// SQLite store's list of spellings.
pub(super) fn decisions_by_amount(
    c: &mut Client,
    currency: Currency,
    amount: Decimal,
    limit: u32,
) -> Result<Vec<StoredDecision>, StoreError> {
    c.query(
        "SELECT payment_json, decision_json, decided_at, payment_id FROM decisions
         WHERE currency = $1 AND amount = $2::text::numeric
         ORDER BY decided_at DESC, seq DESC LIMIT $3",
        &[&currency.as_str(), &amount.to_string(), &i64::from(limit)],
    )
    .map_err(backend("finding decisions by amount"))?
    .iter()
    .map(decision_row)
    .collect()
}

pub(super) fn invoice(c: &mut Client, id: &str) -> Result<Option<Invoice>, StoreError> {
    c.query_opt(
        &format!("SELECT {INVOICE_COLUMNS} FROM invoices WHERE id = $1"),
        &[&id],
    )
    .map_err(backend("reading an invoice"))?
    .map(|r| invoice_row(&r))
    .transpose()
}

const SUMMARY_COLUMNS: &str =
    "payment_id, customer_id, amount::text, currency, reason, confidence, created_at, state, owner";

fn summary_row(r: &Row, w: &str) -> Result<ReviewSummary, StoreError> {
    summary((
        get(r, 0, w)?,
        get(r, 1, w)?,
        get(r, 2, w)?,
        get(r, 3, w)?,
        get(r, 4, w)?,
        get(r, 5, w)?,
        get(r, 6, w)?,
        get(r, 7, w)?,
        get(r, 8, w)?,
    ))
}

type Args = Vec<Box<dyn ToSql + Sync + Send>>;

fn refs(args: &Args) -> Vec<&(dyn ToSql + Sync)> {
    args.iter()
        .map(|a| a.as_ref() as &(dyn ToSql + Sync))
        .collect()
}

/// The WHERE clause of a review filter, with its arguments (the SQLite store's, in `$n`
/// placeholders); the reason is left out when asked.
fn review_where(f: &ReviewFilter, with_reason: bool) -> (String, Args) {
    review_where_in(
        f,
        with_reason,
        "$",
        |s| Box::new(s) as Box<dyn ToSql + Sync + Send>,
        |i| Box::new(i) as Box<dyn ToSql + Sync + Send>,
    )
}

pub(super) fn review_items(
    c: &mut Client,
    f: &ReviewFilter,
) -> Result<(Vec<ReviewSummary>, u64), StoreError> {
    let (filter, mut args) = review_where(f, true);
    let total: i64 = c
        .query_one(
            &format!("SELECT COUNT(*) FROM review_items {filter}"),
            &refs(&args),
        )
        .and_then(|r| r.try_get(0))
        .map_err(backend("counting review items"))?;
    args.push(Box::new(f.now.timestamp_millis()));
    let now_arg = args.len();
    args.push(Box::new(i64::from(f.limit)));
    let limit_arg = args.len();
    args.push(Box::new(i64::from(f.offset)));
    let offset_arg = args.len();
    // The priority of `ReviewSummary::priority`: a float, as it only orders the queue.
    let sql = format!(
        "SELECT {SUMMARY_COLUMNS} FROM review_items {filter}
         ORDER BY state = 'open' DESC,
                  amount_key::float8
                    * (1.0 + GREATEST(0, ${now_arg}::int8 - created_ms)::float8 / 86400000.0) DESC,
                  payment_id
         LIMIT ${limit_arg} OFFSET ${offset_arg}"
    );
    let w = "listing review items";
    let rows = c.query(&sql, &refs(&args)).map_err(backend(w))?;
    let items = rows
        .iter()
        .map(|r| summary_row(r, w))
        .collect::<Result<_, _>>()?;
    Ok((items, count(total)))
}

pub(super) fn review_item(c: &mut Client, id: &str) -> Result<Option<ReviewRecord>, StoreError> {
    let w = "reading a review item";
    let row = c
        .query_opt(
            &format!(
                "SELECT r.{}, r.resolution_json, d.payment_json, d.decision_json
                 FROM review_items r JOIN decisions d ON d.payment_id = r.payment_id
                 WHERE r.payment_id = $1",
                SUMMARY_COLUMNS.replace(", ", ", r.")
            ),
            &[&id],
        )
        .map_err(backend(w))?;
    let Some(r) = row else {
        return Ok(None);
    };
    let resolution: Option<String> = get(&r, 9, w)?;
    let (payment, decision): (String, String) = (get(&r, 10, w)?, get(&r, 11, w)?);
    let resolution: Option<Resolution> = match resolution {
        Some(r) => Some(from_json(&r, &format!("resolution of {id}"))?),
        None => None,
    };
    Ok(Some(ReviewRecord {
        summary: summary_row(&r, w)?,
        payment: from_json(&payment, &format!("payment {id}"))?,
        decision: from_json(&decision, &format!("decision {id}"))?,
        resolution,
    }))
}

pub(super) fn audit_events(
    c: &mut Client,
    subject: Option<&str>,
    after_id: u64,
    limit: u32,
) -> Result<Vec<AuditEvent>, StoreError> {
    let after = i64::try_from(after_id).unwrap_or(i64::MAX);
    let w = "reading audit events";
    let rows = c
        .query(
            "SELECT id, at, actor, action, subject, before_json, after_json FROM audit_events
             WHERE ($1::text IS NULL OR subject = $1) AND id > $2 ORDER BY id LIMIT $3",
            &[&subject, &after, &i64::from(limit)],
        )
        .map_err(backend(w))?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let id: i64 = get(r, 0, w)?;
        let what = format!("audit event {id}");
        let (at, before, after): (String, String, String) =
            (get(r, 1, w)?, get(r, 5, w)?, get(r, 6, w)?);
        out.push(AuditEvent {
            id: u64::try_from(id).unwrap_or(0),
            record: AuditRecord {
                at: time(&at, &what)?,
                actor: get(r, 2, w)?,
                action: get(r, 3, w)?,
                subject: get(r, 4, w)?,
                before: from_json(&before, &what)?,
                after: from_json(&after, &what)?,
            },
        });
    }
    Ok(out)
}

pub(super) fn training_examples(
    c: &mut Client,
    q: &ExportQuery,
) -> Result<Vec<TrainingExample>, StoreError> {
    // Keyset paging on the decisions' seq, as the SQLite store pages on rowid.
    let after = i64::try_from(q.after).unwrap_or(i64::MAX);
    let before = q.auto_decided_before.map(|t| t.to_rfc3339());
    let w = "reading labelled payments";
    let rows = c
        .query(
            "SELECT d.seq, d.payment_id, d.status, d.payment_json, d.decision_json, d.decided_at,
                    r.resolution_json
             FROM decisions d
             LEFT JOIN review_items r ON r.payment_id = d.payment_id AND r.state = 'resolved'
             WHERE d.seq > $1
               AND (r.resolution_json IS NOT NULL
                    OR ($2 AND d.status = 'auto'
                        AND ($3::text IS NULL
                             OR d.decided_at::timestamptz < $3::text::timestamptz)))
             ORDER BY d.seq
             LIMIT $4",
            &[&after, &q.include_auto, &before, &i64::from(q.limit)],
        )
        .map_err(backend(w))?;
    let mut out = Vec::new();
    for r in &rows {
        let seq: i64 = get(r, 0, w)?;
        if let Some(e) = training_example(
            u64::try_from(seq).unwrap_or(0),
            get(r, 1, w)?,
            get(r, 2, w)?,
            get(r, 3, w)?,
            get(r, 4, w)?,
            get(r, 5, w)?,
            get(r, 6, w)?,
        )? {
            out.push(e);
        }
    }
    Ok(out)
}

pub(super) fn review_totals(
    c: &mut Client,
    f: &ReviewFilter,
    sla: &Sla,
) -> Result<ReviewTotals, StoreError> {
    // Summed here as decimals, as the SQLite store does, so both total the same way.
    let (filter, args) = review_where(f, false);
    let w = "totalling review items";
    let rows = c
        .query(
            &format!(
                "SELECT payment_id, currency, amount::text, reason, state, created_ms
                 FROM review_items {filter}"
            ),
            &refs(&args),
        )
        .map_err(backend(w))?;
    let now_ms = f.now.timestamp_millis();
    let mut by_currency: BTreeMap<Currency, (u64, Decimal)> = BTreeMap::new();
    let mut by_reason: Vec<(Option<ReviewReason>, u64)> = Vec::new();
    let mut past_sla = 0;
    for r in &rows {
        let id: String = get(r, 0, w)?;
        let what = |f: &str| format!("review item {id} {f}");
        let reason = reason_from_name(get(r, 3, w)?, &what("reason"))?;
        match by_reason.iter_mut().find(|(x, _)| *x == reason) {
            Some((_, n)) => *n += 1,
            None => by_reason.push((reason, 1)),
        }
        if f.reason.is_some() && f.reason != reason {
            continue;
        }
        let amount = decimal(&get::<String>(r, 2, w)?, &what("amount"))?;
        let e = by_currency
            .entry(currency(&get::<String>(r, 1, w)?, &what("currency"))?)
            .or_insert((0, Decimal::ZERO));
        e.0 += 1;
        e.1 = e.1.checked_add(amount).ok_or_else(|| {
            corrupt(
                what("amount"),
                "the queue's total is beyond the decimal range",
            )
        })?;
        let (state, created_ms): (String, i64) = (get(r, 4, w)?, get(r, 5, w)?);
        if state == "open" && created_ms < now_ms - sla.limit(reason).num_milliseconds() {
            past_sla += 1;
        }
    }
    by_reason.sort_by_key(|(r, n)| (std::cmp::Reverse(*n), r.map(reason_name)));
    Ok(ReviewTotals {
        by_currency: by_currency
            .into_iter()
            .map(|(c, (n, sum))| (c, n, sum))
            .collect(),
        by_reason,
        past_sla,
    })
}

pub(super) fn daily_activity(
    c: &mut Client,
    since: NaiveDate,
) -> Result<Vec<DayActivity>, StoreError> {
    // Instants are RFC 3339 in UTC, so their first ten characters are the UTC day and a bare
    // date sorts before every instant of that day (as in the SQLite store).
    let since = since.to_string();
    let mut days: BTreeMap<NaiveDate, DayActivity> = BTreeMap::new();
    fn day<'a>(
        days: &'a mut BTreeMap<NaiveDate, DayActivity>,
        d: &str,
    ) -> Result<&'a mut DayActivity, StoreError> {
        let parsed: NaiveDate = d.parse().map_err(|e| corrupt("a stored instant", e))?;
        Ok(days.entry(parsed).or_insert_with(|| DayActivity {
            day: parsed,
            ..Default::default()
        }))
    }
    let w = "counting decisions per day";
    for r in c
        .query(
            "SELECT substr(decided_at, 1, 10) AS day, COUNT(*),
                    COUNT(*) FILTER (WHERE status = 'auto')
             FROM decisions WHERE decided_at >= $1 GROUP BY day",
            &[&since],
        )
        .map_err(backend(w))?
    {
        let d: String = get(&r, 0, w)?;
        let a = day(&mut days, &d)?;
        a.decided = count(get(&r, 1, w)?);
        a.auto = count(get(&r, 2, w)?);
    }
    let w = "counting review items per day";
    for r in c
        .query(
            "SELECT substr(created_at, 1, 10) AS day, reason, COUNT(*)
             FROM review_items WHERE created_at >= $1 GROUP BY day, reason ORDER BY day, reason",
            &[&since],
        )
        .map_err(backend(w))?
    {
        let d: String = get(&r, 0, w)?;
        let reason = reason_from_name(get(&r, 1, w)?, "a review item's reason")?;
        day(&mut days, &d)?
            .review_by_reason
            .push((reason, count(get(&r, 2, w)?)));
    }
    let w = "counting resolutions per day";
    for r in c
        .query(
            "SELECT substr(r.resolved_at, 1, 10) AS day, COUNT(*),
                    COUNT(*) FILTER (WHERE COALESCE(d.decision_json::jsonb -> 'suggestions',
                                                    '[]'::jsonb) NOT IN ('[]'::jsonb, 'null'::jsonb)),
                    COUNT(*) FILTER (WHERE r.resolution_json::jsonb ->> 'action' = 'accept_suggestion'
                                     AND r.resolution_json::jsonb ->> 'suggestion_index' = '0')
             FROM review_items r JOIN decisions d ON d.payment_id = r.payment_id
             WHERE r.state = 'resolved' AND r.resolved_at >= $1 GROUP BY day",
            &[&since],
        )
        .map_err(backend(w))?
    {
        let d: String = get(&r, 0, w)?;
        let a = day(&mut days, &d)?;
        a.resolved = count(get(&r, 1, w)?);
        a.resolved_with_suggestion = count(get(&r, 2, w)?);
        a.accepted_top = count(get(&r, 3, w)?);
    }
    Ok(days.into_values().collect())
}

pub(super) fn queue_spans(
    c: &mut Client,
    since: DateTime<Utc>,
) -> Result<Vec<QueueSpan>, StoreError> {
    let w = "reading the queue's history";
    let rows = c
        .query(
            "SELECT payment_id, amount::text, currency, created_at, resolved_at, reason
             FROM review_items WHERE state = 'open'
             UNION ALL
             SELECT payment_id, amount::text, currency, created_at, resolved_at, reason
             FROM review_items WHERE state <> 'open' AND resolved_at >= $1",
            &[&since.to_rfc3339()],
        )
        .map_err(backend(w))?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let id: String = get(r, 0, w)?;
        let what = |f: &str| format!("review item {id} {f}");
        let left: Option<String> = get(r, 4, w)?;
        out.push(QueueSpan {
            amount: decimal(&get::<String>(r, 1, w)?, &what("amount"))?,
            currency: currency(&get::<String>(r, 2, w)?, &what("currency"))?,
            entered: time(&get::<String>(r, 3, w)?, &what("created_at"))?,
            left: left.map(|l| time(&l, &what("resolved_at"))).transpose()?,
            reason: reason_from_name(get(r, 5, w)?, &what("reason"))?,
        });
    }
    Ok(out)
}

pub(super) fn unapplied_remainders(c: &mut Client) -> Result<Vec<Remainder>, StoreError> {
    // A decimal is zero when no digit but 0 appears in it ("0", "0.00", "-0.0").
    let w = "reading unapplied cash";
    let rows = c
        .query(
            "SELECT payment_id, resolution_json::jsonb ->> 'unapplied',
                    resolution_json::jsonb ->> 'action', currency, created_at
             FROM review_items
             WHERE state = 'resolved' AND resolution_json::jsonb ->> 'unapplied' ~ '[1-9]'
             UNION ALL
             SELECT payment_id, remainder::text, 'auto', currency, decided_at
             FROM decisions
             WHERE status = 'auto' AND remainder IS NOT NULL",
            &[],
        )
        .map_err(backend(w))?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let id: String = get(r, 0, w)?;
        let what = |f: &str| format!("payment {id} {f}");
        let action: String = get(r, 2, w)?;
        let kind = match action.as_str() {
            "leave_unapplied" => RemainderKind::LeftUnapplied,
            "put_on_account" => RemainderKind::OnAccount,
            _ => RemainderKind::Excess,
        };
        out.push(Remainder {
            kind,
            amount: decimal(&get::<String>(r, 1, w)?, &what("unapplied"))?,
            currency: currency(&get::<String>(r, 3, w)?, &what("currency"))?,
            received: time(&get::<String>(r, 4, w)?, &what("decided_at"))?,
        });
    }
    Ok(out)
}

pub(super) fn payment_return(
    c: &mut Client,
    payment_id: &str,
) -> Result<Option<PaymentReturn>, StoreError> {
    let w = "reading a payment's return";
    let Some(r) = c
        .query_opt(
            "SELECT return_code, reason, actor_kind, actor, at FROM payment_returns
             WHERE payment_id = $1",
            &[&payment_id],
        )
        .map_err(backend(w))?
    else {
        return Ok(None);
    };
    let what = format!("return of payment {payment_id}");
    let (kind, at): (String, String) = (get(&r, 2, w)?, get(&r, 4, w)?);
    Ok(Some(PaymentReturn {
        return_code: get(&r, 0, w)?,
        reason: get(&r, 1, w)?,
        actor_kind: ActorKind::parse(&kind)
            .ok_or_else(|| corrupt(&what, format!("unknown actor kind {kind}")))?,
        actor: get(&r, 3, w)?,
        at: time(&at, &what)?,
    }))
}

pub(super) fn pending_approvals(
    c: &mut impl postgres::GenericClient,
) -> Result<Vec<Approval>, StoreError> {
    let w = "reading approvals";
    c.query(
        "SELECT id, approval_json FROM approvals WHERE state = $1 ORDER BY seq",
        &[&ApprovalState::Pending.name()],
    )
    .map_err(backend(w))?
    .iter()
    .map(|r| {
        let (id, body): (String, String) = (get(r, 0, w)?, get(r, 1, w)?);
        from_json(&body, &format!("approval {id}"))
    })
    .collect()
}

/// Postings after a sequence, in sequence order. One statement, so one snapshot; and as the
/// sequence is handed out under the write lock in commit order, the prefix it returns has no gap.
pub(super) fn postings(
    c: &mut Client,
    filter: &PostingFilter,
    after: u64,
    limit: u32,
) -> Result<Vec<Posting>, StoreError> {
    const COLUMNS: &str = "sequence, kind, payment_id, invoice_id, customer_id, currency,
        amount::text, reason_code, actor_kind, actor, model_version, rules_version, reverses, at";
    let after = i64::try_from(after).unwrap_or(i64::MAX);
    let limit = i64::from(limit);
    let w = "reading postings";
    let rows = match filter {
        PostingFilter::All => c.query(
            &format!(
                "SELECT {COLUMNS} FROM postings WHERE sequence > $1 ORDER BY sequence LIMIT $2"
            ),
            &[&after, &limit],
        ),
        PostingFilter::Payment(p) => c.query(
            &format!(
                "SELECT {COLUMNS} FROM postings WHERE sequence > $1 AND payment_id = $3
                 ORDER BY sequence LIMIT $2"
            ),
            &[&after, &limit, p],
        ),
        PostingFilter::Invoice(i) => c.query(
            &format!(
                "SELECT {COLUMNS} FROM postings WHERE sequence > $1 AND invoice_id = $3
                 ORDER BY sequence LIMIT $2"
            ),
            &[&after, &limit, i],
        ),
        PostingFilter::Customer(cu) => c.query(
            &format!(
                "SELECT {COLUMNS} FROM postings WHERE sequence > $1 AND customer_id = $3
                 ORDER BY sequence LIMIT $2"
            ),
            &[&after, &limit, cu],
        ),
    }
    .map_err(backend(w))?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let seq: i64 = get(r, 0, w)?;
        let what = format!("posting {seq}");
        let (kind, ak): (String, String) = (get(r, 1, w)?, get(r, 8, w)?);
        let reverses: Option<i64> = get(r, 12, w)?;
        out.push(Posting {
            sequence: u64::try_from(seq).map_err(|e| corrupt(&what, e))?,
            record: PostingRecord {
                kind: PostingKind::parse(&kind)
                    .ok_or_else(|| corrupt(&what, format!("unknown kind {kind}")))?,
                payment_id: get(r, 2, w)?,
                invoice_id: get(r, 3, w)?,
                customer_id: get(r, 4, w)?,
                currency: currency(&get::<String>(r, 5, w)?, &what)?,
                amount: decimal(&get::<String>(r, 6, w)?, &what)?,
                reason_code: get(r, 7, w)?,
                actor_kind: ActorKind::parse(&ak)
                    .ok_or_else(|| corrupt(&what, format!("unknown actor kind {ak}")))?,
                actor: get(r, 9, w)?,
                model_version: get(r, 10, w)?,
                rules_version: get(r, 11, w)?,
                reverses: reverses
                    .map(|v| u64::try_from(v).map_err(|e| corrupt(&what, e)))
                    .transpose()?,
                at: time(&get::<String>(r, 13, w)?, &what)?,
            },
        });
    }
    Ok(out)
}
