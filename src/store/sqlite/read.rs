//! The SQL of the reads, each run on a reader connection of its own.

use super::write::{amount_key, reason_name};
use super::{backend, corrupt};
use crate::domain::{Currency, Customer, Invoice, LabelSource, Payment, ReviewReason, Terms};
use crate::store::{
    ActorKind, AuditEvent, AuditRecord, DayActivity, DecisionEvent, ExportQuery, LastApplied,
    OwnerFilter, PaymentReturn, Posting, PostingFilter, PostingKind, PostingRecord, QueueSpan,
    Remainder, RemainderKind, Resolution, ReviewFilter, ReviewRecord, ReviewState, ReviewSummary,
    ReviewTotals, Sla, Snapshot, StoreError, StoredDecision, TrainingExample,
};
use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, params};
use rust_decimal::Decimal;
use std::collections::BTreeMap;

pub(in crate::store) fn time(s: &str, what: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| corrupt(what, e))
}

pub(in crate::store) fn decimal(s: &str, what: &str) -> Result<Decimal, StoreError> {
    s.parse().map_err(|e| corrupt(what, e))
}

pub(in crate::store) fn from_json<T: serde::de::DeserializeOwned>(
    s: &str,
    what: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|e| corrupt(what, e))
}

pub(super) fn invoice_from_row(
    r: &Row<'_>,
) -> Result<Result<Invoice, StoreError>, rusqlite::Error> {
    let text = |i: usize| r.get::<_, String>(i);
    let (id, customer_id, number, po_number) =
        (text(0)?, text(1)?, text(2)?, r.get::<_, Option<String>>(3)?);
    let rest = [text(4)?, text(5)?, text(6)?, text(7)?, text(8)?, text(9)?];
    Ok(invoice_from_text(id, customer_id, number, po_number, rest))
}

/// An invoice from its stored text: `[invoice_date, due_date, currency, amount, open_amount,
/// terms]` after the ids; the PostgreSQL store reads its rows through this too.
pub(in crate::store) fn invoice_from_text(
    id: String,
    customer_id: String,
    number: String,
    po_number: Option<String>,
    [invoice_date, due_date, currency, amount, open_amount, terms]: [String; 6],
) -> Result<Invoice, StoreError> {
    let what = |f: &str| format!("invoice {id} {f}");
    let date = |s: &str, f: &str| -> Result<NaiveDate, StoreError> {
        s.parse().map_err(|e| corrupt(what(f), e))
    };
    Ok(Invoice {
        invoice_date: date(&invoice_date, "invoice_date")?,
        due_date: date(&due_date, "due_date")?,
        currency: currency.parse().map_err(|e| corrupt(what("currency"), e))?,
        amount: decimal(&amount, &what("amount"))?,
        open_amount: decimal(&open_amount, &what("open_amount"))?,
        terms: Terms::parse(&terms).map_err(|e| corrupt(what("terms"), e))?,
        customer_id,
        number,
        po_number,
        id,
    })
}

pub(super) const INVOICE_COLUMNS: &str = "id, customer_id, number, po_number, invoice_date, due_date, \
                               currency, amount, open_amount, terms";

