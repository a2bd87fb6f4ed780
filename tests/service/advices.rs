//! Receipts and advices that arrive apart, through the service on both stores: a bank receipt
//! without detail is held, not decided; an advice submitted on its own waits for its money; the
//! two meet in either order and are decided as one payment; a hold that ends decides the receipt
//! alone and sends the advice to a person; an analyst links by hand (refused when the amounts do
//! not add up) and undoes a link (its postings reversed); a restart keeps what was held.

use super::*;
use cashmatch::advice::LinkConfig;
use cashmatch::domain::{Currency, Direction, Payer, RemittanceLine, Status, Terms};
use cashmatch::service::{Actor, ActorKind, AdviceSettings, HeldState, PostingFilter, PostingKind};
use chrono::NaiveDate;

/// December 2026: the 7th is a Monday.
fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 12, d).expect("a day of December 2026")
}

const NW_ACCOUNT: &str = "111:1111111";

async fn open(b: &Backend, as_of: u32) -> Arc<Service> {
    let service = Arc::new(
        Service::open_shared(
            b.store().await,
            None,
            EngineConfig::default(),
            Limits::default(),
        )
        .await
        .expect("service"),
    );
    hold_at(&service, as_of);
    service
}

/// Holding on, the hold reckoned at December `as_of`.
fn hold_at(service: &Service, as_of: u32) {
    service.set_advice_settings(AdviceSettings {
        hold_receipts: true,
        link: LinkConfig {
            as_of: Some(day(as_of)),
            ..LinkConfig::default()
        },
    });
}

/// Northwind (account 111:1111111) with two open invoices, and Bluegrass with one.
async fn ledger(service: &Arc<Service>) {
    let c = |id: &str, name: &str, acct: &str| Customer {
        id: id.into(),
        name: name.into(),
        parent_id: None,
        bank_accounts: vec![acct.into()],
    };
    let i = |id: &str, cust: &str, number: &str, amount: &str| Invoice {
        id: id.into(),
        customer_id: cust.into(),
        number: number.into(),
        po_number: None,
        invoice_date: day(1),
        due_date: day(30),
        currency: Currency::USD,
        amount: dec(amount),
        open_amount: dec(amount),
        terms: Terms::default(),
    };
    let out = service
        .upsert(
            vec![
                (0, c("NW", "Northwind Industrial Supply Inc", NW_ACCOUNT)),
                (1, c("BG", "Bluegrass Foods LLC", "222:2222222")),
            ],
            vec![
                (0, i("I1", "NW", "INV-100201", "1000.00")),
                (1, i("I2", "NW", "INV-100202", "500.00")),
                (2, i("I4", "BG", "INV-200301", "1000.00")),
            ],
        )
        .await
        .expect("ledger");
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
}

fn payment(id: &str, amount: &str, date: u32) -> Payment {
    Payment {
        payment_id: id.into(),
        format: "test".into(),
        direction: Direction::Credit,
        payment_date: Some(day(date)),
        amount: dec(amount),
        currency: Currency::USD,
        payer: Payer::default(),
        lines: vec![],
        free_text: vec![],
        warnings: vec![],
        returned: None,
    }
}

/// A bank credit from an account, with nothing else.
fn receipt(id: &str, amount: &str, date: u32, account: &str) -> Payment {
    let mut p = payment(id, amount, date);
    p.payer.account = Some(account.into());
    p
}

/// An advice naming its payer and its invoices with what each pays.
fn advice(id: &str, date: u32, name: &str, lines: &[(&str, &str)]) -> Payment {
    let total: Decimal = lines.iter().map(|l| dec(l.1)).sum();
    let mut p = payment(id, &total.to_string(), date);
    p.format = "csv".into();
    p.payer.name = Some(name.into());
    p.lines = lines
        .iter()
        .map(|(r, a)| RemittanceLine {
            reference: Some((*r).into()),
            amount_paid: Some(dec(a)),
            ..Default::default()
        })
        .collect();
    p
}

fn northwind_advice(id: &str, date: u32) -> Payment {
    advice(
        id,
        date,
        "NORTHWIND INDUSTRIAL SUPPLY",
        &[("INV-100201", "1000.00"), ("INV-100202", "500.00")],
    )
}

