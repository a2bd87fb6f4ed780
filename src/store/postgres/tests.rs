//! What is particular to the PostgreSQL store: its migrations, exact money in NUMERIC, rows it
//! cannot read, and the order of writes from several replicas. (Its contract with the service is
//! tested through the service tests, which run on both stores.)

use super::testdb::TestDb;
use super::*;
use crate::domain::Status;
use crate::store::OpenAmountChange;
use crate::store::sqlite::audit::Witness;
use crate::store::sqlite::tests::{alloc, decision, invoice, ledger, payment};
use crate::store::{ActorKind, PostingKind, PostingRecord};
use rust_decimal_macros::dec;
use serde_json::json;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// An admin connection to the test's database, off the async workers.
fn sql<T: Send + 'static>(url: &str, f: impl FnOnce(&mut Client) -> T + Send + 'static) -> T {
    let url = url.to_string();
    std::thread::spawn(move || f(&mut Client::connect(&url, NoTls).expect("connect")))
        .join()
        .expect("admin thread")
}

#[test]
fn migrating_again_changes_nothing_and_a_newer_schema_is_refused() {
    let Some(db) = TestDb::create("migrations") else {
        return;
    };
    for _ in 0..2 {
        let store = PgStore::open(&db.url).expect("open");
        store.close();
    }
    let versions: Vec<i64> = sql(&db.url, |c| {
        c.query("SELECT version FROM schema_version ORDER BY version", &[])
            .expect("versions")
            .iter()
            .map(|r| r.get(0))
            .collect()
    });
    assert_eq!(versions, (1..=schema::VERSION).collect::<Vec<_>>());
    sql(&db.url, |c| {
        c.execute(
            "INSERT INTO schema_version (version) VALUES ($1)",
            &[&(schema::VERSION + 1)],
        )
        .expect("a newer version")
    });
    match PgStore::open(&db.url) {
        Err(e) => assert!(e.to_string().contains("newer than this build"), "{e}"),
        Ok(_) => panic!("a newer schema was opened"),
    }
}

#[test]
fn money_keeps_every_digit_and_its_scale_and_a_bad_row_is_an_error_naming_it() {
    let Some(db) = TestDb::create("money") else {
        return;
    };
    let rt = runtime();
    let store = rt.block_on(PgStore::open_async(&db.url)).expect("open");
    let mut big = invoice("I-big", dec!(12345678901234567.8901));
    big.open_amount = dec!(0.10);
    rt.block_on(store.write_ledger(ledger(vec![big.clone(), invoice("I-bad", dec!(5))])))
        .expect("ledger");
    let back = rt
        .block_on(store.invoice("I-big".into()))
        .expect("read")
        .expect("stored");
    assert_eq!(back, big);
    // The scale as written, not only the value: 0.10 stays 0.10 (an amount shown to a person).
    assert_eq!(back.open_amount.to_string(), "0.10");
    sql(&db.url, |c| {
        c.execute(
            "UPDATE invoices SET due_date = 'soon' WHERE id = 'I-bad'",
            &[],
        )
        .expect("corrupt a row")
    });
    match rt.block_on(store.invoice("I-bad".into())) {
        Err(StoreError::Corrupt { what, .. }) => assert!(what.contains("I-bad"), "{what}"),
        other => panic!("a bad row read as {other:?}"),
    }
    assert!(matches!(
        rt.block_on(store.load()),
        Err(StoreError::Corrupt { .. })
    ));
    store.close();
}

