//! The SQLite store against its contract, and what is particular to it: WAL, backups.

use super::commit::CHECKPOINT_WRITES;
use super::write::amount_key;
use super::*;
use crate::domain::{Allocation, Currency, Decision, Direction, Payer};
use crate::domain::{Customer, LabelSource, Payment, ReviewReason, Status, Terms};
use crate::store::ResolutionAction;
use crate::store::writer::BULK_ROWS;
use crate::store::{OpenAmountChange, RemainderKind, Resolution};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

pub(in crate::store) fn customer(id: &str) -> Customer {
    Customer {
        id: id.into(),
        name: format!("{id} Inc"),
        parent_id: None,
        bank_accounts: vec!["1234567".into()],
    }
}

pub(in crate::store) fn invoice(id: &str, amount: Decimal) -> Invoice {
    let d = NaiveDate::from_ymd_opt(2026, 10, 1).unwrap_or_default();
    Invoice {
        id: id.into(),
        customer_id: "C1".into(),
        number: format!("INV-{id}"),
        po_number: None,
        invoice_date: d,
        due_date: d,
        currency: Currency::USD,
        amount,
        open_amount: amount,
        terms: Terms::default(),
    }
}

/// Customer C1 and its invoices.
pub(in crate::store) fn ledger(invoices: Vec<Invoice>) -> LedgerWrite {
    LedgerWrite {
        postings: vec![],
        customers: vec![customer("C1")],
        invoices,
        audit: None,
    }
}

pub(in crate::store) fn payment(id: &str, amount: Decimal) -> Payment {
    Payment {
        payment_id: id.into(),
        format: "grpc".into(),
        direction: Direction::Credit,
        payment_date: None,
        amount,
        currency: Currency::USD,
        payer: Payer::default(),
        lines: vec![],
        free_text: vec![],
        warnings: vec![],
        returned: None,
    }
}

pub(in crate::store) fn decision(
    id: &str,
    status: Status,
    allocations: Vec<Allocation>,
    unapplied: Decimal,
) -> Decision {
    Decision {
        payment_id: id.into(),
        status,
        confidence: 0.5,
        customer_id: Some("C1".into()),
        allocations,
        unapplied,
        suggestions: vec![],
        explanation: vec!["why".into()],
        review_reason: (status == Status::Review).then_some(ReviewReason::LowConfidence),
        model_version: "m".into(),
        rules_version: "r".into(),
        by_rules: Default::default(),
    }
}