async fn open_amount(service: &Service, id: &str) -> Decimal {
    service
        .invoice(id.into())
        .await
        .expect("invoice")
        .open_amount
}

async fn audit_actions(service: &Service, subject: &str) -> Vec<String> {
    service
        .audit_events(Some(subject.into()), 0, 100)
        .await
        .expect("audit")
        .into_iter()
        .map(|e| e.record.action)
        .collect()
}

on_both_stores!(
    a_receipt_is_held_then_linked_and_decided_when_its_advice_arrives,
    2
);
async fn a_receipt_is_held_then_linked_and_decided_when_its_advice_arrives(b: Backend) {
    let service = open(&b, 7).await;
    ledger(&service).await;
    let r = receipt("R1", "1500.00", 7, NW_ACCOUNT);
    let held = service.match_payment(r.clone()).await.expect("match");
    assert_eq!(held.held.as_ref().map(|h| h.until), Some(day(9)));
    assert!(!service.is_decided("R1"), "a held receipt is not decided");
    assert_eq!(open_amount(&service, "I1").await, dec("1000.00"));
    // Sent again while held: the same answer, nothing new.
    let again = service.match_payment(r.clone()).await.expect("again");
    assert!(again.replayed && again.held.is_some());

    let out = service
        .submit_advices(vec![northwind_advice("A1", 8)], "erp")
        .await
        .expect("advice");
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    let standing = &out.advices[0];
    assert_eq!(standing.state, HeldState::Linked);
    let link = standing.link.clone().expect("linked");
    assert_eq!(link.receipts, vec!["R1".to_string()]);
    assert_eq!(link.advices, vec!["A1".to_string()]);
    // One payment: the receipt's money, the advice's detail, applied as any payment.
    let d = &standing.decisions[0].decision;
    assert_eq!(d.payment_id, "R1");
    assert_eq!(d.status, Status::Auto, "{:?}", d.explanation);
    assert_eq!(open_amount(&service, "I1").await, Decimal::ZERO);
    assert_eq!(open_amount(&service, "I2").await, Decimal::ZERO);
    let postings = service
        .postings(PostingFilter::Payment("R1".into()), 0, 100)
        .await
        .expect("postings");
    assert_eq!(
        postings
            .iter()
            .filter(|p| p.record.kind == PostingKind::Applied)
            .count(),
        2
    );
    assert_eq!(audit_actions(&service, &link.id).await, vec!["link_advice"]);
    // The AR system sending the receipt again gets the linked decision back.
    let replay = service.match_payment(r).await.expect("replay");
    assert!(replay.replayed && replay.held.is_none());
    assert_eq!(replay.decision.status, Status::Auto);
    let view = service.unlinked().await.expect("unlinked");
    assert!(view.receipts.is_empty() && view.advices.is_empty());
    assert_eq!(view.links.len(), 1);
}

on_both_stores!(
    an_advice_waits_for_its_money_and_the_receipt_is_decided_on_arrival,
    2
);
async fn an_advice_waits_for_its_money_and_the_receipt_is_decided_on_arrival(b: Backend) {
    let service = open(&b, 7).await;
    ledger(&service).await;
    let out = service
        .submit_advices(vec![northwind_advice("A1", 4)], "erp")
        .await
        .expect("advice");
    assert_eq!(out.advices[0].state, HeldState::Waiting);
    assert!(out.advices[0].decisions.is_empty());
    let view = service.unlinked().await.expect("unlinked");
    assert_eq!(view.advices.len(), 1);

    let m = service
        .match_payment(receipt("R1", "1500.00", 7, NW_ACCOUNT))
        .await
        .expect("match");
    assert!(m.held.is_none(), "linked at once, not held");
    assert_eq!(
        m.decision.status,
        Status::Auto,
        "{:?}",
        m.decision.explanation
    );
    assert_eq!(m.decision.allocations.len(), 2);
    assert!(service.is_decided("R1"));
}