pub(super) fn load(conn: &Connection) -> Result<Snapshot, StoreError> {
    let mut snap = Snapshot::default();
    let mut s = conn
        .prepare("SELECT id, name, parent_id, bank_accounts FROM customers ORDER BY rowid")
        .map_err(backend("reading customers"))?;
    let rows = s
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get::<_, String>(3)?,
            ))
        })
        .map_err(backend("reading customers"))?;
    for row in rows {
        let (id, name, parent_id, accounts) = row.map_err(backend("reading customers"))?;
        let bank_accounts = from_json(&accounts, &format!("customer {id} bank accounts"))?;
        snap.customers.push(Customer {
            id,
            name,
            parent_id,
            bank_accounts,
        });
    }
    let mut s = conn
        .prepare(&format!(
            "SELECT {INVOICE_COLUMNS} FROM invoices ORDER BY rowid"
        ))
        .map_err(backend("reading invoices"))?;
    let rows = s
        .query_map([], invoice_from_row)
        .map_err(backend("reading invoices"))?;
    for row in rows {
        snap.invoices
            .push(row.map_err(backend("reading invoices"))??);
    }
    let mut s = conn
        .prepare(
            "SELECT a.invoice_id, a.payment_id, json_extract(d.payment_json, '$.payment_date')
             FROM applications a
             JOIN (SELECT MAX(id) AS id FROM applications WHERE source != 'reversed'
                   GROUP BY invoice_id) last
               ON last.id = a.id
             LEFT JOIN decisions d ON d.payment_id = a.payment_id",
        )
        .map_err(backend("reading applications"))?;
    let rows = s
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
            ))
        })
        .map_err(backend("reading applications"))?;
    for row in rows {
        let (invoice_id, payment_id, date) = row.map_err(backend("reading applications"))?;
        let paid_on = match date {
            Some(d) => Some(
                d.parse::<NaiveDate>()
                    .map_err(|e| corrupt("a stored payment date", e))?,
            ),
            None => None,
        };
        snap.last_applied.push(LastApplied {
            invoice_id,
            payment_id,
            paid_on,
        });
    }
    snap.decided = strings(conn, "SELECT payment_id FROM decisions ORDER BY rowid")?;
    snap.open_reviews = strings(
        conn,
        "SELECT payment_id FROM review_items WHERE state = 'open' ORDER BY rowid",
    )?;
    snap.active_model = conn
        .query_row(
            "SELECT value FROM settings WHERE key = 'active_model'",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(backend("reading settings"))?;
    Ok(snap)
}

pub(super) fn strings(conn: &Connection, sql: &str) -> Result<Vec<String>, StoreError> {
    let mut s = conn.prepare(sql).map_err(backend("reading ids"))?;
    let rows = s
        .query_map([], |r| r.get(0))
        .map_err(backend("reading ids"))?;
    rows.collect::<Result<Vec<String>, _>>()
        .map_err(backend("reading ids"))
}

pub(in crate::store) fn stored_decision(
    payment_json: &str,
    decision_json: &str,
    decided_at: &str,
    id: &str,
) -> Result<StoredDecision, StoreError> {
    Ok(StoredDecision {
        payment: from_json(payment_json, &format!("payment {id}"))?,
        decision: from_json(decision_json, &format!("decision {id}"))?,
        decided_at: time(decided_at, &format!("decision {id} time"))?,
    })
}

pub(super) const SUMMARY_COLUMNS: &str =
    "payment_id, customer_id, amount, currency, reason, confidence, created_at, state, owner";

pub(in crate::store) type SummaryRow = (
    String,
    Option<String>,
    String,
    String,
    Option<String>,
    f64,
    String,
    String,
    Option<String>,
);

pub(super) fn summary_row(r: &Row<'_>) -> rusqlite::Result<SummaryRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
    ))
}

pub(in crate::store) fn summary(row: SummaryRow) -> Result<ReviewSummary, StoreError> {
    let (payment_id, customer_id, amount, currency, reason, confidence, created_at, state, owner) =
        row;
    let what = |f: &str| format!("review item {payment_id} {f}");
    let reason = reason_from_name(reason, &what("reason"))?;
    Ok(ReviewSummary {
        amount: decimal(&amount, &what("amount"))?,
        currency: currency.parse().map_err(|e| corrupt(what("currency"), e))?,
        reason,
        confidence,
        created_at: time(&created_at, &what("created_at"))?,
        state: match state.as_str() {
            "open" => ReviewState::Open,
            "returned" => ReviewState::Returned,
            _ => ReviewState::Resolved,
        },
        customer_id,
        payment_id,
        owner,
    })
}

