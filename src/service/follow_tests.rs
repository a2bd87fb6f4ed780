//! Replicas on one PostgreSQL database following each other through the change feed, and a
//! replica riding out the database closing its connections (what a restart looks like to it).
//! PostgreSQL only: SQLite has one process and no feed.

use super::tests::{TestStore, runtime};
use super::*;
use crate::domain::Invoice;
use crate::domain::{Payment, Status};
use crate::store::postgres::testdb::TestDb;
use rust_decimal::Decimal;
use std::time::{Duration, Instant};

/// The delay a change may take to reach another replica in these tests: the feed polls every
/// half second whatever it hears, so this holds even with every notification lost, on a busy
/// machine.
const BOUND: Duration = Duration::from_secs(5);

fn number<T>(v: Vec<T>) -> Vec<(u64, T)> {
    v.into_iter()
        .enumerate()
        .map(|(i, x)| (i as u64, x))
        .collect()
}

fn fixture() -> (Vec<crate::domain::Customer>, Vec<Invoice>, Vec<Payment>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/cases");
    let customers = crate::io::read_customers(root.join("customers.csv"))
        .expect("customers")
        .rows;
    let invoices = crate::io::read_invoices(root.join("invoices.csv"))
        .expect("invoices")
        .rows;
    let payments = crate::io::read_remittances(root.join("remittances.csv"))
        .expect("remittances")
        .payments;
    (customers, invoices, payments)
}

