//! The review rules of [`Service::resolve`] that every door (gRPC, the workbench) shares, on the
//! fixture ledger of `fixtures/cases`.

use super::*;
use crate::store::SqliteStore;
use rust_decimal_macros::dec;

/// A service on a fresh store in a temporary directory, with the fixture ledger loaded and the
/// fixture payments decided.
pub(crate) async fn cases_service(name: &str) -> (Arc<Service<SqliteStore>>, PathBuf) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/cases");
    let dir = std::env::temp_dir().join(format!("cashmatch-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = SqliteStore::open(&dir).expect("store");
    let service = Arc::new(
        Service::open(store, None, None, Limits::default())
            .await
            .expect("service"),
    );
    let customers = crate::io::read_customers(root.join("customers.csv"))
        .expect("customers")
        .rows;
    let invoices = crate::io::read_invoices(root.join("invoices.csv"))
        .expect("invoices")
        .rows;
    fn number<T>(v: Vec<T>) -> Vec<(u64, T)> {
        v.into_iter()
            .enumerate()
            .map(|(i, x)| (i as u64, x))
            .collect()
    }
    service
        .upsert(number(customers), number(invoices))
        .await
        .expect("ledger");
    let payments = crate::io::read_remittances(root.join("remittances.csv"))
        .expect("remittances")
        .payments;
    for p in payments {
        service.match_payment(p).await.expect("match");
    }
    (service, dir)
}

pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn request(action: ResolveAction, note: &str) -> ResolveRequest {
    ResolveRequest {
        payment_id: "P-ambiguous".into(),
        analyst: "alice".into(),
        action,
        note: note.into(),
    }
}

fn field(r: Result<ReviewRecord, ServiceError>) -> String {
    match r {
        Err(ServiceError::InvalidArgument { field, .. }) => field,
        Err(e) => format!("not an invalid argument: {e}"),
        Ok(_) => "resolved".into(),
    }
}

#[test]
fn overriding_the_engine_needs_a_note_a_deduction_its_reason_and_stated_cash_must_balance() {
    runtime().block_on(async {
        let (service, dir) = cases_service("resolve-rules").await;
        let item = service
            .review_item("P-ambiguous".into())
            .await
            .expect("item");
        let top = item.decision.suggestions[0].clone();
        let second = item.decision.suggestions[1].clone();
        let ids: Vec<&str> = second
            .allocations
            .iter()
            .map(|a| a.invoice_id.as_str())
            .collect();
        let before = service.invoices_now(ids.clone());
        let apply = |allocations: Vec<Allocation>, unapplied: Option<Decimal>| {
            ResolveAction::ApplyAllocation {
                allocations,
                unapplied,
            }
        };

        // The second suggestion, the top one typed in by hand with a wrong remainder, a
        // deduction without its code, leaving the cash: each refused, naming the field.
        let r = service
            .resolve(request(ResolveAction::AcceptSuggestion(1), " "))
            .await;
        assert_eq!(field(r), "note");
        let r = service
            .resolve(request(
                apply(top.allocations.clone(), Some(dec!(0.01))),
                "",
            ))
            .await;
        assert_eq!(field(r), "unapplied");
        let mut short = second.allocations.clone();
        short[0].amount -= dec!(5.00);
        short[0].deduction = dec!(5.00);
        let r = service
            .resolve(request(apply(short.clone(), None), "short"))
            .await;
        assert_eq!(field(r), "allocations[0].reason_code");
        let mut negative = second.allocations.clone();
        negative[0].discount = dec!(-1);
        let r = service.resolve(request(apply(negative, None), "x")).await;
        assert_eq!(field(r), "allocations[0].discount");
        let r = service
            .resolve(request(ResolveAction::LeaveUnapplied, ""))
            .await;
        assert_eq!(field(r), "note");
        // More than an invoice has open: refused, naming the invoice and the amounts.
        let mut over = second.allocations.clone();
        over[0].discount = before[0].open_amount - over[0].amount + dec!(0.01);
        let r = service
            .resolve(request(apply(over, None), "customer says so"))
            .await;
        match r {
            Err(ServiceError::FailedPrecondition(m)) => {
                assert!(m.contains(&before[0].number), "{m}");
                assert!(m.contains(&before[0].open_amount.to_string()), "{m}");
            }
            other => panic!("over-application not refused: {other:?}"),
        }
        assert!(
            service
                .review_item("P-ambiguous".into())
                .await
                .expect("item")
                .resolution
                .is_none()
        );
        assert_eq!(service.invoices_now(ids.clone()), before, "nothing applied");
        assert!(
            service
                .audit_events(Some("P-ambiguous".into()), 0, 10)
                .await
                .expect("audit")
                .is_empty()
        );

        // The top suggestion re-entered by hand, balancing, follows the engine: no note needed.
        // A deduction with its code and a note is fine too (on the second suggestion's invoice).
        short[0].reason_code = Some("20".into());
        let applied: Decimal = short.iter().map(|a| a.amount).sum();
        let done = service
            .resolve(request(
                apply(short.clone(), Some(item.payment.amount - applied)),
                "customer deducted freight",
            ))
            .await
            .expect("resolved");
        let res = done.resolution.expect("resolution");
        assert_eq!(res.allocations, short);
        assert_eq!(res.note, "customer deducted freight");
        assert!(follows_engine(
            &item.decision.suggestions,
            &apply(top.allocations.clone(), None)
        ));
        service.store().close();
        let _ = std::fs::remove_dir_all(&dir);
    });
}