/// The WHERE clause of a review filter, with its arguments; the reason is left out when asked.
pub(super) fn review_where(f: &ReviewFilter, with_reason: bool) -> (String, Vec<Value>) {
    review_where_in(f, with_reason, "?", Value::Text, Value::Integer)
}

/// [`review_where`] for any SQL dialect: placeholders are `prefix` and the argument's number
/// (`?1`, `$1`), and `text` and `integer` make the backend's arguments. The PostgreSQL store
/// builds its filters with it too, so both stores filter the queue alike.
pub(in crate::store) fn review_where_in<A>(
    f: &ReviewFilter,
    with_reason: bool,
    prefix: &str,
    text: impl Fn(String) -> A,
    integer: impl Fn(i64) -> A,
) -> (String, Vec<A>) {
    let now_ms = f.now.timestamp_millis();
    let mut clauses: Vec<String> = Vec::new();
    let mut args: Vec<A> = Vec::new();
    if !f.include_resolved {
        clauses.push("state = 'open'".into());
    }
    if let Some(c) = &f.customer_id {
        args.push(text(c.clone()));
        clauses.push(format!("customer_id = {prefix}{}", args.len()));
    }
    match &f.owner {
        None => {}
        Some(OwnerFilter::Unassigned) => clauses.push("owner IS NULL".into()),
        Some(OwnerFilter::Analyst(name)) => {
            args.push(text(name.clone()));
            clauses.push(format!("owner = {prefix}{}", args.len()));
        }
    }
    if let (Some(r), true) = (f.reason, with_reason) {
        args.push(text(reason_name(r)));
        clauses.push(format!("reason = {prefix}{}", args.len()));
    }
    if let Some(a) = f.min_amount {
        args.push(integer(amount_key(a)));
        clauses.push(format!("amount_key >= {prefix}{}", args.len()));
    }
    if let Some(a) = f.max_amount {
        args.push(integer(amount_key(a)));
        clauses.push(format!("amount_key <= {prefix}{}", args.len()));
    }
    const DAY_MS: i64 = 86_400_000;
    if let Some(d) = f.min_age_days {
        args.push(integer(now_ms.saturating_sub(i64::from(d) * DAY_MS)));
        clauses.push(format!("created_ms <= {prefix}{}", args.len()));
    }
    if let Some(d) = f.max_age_days {
        // Whole days: an item 3.5 days old is 3 days old.
        args.push(integer(now_ms.saturating_sub((i64::from(d) + 1) * DAY_MS)));
        clauses.push(format!("created_ms > {prefix}{}", args.len()));
    }
    let filter = if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    };
    (filter, args)
}

pub(super) fn review_items(
    conn: &Connection,
    f: &ReviewFilter,
) -> Result<(Vec<ReviewSummary>, u64), StoreError> {
    let now_ms = f.now.timestamp_millis();
    let (filter, mut args) = review_where(f, true);
    let total: i64 = conn
        .query_row(
            &format!("SELECT COUNT(*) FROM review_items {filter}"),
            rusqlite::params_from_iter(args.iter()),
            |r| r.get(0),
        )
        .map_err(backend("counting review items"))?;
    args.push(Value::Integer(now_ms));
    let now_arg = args.len();
    args.push(Value::Integer(i64::from(f.limit)));
    let limit_arg = args.len();
    args.push(Value::Integer(i64::from(f.offset)));
    let offset_arg = args.len();
    let sql = format!(
        "SELECT {SUMMARY_COLUMNS} FROM review_items {filter}
         ORDER BY state = 'open' DESC,
                  amount_key * (1.0 + MAX(0, ?{now_arg} - created_ms) / 86400000.0) DESC,
                  payment_id
         LIMIT ?{limit_arg} OFFSET ?{offset_arg}"
    );
    let mut s = conn
        .prepare(&sql)
        .map_err(backend("listing review items"))?;
    let rows = s
        .query_map(rusqlite::params_from_iter(args.iter()), summary_row)
        .map_err(backend("listing review items"))?;
    let mut out = Vec::new();
    for row in rows {
        out.push(summary(row.map_err(backend("listing review items"))?)?);
    }
    Ok((out, u64::try_from(total).unwrap_or(0)))
}

