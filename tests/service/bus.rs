//! The event bus end to end on a real NATS server: `cashmatch serve --nats` takes a few thousand
//! payments from a JetStream stream, is killed with SIGKILL in the middle of them and started
//! again; afterwards every payment has exactly one decision, every message was acknowledged, the
//! events stream holds exactly one decision message per payment and exactly the postings
//! journal, each message under its `Nats-Msg-Id`.
//!
//! The server is `CASHMATCH_TEST_NATS` (default `nats://127.0.0.1:4222`). Without one a test
//! says so loudly and proves nothing, except under `CI=true` or `CASHMATCH_REQUIRE_NATS` (set by
//! `.ci/run`), where a missing server fails it. Each run has streams of its own, named after the
//! process and a random suffix, deleted at the end.

use super::*;
use async_nats::jetstream;
use cashmatch::bus::Topic;
use cashmatch::bus::nats::NatsConfig;
use cashmatch::store::postgres::testdb::TestDb;
use prost::Message;
use std::collections::BTreeMap;
use std::time::Duration;

/// Payments sent on the bus (and one message that is not a payment at all).
const PAYMENTS: usize = 2_500;

fn nats_url() -> String {
    std::env::var("CASHMATCH_TEST_NATS").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

fn nats_required() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
        || std::env::var_os("CASHMATCH_REQUIRE_NATS").is_some()
}

/// A JetStream context on the test server, or `None` (after saying why) when there is none and
/// this run does not require one.
async fn jetstream_or_skip(test: &str) -> Option<jetstream::Context> {
    match async_nats::connect(nats_url()).await {
        Ok(c) => Some(jetstream::new(c)),
        Err(e) if nats_required() => panic!(
            "NATS at {} is unreachable and this run needs it (CI=true or \
             CASHMATCH_REQUIRE_NATS): {e}",
            nats_url()
        ),
        Err(e) => {
            eprintln!(
                "SKIPPED {test}: no NATS server at {} ({e}); set CASHMATCH_TEST_NATS",
                nats_url()
            );
            None
        }
    }
}

/// The streams of one test run, deleted when it ends, passed or failed.
struct Streams {
    config: NatsConfig,
}

impl Streams {
    fn new(label: &str) -> Streams {
        let mut nonce = [0u8; 4];
        getrandom::fill(&mut nonce).expect("random");
        let suffix: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
        Streams {
            config: NatsConfig {
                url: nats_url(),
                prefix: format!("cmtest-{label}-{}-{suffix}", std::process::id()),
            },
        }
    }
}

impl Drop for Streams {
    fn drop(&mut self) {
        let c = self.config.clone();
        // Drop cannot await, and may run inside the test's runtime: a thread with its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                if let Ok(client) = async_nats::connect(c.url.as_str()).await {
                    let js = jetstream::new(client);
                    let _ = js.delete_stream(c.payments_stream()).await;
                    let _ = js.delete_stream(c.events_stream()).await;
                }
            });
        })
        .join();
    }
}

