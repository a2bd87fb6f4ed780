//! Three `cashmatch serve` processes on one PostgreSQL database, as a load balancer would use
//! them: 64 clients pay the same invoices through different replicas while one replica is
//! killed with SIGKILL and started again. A client whose call fails does not know whether its
//! payment was decided, so it sends the same payment to the next replica, as a real client would.
//!
//! Afterwards: every acknowledged decision is stored as acknowledged and every replica returns
//! it; each payment id has exactly one decision; no invoice is over-applied; every open amount is
//! the invoice's amount less what the stored decisions applied to it.

use super::*;
use cashmatch::store::postgres::testdb::TestDb;
use std::sync::Mutex;
use std::time::Duration;

const REPLICAS: usize = 3;
const CLIENTS: usize = 64;
const PER_CLIENT: usize = 6;
const INVOICES: usize = 24;

/// The payments of one client, against the contested invoices: some pay one invoice in full,
/// some two, some part of one; clients overlap on every invoice.
fn payments_of(client: usize) -> Vec<Payment> {
    (0..PER_CLIENT)
        .map(|i| {
            let id = format!("P-{client}-{i}");
            let inv = (client * 5 + i * 7) % INVOICES;
            match (client + i) % 3 {
                0 => contested_payment(id, &[inv], dec("100.00")),
                1 => contested_payment(id, &[inv, (inv + 1) % INVOICES], dec("200.00")),
                _ => contested_payment(id, &[inv], dec("40.00")),
            }
        })
        .collect()
}

/// The decisions stored in the database, by payment id, read with SQL, not through a replica.
fn stored_payment_ids(url: &str) -> Vec<String> {
    let url = url.to_string();
    std::thread::spawn(move || {
        let mut c = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
        c.query("SELECT payment_id FROM decisions ORDER BY payment_id", &[])
            .expect("decisions")
            .iter()
            .map(|r| r.get(0))
            .collect()
    })
    .join()
    .expect("reader thread")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_replicas_on_postgresql_lose_nothing_when_one_is_killed_under_load() {
    let Some(db) = TestDb::create("three_replicas") else {
        return;
    };
    let dir = temp_dir("replicas");
    std::fs::create_dir_all(&dir).expect("dir");
    let store = ["--store".as_ref(), db.url.as_ref()];
    let ports: Vec<u16> = (0..REPLICAS).map(|_| free_port()).collect();
    let log = |i: usize| dir.join(format!("replica-{i}.log"));
    let mut children = Vec::new();
    let mut channels = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let (child, ch) = spawn_serve(&store, *port, &log(i)).await;
        children.push(child);
        channels.push(ch);
    }

    let mut c = Clients::new(&channels[0], None);
    let invoices = load_contested_ledger(&mut c.ledger, INVOICES).await;
    // The other replicas learn the ledger through the change feed (tens of milliseconds, at most
    // its half-second poll). Were one still behind, it would send its first payments to review:
    // safe, and the count of auto decisions below would say the test proved too little.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let acked: Arc<Mutex<Vec<(Payment, pb::Decision)>>> = Arc::default();
    let retried = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for client in 0..CLIENTS {
        let (channels, acked, retried) =
            (channels.clone(), Arc::clone(&acked), Arc::clone(&retried));
        tasks.push(tokio::spawn(async move {
            let mut replica = client % REPLICAS;
            for p in payments_of(client) {
                let mut attempts = 0;
                loop {
                    let mut m = Clients::new(&channels[replica], None).matching;
                    let call = m.match_payment(structured(p.clone()));
                    match tokio::time::timeout(Duration::from_secs(60), call).await {
                        Ok(Ok(r)) => {
                            let r = r.into_inner();
                            let d = decision(&r.results[0]).clone();
                            acked.lock().expect("lock").push((p.clone(), d));
                            break;
                        }
                        // Failed or hung: decided or not, the payment goes to the next replica.
                        Ok(Err(_)) | Err(_) => {
                            attempts += 1;
                            assert!(attempts < 300, "{}: no replica answered", p.payment_id);
                            retried.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            replica = (replica + 1) % REPLICAS;
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                }
            }
        }));
    }

    // Replica 1 is killed once a third of the payments are acknowledged, and started again.
    let total = CLIENTS * PER_CLIENT;
    for _ in 0..1200 {
        if acked.lock().expect("lock").len() >= total / 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let at_kill = acked.lock().expect("lock").len();
    children[1].kill().expect("SIGKILL");
    let _ = children[1].wait();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (child, _) = spawn_serve(&store, ports[1], &log(1)).await;
    children[1] = child;
    for t in tasks {
        t.await.expect("client");
    }
    let acked = std::mem::take(&mut *acked.lock().expect("lock"));
    assert!(
        at_kill < total,
        "the replica was killed after every payment was acknowledged: the test proved nothing"
    );
    assert_eq!(acked.len(), total, "every payment acknowledged in the end");

    // Every acknowledged decision is stored as acknowledged, and every replica returns it.
    for ch in &channels {
        let mut m = Clients::new(ch, None).matching;
        for (p, d) in &acked {
            let stored = m
                .get_decision(pb::GetDecisionRequest {
                    payment_id: p.payment_id.clone(),
                })
                .await
                .unwrap_or_else(|s| panic!("{}: {s}", p.payment_id))
                .into_inner();
            assert_eq!(&stored, d, "{}", p.payment_id);
        }
    }
    // Exactly one decision per payment id, and none for a payment never sent.
    let mut ids: Vec<String> = acked.iter().map(|(p, _)| p.payment_id.clone()).collect();
    ids.sort();
    assert_eq!(stored_payment_ids(&db.url), ids);

    // No invoice over-applied; each open amount is its amount less what the decisions applied.
    let mut relieved: HashMap<String, Decimal> = HashMap::new();
    let mut autos = 0;
    for (p, d) in &acked {
        check_balances(d, p.amount, &mut relieved);
        autos += usize::from(is_auto(d));
    }
    assert!(
        autos >= INVOICES / 2,
        "the replicas must apply cash concurrently; only {autos} auto decisions"
    );
    for ch in &channels {
        let mut ledger = Clients::new(ch, None).ledger;
        for inv in &invoices {
            let open = open_amount(&mut ledger, &inv.id).await;
            assert!(open >= Decimal::ZERO, "{} went below zero: {open}", inv.id);
            let r = relieved.get(&inv.id).copied().unwrap_or_default();
            assert_eq!(open, inv.amount - r, "{}", inv.id);
        }
    }

    // A replay on another replica than the one that decided changes nothing.
    let mut m = Clients::new(&channels[2], None).matching;
    for (p, d) in acked.iter().step_by(37) {
        let again = m
            .match_payment(structured(p.clone()))
            .await
            .expect("replay")
            .into_inner();
        assert!(again.results[0].replayed, "{}", p.payment_id);
        assert_eq!(decision(&again.results[0]), d);
    }
    eprintln!(
        "three replicas: {total} payments, {autos} auto, {} calls sent again after a failure, \
         replica 1 killed after {at_kill} acknowledgements",
        retried.load(std::sync::atomic::Ordering::Relaxed)
    );
    for mut child in children {
        let _ = child.kill();
        let _ = child.wait();
    }
    let _ = std::fs::remove_dir_all(&dir);
}