pub(super) fn review_item(conn: &Connection, id: &str) -> Result<Option<ReviewRecord>, StoreError> {
    let row = conn
        .query_row(
            &format!(
                "SELECT r.{}, r.resolution_json, d.payment_json, d.decision_json
                 FROM review_items r JOIN decisions d ON d.payment_id = r.payment_id
                 WHERE r.payment_id = ?1",
                SUMMARY_COLUMNS.replace(", ", ", r.")
            ),
            params![id],
            |r| {
                Ok((
                    summary_row(r)?,
                    r.get::<_, Option<String>>(9)?,
                    r.get::<_, String>(10)?,
                    r.get::<_, String>(11)?,
                ))
            },
        )
        .optional()
        .map_err(backend("reading a review item"))?;
    let Some((s, resolution, payment, decision)) = row else {
        return Ok(None);
    };
    let resolution: Option<Resolution> = match resolution {
        Some(r) => Some(from_json(&r, &format!("resolution of {id}"))?),
        None => None,
    };
    Ok(Some(ReviewRecord {
        summary: summary(s)?,
        payment: from_json(&payment, &format!("payment {id}"))?,
        decision: from_json(&decision, &format!("decision {id}"))?,
        resolution,
    }))
}

pub(super) fn audit_events(
    conn: &Connection,
    subject: Option<&str>,
    after_id: u64,
    limit: u32,
) -> Result<Vec<AuditEvent>, StoreError> {
    let after = i64::try_from(after_id).unwrap_or(i64::MAX);
    let mut s = conn
        .prepare(
            "SELECT id, at, actor, action, subject, before_json, after_json FROM audit_events
             WHERE (?1 IS NULL OR subject = ?1) AND id > ?2 ORDER BY id LIMIT ?3",
        )
        .map_err(backend("reading audit events"))?;
    let rows = s
        .query_map(params![subject, after, limit], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, String>(6)?,
            ))
        })
        .map_err(backend("reading audit events"))?;
    let mut out = Vec::new();
    for row in rows {
        let (id, at, actor, action, subject, before, after) =
            row.map_err(backend("reading audit events"))?;
        let what = format!("audit event {id}");
        out.push(AuditEvent {
            id: u64::try_from(id).unwrap_or(0),
            record: AuditRecord {
                at: time(&at, &what)?,
                actor,
                action,
                subject,
                before: from_json(&before, &what)?,
                after: from_json(&after, &what)?,
            },
        });
    }
    Ok(out)
}

pub(super) fn training_examples(
    conn: &Connection,
    q: &ExportQuery,
) -> Result<Vec<TrainingExample>, StoreError> {
    // Keyset paging on the decisions' rowid: each page is one short read, and the export order
    // is the order the payments were decided in. A resolution joins its review decision.
    let mut s = conn
        .prepare(
            "SELECT d.rowid, d.payment_id, d.status, d.payment_json, d.decision_json, d.decided_at,
                    r.resolution_json
             FROM decisions d
             LEFT JOIN review_items r ON r.payment_id = d.payment_id AND r.state = 'resolved'
             WHERE d.rowid > ?1
               AND (r.resolution_json IS NOT NULL
                    OR (?2 AND d.status = 'auto'
                        AND (?3 IS NULL OR julianday(d.decided_at) < julianday(?3))))
             ORDER BY d.rowid
             LIMIT ?4",
        )
        .map_err(backend("reading labelled payments"))?;
    let after = i64::try_from(q.after).unwrap_or(i64::MAX);
    let before = q.auto_decided_before.map(|t| t.to_rfc3339());
    let rows = s
        .query_map(
            params![after, q.include_auto, before, i64::from(q.limit)],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, Option<String>>(6)?,
                ))
            },
        )
        .map_err(backend("reading labelled payments"))?;
    let mut out = Vec::new();
    for row in rows {
        let (rowid, id, status, payment, decision, at, resolution) =
            row.map_err(backend("reading labelled payments"))?;
        if let Some(e) = training_example(
            u64::try_from(rowid).unwrap_or(0),
            id,
            status,
            payment,
            decision,
            at,
            resolution,
        )? {
            out.push(e);
        }
    }
    Ok(out)
}

