//! The gRPC service end to end, over real sockets on port 0 with the generated tonic clients:
//! loading a ledger, matching payments in several formats, idempotency, working the review queue
//! with its audit trail, each role boundary, concurrent clients against the same invoices, a
//! restart on the same data directory, graceful drain, request limits, a SIGKILL under load,
//! TLS with client certificates (`service/tls.rs`), four-eyes approval (`service/four_eyes.rs`),
//! three replicas on PostgreSQL with one killed under load (`service/replicas.rs`), and the
//! event bus on NATS JetStream with the service killed in the middle of a stream
//! (`service/bus.rs`).
//!
//! Each test whose service only needs a store runs twice, on SQLite and on PostgreSQL
//! (`on_both_stores!`; `name::on_sqlite`, `name::on_postgresql`). SQLite only: the SIGKILL of a
//! child `serve --data-dir` (on PostgreSQL, `service/replicas.rs`), `audit verify` against a
//! SQLite file edited by hand (on PostgreSQL, a unit test of `store::postgres`), and TLS, which
//! is the transport's and leaves the store a bystander.

use cashmatch::domain::{Customer, Invoice, Payment};
use cashmatch::engine::EngineConfig;
use cashmatch::grpc::pb::ledger_client::LedgerClient;
use cashmatch::grpc::pb::matching_client::MatchingClient;
use cashmatch::grpc::pb::models_client::ModelsClient;
use cashmatch::grpc::pb::reversals_client::ReversalsClient;
use cashmatch::grpc::pb::review_client::ReviewClient;
use cashmatch::grpc::pb::{self, ledger_record::Record, match_request::Input};
use cashmatch::grpc::{ServeError, run};
use cashmatch::io;
use cashmatch::metrics::Metrics;
use cashmatch::service::auth::{Auth, MAX_FAILURES, Role, TokenHash};
use cashmatch::service::{Limits, Service};
use cashmatch::store::postgres::testdb::TestDb;
use cashmatch::store::{PgStore, SqliteStore, Store};
use rust_decimal::Decimal;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/cases")
        .join(name)
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("cashmatch-service-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

fn dec(s: &str) -> Decimal {
    s.parse()
        .unwrap_or_else(|e| panic!("{s:?} is not a decimal: {e}"))
}

/// The store a test's service runs on, and a scratch directory of its own for the files a test
/// writes beside it. A PostgreSQL database is created for the test and dropped with this value.
///
/// A test written as `async fn body(b: Backend)` runs on both stores through
/// [`on_both_stores!`]; the two runs share a process, so everything they keep apart (directory,
/// database) is named after the test and the store.
struct Backend {
    dir: PathBuf,
    pg: Option<TestDb>,
}

impl Backend {
    fn sqlite(label: &str) -> Backend {
        Backend {
            dir: temp_dir(&format!("{label}-sqlite")),
            pg: None,
        }
    }

    /// `None` when no PostgreSQL server answers outside CI (`TestDb::create` says so loudly).
    fn postgresql(label: &str) -> Option<Backend> {
        let db = TestDb::create(label)?;
        Some(Backend {
            dir: temp_dir(&format!("{label}-postgresql")),
            pg: Some(db),
        })
    }

    fn is_postgresql(&self) -> bool {
        self.pg.is_some()
    }

    /// The SQLite store's directory, inside the scratch directory so that a test's files and
    /// the store's do not mix.
    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// A store on what this backend holds (a second one sees what the first committed).
    async fn store(&self) -> Arc<dyn Store> {
        match &self.pg {
            Some(db) => Arc::new(PgStore::open_async(&db.url).await.expect("store")),
            None => Arc::new(SqliteStore::open(&self.data_dir()).expect("store")),
        }
    }

    /// The store as the CLI's commands take it: `--data-dir DIR` or `--store URL`.
    fn store_args(&self) -> Vec<std::ffi::OsString> {
        match &self.pg {
            Some(db) => vec!["--store".into(), db.url.clone().into()],
            None => vec!["--data-dir".into(), self.data_dir().into()],
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `async fn $body(b: Backend)` as two tests, `$body::on_sqlite` and
/// `$body::on_postgresql` (skipped with a loud message when no PostgreSQL server answers, failed
/// instead under CI: see `TestDb`).
macro_rules! on_both_stores {
    ($body:ident, $workers:literal) => {
        mod $body {
            #[tokio::test(flavor = "multi_thread", worker_threads = $workers)]
            async fn on_sqlite() {
                super::$body(crate::Backend::sqlite(stringify!($body))).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = $workers)]
            async fn on_postgresql() {
                if let Some(b) = crate::Backend::postgresql(stringify!($body)) {
                    super::$body(b).await;
                }
            }
        }
    };
}

// After the macro, which they use.
#[path = "service/advices.rs"]
mod advices;
#[path = "service/bus.rs"]
mod bus;
#[path = "service/four_eyes.rs"]
mod four_eyes;
#[path = "service/replicas.rs"]
mod replicas;
#[path = "service/tls.rs"]
mod tls;

/// A server running in this process on a port of its own.
struct Running {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), ServeError>>,
    service: Arc<Service>,
    metrics: Arc<Metrics>,
}

async fn start(at: &Backend, auth: impl Into<Arc<Auth>>, limits: Limits) -> Running {
    start_with(at.store().await, auth.into(), limits, None).await
}

/// [`start`] on `store`, over TLS with `tls` when given.
async fn start_with(
    store: Arc<dyn Store>,
    auth: Arc<Auth>,
    limits: Limits,
    tls: Option<Arc<cashmatch::tls::ServerConfig>>,
) -> Running {
    let service = Arc::new(
        Service::open_shared(store, None, EngineConfig::default(), limits)
            .await
            .expect("service"),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = oneshot::channel::<()>();
    let shutdown = async move {
        let _ = rx.await;
    };
    let metrics = Arc::new(Metrics::new().with_auth(Arc::clone(&auth)));
    let (s, m) = (Arc::clone(&service), Arc::clone(&metrics));
    let task = match tls {
        Some(config) => tokio::spawn(cashmatch::grpc::run_tls(
            listener, config, shutdown, s, auth, m,
        )),
        None => tokio::spawn(run(listener, shutdown, s, auth, m)),
    };
    Running {
        addr,
        stop: Some(tx),
        task,
        service,
        metrics,
    }
}

impl Running {
    async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr))
            .expect("uri")
            .connect()
            .await
            .expect("connect")
    }

    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        self.task.await.expect("server task").expect("server ran");
        self.service.store().close();
    }
}

/// Adds the bearer token, if any, to every call.
#[derive(Clone)]
struct Bearer(Option<String>);

impl Interceptor for Bearer {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        if let Some(t) = &self.0 {
            let v = format!("Bearer {t}")
                .parse()
                .map_err(|_| Status::internal("bad token"))?;
            req.metadata_mut().insert("authorization", v);
        }
        Ok(req)
    }
}

type Authed = InterceptedService<Channel, Bearer>;

struct Clients {
    ledger: LedgerClient<Authed>,
    matching: MatchingClient<Authed>,
    review: ReviewClient<Authed>,
    models: ModelsClient<Authed>,
}

impl Clients {
    fn new(ch: &Channel, token: Option<&str>) -> Clients {
        let b = Bearer(token.map(str::to_string));
        Clients {
            ledger: LedgerClient::with_interceptor(ch.clone(), b.clone()),
            matching: MatchingClient::with_interceptor(ch.clone(), b.clone()),
            review: ReviewClient::with_interceptor(ch.clone(), b.clone()),
            models: ModelsClient::with_interceptor(ch.clone(), b),
        }
    }
}

fn cases_ledger() -> (Vec<Customer>, Vec<Invoice>) {
    let customers = io::read_customers(fixture("customers.csv"))
        .expect("customers")
        .rows;
    let invoices = io::read_invoices(fixture("invoices.csv"))
        .expect("invoices")
        .rows;
    (customers, invoices)
}

fn cases_payments() -> Vec<Payment> {
    io::read_remittances(fixture("remittances.csv"))
        .expect("remittances")
        .payments
}

/// Loads the fixture ledger through the client-streaming call.
async fn load_cases_ledger(ledger: &mut LedgerClient<Authed>) -> pb::UpsertResponse {
    let (customers, invoices) = cases_ledger();
    let records: Vec<pb::LedgerRecord> = customers
        .into_iter()
        .map(|c| pb::LedgerRecord {
            record: Some(Record::Customer(c.into())),
        })
        .chain(invoices.into_iter().map(|i| pb::LedgerRecord {
            record: Some(Record::Invoice(i.into())),
        }))
        .collect();
    ledger
        .load_ledger(tokio_stream::iter(records))
        .await
        .expect("load")
        .into_inner()
}

fn raw(content: Vec<u8>, format: Option<&str>, file: &str) -> pb::MatchRequest {
    pb::MatchRequest {
        input: Some(Input::Raw(pb::RawRemittance {
            content,
            format: format.map(str::to_string),
            file_name: file.to_string(),
        })),
    }
}

fn structured(p: Payment) -> pb::MatchRequest {
    pb::MatchRequest {
        input: Some(Input::Payment(p.into())),
    }
}

fn csv_bytes(payments: &[Payment]) -> Vec<u8> {
    let mut out = Vec::new();
    io::write_remittances(&mut out, payments).expect("csv");
    out
}

async fn open_amount(ledger: &mut LedgerClient<Authed>, id: &str) -> Decimal {
    let inv = ledger
        .get_invoice(pb::GetInvoiceRequest {
            invoice_id: id.into(),
        })
        .await
        .unwrap_or_else(|s| panic!("get {id}: {s}"))
        .into_inner();
    dec(inv.open_amount.as_deref().unwrap_or_default())
}

async fn open_amounts(
    ledger: &mut LedgerClient<Authed>,
    ids: &[String],
) -> HashMap<String, Decimal> {
    let mut out = HashMap::new();
    for id in ids {
        out.insert(id.clone(), open_amount(ledger, id).await);
    }
    out
}

fn decision(r: &pb::MatchedPayment) -> &pb::Decision {
    r.decision.as_ref().expect("a decision")
}

fn is_auto(d: &pb::Decision) -> bool {
    d.status == pb::DecisionStatus::Auto as i32
}

/// Cash applied plus unapplied is the payment, and each invoice's relief, summed.
fn check_balances(d: &pb::Decision, amount: Decimal, relieved: &mut HashMap<String, Decimal>) {
    let applied: Decimal = d.allocations.iter().map(|a| dec(&a.amount)).sum();
    assert_eq!(
        applied + dec(&d.unapplied),
        amount,
        "{} does not balance",
        d.payment_id
    );
    for a in &d.allocations {
        let r = dec(&a.amount) + dec(&a.discount) + dec(&a.deduction);
        *relieved.entry(a.invoice_id.clone()).or_default() += r;
    }
}