/// Waits until `holds`, polling every millisecond; how long it took, or a panic naming `what`.
async fn within(bound: Duration, what: &str, holds: impl Fn() -> bool) -> Duration {
    let start = Instant::now();
    loop {
        if holds() {
            return start.elapsed();
        }
        assert!(start.elapsed() < bound, "{what}: not seen within {bound:?}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Whether a replica's memory holds every invoice as the store has it.
async fn in_step(replica: &Service, ids: &[String]) -> bool {
    for id in ids {
        let stored = replica
            .store()
            .invoice(id.clone())
            .await
            .expect("read")
            .expect("stored");
        if replica.invoices_now([id.as_str()]) != vec![stored] {
            return false;
        }
    }
    true
}

#[test]
fn what_one_replica_changes_reaches_the_others_memory_within_a_bound() {
    let Some(db) = TestDb::create("feed") else {
        return;
    };
    let store = TestStore::Postgres(db);
    runtime().block_on(async {
        let (customers, invoices, payments) = fixture();
        let a = store.service().await;
        let b = store.service().await;
        // Invoices and customers added on a.
        a.upsert(number(customers), number(invoices.clone()))
            .await
            .expect("ledger");
        let took = within(BOUND, "the ledger on b", || {
            b.ledger_size() == a.ledger_size()
        })
        .await;
        eprintln!("ledger upsert reached b in {took:?}");
        let ids: Vec<String> = invoices.iter().map(|i| i.id.clone()).collect();
        assert!(in_step(&b, &ids).await, "b holds the invoices as stored");

        // Payments decided on a: b knows them decided, and its open amounts follow.
        let mut review = Vec::new();
        for p in &payments {
            let m = a.match_payment(p.clone()).await.expect("a decides");
            if m.decision.status == Status::Review {
                review.push(p.payment_id.clone());
            }
        }
        assert!(!review.is_empty(), "the fixture has review items");
        let took = within(BOUND, "a's decisions on b", || {
            let core = b.read();
            payments
                .iter()
                .all(|p| core.decided.contains(&p.payment_id))
                && core.open_reviews.len() == review.len()
        })
        .await;
        eprintln!("decisions reached b in {took:?}");
        let start = Instant::now();
        while !in_step(&b, &ids).await {
            assert!(
                start.elapsed() < BOUND,
                "b's open amounts follow a's applications"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // A replay on b answers from memory, not through a refused write.
        let redecided = b
            .counters()
            .redecided
            .load(std::sync::atomic::Ordering::Relaxed);
        for p in &payments {
            assert!(b.match_payment(p.clone()).await.expect("replay").replayed);
        }
        assert_eq!(
            b.counters()
                .redecided
                .load(std::sync::atomic::Ordering::Relaxed),
            redecided,
            "b knew every payment decided"
        );

        // A review item resolved on a leaves b's queue.
        let item = a
            .review_item("P-ambiguous".into())
            .await
            .expect("the fixture's ambiguous payment waits for review");
        assert!(!item.decision.suggestions.is_empty());
        a.resolve(ResolveRequest {
            payment_id: "P-ambiguous".into(),
            analyst: "alice".into(),
            action: ResolveAction::AcceptSuggestion(0),
            note: String::new(),
        })
        .await
        .expect("resolved on a");
        let took = within(BOUND, "the resolution on b", || {
            !b.read().open_reviews.contains("P-ambiguous")
        })
        .await;
        eprintln!("a resolution reached b in {took:?}");
        let start = Instant::now();
        while !in_step(&b, &ids).await {
            assert!(
                start.elapsed() < BOUND,
                "b's open amounts follow the resolution"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }

        // A model activated on a is active on b.
        let dir = std::env::temp_dir().join(format!("cashmatch-feed-model-{}", std::process::id()));
        let mut model = crate::model::artifact::Model::embedded_default().expect("model");
        model.version = "activated-on-a".into();
        model
            .save(&dir, "the default model under another version")
            .expect("save");
        a.activate_model(dir.clone(), "ops".into())
            .await
            .expect("activated on a");
        let took = within(BOUND, "the model on b", || {
            b.model_info().version == "activated-on-a"
        })
        .await;
        eprintln!("a model activation reached b in {took:?}");
        assert_eq!(b.model_info().source, dir.display().to_string());
        let _ = std::fs::remove_dir_all(&dir);

        // b follows what it did not do, and a what b does.
        let mut new = invoices[0].clone();
        new.id = "I-from-b".into();
        new.number = "INV-FROM-B".into();
        b.upsert(vec![], vec![(0, new)]).await.expect("upsert on b");
        within(BOUND, "b's invoice on a", || {
            !a.invoices_now(["I-from-b"]).is_empty()
        })
        .await;
        let stats = b.feed_stats();
        assert!(stats.changes.load(std::sync::atomic::Ordering::Relaxed) >= 4);
        assert!(stats.position.load(std::sync::atomic::Ordering::Relaxed) > 0);
        for s in [&a, &b] {
            s.store().close();
        }
    });
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// The figure docs/operations.md quotes: from the call on one replica until another replica's
/// memory holds the change (a new invoice), and from commit to applied as the feed measures it.
/// `cargo test --lib change_feed_delay -- --nocapture` prints it.
#[test]
fn change_feed_delay_between_two_replicas_is_bounded() {
    let Some(db) = TestDb::create("feed-delay") else {
        return;
    };
    let store = TestStore::Postgres(db);
    runtime().block_on(async {
        let (customers, invoices, _) = fixture();
        let a = store.service().await;
        let b = store.service().await;
        a.upsert(number(customers), number(invoices.clone()))
            .await
            .expect("ledger");
        const ROUNDS: usize = 200;
        let mut delays = Vec::with_capacity(ROUNDS);
        for i in 0..ROUNDS {
            let mut inv = invoices[i % invoices.len()].clone();
            inv.id = format!("I-delay-{i}");
            inv.number = format!("INV-DELAY-{i}");
            let id = inv.id.clone();
            let start = Instant::now();
            a.upsert(vec![], vec![(0, inv)]).await.expect("upsert");
            within(BOUND, &id, || !b.invoices_now([id.as_str()]).is_empty()).await;
            delays.push(start.elapsed().as_secs_f64() * 1000.0);
        }
        delays.sort_by(f64::total_cmp);
        let mut fed = b.feed_stats().delays();
        fed.sort_by(f64::total_cmp);
        eprintln!(
            "change feed, {ROUNDS} invoices added on one replica: call to the other's memory \
             p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; commit to applied p50 {:.1} ms, p99 {:.1} ms",
            percentile(&delays, 0.5),
            percentile(&delays, 0.99),
            percentile(&delays, 1.0),
            percentile(&fed, 0.5),
            percentile(&fed, 0.99),
        );
        // The notification brings it; the poll is the fallback, not the rule.
        assert!(
            percentile(&delays, 0.5) < crate::store::postgres::FEED_POLL.as_secs_f64() * 1000.0,
            "the median delay is the notification's, not the poll's"
        );
        for s in [&a, &b] {
            s.store().close();
        }
    });
}

/// Terminates every connection of the database but the caller's, as a restart of the server
/// does, and waits until they are gone.
fn terminate_connections(url: &str) {
    let url = url.to_string();
    std::thread::spawn(move || {
        let mut c = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
        c.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
            &[],
        )
        .expect("terminate");
    })
    .join()
    .expect("admin thread");
}

/// The database closing every connection while payments stream in (a restart, a failover, as
/// the client sees one): no call fails, nothing stops, every acknowledged decision is the
/// stored one, no invoice is over-applied, and the other replica catches up.
#[test]
fn a_database_closing_every_connection_mid_stream_fails_no_call_and_loses_no_decision() {
    let Some(db) = TestDb::create("restart") else {
        return;
    };
    let url = db.url.clone();
    let store = TestStore::Postgres(db);
    runtime().block_on(async {
        let (customers, invoices, payments) = fixture();
        let a = store.service().await;
        let b = store.service().await;
        a.upsert(number(customers), number(invoices.clone()))
            .await
            .expect("ledger");
        let mut sent = Vec::new();
        for copy in 0..4 {
            for p in &payments {
                let mut p = p.clone();
                p.payment_id = format!("{}-restart{copy}", p.payment_id);
                sent.push(p);
            }
        }
        let mut tasks = Vec::new();
        for (i, p) in sent.iter().enumerate() {
            let replica = if i % 2 == 0 { &a } else { &b };
            let (s, p) = (Arc::clone(replica), p.clone());
            tasks.push(tokio::spawn(async move {
                // Spread over the terminations.
                tokio::time::sleep(Duration::from_millis(3 * i as u64)).await;
                let id = p.payment_id.clone();
                (id, s.match_payment(p).await)
            }));
        }
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_millis(60)).await;
            let u = url.clone();
            tokio::task::spawn_blocking(move || terminate_connections(&u))
                .await
                .expect("terminate");
        }
        let mut acknowledged = Vec::new();
        for t in tasks {
            let (id, r) = t.await.expect("task");
            let m = r.unwrap_or_else(|e| panic!("{id} failed across the restart: {e}"));
            acknowledged.push((id, m.decision));
        }
        assert!(a.write().is_ok() && b.write().is_ok(), "nothing stopped");
        for (id, d) in &acknowledged {
            let stored = a.decision(id.clone()).await.expect("stored");
            assert_eq!(&stored, d, "{id}: acknowledged unlike the store");
        }
        let journal = a
            .postings(PostingFilter::All, 0, 100_000)
            .await
            .expect("journal");
        for inv in &invoices {
            let stored = a
                .store()
                .invoice(inv.id.clone())
                .await
                .expect("read")
                .expect("stored");
            let in_force: Decimal = live_postings(&journal)
                .iter()
                .filter(|p| p.record.invoice_id.as_deref() == Some(inv.id.as_str()))
                .map(|p| p.record.amount)
                .sum();
            assert_eq!(
                stored.open_amount,
                inv.amount - in_force,
                "invoice {}",
                inv.id
            );
        }
        let ids: Vec<String> = invoices.iter().map(|i| i.id.clone()).collect();
        let start = Instant::now();
        while !(in_step(&a, &ids).await && in_step(&b, &ids).await) {
            assert!(
                start.elapsed() < BOUND,
                "both replicas catch up after the restart"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        for s in [&a, &b] {
            s.store().close();
        }
    });
}