/// A decided payment as a training example: labelled by its resolution, or by the decision
/// itself when it was applied automatically; `None` for an unresolved review decision.
pub(in crate::store) fn training_example(
    position: u64,
    id: String,
    status: String,
    payment: String,
    decision: String,
    at: String,
    resolution: Option<String>,
) -> Result<Option<TrainingExample>, StoreError> {
    let example = match resolution {
        Some(resolution) => {
            let payment: Payment = from_json(&payment, &format!("payment {id}"))?;
            let resolution: Resolution = from_json(&resolution, &format!("resolution of {id}"))?;
            TrainingExample {
                payment,
                source: LabelSource::Analyst,
                allocations: resolution
                    .allocations
                    .into_iter()
                    .map(|a| (a.invoice_id, a.amount))
                    .collect(),
                decided_at: resolution.resolved_at,
                position,
            }
        }
        None if status == "auto" => {
            let StoredDecision {
                payment,
                decision,
                decided_at,
            } = stored_decision(&payment, &decision, &at, &id)?;
            TrainingExample {
                payment,
                source: LabelSource::Auto,
                allocations: decision
                    .allocations
                    .into_iter()
                    .map(|a| (a.invoice_id, a.amount))
                    .collect(),
                decided_at,
                position,
            }
        }
        None => return Ok(None),
    };
    Ok(Some(example))
}

pub(in crate::store) fn reason_from_name(
    name: Option<String>,
    what: &str,
) -> Result<Option<ReviewReason>, StoreError> {
    name.map(|r| {
        serde_json::from_value::<ReviewReason>(serde_json::Value::String(r))
            .map_err(|e| corrupt(what, e))
    })
    .transpose()
}

pub(in crate::store) fn currency(s: &str, what: &str) -> Result<Currency, StoreError> {
    s.parse().map_err(|e| corrupt(what, e))
}

pub(in crate::store) fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