/// Two stores on one database stand for two replicas writing at once: the journal's sequence
/// and the audit trail's ids come out 1, 2, 3... with no gap, and every audit event follows the
/// one before it in the hash chain, whichever replica wrote it.
#[test]
fn two_replicas_writing_at_once_leave_a_gap_free_journal_and_one_audit_chain() {
    let Some(db) = TestDb::create("ordering") else {
        return;
    };
    let rt = runtime();
    let a = Arc::new(rt.block_on(PgStore::open_async(&db.url)).expect("a"));
    let b = Arc::new(rt.block_on(PgStore::open_async(&db.url)).expect("b"));
    rt.block_on(a.write_ledger(ledger(vec![invoice("I-1", dec!(100))])))
        .expect("ledger");
    const EACH: usize = 60;
    let write = |n: usize, who: &str| LedgerWrite {
        customers: vec![],
        invoices: vec![],
        audit: Some(AuditRecord {
            at: crate::store::now(),
            actor: who.into(),
            action: "adjust_invoice".into(),
            subject: "I-1".into(),
            before: json!({ "n": n }),
            after: json!({ "n": n + 1 }),
        }),
        postings: vec![PostingRecord {
            kind: PostingKind::ArAdjustment,
            payment_id: String::new(),
            invoice_id: Some("I-1".into()),
            customer_id: Some("C1".into()),
            currency: crate::domain::Currency::USD,
            amount: dec!(0.01),
            reason_code: None,
            actor_kind: ActorKind::ArSystem,
            actor: who.into(),
            model_version: None,
            rules_version: None,
            reverses: None,
            at: crate::store::now(),
        }],
    };
    let futures: Vec<_> = (0..EACH)
        .flat_map(|n| [a.write_ledger(write(n, "a")), b.write_ledger(write(n, "b"))])
        .collect();
    for r in rt.block_on(futures_join(futures)) {
        r.expect("write");
    }
    let journal = rt
        .block_on(b.postings(PostingFilter::All, 0, 10_000))
        .expect("journal");
    let seqs: Vec<u64> = journal.iter().map(|p| p.sequence).collect();
    assert_eq!(seqs, (1..=2 * EACH as u64).collect::<Vec<_>>());
    // One chain from both replicas, read back as `cashmatch audit verify --store` reads it.
    let url: StoreUrl = db.url.parse().expect("url");
    let report = super::audit::verify(&url, None).expect("verify");
    assert_eq!(report.broken, None);
    assert_eq!(report.events, 2 * EACH as u64);
    let writers: std::collections::BTreeSet<String> = sql(&db.url, |c| {
        c.query("SELECT DISTINCT actor FROM audit_events", &[])
            .expect("actors")
            .iter()
            .map(|r| r.get(0))
            .collect()
    });
    assert_eq!(writers.len(), 2, "both replicas wrote");
    let head = report.head.clone().expect("a head");

    // An event edited by hand is named; the export still writes the trail, with the break.
    let actor: String = sql(&db.url, |c| {
        c.query_one("SELECT actor FROM audit_events WHERE id = 7", &[])
            .expect("event 7")
            .get(0)
    });
    sql(&db.url, |c| {
        c.execute(
            "UPDATE audit_events SET actor = 'mallory' WHERE id = 7",
            &[],
        )
        .expect("tamper")
    });
    let broken = super::audit::verify(&url, None).expect("verify");
    let at = broken.broken.expect("broken");
    assert_eq!(at.id, 7);
    assert!(at.reason.contains("contents do not match"), "{}", at.reason);
    let out = std::env::temp_dir().join(format!("cashmatch-pg-audit-{}.jsonl", std::process::id()));
    let exported = super::audit::export(&url, &out).expect("export");
    assert_eq!(exported.broken.map(|b| b.id), Some(7));
    let text = std::fs::read_to_string(&out).expect("export file");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1 + 2 * EACH, "the anchor, then every event");
    assert!(lines[0].contains("\"anchor\"") && lines[7].contains("mallory"));
    let _ = std::fs::remove_file(&out);

    // Put back, it verifies against the head seen before. Events deleted from the end leave no
    // gap here: that head, kept outside the database, is what catches it.
    sql(&db.url, move |c| {
        c.execute("UPDATE audit_events SET actor = $1 WHERE id = 7", &[&actor])
            .expect("undo")
    });
    let witness = Witness {
        id: head.0,
        hash: head.1,
    };
    assert_eq!(
        super::audit::verify(&url, Some(&witness))
            .expect("verify")
            .broken,
        None
    );
    sql(&db.url, move |c| {
        c.execute("DELETE FROM audit_events WHERE id > $1", &[&(head.0 - 2)])
            .expect("delete the end")
    });
    let cut = super::audit::verify(&url, Some(&witness)).expect("verify");
    assert!(
        cut.broken
            .expect("broken")
            .reason
            .contains("not in the trail")
    );
    a.close();
    b.close();
}