on_both_stores!(
    when_the_hold_ends_the_receipt_is_decided_alone_and_the_advice_goes_to_a_person,
    2
);
async fn when_the_hold_ends_the_receipt_is_decided_alone_and_the_advice_goes_to_a_person(
    b: Backend,
) {
    let service = open(&b, 7).await;
    ledger(&service).await;
    let held = service
        .match_payment(receipt("R1", "1500.00", 7, NW_ACCOUNT))
        .await
        .expect("match");
    assert!(held.held.is_some());
    // Bluegrass's advice has no money behind it.
    service
        .submit_advices(
            vec![advice(
                "A9",
                7,
                "BLUEGRASS FOODS",
                &[("INV-200301", "1000.00")],
            )],
            "erp",
        )
        .await
        .expect("advice");
    assert_eq!(
        service.advance_holds().await.expect("advance"),
        Default::default(),
        "nothing ends within the hold"
    );
    assert!(!service.is_decided("R1"));

    // Thursday the 10th: two business days after Monday the 7th are over.
    hold_at(&service, 10);
    let advanced = service.advance_holds().await.expect("advance");
    assert_eq!(advanced.receipts_alone, 1);
    assert_eq!(advanced.advices_to_review, 1);
    let d = service.decision("R1".into()).await.expect("decided alone");
    assert!(
        d.explanation.iter().any(|l| l.starts_with("advice: ")),
        "{:?}",
        d.explanation
    );
    // Nothing but its amount and payer, as in the batch run (`review_receipts_alone`, on by
    // default): the matcher's answer is a suggestion for a person, not applied.
    assert_eq!(d.status, Status::Review, "{:?}", d.explanation);
    assert!(
        d.explanation
            .iter()
            .any(|l| l.contains(cashmatch::advice::REVIEW_ALONE)),
        "{:?}",
        d.explanation
    );
    let view = service.unlinked().await.expect("unlinked");
    assert!(view.receipts.is_empty());
    assert_eq!(view.advices.len(), 1);
    assert_eq!(view.advices[0].item.payment.payment_id, "A9");
    assert_eq!(view.advices[0].item.state, HeldState::Review);
    assert_eq!(
        audit_actions(&service, "A9").await,
        vec!["advice_to_review"]
    );
}

on_both_stores!(
    a_link_by_hand_is_refused_when_the_amounts_do_not_add_up_and_made_when_they_do,
    2
);
async fn a_link_by_hand_is_refused_when_the_amounts_do_not_add_up_and_made_when_they_do(
    b: Backend,
) {
    let service = open(&b, 7).await;
    ledger(&service).await;
    // A payer the ledger does not know, and an advice of Northwind's: the engine cannot tell.
    let mut r = payment("R1", "1500.00", 7);
    r.payer.name = Some("ACME TREASURY SERVICES".into());
    service.match_payment(r).await.expect("held");
    service
        .submit_advices(
            vec![
                advice(
                    "A1",
                    7,
                    "NORTHWIND INDUSTRIAL SUPPLY",
                    &[("INV-100201", "1000.00")],
                ),
                advice(
                    "A2",
                    7,
                    "NORTHWIND INDUSTRIAL SUPPLY",
                    &[("INV-100202", "500.00")],
                ),
            ],
            "erp",
        )
        .await
        .expect("advices");
    let view = service.unlinked().await.expect("unlinked");
    assert_eq!((view.receipts.len(), view.advices.len()), (1, 2));

    let refused = service
        .link_by_hand(
            vec!["R1".into()],
            vec!["A1".into()],
            "phoned".into(),
            "alice",
        )
        .await
        .expect_err("1500.00 against 1000.00");
    assert!(
        matches!(
            refused,
            cashmatch::service::ServiceError::FailedPrecondition(_)
        ),
        "{refused:?}"
    );
    assert!(refused.to_string().contains("do not add up"), "{refused}");
    assert!(!service.is_decided("R1"));

    let linked = service
        .link_by_hand(
            vec!["R1".into()],
            vec!["A1".into(), "A2".into()],
            "the treasury pays for Northwind".into(),
            "alice",
        )
        .await
        .expect("1000.00 + 500.00");
    assert_eq!(linked.link.linked_by, "alice");
    assert_eq!(linked.decisions.len(), 1);
    assert!(service.is_decided("R1"));
    assert_eq!(
        audit_actions(&service, &linked.link.id).await,
        vec!["link_advice"]
    );
}