pub(super) fn review_totals(
    conn: &Connection,
    f: &ReviewFilter,
    sla: &Sla,
) -> Result<ReviewTotals, StoreError> {
    // The amounts are summed here, as decimals: SQLite would sum the text as floating point.
    let (filter, args) = review_where(f, false);
    let mut s = conn
        .prepare(&format!(
            "SELECT payment_id, currency, amount, reason, state, created_ms FROM review_items {filter}"
        ))
        .map_err(backend("totalling review items"))?;
    let rows = s
        .query_map(rusqlite::params_from_iter(args.iter()), |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, i64>(5)?,
            ))
        })
        .map_err(backend("totalling review items"))?;
    let now_ms = f.now.timestamp_millis();
    let mut by_currency: BTreeMap<Currency, (u64, Decimal)> = BTreeMap::new();
    let mut by_reason: Vec<(Option<ReviewReason>, u64)> = Vec::new();
    let mut past_sla = 0;
    for row in rows {
        let (id, cur, amount, reason, state, created_ms) =
            row.map_err(backend("totalling review items"))?;
        let what = |f: &str| format!("review item {id} {f}");
        let reason = reason_from_name(reason, &what("reason"))?;
        match by_reason.iter_mut().find(|(r, _)| *r == reason) {
            Some((_, n)) => *n += 1,
            None => by_reason.push((reason, 1)),
        }
        if f.reason.is_some() && f.reason != reason {
            continue;
        }
        let amount = decimal(&amount, &what("amount"))?;
        let e = by_currency
            .entry(currency(&cur, &what("currency"))?)
            .or_insert((0, Decimal::ZERO));
        e.0 += 1;
        e.1 = e.1.checked_add(amount).ok_or_else(|| {
            corrupt(
                what("amount"),
                "the queue's total is beyond the decimal range",
            )
        })?;
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
    conn: &Connection,
    since: NaiveDate,
) -> Result<Vec<DayActivity>, StoreError> {
    // Instants are stored as RFC 3339 in UTC, so their first ten characters are the UTC day and
    // a bare date sorts before every instant of that day.
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
    let mut s = conn
        .prepare(
            "SELECT substr(decided_at, 1, 10) AS day, COUNT(*), SUM(status = 'auto')
             FROM decisions WHERE decided_at >= ?1 GROUP BY day",
        )
        .map_err(backend("counting decisions per day"))?;
    let rows = s
        .query_map(params![since], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })
        .map_err(backend("counting decisions per day"))?;
    for row in rows {
        let (d, decided, auto) = row.map_err(backend("counting decisions per day"))?;
        let a = day(&mut days, &d)?;
        a.decided = count(decided);
        a.auto = count(auto);
    }
    let mut s = conn
        .prepare(
            "SELECT substr(created_at, 1, 10) AS day, reason, COUNT(*)
             FROM review_items WHERE created_at >= ?1 GROUP BY day, reason ORDER BY day, reason",
        )
        .map_err(backend("counting review items per day"))?;
    let rows = s
        .query_map(params![since], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })
        .map_err(backend("counting review items per day"))?;
    for row in rows {
        let (d, reason, n) = row.map_err(backend("counting review items per day"))?;
        let reason = reason_from_name(reason, "a review item's reason")?;
        day(&mut days, &d)?
            .review_by_reason
            .push((reason, count(n)));
    }
    let mut s = conn
        .prepare(
            "SELECT substr(r.resolved_at, 1, 10) AS day, COUNT(*),
                    SUM(json_array_length(d.decision_json, '$.suggestions') > 0),
                    SUM(json_extract(r.resolution_json, '$.action') = 'accept_suggestion'
                        AND json_extract(r.resolution_json, '$.suggestion_index') = 0)
             FROM review_items r JOIN decisions d ON d.payment_id = r.payment_id
             WHERE r.state = 'resolved' AND r.resolved_at >= ?1 GROUP BY day",
        )
        .map_err(backend("counting resolutions per day"))?;
    let rows = s
        .query_map(params![since], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })
        .map_err(backend("counting resolutions per day"))?;
    for row in rows {
        let (d, resolved, with_suggestion, top) =
            row.map_err(backend("counting resolutions per day"))?;
        let a = day(&mut days, &d)?;
        a.resolved = count(resolved);
        a.resolved_with_suggestion = count(with_suggestion);
        a.accepted_top = count(top);
    }
    Ok(days.into_values().collect())
}

pub(super) fn queue_spans(
    conn: &Connection,
    since: DateTime<Utc>,
) -> Result<Vec<QueueSpan>, StoreError> {
    let mut s = conn
        .prepare(
            "SELECT payment_id, amount, currency, created_at, resolved_at, reason FROM review_items
             WHERE state = 'open'
             UNION ALL
             SELECT payment_id, amount, currency, created_at, resolved_at, reason FROM review_items
             WHERE state != 'open' AND resolved_at >= ?1",
        )
        .map_err(backend("reading the queue's history"))?;
    let rows = s
        .query_map(params![since.to_rfc3339()], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, Option<String>>(5)?,
            ))
        })
        .map_err(backend("reading the queue's history"))?;
    let mut out = Vec::new();
    for row in rows {
        let (id, amount, cur, entered, left, reason) =
            row.map_err(backend("reading the queue's history"))?;
        let what = |f: &str| format!("review item {id} {f}");
        out.push(QueueSpan {
            amount: decimal(&amount, &what("amount"))?,
            currency: currency(&cur, &what("currency"))?,
            entered: time(&entered, &what("created_at"))?,
            left: left.map(|l| time(&l, &what("resolved_at"))).transpose()?,
            reason: reason_from_name(reason, &what("reason"))?,
        });
    }
    Ok(out)
}