/// The server closing the writer's connection (a restart, a failover, an administrator) costs
/// nothing: the write that meets the closed connection connects again and commits, once.
#[test]
fn after_the_server_closes_the_writers_connection_the_write_that_meets_it_commits_once() {
    let Some(db) = TestDb::create("reconnect") else {
        return;
    };
    let rt = runtime();
    let store = rt.block_on(PgStore::open_async(&db.url)).expect("open");
    rt.block_on(store.write_ledger(ledger(vec![invoice("I-1", dec!(1))])))
        .expect("first write");
    let name: String = sql(&db.url, |c| {
        c.query_one("SELECT current_database()", &[])
            .expect("name")
            .get(0)
    });
    let killed: i64 = sql(&db.url, move |c| {
        c.query_one(
            "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity
             WHERE datname = $1 AND pid <> pg_backend_pid()",
            &[&name],
        )
        .expect("terminate")
        .get(0)
    });
    assert!(killed >= 1, "the writer's connection was there to close");
    // pg_terminate_backend only signals: wait until the backend is gone, else the next write
    // could still commit on it and the one after meet the closing.
    let gone = (0..100).any(|_| {
        let db = db.url.clone();
        let left: i64 = sql(&db, |c| {
            c.query_one(
                "SELECT COUNT(*) FROM pg_stat_activity
                 WHERE datname = current_database() AND pid <> pg_backend_pid()",
                &[],
            )
            .expect("backends")
            .get(0)
        });
        if left > 0 {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        left == 0
    });
    assert!(gone, "the writer's backend did not end");
    // The write that meets the closed connection commits, and so does the one after it.
    let mut second = ledger(vec![invoice("I-2", dec!(2))]);
    second.postings = vec![PostingRecord {
        kind: PostingKind::ArAdjustment,
        payment_id: String::new(),
        invoice_id: Some("I-2".into()),
        customer_id: None,
        currency: crate::domain::Currency::USD,
        amount: dec!(0.5),
        reason_code: None,
        actor_kind: ActorKind::ArSystem,
        actor: "ar".into(),
        model_version: None,
        rules_version: None,
        reverses: None,
        at: crate::store::now(),
    }];
    rt.block_on(store.write_ledger(second))
        .expect("the write that met the closed connection");
    rt.block_on(store.write_ledger(ledger(vec![invoice("I-3", dec!(3))])))
        .expect("a write after the connection was closed");
    for (id, amount) in [("I-2", dec!(2)), ("I-3", dec!(3))] {
        let back = rt
            .block_on(store.invoice(id.into()))
            .expect("read")
            .expect("stored");
        assert_eq!(back.amount, amount);
    }
    let journalled = rt
        .block_on(store.postings(PostingFilter::All, 0, 100))
        .expect("journal");
    assert_eq!(journalled.len(), 1, "the retried write is journalled once");
    store.close();
}

/// The decisions of one group as `batch` writes them (two reads, one statement per table) and
/// as the one-at-a-time path writes them (a savepoint and several statements each), on two
/// databases: the same refusals, worded the same, and the same rows in every table, in the same
/// order. Among them: two decisions of the group paying one invoice in turn, one whose open
/// amount moved, a payment id decided earlier in the group, an invoice not stored, a review.
#[test]
fn a_run_of_decisions_written_together_leaves_what_one_at_a_time_leaves() {
    let (Some(batched), Some(single)) = (TestDb::create("batched"), TestDb::create("single"))
    else {
        return;
    };
    let rt = runtime();
    for db in [&batched, &single] {
        let store = rt.block_on(PgStore::open_async(&db.url)).expect("open");
        let mut l = ledger(vec![
            invoice("I1", dec!(100.00)),
            invoice("I2", dec!(50.00)),
        ]);
        l.invoices[1].open_amount = dec!(50.0);
        rt.block_on(store.write_ledger(l)).expect("ledger");
        store.close();
    }
    let at = crate::store::now();
    let auto = move |id: &str, inv: &str, before: Decimal, paid: Decimal| {
        let p = payment(id, paid);
        let d = decision(id, Status::Auto, vec![alloc(inv, paid)], Decimal::ZERO);
        let postings =
            crate::store::decision_postings(&p, &d, &crate::store::PostedBy::engine(&d), at);
        Write::Decision(Box::new(DecisionRecord {
            payment: p,
            decision: d,
            changes: vec![OpenAmountChange {
                invoice_id: inv.into(),
                before,
                after: before - paid,
            }],
            at,
            postings,
        }))
    };
    let review = move |id: &str| {
        Write::Decision(Box::new(DecisionRecord {
            payment: payment(id, dec!(7.00)),
            decision: decision(id, Status::Review, vec![], dec!(7.00)),
            changes: vec![],
            at,
            postings: vec![],
        }))
    };
    let writes = move || {
        vec![
            auto("P1", "I1", dec!(100.00), dec!(40.00)),
            auto("P2", "I1", dec!(60.00), dec!(50.00)),
            auto("P3", "I1", dec!(100.00), dec!(1.00)),
            auto("P1", "I2", dec!(50.0), dec!(1.00)),
            review("P4"),
            auto("P5", "I-none", dec!(5), dec!(5)),
            auto("P6", "I2", dec!(50.0), dec!(50.00)),
        ]
    };
    let outcome = |r: &Result<(), StoreError>| match r {
        Ok(()) => "ok".to_string(),
        Err(StoreError::Conflict(m)) => m.clone(),
        Err(e) => panic!("not a refusal: {e}"),
    };
    let url = batched.url.clone();
    let got: Vec<String> = sql(&url, move |c| {
        let (_, results) = commit_group(c, &mut Statements::default(), &writes(), "r", 1)
            .unwrap_or_else(|(e, _)| panic!("group: {e}"));
        results.iter().map(outcome).collect()
    });
    let url = single.url.clone();
    let expected: Vec<String> = sql(&url, move |c| {
        let mut tx = c.transaction().expect("begin");
        let mut out = Vec::new();
        for w in &writes() {
            let mut sp = tx.savepoint("w").expect("savepoint");
            let r = write::apply_write(&mut sp, w);
            if r.is_ok() {
                sp.commit().expect("release");
            }
            out.push(outcome(&r));
        }
        tx.commit().expect("commit");
        out
    });
    assert_eq!(got, expected);
    assert_eq!(
        got,
        [
            "ok",
            "ok",
            "invoice I1: open amount is 10.00, not 100.00",
            "payment P1 is already decided",
            "ok",
            "invoice I-none is not stored",
            "ok",
        ]
    );
    let tables = [
        "SELECT payment_id, status, customer_id, amount, currency, model_version, decided_at,
         payment_json, decision_json FROM decisions ORDER BY seq",
        "SELECT sequence, payment_id FROM decision_outbox ORDER BY sequence",
        "SELECT * FROM postings ORDER BY sequence",
        "SELECT payment_id, invoice_id, amount, discount, deduction, reason_code, source,
         applied_at FROM applications ORDER BY id",
        "SELECT payment_id, customer_id, amount, amount_key, currency, reason, confidence,
         created_at, created_ms, state FROM review_items ORDER BY seq",
        "SELECT id, amount, open_amount FROM invoices ORDER BY seq",
    ];
    let dump = |url: &str| -> Vec<Vec<String>> {
        sql(url, move |c| {
            tables
                .iter()
                .map(|q| {
                    c.query(&format!("SELECT t::text FROM ({q}) t"), &[])
                        .expect("dump")
                        .iter()
                        .map(|r| r.get(0))
                        .collect()
                })
                .collect()
        })
    };
    let (b, s) = (dump(&batched.url), dump(&single.url));
    assert_eq!(b, s);
    assert_eq!(b[0].len(), 4, "P1, P2, P4, P6 decided: {:?}", b[0]);
    assert!(b[2].len() >= 3, "the autos' postings: {:?}", b[2]);
    assert_eq!(
        b[5],
        [
            "(I1,100.00,10.00)".to_string(),
            "(I2,50.00,0.00)".to_string()
        ]
    );
}

/// Awaits every future, in order.
async fn futures_join<T: Send + 'static>(fs: Vec<StoreFuture<T>>) -> Vec<Result<T, StoreError>> {
    let handles: Vec<_> = fs.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.expect("task"));
    }
    out
}

#[test]
fn a_password_never_reaches_a_message() {
    assert_eq!(
        redacted("postgres://app:s3cret@db:5432/cash"),
        "postgres://app:***@db:5432/cash"
    );
    assert_eq!(
        redacted("postgres://root@127.0.0.1:5432/test"),
        "postgres://root@127.0.0.1:5432/test"
    );
    let url: StoreUrl = "postgres://app:s3cret@db:5432/cash".parse().expect("url");
    assert!(!format!("{url:?} {url}").contains("s3cret"));
}

#[test]
fn a_store_that_is_not_postgres_is_refused_naming_the_default() {
    let e = "sqlite:///var/lib/cashmatch"
        .parse::<StoreUrl>()
        .unwrap_err();
    assert!(e.contains("--data-dir"), "{e}");
    assert!(
        "postgres://root@127.0.0.1:5432/test"
            .parse::<StoreUrl>()
            .is_ok()
    );
}