pub(in crate::store) fn alloc(inv: &str, amount: Decimal) -> Allocation {
    Allocation {
        invoice_id: inv.into(),
        amount,
        discount: Decimal::ZERO,
        deduction: Decimal::ZERO,
        reason_code: None,
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn a_backup_of_a_running_store_is_a_data_directory_holding_what_was_acknowledged() {
    let root = std::env::temp_dir().join(format!("cashmatch-backup-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let (live, copy) = (root.join("data"), root.join("backup"));
    rt().block_on(async {
        let store = SqliteStore::open(&live).expect("open");
        store
            .write_ledger(ledger(vec![
                invoice("I1", dec!(100.00)),
                invoice("I2", dec!(50.00)),
            ]))
            .await
            .expect("ledger");
        let auto = |id: &str, inv: &str, before: Decimal, paid: Decimal| DecisionRecord {
            postings: vec![],
            payment: payment(id, paid),
            decision: decision(id, Status::Auto, vec![alloc(inv, paid)], Decimal::ZERO),
            changes: vec![OpenAmountChange {
                invoice_id: inv.into(),
                before,
                after: before - paid,
            }],
            at: crate::store::now(),
        };
        store
            .record_decision(auto("P1", "I1", dec!(100.00), dec!(60.00)))
            .await
            .expect("P1");
        store
            .record_decision(DecisionRecord {
                postings: vec![],
                payment: payment("P2", dec!(7.00)),
                decision: decision("P2", Status::Review, vec![], dec!(7.00)),
                changes: vec![],
                at: crate::store::now(),
            })
            .await
            .expect("P2");

        // Taken while the store is open and its last commits are still in the WAL.
        let summary = backup(&live, &copy).expect("backup");
        assert_eq!(
            (summary.invoices, summary.decisions, summary.open_reviews),
            (2, 2, 1)
        );
        assert!(summary.file.is_file() && summary.bytes > 0);
        assert!(!copy.join(format!("{DB_FILE}.partial")).exists());

        // Written after the snapshot: not in the copy.
        store
            .record_decision(auto("P3", "I2", dec!(50.00), dec!(50.00)))
            .await
            .expect("P3");
        let again = backup(&live, &copy).expect_err("the backup directory is not empty");
        assert!(again.to_string().contains("not empty"), "{again}");
        let nowhere = backup(&root.join("nothing"), &root.join("b2")).expect_err("no store");
        assert!(nowhere.to_string().contains("no store here"), "{nowhere}");
        store.close();

        let restored = SqliteStore::open(&copy).expect("the backup opens as a store");
        let snap = restored.load().await.expect("snapshot");
        let open: Vec<(String, Decimal)> = snap
            .invoices
            .iter()
            .map(|i| (i.id.clone(), i.open_amount))
            .collect();
        assert_eq!(
            open,
            vec![("I1".into(), dec!(40.00)), ("I2".into(), dec!(50.00))]
        );
        assert_eq!(snap.decided.len(), 2);
        assert_eq!(snap.open_reviews, vec!["P2".to_string()]);
        restored.close();
    });
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn a_bulk_load_leaves_an_empty_wal_and_steady_writes_keep_starting_it_over() {
    let dir = std::env::temp_dir().join(format!("cashmatch-store-wal-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    rt().block_on(async {
        // NORMAL: the checkpoint schedule is the same, without a disk sync per commit.
        let store = SqliteStore::open_with(&dir, Durability::Normal).expect("open");
        let invoices: Vec<Invoice> = (0..BULK_ROWS)
            .map(|i| invoice(&format!("I{i}"), dec!(100.00)))
            .collect();
        store.write_ledger(ledger(invoices)).await.expect("ledger");
        assert_eq!(
            store.wal_bytes().unwrap_or(0),
            0,
            "the load copied and emptied its WAL"
        );

        // One write after another, never a pause long enough for the checkpointer alone to
        // catch up: without the writer finishing each round the WAL would only grow.
        let record = |i: usize| DecisionRecord {
            postings: vec![],
            payment: payment(&format!("P{i}"), dec!(7.00)),
            decision: decision(&format!("P{i}"), Status::Review, vec![], dec!(7.00)),
            changes: vec![],
            at: crate::store::now(),
        };
        let first = CHECKPOINT_WRITES as usize / 2;
        for i in 0..first {
            store.record_decision(record(i)).await.expect("decision");
        }
        let per_write = store.wal_bytes().unwrap_or(0) / first as u64;
        assert!(per_write > 0);
        // Eight rounds at least, and for long enough that the checkpointer (which looks every
        // quarter second) has had its turns: on a fast or a starved machine a fixed count of
        // writes could all be done between two of its looks, and the WAL then only grows.
        let started = std::time::Instant::now();
        let mut total = first;
        while total < 8 * CHECKPOINT_WRITES as usize
            || started.elapsed() < std::time::Duration::from_secs(2)
        {
            store
                .record_decision(record(total))
                .await
                .expect("decision");
            total += 1;
        }
        // Grown without a restart the WAL would hold all `total` writes; starting over after
        // each round of CHECKPOINT_WRITES it holds a round and what came in during the next
        // (not quite two rounds' writes), and is cut back to WAL_KEEP_BYTES at each start.
        let bytes = store.wal_bytes().unwrap_or(0);
        assert!(
            bytes < per_write * total as u64 / 2,
            "WAL {bytes} bytes after {total} writes of about {per_write} bytes each"
        );
        store.close();
    });
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn decisions_and_open_amounts_survive_a_reopen_and_a_stale_before_is_refused() {
    let dir = std::env::temp_dir().join(format!("cashmatch-store-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    rt().block_on(async {
        let store = SqliteStore::open(&dir).expect("open");
        store
            .write_ledger(ledger(vec![
                invoice("I1", dec!(100.00)),
                invoice("I2", dec!(50.00)),
            ]))
            .await
            .expect("ledger");
        let now = crate::store::now();
        let auto = DecisionRecord {
            postings: vec![],
            payment: payment("P1", dec!(60.00)),
            decision: decision(
                "P1",
                Status::Auto,
                vec![alloc("I1", dec!(60.00))],
                Decimal::ZERO,
            ),
            changes: vec![OpenAmountChange {
                invoice_id: "I1".into(),
                before: dec!(100.00),
                after: dec!(40.00),
            }],
            at: now,
        };
        // Queued together: one group, each in its own savepoint.
        let stale = DecisionRecord {
            postings: vec![],
            payment: payment("P2", dec!(60.00)),
            decision: decision(
                "P2",
                Status::Auto,
                vec![alloc("I1", dec!(60.00))],
                Decimal::ZERO,
            ),
            changes: vec![OpenAmountChange {
                invoice_id: "I1".into(),
                before: dec!(100.00),
                after: dec!(40.00),
            }],
            at: now,
        };
        let review = DecisionRecord {
            postings: vec![],
            payment: payment("P3", dec!(7.00)),
            decision: decision("P3", Status::Review, vec![], dec!(7.00)),
            changes: vec![],
            at: now,
        };
        let (a, b, c) = (
            store.record_decision(auto.clone()),
            store.record_decision(stale),
            store.record_decision(review),
        );
        assert!(a.await.is_ok());
        assert!(matches!(b.await, Err(StoreError::Conflict(_))));
        assert!(c.await.is_ok());
        assert!(matches!(
            store.record_decision(auto).await,
            Err(StoreError::Conflict(_))
        ));
        store.close();
        drop(store);

        let store = SqliteStore::open(&dir).expect("reopen");
        let snap = store.load().await.expect("load");
        assert_eq!(snap.customers.len(), 1);
        let i1 = snap.invoices.iter().find(|i| i.id == "I1").expect("I1");
        assert_eq!(i1.open_amount, dec!(40.00));
        assert_eq!(snap.decided, vec!["P1".to_string(), "P3".to_string()]);
        assert_eq!(snap.open_reviews, vec!["P3".to_string()]);
        let d = store
            .decision("P1".into())
            .await
            .expect("read")
            .expect("stored");
        assert_eq!(d.decision.allocations, vec![alloc("I1", dec!(60.00))]);
        assert!(store.decision("P2".into()).await.expect("read").is_none());
        let (items, total) = store
            .review_items(ReviewFilter {
                min_amount: Some(dec!(5)),
                max_amount: Some(dec!(7.00)),
                max_age_days: Some(0),
                ..ReviewFilter::open(10, crate::store::now())
            })
            .await
            .expect("list");
        assert_eq!((items.len(), total), (1, 1));
        assert_eq!(items[0].reason, Some(ReviewReason::LowConfidence));
    });
    let _ = std::fs::remove_dir_all(&dir);
}

fn review(id: &str, amount: Decimal, reason: ReviewReason, suggested: bool) -> DecisionRecord {
    let mut d = decision(id, Status::Review, vec![], amount);
    d.review_reason = Some(reason);
    if suggested {
        d.suggestions.push(crate::domain::Suggestion {
            confidence: 0.4,
            allocations: vec![alloc("I1", dec!(10.00))],
            unapplied: amount - dec!(10.00),
            explanation: vec![],
        });
    }
    DecisionRecord {
        postings: vec![],
        payment: payment(id, amount),
        decision: d,
        changes: vec![],
        at: crate::store::now(),
    }
}

fn resolution(
    id: &str,
    action: ResolutionAction,
    allocations: Vec<Allocation>,
    unapplied: Decimal,
    index: Option<u32>,
) -> ResolutionRecord {
    let at = crate::store::now();
    ResolutionRecord {
        postings: vec![],
        payment_id: id.into(),
        resolution: Resolution {
            action,
            analyst: "alice".into(),
            resolved_at: at,
            allocations,
            unapplied,
            customer_id: None,
            suggestion_index: index,
            note: String::new(),
        },
        changes: vec![],
        audit: AuditRecord {
            at,
            actor: "alice".into(),
            action: "resolve".into(),
            subject: id.into(),
            before: serde_json::json!({}),
            after: serde_json::json!({}),
        },
    }
}

#[test]
fn dashboard_queries_count_days_reasons_acceptance_queue_and_unapplied_cash_exactly() {
    use ResolutionAction as A;
    let dir = std::env::temp_dir().join(format!("cashmatch-store-dash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    rt().block_on(async {
        let store = SqliteStore::open(&dir).expect("open");
        store
            .write_ledger(LedgerWrite {
                postings: vec![],
                customers: vec![customer("C1")],
                invoices: vec![invoice("I1", dec!(1000.00))],
                audit: None,
            })
            .await
            .expect("ledger");
        let now = crate::store::now();
        // An overpayment applied automatically leaves 0.10 unapplied; an exact one nothing.
        let mut over = decision(
            "A1",
            Status::Auto,
            vec![alloc("I1", dec!(100.00))],
            dec!(0.10),
        );
        over.unapplied = dec!(0.10);
        let writes = vec![
            DecisionRecord {
                postings: vec![],
                payment: payment("A1", dec!(100.10)),
                decision: over,
                changes: vec![OpenAmountChange {
                    invoice_id: "I1".into(),
                    before: dec!(1000.00),
                    after: dec!(900.00),
                }],
                at: now,
            },
            DecisionRecord {
                postings: vec![],
                payment: payment("A2", dec!(50.00)),
                decision: decision(
                    "A2",
                    Status::Auto,
                    vec![alloc("I1", dec!(50.00))],
                    dec!(0.00),
                ),
                changes: vec![OpenAmountChange {
                    invoice_id: "I1".into(),
                    before: dec!(900.00),
                    after: dec!(850.00),
                }],
                at: now,
            },
            review("R1", dec!(0.10), ReviewReason::Ambiguous, true),
            review("R2", dec!(0.20), ReviewReason::Ambiguous, true),
            review("R3", dec!(300.01), ReviewReason::NoCustomer, false),
            review("R4", dec!(40.00), ReviewReason::Deduction, true),
        ];
        for w in writes {
            store.record_decision(w).await.expect("decision");
        }
        store
            .resolve(resolution(
                "R1",
                A::AcceptSuggestion,
                vec![],
                dec!(0.10),
                Some(0),
            ))
            .await
            .expect("R1");
        store
            .resolve(resolution(
                "R3",
                A::LeaveUnapplied,
                vec![],
                dec!(300.01),
                None,
            ))
            .await
            .expect("R3");
        store
            .resolve(resolution("R4", A::PutOnAccount, vec![], dec!(40.00), None))
            .await
            .expect("R4");

        let filter = ReviewFilter {
            reason: Some(ReviewReason::Ambiguous),
            include_resolved: true,
            // An hour on, with a zero SLA: every open item is past it.
            ..ReviewFilter::open(1, now + chrono::Duration::hours(1))
        };
        let t = store
            .review_totals(filter.clone(), Sla::hours(0))
            .await
            .expect("totals");
        // 0.10 + 0.20 exactly: summed as decimals, not as floats.
        assert_eq!(t.by_currency, vec![(Currency::USD, 2, dec!(0.30))]);
        assert_eq!(
            t.by_reason.first(),
            Some(&(Some(ReviewReason::Ambiguous), 2))
        );
        assert_eq!(t.by_reason.len(), 3);
        assert_eq!(t.past_sla, 1, "only R2 is still open");
        let (items, total) = store.review_items(filter).await.expect("list");
        assert_eq!((items.len(), total), (1, 2));

        let days = store.daily_activity(now.date_naive()).await.expect("days");
        assert_eq!(days.len(), 1);
        let d = &days[0];
        assert_eq!((d.day, d.decided, d.auto), (now.date_naive(), 6, 2));
        assert_eq!(d.review_by_reason.iter().map(|(_, n)| n).sum::<u64>(), 4);
        assert_eq!(
            (d.resolved, d.resolved_with_suggestion, d.accepted_top),
            (3, 2, 1)
        );
        let tomorrow = now.date_naive().succ_opt().expect("date");
        assert!(
            store
                .daily_activity(tomorrow)
                .await
                .expect("days")
                .is_empty()
        );

        let spans = store
            .queue_spans(now - chrono::Duration::days(1))
            .await
            .expect("spans");
        assert_eq!(spans.len(), 4);
        assert_eq!(spans.iter().filter(|s| s.left.is_none()).count(), 1);

        let mut rem = store.unapplied_remainders().await.expect("remainders");
        rem.sort_by_key(|r| r.kind);
        let got: Vec<(RemainderKind, Decimal)> = rem.iter().map(|r| (r.kind, r.amount)).collect();
        assert_eq!(
            got,
            vec![
                (RemainderKind::Excess, dec!(0.10)),
                (RemainderKind::Excess, dec!(0.10)),
                (RemainderKind::LeftUnapplied, dec!(300.01)),
                (RemainderKind::OnAccount, dec!(40.00)),
            ]
        );
    });
    let _ = std::fs::remove_dir_all(&dir);
}

/// (payment, source, (invoice, cash) of each allocation)
type Exported = (String, LabelSource, Vec<(String, Decimal)>);

#[test]
fn labelled_payments_page_in_decision_order_with_young_auto_applies_left_out() {
    let dir = std::env::temp_dir().join(format!("cashmatch-export-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    rt().block_on(async {
        let store = SqliteStore::open(&dir).expect("open");
        store
            .write_ledger(LedgerWrite {
                postings: vec![],
                customers: vec![customer("C1")],
                invoices: vec![
                    invoice("I1", dec!(100.00)),
                    invoice("I2", dec!(50.00)),
                    invoice("I3", dec!(30.00)),
                    invoice("I4", dec!(20.00)),
                ],
                audit: None,
            })
            .await
            .expect("ledger");
        let now = crate::store::now();
        let old = now - chrono::Duration::days(40);
        let auto = |id: &str, inv: &str, amount: Decimal, open: Decimal, at| DecisionRecord {
            postings: vec![],
            payment: payment(id, amount),
            decision: decision(id, Status::Auto, vec![alloc(inv, amount)], Decimal::ZERO),
            changes: vec![OpenAmountChange {
                invoice_id: inv.into(),
                before: open,
                after: open - amount,
            }],
            at,
        };
        let review = |id: &str, amount: Decimal| DecisionRecord {
            postings: vec![],
            payment: payment(id, amount),
            decision: decision(id, Status::Review, vec![], amount),
            changes: vec![],
            at: old,
        };
        // P1 auto (old), P2 review left open, P3 review resolved, P4 auto (too young),
        // P5 auto (old).
        for r in [
            auto("P1", "I1", dec!(60.00), dec!(100.00), old),
            review("P2", dec!(5.00)),
            review("P3", dec!(7.00)),
            auto("P4", "I3", dec!(30.00), dec!(30.00), now),
            auto("P5", "I4", dec!(20.00), dec!(20.00), old),
        ] {
            store.record_decision(r).await.expect("decision");
        }
        let resolution = Resolution {
            action: ResolutionAction::ApplyAllocation,
            analyst: "ana".into(),
            resolved_at: now,
            allocations: vec![alloc("I2", dec!(7.00))],
            unapplied: Decimal::ZERO,
            customer_id: None,
            suggestion_index: None,
            note: String::new(),
        };
        store
            .resolve(ResolutionRecord {
                postings: vec![],
                payment_id: "P3".into(),
                resolution,
                changes: vec![OpenAmountChange {
                    invoice_id: "I2".into(),
                    before: dec!(50.00),
                    after: dec!(43.00),
                }],
                audit: AuditRecord {
                    at: now,
                    actor: "ana".into(),
                    action: "resolve".into(),
                    subject: "P3".into(),
                    before: serde_json::Value::Null,
                    after: serde_json::Value::Null,
                },
            })
            .await
            .expect("resolve");
        let mut query = ExportQuery {
            include_auto: true,
            auto_decided_before: Some(now - chrono::Duration::days(30)),
            after: 0,
            limit: 2,
        };
        let mut pages = Vec::new();
        loop {
            let page = store.training_examples(query.clone()).await.expect("page");
            let ids: Vec<Exported> = page
                .iter()
                .map(|e| {
                    (
                        e.payment.payment_id.clone(),
                        e.source,
                        e.allocations.clone(),
                    )
                })
                .collect();
            let last = page.last().map(|e| e.position);
            pages.push(ids);
            match last {
                Some(p) if page.len() == 2 => query.after = p,
                _ => break,
            }
        }
        let row = |id: &str, s, inv: &str, a| (id.to_string(), s, vec![(inv.to_string(), a)]);
        assert_eq!(
            pages,
            vec![
                vec![
                    row("P1", LabelSource::Auto, "I1", dec!(60.00)),
                    row("P3", LabelSource::Analyst, "I2", dec!(7.00)),
                ],
                vec![row("P5", LabelSource::Auto, "I4", dec!(20.00))],
            ]
        );
        // Analysts' decisions only; and every auto-apply when no age is asked for.
        query.after = 0;
        query.include_auto = false;
        let only = store.training_examples(query.clone()).await.expect("page");
        assert_eq!(only.len(), 1);
        query.include_auto = true;
        query.auto_decided_before = None;
        query.limit = 10;
        let all = store.training_examples(query).await.expect("page");
        assert_eq!(all.len(), 4);
        store.close();
    });
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn amount_key_orders_like_the_amounts() {
    assert!(amount_key(dec!(10.0001)) > amount_key(dec!(10.0000)));
    assert_eq!(amount_key(dec!(-1.5)), -15_000);
    assert_eq!(amount_key(Decimal::MAX), i64::MAX);
}

#[test]
fn a_store_from_before_the_journal_gets_postings_that_replay_to_its_open_amounts() {
    let dir = std::env::temp_dir().join(format!("cashmatch-migrate-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    rt().block_on(async {
        let store = SqliteStore::open(&dir).expect("open");
        let mut part_paid = invoice("I2", dec!(50.00));
        part_paid.open_amount = dec!(20.00);
        store
            .write_ledger(ledger(vec![invoice("I1", dec!(100.00)), part_paid]))
            .await
            .expect("ledger");
        store
            .record_decision(DecisionRecord {
                postings: vec![],
                payment: payment("P1", dec!(40.00)),
                decision: decision("P1", Status::Auto, vec![alloc("I1", dec!(40.00))], dec!(0)),
                changes: vec![OpenAmountChange {
                    invoice_id: "I1".into(),
                    before: dec!(100.00),
                    after: dec!(60.00),
                }],
                at: crate::store::now(),
            })
            .await
            .expect("P1");
        store.close();
    });
    // As a store written by the previous release looks: no journal, schema version 0.
    let conn = Connection::open(dir.join(DB_FILE)).expect("raw open");
    conn.execute_batch(&format!(
        "DROP TABLE postings; {UNCHAIN} PRAGMA user_version = 0;"
    ))
    .expect("downgrade");
    drop(conn);
    rt().block_on(async {
        let store = SqliteStore::open(&dir).expect("migrate");
        let postings = store
            .postings(PostingFilter::All, 0, 100)
            .await
            .expect("postings");
        let got: Vec<(u64, &str, Option<&str>, Decimal, &str)> = postings
            .iter()
            .map(|p| {
                (
                    p.sequence,
                    p.record.kind.name(),
                    p.record.invoice_id.as_deref(),
                    p.record.amount,
                    p.record.actor_kind.name(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (1, "applied", Some("I1"), dec!(40.00), "engine"),
                (2, "ar_adjustment", Some("I2"), dec!(30.00), "ar_system"),
            ]
        );
        assert_eq!(postings[0].record.model_version.as_deref(), Some("m"));
        assert_eq!(postings[0].record.rules_version.as_deref(), Some("r"));
        let open = crate::store::replay_open_amounts(
            [("I1", dec!(100.00)), ("I2", dec!(50.00))],
            &postings,
        );
        assert_eq!(open["I1"], dec!(60.00));
        assert_eq!(open["I2"], dec!(20.00));
        store.close();
    });
    // Opened again: migrated once, not twice.
    rt().block_on(async {
        let store = SqliteStore::open(&dir).expect("reopen");
        let n = store
            .postings(PostingFilter::All, 0, 100)
            .await
            .expect("postings")
            .len();
        assert_eq!(n, 2);
        store.close();
    });
    let _ = std::fs::remove_dir_all(&dir);
}

/// Takes the audit chain out of a store, as a store from before it looks.
const UNCHAIN: &str = "ALTER TABLE audit_events DROP COLUMN prev_hash;
    ALTER TABLE audit_events DROP COLUMN hash;
    DELETE FROM settings WHERE key = 'audit_anchor';";

/// A store in `dir` with `n` audit events (model activations, by ana).
fn store_with_events(dir: &Path, n: usize) {
    rt().block_on(async {
        let store = SqliteStore::open(dir).expect("open");
        add_events(&store, 0, n).await;
        store.close();
    });
}

async fn add_events(store: &SqliteStore, from: usize, n: usize) {
    for i in from..from + n {
        store
            .set_active_model(
                format!("/models/v{i}"),
                AuditRecord {
                    at: crate::store::now(),
                    actor: "ana".into(),
                    action: "activate_model".into(),
                    subject: format!("/models/v{i}"),
                    before: serde_json::json!({ "version": i }),
                    after: serde_json::json!({ "version": i + 1, "note": "a \"quoted\" note" }),
                },
            )
            .await
            .expect("audit event");
    }
}

fn raw(dir: &Path, sql: &str) {
    let conn = Connection::open(dir.join(DB_FILE)).expect("raw open");
    conn.execute_batch(sql).expect(sql);
}

fn temp_store(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cashmatch-audit-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn the_audit_chain_names_an_event_edited_or_deleted_by_hand() {
    use super::audit::verify;
    let dir = temp_store("tamper");
    store_with_events(&dir, 5);
    let ok = verify(&dir, None).expect("verify");
    assert_eq!((ok.events, ok.broken.clone()), (5, None));
    assert_eq!(ok.head.as_ref().map(|h| h.0), Some(5));
    assert!(ok.anchor.contains("over 0 earlier events"), "{}", ok.anchor);

    // Edited: the event itself is named.
    raw(
        &dir,
        "UPDATE audit_events SET actor = 'mallory' WHERE id = 3",
    );
    let r = verify(&dir, None).expect("verify");
    let b = r.broken.expect("an edit is detected");
    assert_eq!(b.id, 3);
    assert!(
        b.reason.contains("changed after it was recorded"),
        "{}",
        b.reason
    );
    raw(&dir, "UPDATE audit_events SET actor = 'ana' WHERE id = 3");
    assert_eq!(verify(&dir, None).expect("verify").broken, None, "undone");

    // An amount in the JSON edited, byte for byte the same length: still detected.
    raw(
        &dir,
        "UPDATE audit_events SET after_json = replace(after_json, '3', '9') WHERE id = 3",
    );
    assert_eq!(
        verify(&dir, None).expect("verify").broken.map(|b| b.id),
        Some(3)
    );
    raw(
        &dir,
        "UPDATE audit_events SET after_json = replace(after_json, '9', '3') WHERE id = 3",
    );

    // Deleted in the middle: the event after the gap is named, with the one before it.
    raw(&dir, "DELETE FROM audit_events WHERE id = 2");
    let b = verify(&dir, None)
        .expect("verify")
        .broken
        .expect("a deletion is detected");
    assert_eq!(b.id, 3);
    assert!(b.reason.contains("does not follow event 1"), "{}", b.reason);

    // Deleted from the end: the ids issued say so.
    let dir = temp_store("tamper-tail");
    store_with_events(&dir, 4);
    raw(&dir, "DELETE FROM audit_events WHERE id >= 3");
    let b = verify(&dir, None)
        .expect("verify")
        .broken
        .expect("a truncation is detected");
    assert_eq!(b.id, 3);
    assert!(
        b.reason
            .contains("events 3 to 4 were recorded and are gone"),
        "{}",
        b.reason
    );

    // The first event deleted: it no longer follows the anchor.
    let dir2 = temp_store("tamper-first");
    store_with_events(&dir2, 2);
    raw(&dir2, "DELETE FROM audit_events WHERE id = 1");
    let b = verify(&dir2, None)
        .expect("verify")
        .broken
        .expect("detected");
    assert_eq!(b.id, 2);
    assert!(b.reason.contains("anchor"), "{}", b.reason);
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&dir2);
    let _ = std::fs::remove_dir_all(temp_store("tamper"));
}

#[test]
fn a_chain_rewritten_whole_is_caught_by_a_head_witnessed_earlier() {
    use super::audit::{Witness, event_hash, verify};
    let dir = temp_store("witness");
    store_with_events(&dir, 4);
    let r = verify(&dir, None).expect("verify");
    let (id, hash) = r.head.clone().expect("head");
    let witness: Witness = format!("{id}:{hash}").parse().expect("witness");
    assert_eq!(verify(&dir, Some(&witness)).expect("verify").broken, None);

    // Someone with the file edits event 2 and recomputes every hash after it.
    raw(
        &dir,
        "UPDATE audit_events SET actor = 'mallory' WHERE id = 2",
    );
    let conn = Connection::open(dir.join(DB_FILE)).expect("raw open");
    let rows: Vec<super::audit::ChainedEvent> = {
        let mut s = conn
            .prepare(
                "SELECT id, at, actor, action, subject, before_json, after_json, prev_hash, hash
                 FROM audit_events ORDER BY id",
            )
            .expect("select");
        s.query_map([], |r| {
            Ok(super::audit::ChainedEvent {
                id: r.get(0)?,
                at: r.get(1)?,
                actor: r.get(2)?,
                action: r.get(3)?,
                subject: r.get(4)?,
                before_json: r.get(5)?,
                after_json: r.get(6)?,
                prev_hash: r.get(7)?,
                hash: r.get(8)?,
            })
        })
        .expect("rows")
        .collect::<Result<_, _>>()
        .expect("rows")
    };
    let mut prev = rows[0].prev_hash.clone();
    for e in rows {
        let h = event_hash(&prev, &e);
        conn.execute(
            "UPDATE audit_events SET prev_hash = ?1, hash = ?2 WHERE id = ?3",
            params![prev, h, e.id],
        )
        .expect("rewrite");
        prev = h;
    }
    drop(conn);
    assert_eq!(
        verify(&dir, None).expect("verify").broken,
        None,
        "a rewrite fools the chain alone"
    );
    let b = verify(&dir, Some(&witness))
        .expect("verify")
        .broken
        .expect("but not the witness");
    assert_eq!(b.id, 4);
    assert!(b.reason.contains("witnessed earlier"), "{}", b.reason);
    assert!("4:abc".parse::<Witness>().is_err());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_store_from_before_the_chain_has_its_events_chained_and_new_ones_follow() {
    use super::audit::{export, verify};
    let dir = temp_store("migrate-chain");
    store_with_events(&dir, 3);
    raw(&dir, &format!("{UNCHAIN} PRAGMA user_version = 1;"));
    let e = verify(&dir, None)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.contains("predates the audit chain"), "{e}");
    rt().block_on(async {
        let store = SqliteStore::open(&dir).expect("migrate");
        add_events(&store, 3, 2).await;
        store.close();
    });
    let r = verify(&dir, None).expect("verify");
    assert_eq!((r.events, r.broken), (5, None));
    assert!(r.anchor.contains("over 3 earlier events"), "{}", r.anchor);

    // The export holds the anchor, then every event with its chain; recomputed from the file
    // alone, the chain holds.
    let out = dir.join("audit.jsonl");
    let x = export(&dir, &out).expect("export");
    assert_eq!(x.head, r.head);
    let text = std::fs::read_to_string(&out).expect("read");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 6);
    let anchor = lines[0]["anchor"].as_str().expect("anchor");
    let mut prev = super::audit::anchor_hash(anchor);
    assert_eq!(lines[0]["anchor_hash"].as_str(), Some(prev.as_str()));
    for l in &lines[1..] {
        let e: super::audit::ChainedEvent = super::audit::ChainedEvent {
            id: l["id"].as_i64().expect("id"),
            at: l["at"].as_str().expect("at").into(),
            actor: l["actor"].as_str().expect("actor").into(),
            action: l["action"].as_str().expect("action").into(),
            subject: l["subject"].as_str().expect("subject").into(),
            before_json: l["before_json"].as_str().expect("before").into(),
            after_json: l["after_json"].as_str().expect("after").into(),
            prev_hash: l["prev_hash"].as_str().expect("prev").into(),
            hash: l["hash"].as_str().expect("hash").into(),
        };
        assert_eq!(e.prev_hash, prev);
        prev = super::audit::event_hash(&prev, &e);
        assert_eq!(e.hash, prev);
    }
    assert!(!dir.join("audit.partial").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_decision_outbox_numbers_first_decisions_in_commit_order_and_the_cursor_never_goes_back() {
    let dir = temp_store("outbox");
    rt().block_on(async {
        let store = SqliteStore::open(&dir).expect("open");
        for id in ["P1", "P2", "P3"] {
            store
                .record_decision(review(id, dec!(10.00), ReviewReason::LowConfidence, false))
                .await
                .expect(id);
        }
        // A payment decided twice is refused, and leaves no second outbox row.
        assert!(matches!(
            store
                .record_decision(review(
                    "P2",
                    dec!(10.00),
                    ReviewReason::LowConfidence,
                    false
                ))
                .await,
            Err(StoreError::Conflict(_))
        ));
        let events = store.decision_events(0, 10).await.expect("events");
        let got: Vec<(u64, &str)> = events
            .iter()
            .map(|e| (e.sequence, e.decision.payment.payment_id.as_str()))
            .collect();
        assert_eq!(got, [(1, "P1"), (2, "P2"), (3, "P3")]);
        let after = store.decision_events(1, 1).await.expect("a page");
        assert_eq!(after.len(), 1);
        assert_eq!(after[0].sequence, 2);

        assert_eq!(
            store.bus_cursor(Outbox::Decisions).await.expect("cursor"),
            0
        );
        store
            .set_bus_cursor(Outbox::Decisions, 3)
            .await
            .expect("set");
        store
            .set_bus_cursor(Outbox::Decisions, 2)
            .await
            .expect("set back");
        store
            .set_bus_cursor(Outbox::Postings, 7)
            .await
            .expect("set");
        assert_eq!(
            store.bus_cursor(Outbox::Decisions).await.expect("cursor"),
            3
        );
        assert_eq!(store.bus_cursor(Outbox::Postings).await.expect("cursor"), 7);
        store.close();
    });
    // As a store written before the outbox looks: its decisions are numbered in the order they
    // were stored when it is opened, so a bus started on it publishes them too.
    raw(
        &dir,
        "DROP TABLE decision_outbox; DROP TABLE bus_cursors; PRAGMA user_version = 3;",
    );
    rt().block_on(async {
        let store = SqliteStore::open(&dir).expect("migrate");
        let ids: Vec<(u64, String)> = store
            .decision_events(0, 10)
            .await
            .expect("events")
            .into_iter()
            .map(|e| (e.sequence, e.decision.payment.payment_id))
            .collect();
        assert_eq!(
            ids,
            [(1, "P1".to_string()), (2, "P2".into()), (3, "P3".into())]
        );
        store
            .record_decision(review("P4", dec!(1.00), ReviewReason::LowConfidence, false))
            .await
            .expect("P4");
        let last = store.decision_events(3, 10).await.expect("events");
        assert_eq!(last.len(), 1);
        assert_eq!(last[0].sequence, 4);
        store.close();
    });
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_customers_postings_are_read_by_index_on_a_store_migrated_from_before_it() {
    let dir = temp_store("postings-customer");
    SqliteStore::open(&dir).expect("open").close();
    // As a store written before the index looks.
    raw(
        &dir,
        "DROP INDEX postings_customer; PRAGMA user_version = 4;",
    );
    SqliteStore::open(&dir).expect("migrate").close();
    let conn = Connection::open(dir.join(DB_FILE)).expect("raw open");
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .expect("version");
    assert_eq!(version, super::schema::VERSION);
    // The query `PostingFilter::Customer` runs.
    let plan: Vec<String> = conn
        .prepare(
            "EXPLAIN QUERY PLAN SELECT * FROM postings WHERE sequence > ?1 AND customer_id = ?2
             ORDER BY sequence LIMIT 100",
        )
        .expect("plan")
        .query_map(rusqlite::params![0, "C1"], |r| r.get::<_, String>(3))
        .expect("rows")
        .collect::<Result<_, _>>()
        .expect("plan rows");
    assert!(
        plan.iter().any(|p| p.contains("postings_customer")),
        "{plan:?}"
    );
    drop(conn);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A store from before held receipts and advices gains their tables; an item or link written
/// again replaces the one stored (by side and payment id, by link id), and the book reads back
/// whole, in the order first stored, with each write's audit events.
#[test]
fn held_items_and_links_are_stored_replaced_and_read_back_after_migrating_from_version_5() {
    use crate::store::{
        AdviceLink, AdviceWrite, HeldExpect, HeldItem, HeldSide, HeldState, Unlink,
    };
    let dir = temp_store("held-items");
    SqliteStore::open(&dir).expect("open").close();
    raw(
        &dir,
        "DROP TABLE held_items; DROP TABLE advice_links; PRAGMA user_version = 5;",
    );
    let store = SqliteStore::open(&dir).expect("migrate");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let item = |side, id: &str, state| HeldItem {
        side,
        payment: payment(id, dec!(1500.00)),
        received_at: crate::store::now(),
        received_by: "erp".into(),
        state,
        link_id: None,
        candidates: vec![],
    };
    let audit = |action: &str| AuditRecord {
        at: crate::store::now(),
        actor: "engine".into(),
        action: action.into(),
        subject: "link:R1".into(),
        before: serde_json::Value::Null,
        after: serde_json::Value::Null,
    };
    rt.block_on(async {
        store
            .write_advice(AdviceWrite {
                items: vec![
                    item(HeldSide::Receipt, "R1", HeldState::Waiting),
                    // The same id on the other side is another item.
                    item(HeldSide::Advice, "R1", HeldState::Waiting),
                    item(HeldSide::Advice, "A1", HeldState::Waiting),
                ],
                ..AdviceWrite::default()
            })
            .await
            .expect("held");
        let mut link = AdviceLink {
            id: "link:R1".into(),
            receipts: vec!["R1".into()],
            advices: vec!["A1".into()],
            fee: dec!(0),
            evidence: vec!["an exact amount".into()],
            linked_by: "engine".into(),
            linked_at: crate::store::now(),
            unlinked: None,
        };
        let mut linked = item(HeldSide::Receipt, "R1", HeldState::Linked);
        linked.link_id = Some(link.id.clone());
        store
            .write_advice(AdviceWrite {
                items: vec![linked.clone()],
                links: vec![link.clone()],
                audit: vec![audit("link_advice")],
                ..AdviceWrite::default()
            })
            .await
            .expect("linked");
        // Another writer that still saw R1 waiting links it again: refused, nothing of it
        // written (neither its item nor its audit event).
        let mut again = item(HeldSide::Receipt, "R1", HeldState::Linked);
        again.link_id = Some("link:R1-again".into());
        let refused = store
            .write_advice(AdviceWrite {
                items: vec![again],
                audit: vec![audit("link_advice")],
                expect: vec![HeldExpect {
                    side: HeldSide::Receipt,
                    payment_id: "R1".into(),
                    states: vec![HeldState::Waiting],
                }],
                ..AdviceWrite::default()
            })
            .await;
        assert!(
            matches!(&refused, Err(crate::store::StoreError::Conflict(m)) if m.contains("R1 is linked")),
            "{refused:?}"
        );
        // An item newly received must not be stored yet.
        let refused = store
            .write_advice(AdviceWrite {
                items: vec![item(HeldSide::Advice, "A1", HeldState::Waiting)],
                expect: vec![HeldExpect {
                    side: HeldSide::Advice,
                    payment_id: "A1".into(),
                    states: vec![],
                }],
                ..AdviceWrite::default()
            })
            .await;
        assert!(
            matches!(refused, Err(crate::store::StoreError::Conflict(_))),
            "{refused:?}"
        );
        link.unlinked = Some(Unlink {
            by: "alice".into(),
            at: crate::store::now(),
            note: "wrong".into(),
        });
        store
            .write_advice(AdviceWrite {
                links: vec![link.clone()],
                audit: vec![audit("unlink_advice")],
                ..AdviceWrite::default()
            })
            .await
            .expect("unlinked");
        let book = store.advice_book().await.expect("book");
        assert_eq!(book.items.len(), 3);
        assert_eq!(book.items[0], linked, "replaced in place");
        assert_eq!(book.items[1].side, HeldSide::Advice);
        assert_eq!(book.links, vec![link]);
        let actions: Vec<String> = store
            .audit_events(Some("link:R1".into()), 0, 10)
            .await
            .expect("audit")
            .into_iter()
            .map(|e| e.record.action)
            .collect();
        assert_eq!(actions, vec!["link_advice", "unlink_advice"]);
    });
    store.close();
}

/// A store from before the remainder column: the decisions that left cash unapplied are found
/// by the JSON once, at the migration, and read from the column after; the index that parsed
/// the JSON at every insert is gone, and so is the outbox's unique index (version 8).
#[test]
fn unapplied_cash_of_auto_decisions_reads_the_same_after_migrating_from_version_6() {
    let dir = temp_store("remainder");
    let store = SqliteStore::open(&dir).expect("open");
    let auto = |id: &str, inv: &str, paid: Decimal, applied: Decimal| DecisionRecord {
        postings: vec![],
        payment: payment(id, paid),
        decision: decision(id, Status::Auto, vec![alloc(inv, applied)], paid - applied),
        changes: vec![OpenAmountChange {
            invoice_id: inv.into(),
            before: dec!(100.00),
            after: dec!(100.00) - applied,
        }],
        at: crate::store::now(),
    };
    rt().block_on(async {
        store
            .write_ledger(ledger(vec![
                invoice("I1", dec!(100.00)),
                invoice("I2", dec!(100.00)),
            ]))
            .await
            .expect("ledger");
        for r in [
            auto("P1", "I1", dec!(100.00), dec!(100.00)),
            auto("P2", "I2", dec!(100.25), dec!(100.00)),
            review("P3", dec!(9.00), ReviewReason::LowConfidence, false),
        ] {
            store.record_decision(r).await.expect("decision");
        }
    });
    store.close();
    let remainders = |store: &SqliteStore| -> Vec<(RemainderKind, Decimal)> {
        let rem = rt()
            .block_on(store.unapplied_remainders())
            .expect("remainders");
        rem.iter().map(|r| (r.kind, r.amount)).collect()
    };
    let fresh = SqliteStore::open(&dir).expect("reopen");
    assert_eq!(remainders(&fresh), [(RemainderKind::Excess, dec!(0.25))]);
    fresh.close();
    // As a store written before the column looks.
    raw(
        &dir,
        "DROP INDEX decisions_remainder; ALTER TABLE decisions DROP COLUMN remainder;
         CREATE INDEX decisions_auto_remainder ON decisions (decided_at)
             WHERE status = 'auto' AND json_extract(decision_json, '$.unapplied') GLOB '*[1-9]*';
         PRAGMA user_version = 6;",
    );
    let migrated = SqliteStore::open(&dir).expect("migrate");
    assert_eq!(remainders(&migrated), [(RemainderKind::Excess, dec!(0.25))]);
    migrated.close();
    let conn = Connection::open(dir.join(DB_FILE)).expect("raw open");
    let indexes: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'decisions'")
        .expect("indexes")
        .query_map([], |r| r.get(0))
        .expect("rows")
        .collect::<Result<_, _>>()
        .expect("index rows");
    assert!(
        indexes.iter().any(|i| i == "decisions_remainder"),
        "{indexes:?}"
    );
    assert!(
        !indexes.iter().any(|i| i == "decisions_auto_remainder"),
        "{indexes:?}"
    );
    // Version 8: the outbox's sequence is its only key.
    let outbox_indexes: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'decision_outbox'",
            [],
            |r| r.get(0),
        )
        .expect("outbox indexes");
    assert_eq!(outbox_indexes, 0);
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .expect("version");
    assert_eq!(version, super::schema::VERSION);
    drop(conn);
    let _ = std::fs::remove_dir_all(&dir);
}