pub(super) fn unapplied_remainders(conn: &Connection) -> Result<Vec<Remainder>, StoreError> {
    // A decimal is zero when no digit but 0 appears in it ("0", "0.00", "-0.0").
    let mut s = conn
        .prepare(
            "SELECT payment_id, json_extract(resolution_json, '$.unapplied'),
                    json_extract(resolution_json, '$.action'), currency, created_at
             FROM review_items
             WHERE state = 'resolved' AND json_extract(resolution_json, '$.unapplied') GLOB '*[1-9]*'
             UNION ALL
             SELECT payment_id, remainder, 'auto', currency, decided_at
             FROM decisions
             WHERE status = 'auto' AND remainder IS NOT NULL",
        )
        .map_err(backend("reading unapplied cash"))?;
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
        .map_err(backend("reading unapplied cash"))?;
    let mut out = Vec::new();
    for row in rows {
        let (id, amount, action, cur, received) = row.map_err(backend("reading unapplied cash"))?;
        let what = |f: &str| format!("payment {id} {f}");
        let kind = match action.as_str() {
            "leave_unapplied" => RemainderKind::LeftUnapplied,
            "put_on_account" => RemainderKind::OnAccount,
            _ => RemainderKind::Excess,
        };
        out.push(Remainder {
            kind,
            amount: decimal(&amount, &what("unapplied"))?,
            currency: currency(&cur, &what("currency"))?,
            received: time(&received, &what("decided_at"))?,
        });
    }
    Ok(out)
}

pub(super) fn payment_return(
    conn: &Connection,
    payment_id: &str,
) -> Result<Option<PaymentReturn>, StoreError> {
    let row = conn
        .prepare_cached(
            "SELECT return_code, reason, actor_kind, actor, at FROM payment_returns
             WHERE payment_id = ?1",
        )
        .and_then(|mut s| {
            s.query_row(params![payment_id], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                ))
            })
            .optional()
        })
        .map_err(backend("reading a payment's return"))?;
    let Some((return_code, reason, kind, actor, at)) = row else {
        return Ok(None);
    };
    let what = format!("return of payment {payment_id}");
    Ok(Some(PaymentReturn {
        return_code,
        reason,
        actor_kind: ActorKind::parse(&kind)
            .ok_or_else(|| corrupt(&what, format!("unknown actor kind {kind}")))?,
        actor,
        at: time(&at, &what)?,
    }))
}

/// First decisions after an outbox sequence, in sequence order (`store::outbox`).
pub(super) fn decision_events(
    conn: &Connection,
    after: u64,
    limit: u32,
) -> Result<Vec<DecisionEvent>, StoreError> {
    let after = i64::try_from(after).unwrap_or(i64::MAX);
    let mut s = conn
        .prepare_cached(
            "SELECT o.sequence, d.payment_json, d.decision_json, d.decided_at, d.payment_id
             FROM decision_outbox o JOIN decisions d ON d.payment_id = o.payment_id
             WHERE o.sequence > ?1 ORDER BY o.sequence LIMIT ?2",
        )
        .map_err(backend("reading the decision outbox"))?;
    let rows = s
        .query_map(params![after, limit], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
            ))
        })
        .map_err(backend("reading the decision outbox"))?;
    let mut out = Vec::new();
    for row in rows {
        let (seq, p, d, at, id) = row.map_err(backend("reading the decision outbox"))?;
        out.push(DecisionEvent {
            sequence: u64::try_from(seq).map_err(|e| corrupt(format!("outbox row {seq}"), e))?,
            decision: stored_decision(&p, &d, &at, &id)?,
        });
    }
    Ok(out)
}