on_both_stores!(
    undoing_a_link_reverses_its_postings_and_the_advice_waits_again,
    2
);
async fn undoing_a_link_reverses_its_postings_and_the_advice_waits_again(b: Backend) {
    let service = open(&b, 7).await;
    ledger(&service).await;
    service
        .match_payment(receipt("R1", "1500.00", 7, NW_ACCOUNT))
        .await
        .expect("held");
    let out = service
        .submit_advices(vec![northwind_advice("A1", 7)], "erp")
        .await
        .expect("advice");
    let link = out.advices[0].link.clone().expect("linked");
    assert_eq!(open_amount(&service, "I1").await, Decimal::ZERO);

    let alice = Actor {
        kind: ActorKind::Analyst,
        name: "alice".into(),
    };
    let missing_note = service
        .unlink(link.id.clone(), " ".into(), alice.clone())
        .await
        .expect_err("a note is required");
    assert!(
        missing_note.to_string().starts_with("note:"),
        "{missing_note}"
    );
    let undone = service
        .unlink(
            link.id.clone(),
            "the advice was for another payment".into(),
            alice.clone(),
        )
        .await
        .expect("unlink");
    assert_eq!(undone.unapplied, vec!["R1".to_string()]);
    assert_eq!(
        undone.link.unlinked.as_ref().map(|u| u.by.as_str()),
        Some("alice")
    );
    // The cash is given back to the invoices and the payment waits for a person.
    assert_eq!(open_amount(&service, "I1").await, dec("1000.00"));
    assert_eq!(open_amount(&service, "I2").await, dec("500.00"));
    let postings = service
        .postings(PostingFilter::Payment("R1".into()), 0, 100)
        .await
        .expect("postings");
    assert_eq!(
        postings
            .iter()
            .filter(|p| p.record.kind == PostingKind::Reversal)
            .count(),
        2
    );
    let item = service.review_item("R1".into()).await.expect("in review");
    assert_eq!(item.summary.state, cashmatch::service::ReviewState::Open);
    let view = service.unlinked().await.expect("unlinked");
    assert_eq!(view.advices.len(), 1, "the advice waits again");
    assert_eq!(view.advices[0].item.state, HeldState::Waiting);
    assert!(view.links.is_empty());
    assert_eq!(
        audit_actions(&service, &link.id).await,
        vec!["link_advice", "unlink_advice"]
    );
    let twice = service
        .unlink(link.id.clone(), "again".into(), alice)
        .await
        .expect_err("undone already");
    assert!(twice.to_string().contains("undone already"), "{twice}");
}

on_both_stores!(a_restart_keeps_held_receipts_and_waiting_advices, 2);
async fn a_restart_keeps_held_receipts_and_waiting_advices(b: Backend) {
    {
        let service = open(&b, 7).await;
        ledger(&service).await;
        let held = service
            .match_payment(receipt("R1", "1500.00", 7, NW_ACCOUNT))
            .await
            .expect("held");
        assert!(held.held.is_some());
        service
            .submit_advices(
                vec![advice(
                    "A9",
                    7,
                    "BLUEGRASS FOODS",
                    &[("INV-200301", "1000.00")],
                )],
                "erp",
            )
            .await
            .expect("advice");
        service.store().close();
    }
    let service = open(&b, 8).await;
    let view = service.unlinked().await.expect("unlinked");
    let ids = |items: &[cashmatch::service::UnlinkedItem]| {
        items
            .iter()
            .map(|i| i.item.payment.payment_id.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&view.receipts), vec!["R1"]);
    assert_eq!(ids(&view.advices), vec!["A9"]);
    // Its advice, after the restart: linked and decided.
    let out = service
        .submit_advices(vec![northwind_advice("A1", 8)], "erp")
        .await
        .expect("advice");
    assert_eq!(out.advices[0].state, HeldState::Linked);
    assert_eq!(out.advices[0].decisions[0].decision.status, Status::Auto);
}