fn code<T: std::fmt::Debug>(r: Result<T, Status>) -> (Code, String) {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(s) => (s.code(), s.message().to_string()),
    }
}

on_both_stores!(
    a_ledger_is_loaded_payments_in_three_formats_are_matched_and_the_review_queue_is_worked,
    2
);
async fn a_ledger_is_loaded_payments_in_three_formats_are_matched_and_the_review_queue_is_worked(
    b: Backend,
) {
    let dir = b.dir.clone();
    let server = start(&b, Auth::disabled(), Limits::default()).await;
    let mut c = Clients::new(&server.channel().await, None);
    let (customers, invoices) = cases_ledger();
    let loaded = load_cases_ledger(&mut c.ledger).await;
    assert_eq!(loaded.accepted as usize, customers.len() + invoices.len());
    assert!(loaded.rejected.is_empty(), "{:?}", loaded.rejected);
    let invoice_ids: Vec<String> = invoices.iter().map(|i| i.id.clone()).collect();
    let original: HashMap<String, Decimal> = invoices
        .iter()
        .map(|i| (i.id.clone(), i.open_amount))
        .collect();

    // Three formats: two payments in an X12 820, one in a camt.054, the rest in the project CSV.
    let payments = cases_payments();
    let amount_of: HashMap<String, Decimal> = payments
        .iter()
        .map(|p| (p.payment_id.clone(), p.amount))
        .collect();
    let pick = |ids: &[&str]| -> Vec<Payment> {
        payments
            .iter()
            .filter(|p| ids.contains(&p.payment_id.as_str()))
            .cloned()
            .collect()
    };
    let x12_part = pick(&["P-exact", "P-discount"]);
    let camt_part = pick(&["P-lowercase-spacing"]);
    let csv_part: Vec<Payment> = payments
        .iter()
        .filter(|p| {
            !["P-exact", "P-discount", "P-lowercase-spacing"].contains(&p.payment_id.as_str())
        })
        .cloned()
        .collect();
    let mut x12 = Vec::new();
    cashmatch::formats::x12::write_820(&x12_part, &mut x12).expect("x12");
    let mut camt = Vec::new();
    cashmatch::formats::camt::write_camt054(&camt_part, &mut camt).expect("camt");

    let mut decisions: HashMap<String, pb::Decision> = HashMap::new();
    // The X12 and camt files without a format: the service tells them apart by their first bytes.
    for req in [
        raw(x12.clone(), None, "batch.x12"),
        raw(camt, None, "notification.xml"),
        raw(csv_bytes(&csv_part), Some("csv"), "rest.csv"),
    ] {
        let r = c
            .matching
            .match_payment(req)
            .await
            .expect("match")
            .into_inner();
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        for m in &r.results {
            assert!(!m.replayed);
            decisions.insert(decision(m).payment_id.clone(), decision(m).clone());
        }
    }
    assert_eq!(decisions.len(), payments.len());
    for id in [
        "P-exact",
        "P-discount",
        "P-multi-lines",
        "P-lowercase-spacing",
    ] {
        assert!(
            is_auto(&decisions[id]),
            "{id} should be auto-applied: {:#?}",
            decisions[id]
        );
    }
    for id in ["P-ambiguous", "P-duplicate", "P-no-open-invoice"] {
        assert!(!is_auto(&decisions[id]), "{id} must go to review");
    }
    assert_eq!(decisions["P-exact"].allocations[0].invoice_id, "I-1001");
    // Every payment balances, and the committed open amounts are the ledger minus what the auto
    // decisions relieved.
    let mut relieved = HashMap::new();
    for d in decisions.values() {
        check_balances(d, amount_of[&d.payment_id], &mut relieved);
    }
    let open = open_amounts(&mut c.ledger, &invoice_ids).await;
    for id in &invoice_ids {
        let r = relieved.get(id).copied().unwrap_or_default();
        assert_eq!(open[id], original[id] - r, "{id}");
    }
    assert_eq!(open["I-1001"], Decimal::ZERO);

    // Idempotent: the same file again gets the stored decisions back and changes nothing.
    let again = c
        .matching
        .match_payment(raw(x12, Some("x12_820"), "batch.x12"))
        .await
        .expect("again")
        .into_inner();
    assert_eq!(again.results.len(), 2);
    for m in &again.results {
        assert!(m.replayed);
        assert_eq!(decision(m), &decisions[&decision(m).payment_id]);
    }
    assert_eq!(open_amounts(&mut c.ledger, &invoice_ids).await, open);
    // The same id for a different payment is refused.
    let mut other = pick(&["P-exact"]).remove(0);
    other.amount = dec("1.00");
    let (code_, msg) = code(c.matching.match_payment(structured(other)).await);
    assert_eq!(code_, Code::AlreadyExists, "{msg}");

    // The review queue, highest priority first.
    let list = c
        .review
        .list_review_items(pb::ListReviewItemsRequest::default())
        .await
        .expect("list")
        .into_inner();
    let review_ids: Vec<&String> = decisions
        .values()
        .filter(|d| !is_auto(d))
        .map(|d| &d.payment_id)
        .collect();
    assert_eq!(list.total as usize, review_ids.len());
    assert!(
        list.items
            .windows(2)
            .all(|w| w[0].priority >= w[1].priority),
        "ordered by priority"
    );
    assert!(
        list.items
            .iter()
            .all(|i| i.state == pb::ReviewState::Open as i32)
    );
    // Just queued: none overdue under the default 48 h; with no time allowed for ambiguous
    // items (an SLA per reason), exactly those are, and each says when it fell due.
    assert!(
        list.items
            .iter()
            .all(|i| !i.overdue && !i.due_at.is_empty())
    );
    server.service.set_sla(cashmatch::store::Sla {
        default: chrono::Duration::hours(48),
        by_reason: vec![(
            cashmatch::domain::ReviewReason::Ambiguous,
            chrono::Duration::zero(),
        )],
    });
    let marked = c
        .review
        .list_review_items(pb::ListReviewItemsRequest::default())
        .await
        .expect("list")
        .into_inner();
    assert!(marked.items.iter().any(|i| i.overdue));
    for i in &marked.items {
        assert_eq!(
            i.overdue,
            i.reason == pb::ReviewReason::Ambiguous as i32,
            "{} ({:?}) overdue: {}",
            i.payment_id,
            i.reason,
            i.overdue
        );
    }
    server.service.set_sla(cashmatch::store::Sla::default());
    let big = c
        .review
        .list_review_items(pb::ListReviewItemsRequest {
            customer_id: Some("C500".into()),
            min_amount: Some("1000".into()),
            ..Default::default()
        })
        .await
        .expect("filtered")
        .into_inner();
    assert!(
        big.items
            .iter()
            .all(|i| i.customer_id.as_deref() == Some("C500") && dec(&i.amount) >= dec("1000"))
    );
    assert!(big.items.iter().any(|i| i.payment_id == "P-ambiguous"));
    let old = pb::ListReviewItemsRequest {
        min_age_days: Some(1),
        ..Default::default()
    };
    assert_eq!(
        c.review
            .list_review_items(old)
            .await
            .expect("aged")
            .into_inner()
            .total,
        0
    );

    let item = c
        .review
        .get_review_item(pb::GetReviewItemRequest {
            payment_id: "P-ambiguous".into(),
        })
        .await
        .expect("item")
        .into_inner();
    let d = item.decision.as_ref().expect("decision");
    assert!(d.suggestions.len() >= 2, "ambiguous has rival suggestions");
    assert!(!d.explanation.is_empty());
    assert_eq!(
        item.payment.as_ref().map(|p| p.amount.as_str()),
        Some("1500.00")
    );
    assert!(item.resolution.is_none());

    // Accept the first suggestion: its invoices are relieved, the audit trail has before and after.
    let first = d.suggestions[0].clone();
    let ids: Vec<String> = first
        .allocations
        .iter()
        .map(|a| a.invoice_id.clone())
        .collect();
    let before = open_amounts(&mut c.ledger, &ids).await;
    let resolve = |id: &str, action| pb::ResolveReviewItemRequest {
        payment_id: id.into(),
        analyst: Some("alice".into()),
        action: Some(action),
        note: "checked with the customer".into(),
    };
    use pb::resolve_review_item_request::Action;
    let resolved = c
        .review
        .resolve_review_item(resolve(
            "P-ambiguous",
            Action::AcceptSuggestion(pb::AcceptSuggestion { index: 0 }),
        ))
        .await
        .expect("resolve")
        .into_inner();
    let res = resolved.resolution.expect("resolution");
    assert_eq!(res.analyst, "alice");
    assert_eq!(res.allocations, first.allocations);
    for a in &first.allocations {
        let r = dec(&a.amount) + dec(&a.discount) + dec(&a.deduction);
        assert_eq!(
            open_amount(&mut c.ledger, &a.invoice_id).await,
            before[&a.invoice_id] - r
        );
    }
    let (code_, _) = code(
        c.review
            .resolve_review_item(resolve(
                "P-ambiguous",
                Action::LeaveUnapplied(pb::LeaveUnapplied {}),
            ))
            .await,
    );
    assert_eq!(code_, Code::FailedPrecondition, "resolved twice");

    // Cash on an invoice that is already paid is refused and changes nothing.
    let over = pb::Allocation {
        invoice_id: "I-1001".into(),
        amount: "10.00".into(),
        ..Default::default()
    };
    let (code_, msg) = code(
        c.review
            .resolve_review_item(resolve(
                "P-no-open-invoice",
                Action::ApplyAllocation(pb::ApplyAllocation {
                    allocations: vec![over],
                    unapplied: None,
                }),
            ))
            .await,
    );
    assert_eq!(code_, Code::FailedPrecondition, "{msg}");
    assert_eq!(open_amount(&mut c.ledger, "I-1001").await, Decimal::ZERO);
    let mut nameless = resolve(
        "P-no-open-invoice",
        Action::LeaveUnapplied(pb::LeaveUnapplied {}),
    );
    nameless.analyst = None;
    let (code_, msg) = code(c.review.resolve_review_item(nameless).await);
    assert_eq!(
        (code_, msg.starts_with("analyst")),
        (Code::InvalidArgument, true),
        "{msg}"
    );
    c.review
        .resolve_review_item(resolve(
            "P-no-open-invoice",
            Action::LeaveUnapplied(pb::LeaveUnapplied {}),
        ))
        .await
        .expect("leave unapplied");
    let (code_, msg) = code(
        c.review
            .resolve_review_item(resolve(
                "P-duplicate",
                Action::PutOnAccount(pb::PutOnAccount {
                    customer_id: "C999".into(),
                }),
            ))
            .await,
    );
    assert_eq!(code_, Code::InvalidArgument);
    assert!(msg.starts_with("put_on_account.customer_id"), "{msg}");
    c.review
        .resolve_review_item(resolve(
            "P-duplicate",
            Action::PutOnAccount(pb::PutOnAccount {
                customer_id: "C500".into(),
            }),
        ))
        .await
        .expect("on account");

    let trail = c
        .review
        .get_audit_trail(pb::GetAuditTrailRequest {
            payment_id: "P-ambiguous".into(),
            ..Default::default()
        })
        .await
        .expect("audit")
        .into_inner()
        .events;
    assert_eq!(trail.len(), 1);
    let e = &trail[0];
    assert_eq!((e.actor.as_str(), e.action.as_str()), ("alice", "resolve"));
    let before_json: serde_json::Value = serde_json::from_str(&e.before_json).expect("json");
    let after_json: serde_json::Value = serde_json::from_str(&e.after_json).expect("json");
    assert_eq!(before_json["state"], "open");
    assert_eq!(after_json["state"], "resolved");
    for id in &ids {
        assert_eq!(before_json["open_amounts"][id], before[id].to_string());
    }
    let open_list = c
        .review
        .list_review_items(pb::ListReviewItemsRequest::default())
        .await
        .expect("list")
        .into_inner();
    assert_eq!(open_list.total as usize, review_ids.len() - 3);
    let all = pb::ListReviewItemsRequest {
        include_resolved: true,
        ..Default::default()
    };
    let all = c
        .review
        .list_review_items(all)
        .await
        .expect("all")
        .into_inner();
    assert_eq!(all.total as usize, review_ids.len());

    // Resolutions become training labels; auto decisions too when asked.
    let mut export = c
        .review
        .export_labels(pb::ExportLabelsRequest {
            include_auto: false,
        })
        .await
        .expect("export")
        .into_inner();
    let mut examples = Vec::new();
    while let Some(x) = export.message().await.expect("stream") {
        examples.push(x);
    }
    assert_eq!(examples.len(), 3);
    let amb = examples
        .iter()
        .find(|x| x.payment_id == "P-ambiguous")
        .expect("labelled");
    assert_eq!(amb.labels.len(), first.allocations.len());
    assert!(
        examples
            .iter()
            .find(|x| x.payment_id == "P-no-open-invoice")
            .is_some_and(|x| x.labels.is_empty())
    );
    let mut export = c
        .review
        .export_labels(pb::ExportLabelsRequest { include_auto: true })
        .await
        .expect("export")
        .into_inner();
    let mut n = 0;
    while export.message().await.expect("stream").is_some() {
        n += 1;
    }
    assert_eq!(n, 3 + decisions.values().filter(|d| is_auto(d)).count());

    // Ledger maintenance, with its own audit trail.
    let adj = pb::AdjustInvoiceRequest {
        invoice_id: "I-1002".into(),
        open_amount: "100.00".into(),
        reason: "credit note".into(),
    };
    let inv = c
        .ledger
        .adjust_invoice(adj)
        .await
        .expect("adjust")
        .into_inner();
    assert_eq!(inv.open_amount.as_deref(), Some("100.00"));
    let too_much = pb::AdjustInvoiceRequest {
        invoice_id: "I-1002".into(),
        open_amount: "999999".into(),
        reason: String::new(),
    };
    let (code_, msg) = code(c.ledger.adjust_invoice(too_much).await);
    assert_eq!(code_, Code::InvalidArgument, "{msg}");
    c.ledger
        .close_invoice(pb::CloseInvoiceRequest {
            invoice_id: "I-1002".into(),
            reason: "paid by check".into(),
        })
        .await
        .expect("close");
    assert_eq!(open_amount(&mut c.ledger, "I-1002").await, Decimal::ZERO);
    let trail = c
        .review
        .get_audit_trail(pb::GetAuditTrailRequest {
            payment_id: "I-1002".into(),
            ..Default::default()
        })
        .await
        .expect("audit")
        .into_inner()
        .events;
    assert_eq!(
        trail.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        ["adjust_invoice", "close_invoice"]
    );
    let (code_, _) = code(
        c.ledger
            .get_invoice(pb::GetInvoiceRequest {
                invoice_id: "I-nope".into(),
            })
            .await,
    );
    assert_eq!(code_, Code::NotFound);

    // A missing or malformed field is INVALID_ARGUMENT naming it.
    let mut bad = pb::Payment::from(pick(&["P-typo"]).remove(0));
    bad.payment_id = "P-new".into();
    bad.currency = String::new();
    let (code_, msg) = code(
        c.matching
            .match_payment(pb::MatchRequest {
                input: Some(Input::Payment(bad)),
            })
            .await,
    );
    assert_eq!(code_, Code::InvalidArgument);
    assert!(msg.starts_with("payment.currency"), "{msg}");
    let mut bad_inv = pb::Invoice::from(invoices[0].clone());
    bad_inv.amount = "12,50".into();
    let req = pb::UpsertInvoicesRequest {
        invoices: vec![pb::Invoice::from(invoices[1].clone()), bad_inv],
    };
    let (code_, msg) = code(c.ledger.upsert_invoices(req).await);
    assert_eq!(code_, Code::InvalidArgument);
    assert!(msg.starts_with("invoices[1].amount"), "{msg}");
    let (code_, msg) = code(
        c.matching
            .match_payment(pb::MatchRequest { input: None })
            .await,
    );
    assert_eq!(
        (code_, msg.starts_with("input")),
        (Code::InvalidArgument, true),
        "{msg}"
    );
    let (code_, msg) = code(
        c.matching
            .match_payment(raw(b"x".to_vec(), Some("docx"), "a.docx"))
            .await,
    );
    assert_eq!(
        (code_, msg.starts_with("raw.format")),
        (Code::InvalidArgument, true),
        "{msg}"
    );
    // Refused records of a bulk load are listed; the others are stored.
    let orphan = Invoice {
        id: "I-orphan".into(),
        customer_id: "C-nobody".into(),
        ..invoices[0].clone()
    };
    let fresh = Invoice {
        id: "I-fresh".into(),
        number: "INV-7777777".into(),
        ..invoices[0].clone()
    };
    let req = pb::UpsertInvoicesRequest {
        invoices: vec![orphan.into(), fresh.into()],
    };
    let r = c
        .ledger
        .upsert_invoices(req)
        .await
        .expect("upsert")
        .into_inner();
    assert_eq!((r.accepted, r.rejected.len()), (1, 1));
    assert_eq!(
        (r.rejected[0].index, r.rejected[0].id.as_str()),
        (0, "I-orphan")
    );

    // The metrics endpoint: requests by method and code, decisions by status, the queue depth.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let maddr = listener.local_addr().expect("addr");
    let (mstop, mstopped) = oneshot::channel::<()>();
    let mtask = tokio::spawn(cashmatch::metrics::serve_metrics(
        listener,
        Arc::clone(&server.metrics),
        Arc::clone(&server.service),
        async move {
            let _ = mstopped.await;
        },
    ));
    let body = http_get(maddr, "/metrics").await;
    let autos = decisions.values().filter(|d| is_auto(d)).count();
    assert!(
        body.contains(&format!(
            "cashmatch_decisions_total{{status=\"auto\"}} {autos}"
        )),
        "{body}"
    );
    assert!(
        body.contains(&format!(
            "cashmatch_review_queue_depth {}",
            review_ids.len() - 3
        )),
        "{body}"
    );
    assert!(
        body.contains(
            "cashmatch_grpc_requests_total{method=\"Matching/MatchPayment\",code=\"Ok\"}"
        ),
        "{body}"
    );
    assert!(
        body.contains("cashmatch_grpc_request_duration_seconds_bucket"),
        "{body}"
    );
    // The decisions just committed are in SQLite's WAL, so it is not empty. PostgreSQL's WAL is
    // the server's, not the store's to report: the gauge stays at zero.
    let wal: u64 = body
        .lines()
        .find_map(|l| l.strip_prefix("cashmatch_store_wal_bytes "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no WAL gauge in {body}"));
    assert_eq!(wal > 0, !b.is_postgresql(), "{body}");
    let _ = mstop.send(());
    mtask.await.expect("metrics task").expect("metrics served");

    server.stop().await;

    // With the service stopped, `cashmatch export-labels` reads the same labels from the store.
    let export = |args: &[&std::ffi::OsStr]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_cashmatch"))
            .arg("export-labels")
            .args(args)
            .output()
            .expect("runs")
    };
    let (labels, paid) = (dir.join("service_labels.csv"), dir.join("exported.csv"));
    let mut args = b.store_args();
    args.extend(["--out".into(), labels.clone().into_os_string()]);
    args.extend(["--remittances".into(), paid.clone().into_os_string()]);
    args.extend(["--settle-days".into(), "0".into()]);
    let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    let out = export(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = cashmatch::io::labels_from_table(
        &mut cashmatch::io::CsvFile::new(std::fs::File::open(&labels).expect("labels"), "l")
            .expect("header"),
        cashmatch::domain::LabelSource::History,
    )
    .expect("read");
    assert!(rows.errors.is_empty(), "{:?}", rows.errors);
    let by_source = |s| rows.rows.iter().filter(|r| r.1 == s).count();
    assert!(by_source(cashmatch::domain::LabelSource::Analyst) > 0);
    assert!(by_source(cashmatch::domain::LabelSource::Auto) > 0);
    assert_eq!(by_source(cashmatch::domain::LabelSource::History), 0);
    let exported = cashmatch::io::read_remittances(&paid).expect("payments");
    assert_eq!(exported.payments.len(), 3 + autos);
    if b.is_postgresql() {
        return;
    }
    // A directory with no store is an error, and nothing is written.
    let empty = temp_dir("no-store");
    let out = export(&[
        "--data-dir".as_ref(),
        empty.as_os_str(),
        "--out".as_ref(),
        empty.join("l.csv").as_os_str(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no store here"));
    assert!(!empty.join("l.csv").exists());
    let _ = std::fs::remove_dir_all(&empty);
}

/// The body of an HTTP/1.0 GET.
async fn http_get(addr: SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).await.expect("read");
    assert!(
        out.starts_with("HTTP/1.0 200") || out.starts_with("HTTP/1.1 200"),
        "{out}"
    );
    out
}

/// `cashmatch token new --name NAME --role ROLE`: the token it prints, and the config lines.
fn new_token(name: &str, role: &str) -> (String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cashmatch"))
        .args(["token", "new", "--name", name, "--role", role])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let token = text
        .lines()
        .find(|l| l.starts_with("cm_"))
        .unwrap_or_else(|| panic!("no token in {text}"))
        .to_string();
    let lines = text
        .find("[[tokens]]")
        .map(|i| text[i..].to_string())
        .unwrap_or_else(|| panic!("no config lines in {text}"));
    assert!(
        !lines.contains(&token),
        "the config lines hold the token itself"
    );
    (token, lines)
}

on_both_stores!(
    tokens_are_made_by_the_cli_stored_hashed_reloaded_without_a_restart_and_rate_limited,
    2
);
async fn tokens_are_made_by_the_cli_stored_hashed_reloaded_without_a_restart_and_rate_limited(
    b: Backend,
) {
    use cashmatch::app::config::{Overrides, Settings};
    use cashmatch::app::config_watch;
    let dir = b.dir.clone();
    let config = dir.join("cashmatch.toml");
    let (erp, erp_lines) = new_token("erp", "ar_system");
    std::fs::write(&config, &erp_lines).expect("config");
    let settings = Settings::load(Some(&config), Overrides::default()).expect("settings");
    let auth = Arc::new(Auth::new(settings.tokens));
    let server = start(&b, Arc::clone(&auth), Limits::default()).await;
    let (watch_stop, watch_stopped) = oneshot::channel::<()>();
    let poll = std::time::Duration::from_millis(50);
    let watcher = tokio::spawn(config_watch::follow(
        settings.config.clone().expect("read from a file"),
        Overrides::default(),
        Arc::clone(&auth),
        Arc::clone(&server.service),
        poll,
        async move {
            let _ = watch_stopped.await;
        },
    ));
    let ch = server.channel().await;
    let code = |token: String| {
        let ch = ch.clone();
        async move {
            Clients::new(&ch, Some(&token))
                .ledger
                .get_invoice(pb::GetInvoiceRequest {
                    invoice_id: "I-x".into(),
                })
                .await
                .err()
                .map_or(Code::Ok, |s| s.code())
        }
    };
    // Admitted: the call fails only because there is no such invoice.
    assert_eq!(code(erp.clone()).await, Code::NotFound);

    // Revoke erp's token and add another, by editing the file: no restart.
    let (erp2, erp2_lines) = new_token("erp", "ar_system");
    std::fs::write(&config, &erp2_lines).expect("config");
    let started = std::time::Instant::now();
    while code(erp.clone()).await != Code::Unauthenticated {
        assert!(
            started.elapsed() < 40 * poll,
            "the revoked token still works after {:?}",
            started.elapsed()
        );
        tokio::time::sleep(poll / 5).await;
    }
    assert_eq!(code(erp2.clone()).await, Code::NotFound);

    // A clear-text token is refused, with the way to a hashed one; the tokens in force stay.
    let plain = format!("[[tokens]]\nname = \"erp\"\ntoken = \"{erp}\"\nroles = [\"ar_system\"]\n");
    std::fs::write(&config, &plain).expect("config");
    let e = Settings::load(Some(&config), Overrides::default())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        e.contains("clear text") && e.contains("cashmatch token new --name erp --role ar_system"),
        "{e}"
    );
    tokio::time::sleep(4 * poll).await;
    assert_eq!(code(erp2.clone()).await, Code::NotFound);
    assert_eq!(code(erp.clone()).await, Code::Unauthenticated);

    // Guessing: past MAX_FAILURES unknown tokens this address is refused, even with a good one.
    for i in 0..MAX_FAILURES - 2 {
        assert_eq!(code(format!("cm_guess{i}")).await, Code::Unauthenticated);
    }
    let limited = code(erp2.clone()).await;
    assert_eq!(limited, Code::ResourceExhausted);

    let body = server.metrics.render(&server.service);
    for line in [
        format!("cashmatch_auth_failures_total{{reason=\"unknown\"}} {MAX_FAILURES}"),
        "cashmatch_auth_failures_total{reason=\"rate_limited\"} 1".to_string(),
        "cashmatch_config_reloads_total{result=\"ok\"} 1".to_string(),
        "cashmatch_config_reloads_total{result=\"error\"} 1".to_string(),
    ] {
        assert!(body.contains(&line), "no {line} in {body}");
    }
    let _ = watch_stop.send(());
    watcher.await.expect("watcher");
    server.stop().await;
}

on_both_stores!(each_role_may_call_only_its_own_services, 2);
async fn each_role_may_call_only_its_own_services(b: Backend) {
    let auth = Auth::with_tokens(
        [
            ("tok-erp", "erp", Role::ArSystem),
            ("tok-alice", "alice", Role::Analyst),
            ("tok-root", "root", Role::Admin),
        ]
        .map(|(t, name, role)| (TokenHash::of(t), name.to_string(), vec![role])),
    );
    let server = start(&b, auth, Limits::default()).await;
    let ch = server.channel().await;

    // Health needs no token.
    let mut health = tonic_health::pb::health_client::HealthClient::new(ch.clone());
    let h = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "cashmatch.v1.Matching".into(),
        })
        .await
        .expect("health")
        .into_inner();
    assert_eq!(
        h.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );

    /// Calls one cheap method of each service; the codes in order Ledger, Matching, Review, Models.
    async fn probe(c: &mut Clients) -> [Code; 4] {
        let code_of = |r: Result<(), Status>| r.err().map_or(Code::Ok, |s| s.code());
        [
            code_of(
                c.ledger
                    .get_invoice(pb::GetInvoiceRequest {
                        invoice_id: "I-x".into(),
                    })
                    .await
                    .map(|_| ()),
            ),
            code_of(
                c.matching
                    .get_decision(pb::GetDecisionRequest {
                        payment_id: "P-x".into(),
                    })
                    .await
                    .map(|_| ()),
            ),
            code_of(
                c.review
                    .list_review_items(pb::ListReviewItemsRequest::default())
                    .await
                    .map(|_| ()),
            ),
            code_of(
                c.models
                    .get_active_model(pb::GetActiveModelRequest {})
                    .await
                    .map(|_| ()),
            ),
        ]
    }
    let denied = Code::PermissionDenied;
    // Allowed calls fail for their own reasons (nothing there), never for permission.
    let allowed = |c: Code| c != denied && c != Code::Unauthenticated;
    let erp = probe(&mut Clients::new(&ch, Some("tok-erp"))).await;
    assert!(allowed(erp[0]) && allowed(erp[1]), "{erp:?}");
    assert_eq!((erp[2], erp[3]), (denied, denied));
    let alice = probe(&mut Clients::new(&ch, Some("tok-alice"))).await;
    assert_eq!((alice[0], alice[1], alice[3]), (denied, denied, denied));
    assert!(allowed(alice[2]), "{alice:?}");
    let root = probe(&mut Clients::new(&ch, Some("tok-root"))).await;
    assert_eq!((root[0], root[1], root[2]), (denied, denied, denied));
    assert!(allowed(root[3]), "{root:?}");
    assert_eq!(
        probe(&mut Clients::new(&ch, None)).await,
        [Code::Unauthenticated; 4]
    );
    assert_eq!(
        probe(&mut Clients::new(&ch, Some("tok-forged"))).await,
        [Code::Unauthenticated; 4]
    );

    // The analyst recorded is the token's, whatever the request says.
    let mut erp = Clients::new(&ch, Some("tok-erp"));
    load_cases_ledger(&mut erp.ledger).await;
    let p = cases_payments()
        .into_iter()
        .find(|p| p.payment_id == "P-no-open-invoice")
        .expect("payment");
    erp.matching
        .match_payment(structured(p))
        .await
        .expect("match");
    let mut alice = Clients::new(&ch, Some("tok-alice"));
    let req = pb::ResolveReviewItemRequest {
        payment_id: "P-no-open-invoice".into(),
        analyst: Some("mallory".into()),
        action: Some(pb::resolve_review_item_request::Action::LeaveUnapplied(
            pb::LeaveUnapplied {},
        )),
        note: "no open invoice to pay".into(),
    };
    let r = alice
        .review
        .resolve_review_item(req)
        .await
        .expect("resolve")
        .into_inner();
    assert_eq!(r.resolution.map(|r| r.analyst), Some("alice".into()));
    server.stop().await;
}

on_both_stores!(
    the_ar_system_returns_and_an_analyst_unapplies_over_grpc_and_no_one_else_may,
    2
);
async fn the_ar_system_returns_and_an_analyst_unapplies_over_grpc_and_no_one_else_may(b: Backend) {
    let auth = Auth::with_tokens(
        [
            ("tok-erp", "erp", Role::ArSystem),
            ("tok-alice", "alice", Role::Analyst),
            ("tok-root", "root", Role::Admin),
        ]
        .map(|(t, name, role)| (TokenHash::of(t), name.to_string(), vec![role])),
    );
    let server = start(&b, auth, Limits::default()).await;
    let ch = server.channel().await;
    let reversals = |t: &str| ReversalsClient::with_interceptor(ch.clone(), Bearer(Some(t.into())));
    let mut erp = Clients::new(&ch, Some("tok-erp"));
    load_cases_ledger(&mut erp.ledger).await;
    for p in cases_payments()
        .into_iter()
        .filter(|p| ["P-exact", "P-typo"].contains(&p.payment_id.as_str()))
    {
        let r = erp
            .matching
            .match_payment(structured(p))
            .await
            .expect("match");
        assert!(is_auto(decision(&r.into_inner().results[0])));
    }
    let reverse = |id: &str| pb::ReversePaymentRequest {
        payment_id: id.into(),
        reason: "insufficient funds".into(),
        return_code: "R01".into(),
        actor: Some("mallory".into()),
    };

    // An admin may not; the message names both roles that may.
    let (c, m) = code(
        reversals("tok-root")
            .reverse_payment(reverse("P-exact"))
            .await,
    );
    assert_eq!(c, Code::PermissionDenied);
    assert!(m.contains("ar_system or analyst"), "{m}");
    let (c, m) = code(
        reversals("tok-erp")
            .reverse_payment(reverse("P-none"))
            .await,
    );
    assert_eq!(c, Code::NotFound);
    assert!(m.contains("P-none"), "{m}");

    // The AR system books the bank's return: the token names the actor, not the request.
    let r = reversals("tok-erp")
        .reverse_payment(reverse("P-exact"))
        .await
        .expect("reversed")
        .into_inner();
    assert!(!r.replayed);
    assert_eq!(r.returned.as_ref().map(|x| x.actor.as_str()), Some("erp"));
    assert_eq!(r.postings.len(), 1);
    let p = &r.postings[0];
    assert_eq!(p.kind, pb::PostingKind::Reversal as i32);
    assert_eq!(p.actor_kind, pb::ActorKind::ArSystem as i32);
    assert_eq!(
        (p.amount.as_str(), p.reason_code.as_deref()),
        ("-1250.00", Some("R01"))
    );
    assert_eq!(open_amount(&mut erp.ledger, "I-1001").await, dec("1250.00"));
    let d = erp
        .matching
        .get_decision(pb::GetDecisionRequest {
            payment_id: "P-exact".into(),
        })
        .await
        .expect("decision")
        .into_inner();
    assert_eq!(d.status, pb::DecisionStatus::Returned as i32);
    let again = reversals("tok-erp")
        .reverse_payment(reverse("P-exact"))
        .await
        .expect("replay")
        .into_inner();
    assert!(again.replayed);
    assert_eq!(again.postings, r.postings);

    // An analyst unapplies; a note is required; the item is back in the queue.
    let unapply = |note: &str| pb::UnapplyPaymentRequest {
        payment_id: "P-typo".into(),
        note: note.into(),
        actor: None,
    };
    let (c, m) = code(reversals("tok-alice").unapply_payment(unapply("")).await);
    assert_eq!(c, Code::InvalidArgument);
    assert!(m.starts_with("note"), "{m}");
    let u = reversals("tok-alice")
        .unapply_payment(unapply("wrong customer"))
        .await
        .expect("unapplied")
        .into_inner();
    let item = u.item.expect("item");
    let summary = item.summary.expect("summary");
    assert_eq!(summary.state, pb::ReviewState::Open as i32);
    assert_eq!(summary.reason, pb::ReviewReason::Unapplied as i32);
    assert!(
        u.postings
            .iter()
            .all(|p| p.actor_kind == pb::ActorKind::Analyst as i32)
    );
    let (c, _) = code(
        reversals("tok-alice")
            .unapply_payment(unapply("again"))
            .await,
    );
    assert_eq!(c, Code::FailedPrecondition);
    server.stop().await;
}

/// A payment of Northwind (customer C100, known by its bank account) quoting one invoice.
fn northwind_payment(id: &str, date: (i32, u32, u32), invoice: &str, amount: &str) -> Payment {
    use cashmatch::domain::{Direction, Payer, ReferenceKind, RemittanceLine};
    Payment {
        payment_id: id.into(),
        format: "grpc".into(),
        direction: Direction::Credit,
        payment_date: chrono::NaiveDate::from_ymd_opt(date.0, date.1, date.2),
        amount: dec(amount),
        currency: cashmatch::domain::Currency::USD,
        payer: Payer {
            name: Some("Northwind Industrial Supply Inc".into()),
            account: Some("021000021:4000123456".into()),
        },
        lines: vec![RemittanceLine {
            reference: Some(invoice.into()),
            reference_kind: ReferenceKind::Invoice,
            amount_paid: Some(dec(amount)),
            ..Default::default()
        }],
        free_text: vec![],
        warnings: vec![],
        returned: None,
    }
}

fn returns_fixture(path: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(path);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

on_both_stores!(
    returned_items_in_nacha_and_camt_files_reverse_their_originals_or_wait_for_review,
    2
);
async fn returned_items_in_nacha_and_camt_files_reverse_their_originals_or_wait_for_review(
    b: Backend,
) {
    let server = start(&b, Auth::disabled(), Limits::default()).await;
    let mut c = Clients::new(&server.channel().await, None);
    load_cases_ledger(&mut c.ledger).await;
    // The originals: an ACH debit collected from Northwind (its trace is the payment id) and a
    // SEPA-style credit named by its end-to-end id; both auto-applied.
    for p in [
        northwind_payment("091000010000001", (2026, 12, 1), "INV-0010001", "1250.00"),
        northwind_payment(
            "E2E-NW-20261130-7",
            (2026, 11, 30),
            "INV-0010002",
            "3420.75",
        ),
    ] {
        let r = c
            .matching
            .match_payment(structured(p))
            .await
            .expect("match")
            .into_inner();
        assert!(is_auto(decision(&r.results[0])), "{:#?}", r.results[0]);
    }
    assert_eq!(open_amount(&mut c.ledger, "I-1001").await, dec("0"));
    assert_eq!(open_amount(&mut c.ledger, "I-1002").await, dec("0"));

    // The NACHA return file: R01 names its original by trace; R02's original was never sent.
    let nacha = returns_fixture("nacha/nacha_returns_r01_r02_original.ach");
    let r = c
        .matching
        .match_payment(raw(nacha.clone(), None, "returns.ach"))
        .await
        .expect("returns")
        .into_inner();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let [nsf, unknown] = r.results.as_slice() else {
        panic!("{:#?}", r.results)
    };
    // The result of a reversed return is its original's decision, now returned.
    let d = decision(nsf);
    assert_eq!(d.payment_id, "091000010000001");
    assert_eq!(d.status, pb::DecisionStatus::Returned as i32);
    assert!(
        d.explanation.last().is_some_and(|e| e.contains("R01")),
        "{:?}",
        d.explanation
    );
    assert_eq!(open_amount(&mut c.ledger, "I-1001").await, dec("1250.00"));
    // The unidentified return waits for a person, saying why; it applied nothing.
    let d = decision(unknown);
    assert_eq!(d.payment_id, "021000020000012");
    assert_eq!(d.status, pb::DecisionStatus::Review as i32);
    assert_eq!(d.review_reason, pb::ReviewReason::ReturnedItem as i32);
    assert!(d.allocations.is_empty());
    let why = d.explanation.join(" | ");
    assert!(
        why.contains("original trace 091000010000099 names no decided payment")
            && why.contains("no decided payment of 432.10 USD"),
        "{why}"
    );
    let queue = c
        .review
        .list_review_items(pb::ListReviewItemsRequest {
            reason: Some(pb::ReviewReason::ReturnedItem as i32),
            ..Default::default()
        })
        .await
        .expect("queue")
        .into_inner();
    assert_eq!(queue.items.len(), 1, "{:?}", queue.items);

    // Sent again, nothing changes: the reversal is replayed and the review item stays one.
    let again = c
        .matching
        .match_payment(raw(nacha, None, "returns-again.ach"))
        .await
        .expect("returns again")
        .into_inner();
    assert!(
        again.results.iter().all(|m| m.replayed),
        "{:#?}",
        again.results
    );
    assert_eq!(open_amount(&mut c.ledger, "I-1001").await, dec("1250.00"));

    // The camt.054 reversal names its original by end-to-end id; the bare one cannot be placed.
    let camt = returns_fixture("camt/camt054_reversal_rvslind_original.xml");
    let r = c
        .matching
        .match_payment(raw(camt, None, "reversals.xml"))
        .await
        .expect("reversals")
        .into_inner();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let [rev, bare] = r.results.as_slice() else {
        panic!("{:#?}", r.results)
    };
    assert_eq!(decision(rev).payment_id, "E2E-NW-20261130-7");
    assert_eq!(decision(rev).status, pb::DecisionStatus::Returned as i32);
    assert_eq!(open_amount(&mut c.ledger, "I-1002").await, dec("3420.75"));
    assert_eq!(
        decision(bare).review_reason,
        pb::ReviewReason::ReturnedItem as i32
    );
    let returned = c
        .matching
        .get_decision(pb::GetDecisionRequest {
            payment_id: "E2E-NW-20261130-7".into(),
        })
        .await
        .expect("decision")
        .into_inner();
    assert_eq!(returned.status, pb::DecisionStatus::Returned as i32);
    server.stop().await;
}

/// A ledger of one customer with `n` invoices of 100.00.
fn contested_ledger(n: usize) -> (Customer, Vec<Invoice>) {
    let c = Customer {
        id: "C1".into(),
        name: "Contested Supply Co".into(),
        parent_id: None,
        bank_accounts: vec!["021000021:1111222233".into()],
    };
    let (_, mut template) = cases_ledger();
    let t = template.remove(0);
    let invoices = (0..n)
        .map(|i| Invoice {
            id: format!("I-{i}"),
            customer_id: "C1".into(),
            number: format!("INV-{:07}", 7_000_000 + i),
            po_number: None,
            amount: dec("100.00"),
            open_amount: dec("100.00"),
            ..t.clone()
        })
        .collect();
    (c, invoices)
}

/// Loads [`contested_ledger`] through `ledger`; returns its invoices.
/// Loads the customers and the test split's invoices of a generated world, every record accepted.
async fn load_world(ledger: &mut LedgerClient<Authed>, world: &cashmatch::synth::World) {
    let records: Vec<pb::LedgerRecord> = world
        .customers
        .iter()
        .cloned()
        .map(|c| pb::LedgerRecord {
            record: Some(Record::Customer(c.into())),
        })
        .chain(
            world
                .test
                .invoices
                .iter()
                .cloned()
                .map(|i| pb::LedgerRecord {
                    record: Some(Record::Invoice(i.into())),
                }),
        )
        .collect();
    let loaded = ledger
        .load_ledger(tokio_stream::iter(records))
        .await
        .expect("load")
        .into_inner();
    assert!(loaded.rejected.is_empty(), "{:?}", loaded.rejected);
}

async fn load_contested_ledger(ledger: &mut LedgerClient<Authed>, n: usize) -> Vec<Invoice> {
    let (customer, invoices) = contested_ledger(n);
    ledger
        .upsert_customers(pb::UpsertCustomersRequest {
            customers: vec![customer.into()],
        })
        .await
        .expect("customer");
    let req = pb::UpsertInvoicesRequest {
        invoices: invoices.iter().cloned().map(Into::into).collect(),
    };
    ledger.upsert_invoices(req).await.expect("invoices");
    invoices
}

fn contested_payment(id: String, refs: &[usize], amount: Decimal) -> Payment {
    use cashmatch::domain::{Direction, Payer, ReferenceKind, RemittanceLine};
    Payment {
        payment_id: id,
        format: "grpc".into(),
        direction: Direction::Credit,
        payment_date: chrono::NaiveDate::from_ymd_opt(2026, 11, 2),
        amount,
        currency: cashmatch::domain::Currency::USD,
        payer: Payer {
            name: Some("CONTESTED SUPPLY".into()),
            account: Some("021000021:1111222233".into()),
        },
        lines: refs
            .iter()
            .map(|r| RemittanceLine {
                reference: Some(format!("INV-{:07}", 7_000_000 + r)),
                reference_kind: ReferenceKind::Invoice,
                amount_paid: Some(amount / Decimal::from(refs.len())),
                ..Default::default()
            })
            .collect(),
        free_text: vec![],
        warnings: vec![],
        returned: None,
    }
}

on_both_stores!(
    many_clients_paying_the_same_invoices_never_over_apply_and_every_payment_balances,
    4
);
async fn many_clients_paying_the_same_invoices_never_over_apply_and_every_payment_balances(
    b: Backend,
) {
    let server = start(&b, Auth::disabled(), Limits::default()).await;
    let ch = server.channel().await;
    let mut c = Clients::new(&ch, None);
    const INVOICES: usize = 12;
    let invoices = load_contested_ledger(&mut c.ledger, INVOICES).await;

    // Eight clients, each paying every invoice (some alone, some in pairs, some in part), half
    // of them one call per payment and half on one stream.
    let mut tasks = Vec::new();
    for client in 0..8 {
        let ch = ch.clone();
        tasks.push(tokio::spawn(async move {
            let mut m = Clients::new(&ch, None).matching;
            let payments: Vec<Payment> = (0..INVOICES)
                .map(|i| match (i + client) % 3 {
                    0 => contested_payment(format!("P-{client}-{i}"), &[i], dec("100.00")),
                    1 => contested_payment(
                        format!("P-{client}-{i}"),
                        &[i, (i + 1) % INVOICES],
                        dec("200.00"),
                    ),
                    _ => contested_payment(format!("P-{client}-{i}"), &[i], dec("40.00")),
                })
                .collect();
            let mut out: Vec<(Payment, pb::Decision)> = Vec::new();
            if client % 2 == 0 {
                for p in payments {
                    let r = m
                        .match_payment(structured(p.clone()))
                        .await
                        .expect("match")
                        .into_inner();
                    out.push((p, decision(&r.results[0]).clone()));
                }
            } else {
                let reqs: Vec<pb::MatchRequest> =
                    payments.iter().cloned().map(structured).collect();
                let mut stream = m
                    .match_payments(tokio_stream::iter(reqs))
                    .await
                    .expect("stream")
                    .into_inner();
                let mut i = 0;
                while let Some(r) = stream.message().await.expect("response") {
                    assert!(r.errors.is_empty(), "{:?}", r.errors);
                    out.push((payments[i].clone(), decision(&r.results[0]).clone()));
                    i += 1;
                }
                assert_eq!(i, payments.len(), "one response per request");
            }
            out
        }));
    }
    let mut relieved: HashMap<String, Decimal> = HashMap::new();
    let mut autos = 0;
    for t in tasks {
        for (p, d) in t.await.expect("client") {
            assert_eq!(
                d.payment_id, p.payment_id,
                "responses come back in request order"
            );
            check_balances(&d, p.amount, &mut relieved);
            autos += usize::from(is_auto(&d));
        }
    }
    assert!(
        autos >= INVOICES / 2,
        "the test must apply cash concurrently; only {autos} auto decisions"
    );
    for inv in &invoices {
        let open = open_amount(&mut c.ledger, &inv.id).await;
        assert!(open >= Decimal::ZERO, "{} went below zero: {open}", inv.id);
        let r = relieved.get(&inv.id).copied().unwrap_or_default();
        assert_eq!(
            open,
            inv.amount - r,
            "{}: the stored open amount does not match the decisions",
            inv.id
        );
    }
    server.stop().await;
}

on_both_stores!(
    a_restart_on_the_same_data_directory_restores_ledger_decisions_queue_audit_and_model,
    2
);
async fn a_restart_on_the_same_data_directory_restores_ledger_decisions_queue_audit_and_model(
    b: Backend,
) {
    let dir = b.dir.clone();
    let model_dir = dir.join("model-b");
    let mut model = cashmatch::model::artifact::Model::embedded_default().expect("model");
    model.version = "restart-test-model".into();
    model
        .save(
            &model_dir,
            "a copy of the default model under another version",
        )
        .expect("save");
    let payments = cases_payments();
    let csv = csv_bytes(&payments);
    let (_, invoices) = cases_ledger();
    let invoice_ids: Vec<String> = invoices.iter().map(|i| i.id.clone()).collect();

    let server = start(&b, Auth::disabled(), Limits::default()).await;
    let mut c = Clients::new(&server.channel().await, None);
    load_cases_ledger(&mut c.ledger).await;
    let first = c
        .matching
        .match_payment(raw(csv.clone(), None, "r.csv"))
        .await
        .expect("match")
        .into_inner();
    let review = pb::ResolveReviewItemRequest {
        payment_id: "P-ambiguous".into(),
        analyst: Some("alice".into()),
        action: Some(pb::resolve_review_item_request::Action::AcceptSuggestion(
            pb::AcceptSuggestion { index: 0 },
        )),
        note: String::new(),
    };
    c.review.resolve_review_item(review).await.expect("resolve");
    let info = c
        .models
        .activate_model(pb::ActivateModelRequest {
            directory: model_dir.display().to_string(),
        })
        .await
        .expect("activate")
        .into_inner();
    assert_eq!(info.version, "restart-test-model");
    let open = open_amounts(&mut c.ledger, &invoice_ids).await;
    let queue = c
        .review
        .list_review_items(pb::ListReviewItemsRequest::default())
        .await
        .expect("list")
        .into_inner();
    let trail = c
        .review
        .get_audit_trail(pb::GetAuditTrailRequest::default())
        .await
        .expect("audit")
        .into_inner();
    server.stop().await;

    let server = start(&b, Auth::disabled(), Limits::default()).await;
    let mut c = Clients::new(&server.channel().await, None);
    assert_eq!(open_amounts(&mut c.ledger, &invoice_ids).await, open);
    let queue2 = c
        .review
        .list_review_items(pb::ListReviewItemsRequest::default())
        .await
        .expect("list")
        .into_inner();
    let ids = |l: &pb::ListReviewItemsResponse| {
        l.items
            .iter()
            .map(|i| i.payment_id.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&queue2), ids(&queue));
    assert!(!ids(&queue2).contains(&"P-ambiguous".to_string()));
    let trail2 = c
        .review
        .get_audit_trail(pb::GetAuditTrailRequest::default())
        .await
        .expect("audit")
        .into_inner();
    assert_eq!(trail2, trail);
    assert_eq!(
        trail2.events.len(),
        2,
        "the resolution and the model activation"
    );
    let active = c
        .models
        .get_active_model(pb::GetActiveModelRequest {})
        .await
        .expect("model")
        .into_inner();
    assert_eq!(active.version, "restart-test-model");
    for m in &first.results {
        let d = decision(m);
        let stored = c
            .matching
            .get_decision(pb::GetDecisionRequest {
                payment_id: d.payment_id.clone(),
            })
            .await
            .expect("stored")
            .into_inner();
        assert_eq!(&stored, d);
    }
    // Sent again after the restart: every payment replayed, nothing changed.
    let again = c
        .matching
        .match_payment(raw(csv, None, "r.csv"))
        .await
        .expect("again")
        .into_inner();
    assert!(again.results.iter().all(|m| m.replayed));
    assert_eq!(open_amounts(&mut c.ledger, &invoice_ids).await, open);
    // New payments are decided by the restored model.
    let mut fresh = payments
        .into_iter()
        .find(|p| p.payment_id == "P-no-open-invoice")
        .expect("payment");
    fresh.payment_id = "P-after-restart".into();
    let r = c
        .matching
        .match_payment(structured(fresh))
        .await
        .expect("fresh")
        .into_inner();
    assert_eq!(decision(&r.results[0]).model_version, "restart-test-model");
    // A second payment of the invoice P-exact paid before the restart: a possible duplicate,
    // and the restored ledger still knows which payment paid it.
    let mut second = cases_payments()
        .into_iter()
        .find(|p| p.payment_id == "P-exact")
        .expect("payment");
    second.payment_id = "P-exact-again".into();
    let r = c
        .matching
        .match_payment(structured(second))
        .await
        .expect("second")
        .into_inner();
    let d = decision(&r.results[0]);
    assert_eq!(
        d.review_reason,
        pb::ReviewReason::PossibleDuplicate as i32,
        "{d:#?}"
    );
    assert!(
        d.explanation
            .iter()
            .any(|e| e.contains("paid by payment P-exact of 2026-11-02")),
        "{d:#?}"
    );
    server.stop().await;
}

on_both_stores!(
    shutdown_drains_a_stream_in_flight_and_limits_are_enforced,
    2
);
async fn shutdown_drains_a_stream_in_flight_and_limits_are_enforced(b: Backend) {
    let limits = Limits {
        max_message_bytes: 64 * 1024,
        max_lines_per_remittance: 3,
        max_payments_per_request: 100,
    };
    let mut server = start(&b, Auth::disabled(), limits).await;
    let mut c = Clients::new(&server.channel().await, None);
    load_cases_ledger(&mut c.ledger).await;
    let payments = cases_payments();

    // Limits: a message over the size limit, a payment over the line limit.
    let (code_, msg) = code(
        c.matching
            .match_payment(raw(vec![b'a'; 100 * 1024], Some("text"), "big.txt"))
            .await,
    );
    assert!(
        matches!(code_, Code::OutOfRange | Code::ResourceExhausted),
        "{code_:?}: {msg}"
    );
    let multi = payments
        .iter()
        .find(|p| p.payment_id == "P-multi-lines")
        .expect("payment")
        .clone();
    let mut long = multi.clone();
    long.payment_id = "P-long".into();
    long.lines = std::iter::repeat_n(multi.lines[0].clone(), 4).collect();
    let (code_, msg) = code(c.matching.match_payment(structured(long.clone())).await);
    assert_eq!(code_, Code::InvalidArgument);
    assert!(msg.starts_with("payment.lines"), "{msg}");
    let r = c
        .matching
        .match_payment(raw(
            csv_bytes(&[long, payments[0].clone()]),
            Some("csv"),
            "two.csv",
        ))
        .await
        .expect("the short payment is still decided")
        .into_inner();
    assert_eq!(r.results.len(), 1);
    assert!(r.errors[0].message.contains("P-long"), "{:?}", r.errors);

    // Drain: a stream opened before the shutdown signal is served to its end.
    let (tx, rx) = tokio::sync::mpsc::channel::<pb::MatchRequest>(4);
    let mut stream = c
        .matching
        .match_payments(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .expect("stream")
        .into_inner();
    tx.send(structured(payments[1].clone()))
        .await
        .expect("send");
    assert!(stream.message().await.expect("first").is_some());
    if let Some(stop) = server.stop.take() {
        let _ = stop.send(());
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    tx.send(structured(payments[2].clone()))
        .await
        .expect("send after the signal");
    let second = stream.message().await.expect("second").expect("a response");
    assert_eq!(
        decision(&second.results[0]).payment_id,
        payments[2].payment_id
    );
    drop(tx);
    assert!(stream.message().await.expect("end").is_none());
    server
        .task
        .await
        .expect("task")
        .expect("the server stopped cleanly");
    server.service.store().close();
}

on_both_stores!(
    a_stream_answers_each_request_in_order_and_a_bad_one_does_not_end_it,
    2
);
/// A stream is decided in batches of what has arrived; a bad request among them is answered with
/// an error in its own place and the stream goes on, every response in request order.
async fn a_stream_answers_each_request_in_order_and_a_bad_one_does_not_end_it(b: Backend) {
    let limits = Limits {
        max_lines_per_remittance: 3,
        ..Limits::default()
    };
    let server = start(&b, Auth::disabled(), limits).await;
    let mut c = Clients::new(&server.channel().await, None);
    load_cases_ledger(&mut c.ledger).await;
    let payments = cases_payments();
    let multi = payments
        .iter()
        .find(|p| p.payment_id == "P-multi-lines")
        .expect("payment");
    let mut long = multi.clone();
    long.payment_id = "P-long".into();
    long.lines = std::iter::repeat_n(multi.lines[0].clone(), 4).collect();
    let reqs = vec![
        structured(payments[0].clone()),
        pb::MatchRequest { input: None },
        raw(csv_bytes(&payments[1..3]), Some("csv"), "two.csv"),
        structured(long),
        structured(payments[3].clone()),
        // The same payment again: its stored decision comes back, nothing changes.
        structured(payments[0].clone()),
    ];
    let mut stream = c
        .matching
        .match_payments(tokio_stream::iter(reqs))
        .await
        .expect("stream")
        .into_inner();
    let mut got = Vec::new();
    while let Some(r) = stream.message().await.expect("response") {
        got.push(r);
    }
    assert_eq!(got.len(), 6, "one response per request: {got:?}");
    assert_eq!(
        decision(&got[0].results[0]).payment_id,
        payments[0].payment_id
    );
    assert!(got[1].results.is_empty());
    assert!(got[1].errors[0].message.contains("input"), "{:?}", got[1]);
    let ids: Vec<&str> = got[2]
        .results
        .iter()
        .map(|m| decision(m).payment_id.as_str())
        .collect();
    assert_eq!(
        ids,
        [
            payments[1].payment_id.as_str(),
            payments[2].payment_id.as_str()
        ]
    );
    assert!(got[3].results.is_empty());
    assert!(
        got[3].errors[0].message.contains("payment.lines"),
        "{:?}",
        got[3]
    );
    assert_eq!(
        decision(&got[4].results[0]).payment_id,
        payments[3].payment_id
    );
    assert!(got[5].results[0].replayed, "the repeat is a replay");
    assert_eq!(
        decision(&got[5].results[0]),
        decision(&got[0].results[0]),
        "the repeat gets the stored decision"
    );
    server.service.store().close();
}

/// A port free at the moment of asking, for a server in another process.
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// Starts `cashmatch serve` on a data directory and waits until its health check says SERVING.
async fn spawn_server(data_dir: &Path, port: u16, log: &Path) -> (std::process::Child, Channel) {
    spawn_serve(&["--data-dir".as_ref(), data_dir.as_os_str()], port, log).await
}

/// Starts `cashmatch serve` with `store` (`--data-dir DIR` or `--store URL`) and waits until its
/// health check says SERVING.
async fn spawn_serve(
    store: &[&std::ffi::OsStr],
    port: u16,
    log: &Path,
) -> (std::process::Child, Channel) {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("log");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_cashmatch"))
        .arg("serve")
        .args(store)
        .arg("--addr")
        .arg(format!("127.0.0.1:{port}"))
        // Any free port: tests run side by side, and 8080 may be taken.
        .arg("--ui-addr")
        .arg("127.0.0.1:0")
        .stderr(log)
        .spawn()
        .expect("spawn cashmatch serve");
    let uri = format!("http://127.0.0.1:{port}");
    for _ in 0..600 {
        if let Ok(ch) = Channel::from_shared(uri.clone())
            .expect("uri")
            .connect()
            .await
        {
            let mut h = tonic_health::pb::health_client::HealthClient::new(ch.clone());
            if h.check(tonic_health::pb::HealthCheckRequest {
                service: String::new(),
            })
            .await
            .is_ok()
            {
                return (child, ch);
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("cashmatch serve did not come up on port {port}");
}

// SQLite only: a child `serve --data-dir` killed and restarted on the same directory. Its
// PostgreSQL counterpart is `replicas::three_replicas_on_postgresql_lose_nothing_when_one_is_killed_under_load`,
// which kills one of three `serve --store` processes under the same kind of load.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkill_under_load_loses_no_acknowledged_decision_application_or_resolution() {
    use std::sync::Mutex;
    let dir = temp_dir("crash");
    let data = dir.join("data");
    let log = dir.join("server.log");
    let port = free_port();
    let world = cashmatch::synth::generate(&cashmatch::synth::SynthConfig::new(424_242, 60, 900));
    let (mut child, ch) = spawn_server(&data, port, &log).await;
    let mut c = Clients::new(&ch, None);
    load_world(&mut c.ledger, &world).await;

    // Four clients send payments, one analyst resolves review items as they appear; every
    // acknowledgement is written down. The server is killed in the middle of it.
    let acked: Arc<Mutex<Vec<(Payment, pb::Decision)>>> = Arc::default();
    let resolved: Arc<Mutex<Vec<pb::ReviewItem>>> = Arc::default();
    let payments = Arc::new(world.test.payments.clone());
    let mut tasks = Vec::new();
    for k in 0..4 {
        let (ch, acked, payments) = (ch.clone(), Arc::clone(&acked), Arc::clone(&payments));
        tasks.push(tokio::spawn(async move {
            let mut m = Clients::new(&ch, None).matching;
            for p in payments.iter().skip(k).step_by(4) {
                match m.match_payment(structured(p.clone())).await {
                    Ok(r) => {
                        let r = r.into_inner();
                        acked
                            .lock()
                            .expect("lock")
                            .push((p.clone(), decision(&r.results[0]).clone()));
                    }
                    Err(_) => break,
                }
            }
        }));
    }
    {
        let (ch, resolved) = (ch.clone(), Arc::clone(&resolved));
        tasks.push(tokio::spawn(async move {
            let mut r = Clients::new(&ch, None).review;
            loop {
                let Ok(list) = r
                    .list_review_items(pb::ListReviewItemsRequest::default())
                    .await
                else {
                    break;
                };
                for item in list.into_inner().items {
                    let req = pb::ResolveReviewItemRequest {
                        payment_id: item.payment_id.clone(),
                        analyst: Some("night-shift".into()),
                        action: Some(pb::resolve_review_item_request::Action::LeaveUnapplied(
                            pb::LeaveUnapplied {},
                        )),
                        note: "parked for the day shift".into(),
                    };
                    match r.resolve_review_item(req).await {
                        Ok(done) => resolved.lock().expect("lock").push(done.into_inner()),
                        Err(s) if s.code() == Code::FailedPrecondition => {}
                        Err(_) => return,
                    }
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }));
    }
    for _ in 0..600 {
        if acked.lock().expect("lock").len() >= 60 && !resolved.lock().expect("lock").is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    for t in tasks {
        let _ = t.await;
    }
    let acked = std::mem::take(&mut *acked.lock().expect("lock"));
    let resolved = std::mem::take(&mut *resolved.lock().expect("lock"));
    assert!(
        acked.len() >= 60 && acked.len() < payments.len(),
        "killed under load: {} acknowledged",
        acked.len()
    );
    assert!(!resolved.is_empty());

    let (mut child, ch) = spawn_server(&data, port, &log).await;
    let mut c = Clients::new(&ch, None);
    // Every acknowledged decision is there, as acknowledged, and a replay changes nothing.
    for (p, d) in &acked {
        let stored = c
            .matching
            .get_decision(pb::GetDecisionRequest {
                payment_id: p.payment_id.clone(),
            })
            .await
            .expect("an acknowledged decision survives")
            .into_inner();
        assert_eq!(&stored, d);
    }
    // Every acknowledged resolution is there, with its audit event.
    for item in &resolved {
        let id = item
            .summary
            .as_ref()
            .map(|s| s.payment_id.clone())
            .unwrap_or_default();
        let stored = c
            .review
            .get_review_item(pb::GetReviewItemRequest {
                payment_id: id.clone(),
            })
            .await
            .expect("item")
            .into_inner();
        assert_eq!(stored.resolution, item.resolution, "{id}");
        let trail = c
            .review
            .get_audit_trail(pb::GetAuditTrailRequest {
                payment_id: id.clone(),
                ..Default::default()
            })
            .await
            .expect("audit")
            .into_inner();
        assert_eq!(trail.events.len(), 1, "{id}");
    }
    // The open amounts are exactly the ledger minus the cash of every stored auto decision,
    // acknowledged or not: a decision and its applications were committed together or not at all.
    let mut relieved: HashMap<String, Decimal> = HashMap::new();
    for p in payments.iter() {
        match c
            .matching
            .get_decision(pb::GetDecisionRequest {
                payment_id: p.payment_id.clone(),
            })
            .await
        {
            Ok(d) => check_balances(&d.into_inner(), p.amount, &mut relieved),
            Err(s) => assert_eq!(s.code(), Code::NotFound),
        }
    }
    for inv in &world.test.invoices {
        let open = open_amount(&mut c.ledger, &inv.id).await;
        let r = relieved.get(&inv.id).copied().unwrap_or_default();
        assert_eq!(open, inv.open_amount - r, "{}", inv.id);
    }
    let (p, d) = &acked[0];
    let again = c
        .matching
        .match_payment(structured(p.clone()))
        .await
        .expect("replay")
        .into_inner();
    assert!(again.results[0].replayed);
    assert_eq!(decision(&again.results[0]), d);
    child.kill().expect("stop");
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

on_both_stores!(a_model_activated_under_load_fails_no_request_in_flight, 2);
async fn a_model_activated_under_load_fails_no_request_in_flight(b: Backend) {
    let dir = b.dir.clone();
    let model_dir = dir.join("model-next");
    let mut model = cashmatch::model::artifact::Model::embedded_default().expect("model");
    model.version = "hot-swap-model".into();
    model
        .save(&model_dir, "the default model under another version")
        .expect("save");
    let server = start(&b, Auth::disabled(), Limits::default()).await;
    let ch = server.channel().await;
    let mut c = Clients::new(&ch, None);
    const INVOICES: usize = 60;
    let (customer, invoices) = contested_ledger(INVOICES);
    c.ledger
        .upsert_customers(pb::UpsertCustomersRequest {
            customers: vec![customer.into()],
        })
        .await
        .expect("customer");
    let req = pb::UpsertInvoicesRequest {
        invoices: invoices.into_iter().map(Into::into).collect(),
    };
    c.ledger.upsert_invoices(req).await.expect("invoices");

    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for k in 0..3 {
        let (ch, done) = (ch.clone(), Arc::clone(&done));
        tasks.push(tokio::spawn(async move {
            let mut m = Clients::new(&ch, None).matching;
            let mut versions = Vec::new();
            for i in (k..INVOICES).step_by(3) {
                let p = contested_payment(format!("P-{i}"), &[i], dec("100.00"));
                let r = m
                    .match_payment(structured(p))
                    .await
                    .expect("no request fails during the swap");
                versions.push(decision(&r.into_inner().results[0]).model_version.clone());
                done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            versions
        }));
    }
    while done.load(std::sync::atomic::Ordering::SeqCst) < 10 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let info = c
        .models
        .activate_model(pb::ActivateModelRequest {
            directory: model_dir.display().to_string(),
        })
        .await
        .expect("activate")
        .into_inner();
    assert_eq!(info.version, "hot-swap-model");
    let mut versions = Vec::new();
    for t in tasks {
        versions.extend(t.await.expect("client"));
    }
    assert_eq!(versions.len(), INVOICES);
    let default = cashmatch::model::artifact::Model::embedded_default()
        .expect("model")
        .version;
    assert!(
        versions.contains(&default) && versions.contains(&"hot-swap-model".to_string()),
        "{versions:?}"
    );
    let (code_, msg) = code(
        c.models
            .activate_model(pb::ActivateModelRequest {
                directory: dir.display().to_string(),
            })
            .await,
    );
    assert_eq!(
        code_,
        Code::FailedPrecondition,
        "a directory without a model: {msg}"
    );
    let active = c
        .models
        .get_active_model(pb::GetActiveModelRequest {})
        .await
        .expect("active")
        .into_inner();
    assert_eq!(active.version, "hot-swap-model");
    server.stop().await;
}

on_both_stores!(
    requests_cancelled_mid_way_leave_their_payments_decided_once_and_replayable,
    2
);
async fn requests_cancelled_mid_way_leave_their_payments_decided_once_and_replayable(b: Backend) {
    let server = start(&b, Auth::disabled(), Limits::default()).await;
    let ch = server.channel().await;
    let mut c = Clients::new(&ch, None);
    const INVOICES: usize = 30;
    let invoices = load_contested_ledger(&mut c.ledger, INVOICES).await;
    let payments: Vec<Payment> = (0..INVOICES)
        .map(|i| contested_payment(format!("P-{i}"), &[i], dec("100.00")))
        .collect();
    // Deadlines so short that the client gives up while the server is deciding or committing.
    for (i, p) in payments.iter().enumerate() {
        let mut req = Request::new(structured(p.clone()));
        req.set_timeout(std::time::Duration::from_micros(50 * (i as u64 % 10) + 1));
        let _ = c.matching.match_payment(req).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let mut relieved = HashMap::new();
    for p in &payments {
        let r = c
            .matching
            .match_payment(structured(p.clone()))
            .await
            .expect("replayable after a cancel")
            .into_inner();
        check_balances(decision(&r.results[0]), p.amount, &mut relieved);
    }
    for inv in &invoices {
        let r = relieved.get(&inv.id).copied().unwrap_or_default();
        assert_eq!(
            open_amount(&mut c.ledger, &inv.id).await,
            inv.amount - r,
            "{}",
            inv.id
        );
    }
    server.stop().await;
}

/// Reads a watch stream until it has delivered postings up to `upto` (or fails the test after
/// a while): what it delivered, in order.
async fn watch_until(
    stream: &mut tonic::Streaming<pb::Posting>,
    got: &mut Vec<pb::Posting>,
    upto: u64,
) {
    while got.last().map_or(0, |p| p.sequence) < upto {
        let next = tokio::time::timeout(std::time::Duration::from_secs(20), stream.message())
            .await
            .expect("a posting within 20 s")
            .expect("the stream goes on")
            .expect("the stream is open");
        got.push(next);
    }
}

/// The journal's last sequence, as the store has it.
async fn last_sequence(server: &Running) -> u64 {
    let mut last = 0;
    loop {
        let page = server
            .service
            .postings(cashmatch::service::PostingFilter::All, last, 1000)
            .await
            .expect("postings");
        match page.last() {
            Some(p) => last = p.sequence,
            None => return last,
        }
    }
}

on_both_stores!(
    watch_postings_resumes_after_a_restart_with_no_gap_and_no_duplicate,
    2
);
async fn watch_postings_resumes_after_a_restart_with_no_gap_and_no_duplicate(b: Backend) {
    use cashmatch::grpc::pb::postings_client::PostingsClient;
    let payments = cases_payments();
    let (first_half, second_half) = payments.split_at(payments.len() / 2);
    let (_, invoices) = cases_ledger();

    // A watcher from the start of the journal while payments are matched and an item resolved.
    let server = start(&b, Auth::disabled(), Limits::default()).await;
    let ch = server.channel().await;
    let mut c = Clients::new(&ch, None);
    let mut postings = PostingsClient::new(ch.clone());
    let mut stream = postings
        .watch_postings(pb::WatchPostingsRequest { after_sequence: 0 })
        .await
        .expect("watch")
        .into_inner();
    load_cases_ledger(&mut c.ledger).await;
    c.matching
        .match_payment(raw(csv_bytes(first_half), None, "first.csv"))
        .await
        .expect("match");
    let mut got = Vec::new();
    let upto = last_sequence(&server).await;
    assert!(upto > 0, "auto-applied payments post");
    watch_until(&mut stream, &mut got, upto).await;
    // The shutdown ends the stream (the client then reconnects with its last sequence).
    server.stop().await;
    let end = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        loop {
            match stream.message().await {
                Ok(Some(p)) => got.push(p),
                Ok(None) => return Code::Ok,
                Err(s) => return s.code(),
            }
        }
    })
    .await
    .expect("the stream ends at shutdown");
    assert!(
        matches!(
            end,
            Code::Unavailable | Code::Ok | Code::Unknown | Code::Cancelled
        ),
        "{end:?}"
    );
    let stored_last = got.last().map_or(0, |p| p.sequence);

    // Restarted: cash moves while nobody watches, then the watcher resumes and more moves live.
    let server = start(&b, Auth::disabled(), Limits::default()).await;
    let ch = server.channel().await;
    let mut c = Clients::new(&ch, None);
    c.matching
        .match_payment(raw(csv_bytes(second_half), None, "second.csv"))
        .await
        .expect("match");
    let mut postings = PostingsClient::new(ch.clone());
    let mut stream = postings
        .watch_postings(pb::WatchPostingsRequest {
            after_sequence: stored_last,
        })
        .await
        .expect("watch again")
        .into_inner();
    c.review
        .resolve_review_item(pb::ResolveReviewItemRequest {
            payment_id: "P-ambiguous".into(),
            analyst: Some("alice".into()),
            action: Some(pb::resolve_review_item_request::Action::AcceptSuggestion(
                pb::AcceptSuggestion { index: 0 },
            )),
            note: String::new(),
        })
        .await
        .expect("resolve");
    let upto = last_sequence(&server).await;
    watch_until(&mut stream, &mut got, upto).await;
    let sequences: Vec<u64> = got.iter().map(|p| p.sequence).collect();
    assert_eq!(
        sequences,
        (1..=upto).collect::<Vec<_>>(),
        "no gap, no duplicate"
    );
    assert!(
        got.iter()
            .any(|p| p.payment_id == "P-ambiguous" && p.actor_kind == pb::ActorKind::Analyst as i32),
        "the resolution is journalled as the analyst's"
    );

    // The journal replayed gives every open amount the service reports.
    let mut open: HashMap<String, Decimal> =
        invoices.iter().map(|i| (i.id.clone(), i.amount)).collect();
    for p in &got {
        if let Some(id) = &p.invoice_id {
            *open.get_mut(id).expect("a known invoice") -= dec(&p.amount);
        }
    }
    let ids: Vec<String> = invoices.iter().map(|i| i.id.clone()).collect();
    assert_eq!(open_amounts(&mut c.ledger, &ids).await, open);

    // One payment's postings, a page at a time.
    let mut pages = Vec::new();
    let mut after = 0;
    loop {
        let r = postings
            .list_postings(pb::ListPostingsRequest {
                subject: Some(pb::list_postings_request::Subject::PaymentId(
                    "P-ambiguous".into(),
                )),
                after_sequence: after,
                limit: 1,
            })
            .await
            .expect("list")
            .into_inner();
        pages.extend(r.postings);
        match r.next_after {
            Some(n) => after = n,
            None => break,
        }
    }
    let expected: Vec<&pb::Posting> = got
        .iter()
        .filter(|p| p.payment_id == "P-ambiguous")
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(pages.iter().collect::<Vec<_>>(), expected);
    let (code, _) = code(
        postings
            .list_postings(pb::ListPostingsRequest {
                subject: None,
                after_sequence: 0,
                limit: 0,
            })
            .await,
    );
    assert_eq!(code, Code::InvalidArgument);
    server.stop().await;
}

/// `cashmatch audit verify` and `audit export` on a store whose audit trail is then edited and
/// cut by hand in the SQLite file. (The same on PostgreSQL, edited with SQL, is
/// `store::postgres::tests::two_replicas_writing_at_once_leave_a_gap_free_journal_and_one_audit_chain`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_verify_names_the_event_edited_by_hand_and_export_writes_the_chain() {
    use cashmatch::store::AuditRecord;
    let dir = temp_dir("audit-cli");
    let store = SqliteStore::open(&dir).expect("store");
    for i in 1..=4 {
        store
            .set_active_model(
                format!("/models/v{i}"),
                AuditRecord {
                    at: cashmatch::store::now(),
                    actor: "ops".into(),
                    action: "activate_model".into(),
                    subject: format!("/models/v{i}"),
                    before: serde_json::json!({ "version": i - 1 }),
                    after: serde_json::json!({ "version": i }),
                },
            )
            .await
            .expect("audit event");
    }
    store.close();
    let audit = |args: &[&std::ffi::OsStr]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_cashmatch"))
            .arg("audit")
            .args(args)
            .output()
            .expect("runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let verify = |extra: &[&str]| {
        let mut args: Vec<&std::ffi::OsStr> =
            vec!["verify".as_ref(), "--data-dir".as_ref(), dir.as_os_str()];
        args.extend(extra.iter().map(|a| std::ffi::OsStr::new(*a)));
        audit(&args)
    };
    let (ok, out, err) = verify(&[]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("audit chain intact: 4 events; head 4:"),
        "{out}"
    );
    let head = out
        .split("head ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .expect("head")
        .to_string();
    let export = dir.join("trail.jsonl");
    let (ok, out, err) = audit(&[
        "export".as_ref(),
        "--data-dir".as_ref(),
        dir.as_os_str(),
        "--out".as_ref(),
        export.as_os_str(),
    ]);
    assert!(ok && out.contains("4 events written"), "{out}{err}");
    let text = std::fs::read_to_string(&export).expect("export");
    assert_eq!(text.lines().count(), 5, "the anchor and 4 events");
    assert!(
        text.lines()
            .next()
            .is_some_and(|l| l.contains("\"anchor_hash\"")),
        "{text}"
    );

    // By hand in the SQLite file: event 2 edited.
    let conn = rusqlite::Connection::open(dir.join("cashmatch.sqlite3")).expect("raw");
    conn.execute("UPDATE audit_events SET actor = 'mallory' WHERE id = 2", [])
        .expect("edit");
    let (ok, out, err) = verify(&[]);
    assert!(!ok, "{out}");
    assert!(
        err.contains("audit chain broken at event 2:") && err.contains("changed"),
        "{err}"
    );
    conn.execute("UPDATE audit_events SET actor = 'ops' WHERE id = 2", [])
        .expect("undo");
    // Event 3 deleted: event 4 no longer follows event 2.
    conn.execute("DELETE FROM audit_events WHERE id = 3", [])
        .expect("delete");
    let (ok, _, err) = verify(&[]);
    assert!(!ok);
    assert!(
        err.contains("audit chain broken at event 4:") && err.contains("does not follow event 2"),
        "{err}"
    );
    // And with the head witnessed before, the verify says it too.
    let (ok, _, err) = verify(&["--expect", &head]);
    assert!(!ok && err.contains("event 4"), "{err}");
    drop(conn);
    let _ = std::fs::remove_dir_all(&dir);
}