/// Postings after a sequence, in sequence order. One statement, so one snapshot: the prefix it
/// returns has no gap even while the writer commits.
pub(super) fn postings(
    conn: &Connection,
    filter: &PostingFilter,
    after: u64,
    limit: u32,
) -> Result<Vec<Posting>, StoreError> {
    const COLUMNS: &str = "sequence, kind, payment_id, invoice_id, customer_id, currency, amount,
        reason_code, actor_kind, actor, model_version, rules_version, reverses, at";
    let after = i64::try_from(after).unwrap_or(i64::MAX);
    let (sql, key) = match filter {
        PostingFilter::All => (
            format!(
                "SELECT {COLUMNS} FROM postings WHERE sequence > ?1 ORDER BY sequence LIMIT ?2"
            ),
            None,
        ),
        PostingFilter::Payment(p) => (
            format!(
                "SELECT {COLUMNS} FROM postings WHERE sequence > ?1 AND payment_id = ?3
                 ORDER BY sequence LIMIT ?2"
            ),
            Some(p.clone()),
        ),
        PostingFilter::Invoice(i) => (
            format!(
                "SELECT {COLUMNS} FROM postings WHERE sequence > ?1 AND invoice_id = ?3
                 ORDER BY sequence LIMIT ?2"
            ),
            Some(i.clone()),
        ),
        PostingFilter::Customer(c) => (
            format!(
                "SELECT {COLUMNS} FROM postings WHERE sequence > ?1 AND customer_id = ?3
                 ORDER BY sequence LIMIT ?2"
            ),
            Some(c.clone()),
        ),
    };
    let mut s = conn
        .prepare_cached(&sql)
        .map_err(backend("reading postings"))?;
    type Row14 = (
        i64,
        String,
        String,
        Option<String>,
        Option<String>,
        String,
        String,
        Option<String>,
        String,
        String,
        Option<String>,
        Option<String>,
        Option<i64>,
        String,
    );
    let map = |r: &Row<'_>| -> rusqlite::Result<Row14> {
        Ok((
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
            r.get(6)?,
            r.get(7)?,
            r.get(8)?,
            r.get(9)?,
            r.get(10)?,
            r.get(11)?,
            r.get(12)?,
            r.get(13)?,
        ))
    };
    let rows: Vec<Row14> = match &key {
        None => s.query_map(params![after, limit], map),
        Some(k) => s.query_map(params![after, limit, k], map),
    }
    .and_then(|rows| rows.collect())
    .map_err(backend("reading postings"))?;
    rows.into_iter()
        .map(
            |(
                seq,
                kind,
                payment_id,
                invoice_id,
                customer_id,
                cur,
                amount,
                reason_code,
                ak,
                actor,
                mv,
                rv,
                reverses,
                at,
            )| {
                let what = format!("posting {seq}");
                Ok(Posting {
                    sequence: seq as u64,
                    record: PostingRecord {
                        kind: PostingKind::parse(&kind)
                            .ok_or_else(|| corrupt(&what, format!("unknown kind {kind}")))?,
                        payment_id,
                        invoice_id,
                        customer_id,
                        currency: currency(&cur, &what)?,
                        amount: decimal(&amount, &what)?,
                        reason_code,
                        actor_kind: ActorKind::parse(&ak)
                            .ok_or_else(|| corrupt(&what, format!("unknown actor kind {ak}")))?,
                        actor,
                        model_version: mv,
                        rules_version: rv,
                        reverses: reverses.map(|r| r as u64),
                        at: time(&at, &what)?,
                    },
                })
            },
        )
        .collect()
}