/// Over gRPC with the advice fixtures: the bank file's six credits are held; the emailed CSV
/// advice is linked with its receipt and the response carries the decision; each call is its
/// role's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_grpc_bank_credits_are_held_and_an_emailed_advice_is_linked_with_its_receipt() {
    use cashmatch::grpc::pb::advices_client::AdvicesClient;
    let b = Backend::sqlite("advices_over_grpc");
    let auth = Auth::with_tokens([
        (
            TokenHash::of("t-erp"),
            "erp".to_string(),
            vec![Role::ArSystem],
        ),
        (
            TokenHash::of("t-alice"),
            "alice".to_string(),
            vec![Role::Analyst],
        ),
    ]);
    let server = start(&b, auth, Limits::default()).await;
    hold_at(&server.service, 9);
    let adv = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/advices");
    let customers = io::read_customers(adv.join("customers.csv"))
        .expect("customers")
        .rows;
    let invoices = io::read_invoices(adv.join("invoices.csv"))
        .expect("invoices")
        .rows;
    server
        .service
        .upsert(
            customers
                .into_iter()
                .enumerate()
                .map(|(i, c)| (i as u64, c))
                .collect(),
            invoices
                .into_iter()
                .enumerate()
                .map(|(i, v)| (i as u64, v))
                .collect(),
        )
        .await
        .expect("ledger");
    let ch = server.channel().await;
    let mut erp = Clients::new(&ch, Some("t-erp"));
    let bank = std::fs::read(adv.join("bank.csv")).expect("bank file");
    let r = erp
        .matching
        .match_payment(pb::MatchRequest {
            input: Some(Input::Raw(pb::RawRemittance {
                content: bank,
                format: None,
                file_name: "bank.csv".into(),
            })),
        })
        .await
        .expect("bank file")
        .into_inner();
    assert_eq!(r.results.len(), 6, "{:?}", r.errors);
    assert!(
        r.results
            .iter()
            .all(|m| m.decision.is_none() && m.held.is_some()),
        "every credit without detail is held: {:?}",
        r.results
    );

    let advices =
        |token: &str| AdvicesClient::with_interceptor(ch.clone(), Bearer(Some(token.to_string())));
    let mail = std::fs::read(adv.join("mail/northwind_csv.eml")).expect("mail");
    let submit = pb::SubmitAdviceRequest {
        input: Some(pb::submit_advice_request::Input::Raw(pb::RawRemittance {
            content: mail,
            format: None,
            file_name: "northwind_csv.eml".into(),
        })),
    };
    let denied = advices("t-alice")
        .submit_advice(submit.clone())
        .await
        .expect_err("an analyst does not submit advices");
    assert_eq!(denied.code(), Code::PermissionDenied);
    let out = advices("t-erp")
        .submit_advice(submit)
        .await
        .expect("submit")
        .into_inner();
    assert_eq!(out.advices.len(), 1, "{:?}", out.errors);
    let standing = &out.advices[0];
    assert_eq!(standing.state, pb::HeldState::Linked as i32);
    let link = standing.link.clone().expect("link");
    assert_eq!(link.receipt_ids, vec!["BNK-001".to_string()]);
    let d = standing.decisions[0].decision.clone().expect("decided");
    assert_eq!(d.payment_id, "BNK-001");

    let denied = advices("t-erp")
        .list_unlinked(pb::ListUnlinkedRequest {})
        .await
        .expect_err("the AR system does not link");
    assert_eq!(denied.code(), Code::PermissionDenied);
    let view = advices("t-alice")
        .list_unlinked(pb::ListUnlinkedRequest {})
        .await
        .expect("list")
        .into_inner();
    assert_eq!(view.receipts.len(), 5);
    assert_eq!(view.links.len(), 1);
    let refused = advices("t-alice")
        .link_advice(pb::LinkAdviceRequest {
            receipt_ids: vec!["BNK-006".into()],
            advice_ids: vec!["nope".into()],
            note: String::new(),
            analyst: None,
        })
        .await
        .expect_err("no such advice");
    assert_eq!(refused.code(), Code::NotFound);
    let undone = advices("t-alice")
        .unlink_advice(pb::UnlinkAdviceRequest {
            link_id: link.link_id.clone(),
            note: "checking".into(),
            analyst: None,
        })
        .await
        .expect("unlink")
        .into_inner();
    assert_eq!(
        undone.link.and_then(|l| l.unlinked_by),
        Some("alice".into())
    );
    server.stop().await;
}