/// Where the decisions and the journal are, read directly rather than through the service.
enum Probe {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Probe {
    /// Decided payment ids with the number of rows each has, and the journal's sequences.
    fn read(&self) -> (BTreeMap<String, i64>, Vec<i64>) {
        match self {
            Probe::Sqlite(dir) => {
                let db = dir.join(cashmatch::store::sqlite::DB_FILE);
                let Ok(c) = rusqlite::Connection::open_with_flags(
                    &db,
                    rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
                ) else {
                    return Default::default();
                };
                let ids = c
                    .prepare("SELECT payment_id, COUNT(*) FROM decisions GROUP BY payment_id")
                    .and_then(|mut s| {
                        s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                            .collect::<Result<BTreeMap<String, i64>, _>>()
                    })
                    .unwrap_or_default();
                let seqs = c
                    .prepare("SELECT sequence FROM postings ORDER BY sequence")
                    .and_then(|mut s| {
                        s.query_map([], |r| r.get(0))?
                            .collect::<Result<Vec<i64>, _>>()
                    })
                    .unwrap_or_default();
                (ids, seqs)
            }
            Probe::Postgres(url) => {
                let url = url.clone();
                std::thread::spawn(move || {
                    let mut c = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
                    let ids = c
                        .query(
                            "SELECT payment_id, COUNT(*) FROM decisions GROUP BY payment_id",
                            &[],
                        )
                        .expect("decisions")
                        .iter()
                        .map(|r| (r.get(0), r.get(1)))
                        .collect();
                    let seqs = c
                        .query("SELECT sequence FROM postings ORDER BY sequence", &[])
                        .expect("postings")
                        .iter()
                        .map(|r| r.get(0))
                        .collect();
                    (ids, seqs)
                })
                .join()
                .expect("reader thread")
            }
        }
    }
}

/// Every message of the events stream: (subject, Nats-Msg-Id, body), in stream order.
async fn events(js: &jetstream::Context, c: &NatsConfig) -> Vec<(String, String, Vec<u8>)> {
    let stream = js
        .get_stream(c.events_stream())
        .await
        .expect("events stream");
    let info = stream.get_info().await.expect("stream info");
    let mut out = Vec::new();
    for seq in info.state.first_sequence..=info.state.last_sequence {
        let Ok(m) = stream.get_raw_message(seq).await else {
            continue;
        };
        // The constant, not the string: async-nats parses a known header into its standard name,
        // which a lookup by string (a custom name) does not find.
        let id = m
            .headers
            .get(async_nats::header::NATS_MESSAGE_ID)
            .map(|v| v.as_str().to_string())
            .unwrap_or_default();
        out.push((m.subject.to_string(), id, m.payload.to_vec()));
    }
    out
}

async fn bus_survives_a_sigkill(label: &str, store: Probe, store_args: Vec<std::ffi::OsString>) {
    let Some(js) = jetstream_or_skip(label).await else {
        return;
    };
    let streams = Streams::new(label);
    let c = streams.config.clone();
    let dir = temp_dir(&format!("bus-{label}"));
    let log = dir.join("server.log");
    let port = free_port();
    let mut owned = store_args;
    owned.extend(["--nats", &c.url, "--nats-prefix", &c.prefix].map(std::ffi::OsString::from));
    let args: Vec<&std::ffi::OsStr> = owned.iter().map(|a| a.as_os_str()).collect();

    // The test split is the last 30% of the payments.
    let world = cashmatch::synth::generate(&cashmatch::synth::SynthConfig::new(
        20_261_206,
        80,
        PAYMENTS * 4,
    ));
    let (mut child, ch) = spawn_serve(&args, port, &log).await;
    load_world(&mut Clients::new(&ch, None).ledger, &world).await;
    let payments: Vec<Payment> = world.test.payments.iter().take(PAYMENTS).cloned().collect();
    assert_eq!(payments.len(), PAYMENTS, "the world has enough payments");

    // The payments go out while the service decides them; one message in the middle is not a
    // MatchRequest at all, and must be refused without holding anything up.
    let publisher = {
        let (js, subject, payments) = (js.clone(), c.payments_subject(), payments.clone());
        tokio::spawn(async move {
            for (i, p) in payments.into_iter().enumerate() {
                if i == PAYMENTS / 2 {
                    js.publish(subject.clone(), vec![0xff, 0x01, 0x02].into())
                        .await
                        .expect("publish")
                        .await
                        .expect("stored");
                }
                let body = structured(p).encode_to_vec();
                js.publish(subject.clone(), body.into())
                    .await
                    .expect("publish")
                    .await
                    .expect("stored");
            }
        })
    };

    // Killed once about a third is decided, in the middle of the stream.
    let mut at_kill = 0;
    for _ in 0..2_400 {
        at_kill = store.read().0.len();
        if at_kill >= PAYMENTS / 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    assert!(
        at_kill > 0 && at_kill < PAYMENTS,
        "killed after {at_kill} decisions: the test proved nothing"
    );
    let (mut child, _) = spawn_serve(&args, port, &log).await;
    publisher.await.expect("publisher");

    // Wait until every payment is decided and the publisher has caught up with the store (the
    // messages killed unacknowledged come again after the consumer's 30-second ack wait).
    let events_stream = js
        .get_stream(c.events_stream())
        .await
        .expect("events stream");
    let mut last = (0, 0, 0);
    for _ in 0..1_200 {
        let (ids, seqs) = store.read();
        let stored = events_stream.get_info().await.expect("info").state.messages;
        last = (ids.len(), seqs.len(), stored);
        if ids.len() == PAYMENTS && stored as usize >= PAYMENTS + seqs.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // Exactly one decision per payment, and no other.
    let (ids, seqs) = store.read();
    let mut want: Vec<String> = payments.iter().map(|p| p.payment_id.clone()).collect();
    want.sort();
    assert_eq!(
        ids.keys().cloned().collect::<Vec<_>>(),
        want,
        "(decided, journalled, messages published) = {last:?}"
    );
    assert!(ids.values().all(|n| *n == 1));

    // Every message was settled: nothing pending, nothing waiting for an acknowledgement.
    let mut consumer: jetstream::consumer::PullConsumer = js
        .get_stream(c.payments_stream())
        .await
        .expect("payments stream")
        .get_consumer(&c.consumer())
        .await
        .expect("consumer");
    let info = consumer.info().await.expect("consumer info");
    assert_eq!(info.num_pending, 0, "messages never delivered");
    assert_eq!(
        info.num_ack_pending, 0,
        "messages delivered and never settled"
    );

    // One decision message per payment, its id `decision-<payment id>`, its body the stored
    // decision; the postings exactly the journal, in sequence order, without gaps.
    let published = events(&js, &c).await;
    let mut decided: BTreeMap<String, usize> = BTreeMap::new();
    let mut posted = Vec::new();
    for (subject, id, body) in &published {
        if *subject == c.subject(Topic::Decisions) {
            let d = pb::Decision::decode(body.as_slice()).expect("a cashmatch.v1.Decision");
            assert_eq!(*id, format!("decision-{}", d.payment_id));
            *decided.entry(d.payment_id).or_default() += 1;
        } else {
            assert_eq!(*subject, c.subject(Topic::Postings));
            let p = pb::Posting::decode(body.as_slice()).expect("a cashmatch.v1.Posting");
            assert_eq!(*id, format!("posting-{}", p.sequence));
            posted.push(p.sequence as i64);
        }
    }
    assert_eq!(
        decided.len(),
        PAYMENTS,
        "decision messages for {} payments",
        decided.len()
    );
    assert!(
        decided.values().all(|n| *n == 1),
        "payments published more than once: {:?}",
        decided
            .iter()
            .filter(|(_, n)| **n > 1)
            .take(5)
            .collect::<Vec<_>>()
    );
    assert!(!seqs.is_empty(), "auto decisions journal postings");
    assert_eq!(posted, seqs, "the postings published are the journal");
    assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>());

    // A payment sent again is a replay: no second decision, no second message.
    js.publish(
        c.payments_subject(),
        structured(payments[7].clone()).encode_to_vec().into(),
    )
    .await
    .expect("publish")
    .await
    .expect("stored");
    for _ in 0..200 {
        let info = consumer.info().await.expect("consumer info");
        if info.num_pending == 0 && info.num_ack_pending == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(events(&js, &c).await.len(), published.len());
    assert_eq!(store.read().0.len(), PAYMENTS);

    eprintln!(
        "event bus ({label}): {PAYMENTS} payments, killed after {at_kill} decisions, {} postings",
        seqs.len()
    );
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bus_decides_and_publishes_every_payment_exactly_once_across_a_sigkill() {
    let dir = temp_dir("bus-sqlite-data");
    let args = vec!["--data-dir".into(), dir.clone().into_os_string()];
    bus_survives_a_sigkill("sqlite", Probe::Sqlite(dir.clone()), args).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bus_decides_and_publishes_every_payment_exactly_once_on_postgresql() {
    let Some(db) = TestDb::create("bus") else {
        return;
    };
    let args = vec!["--store".into(), db.url.clone().into()];
    bus_survives_a_sigkill("pg", Probe::Postgres(db.url.clone()), args).await;
}