/// Two replicas on one PostgreSQL database: the receipt reaches one, its advice the other. The
/// second finds the receipt in the store, links the pair and decides it once; the first then
/// sees the link and holds nothing, and settling again on either changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receipt_on_one_replica_links_with_its_advice_on_another() {
    let Some(b) = Backend::postgresql("advices_across_replicas") else {
        return;
    };
    let first = open(&b, 7).await;
    ledger(&first).await;
    let second = open(&b, 7).await;
    let held = first
        .match_payment(receipt("R1", "1500.00", 7, NW_ACCOUNT))
        .await
        .expect("match");
    assert!(
        held.held.is_some(),
        "the receipt is held on the first replica"
    );

    let out = second
        .submit_advices(vec![northwind_advice("A1", 8)], "erp")
        .await
        .expect("advice");
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    let standing = &out.advices[0];
    assert_eq!(standing.state, HeldState::Linked, "linked on the second");
    let d = &standing.decisions[0].decision;
    assert_eq!((d.payment_id.as_str(), d.status), ("R1", Status::Auto));
    // One decision in the store, whichever replica is asked.
    let stored = first.decision("R1".into()).await.expect("stored decision");
    assert_eq!(stored.status, Status::Auto);
    let view = first.unlinked().await.expect("unlinked");
    assert!(view.receipts.is_empty() && view.advices.is_empty());
    assert_eq!(view.links.len(), 1);
    // The advice sent again to the first replica is already linked: nothing new.
    let again = first
        .submit_advices(vec![northwind_advice("A1", 8)], "erp")
        .await
        .expect("advice again");
    assert!(again.advices.iter().all(|a| a.state == HeldState::Linked));
    assert_eq!(first.unlinked().await.expect("unlinked").links.len(), 1);
    let postings = first
        .postings(PostingFilter::Payment("R1".into()), 0, 100)
        .await
        .expect("postings");
    assert_eq!(
        postings
            .iter()
            .filter(|p| p.record.kind == PostingKind::Applied)
            .count(),
        2,
        "applied once"
    );
}

/// Two replicas on one PostgreSQL database undo the same link at the same moment: one undoes
/// it (its cash unapplied once), the other answers that it was undone already, as for a link
/// undone earlier, not with a conflict.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_link_undone_on_two_replicas_at_once_is_undone_once() {
    let Some(b) = Backend::postgresql("advices_unlink_across_replicas") else {
        return;
    };
    let first = open(&b, 7).await;
    ledger(&first).await;
    let second = open(&b, 7).await;
    first
        .match_payment(receipt("R1", "1500.00", 7, NW_ACCOUNT))
        .await
        .expect("held");
    let out = first
        .submit_advices(vec![northwind_advice("A1", 7)], "erp")
        .await
        .expect("advice");
    let link = out.advices[0].link.clone().expect("linked");
    let alice = Actor {
        kind: ActorKind::Analyst,
        name: "alice".into(),
    };
    let (a, b2) = tokio::join!(
        first.unlink(link.id.clone(), "wrong advice".into(), alice.clone()),
        second.unlink(link.id.clone(), "wrong advice".into(), alice.clone()),
    );
    let (done, refused): (Vec<_>, Vec<_>) = [a, b2].into_iter().partition(|r| r.is_ok());
    assert_eq!(done.len(), 1, "undone once: {refused:?}");
    let refused = refused
        .into_iter()
        .filter_map(|r| r.err())
        .map(|e| e.to_string())
        .collect::<Vec<_>>();
    assert_eq!(refused.len(), 1);
    assert!(
        refused[0].contains("undone already"),
        "the other replica says it was undone already: {refused:?}"
    );
    // The cash was unapplied once: the invoices are open again, not twice over.
    assert_eq!(open_amount(&first, "I1").await, dec("1000.00"));
}
