//! Four eyes over gRPC: a resolution above the limit answers with its pending approval and posts
//! nothing; the analyst who proposed it approving it is PERMISSION_DENIED with a clear message
//! and still nothing posts; a second analyst's approval posts it.

use super::*;
use cashmatch::grpc::pb::postings_client::PostingsClient;
use cashmatch::service::FourEyes;

on_both_stores!(
    an_analyst_approving_their_own_resolution_is_refused_and_nothing_posts,
    2
);
async fn an_analyst_approving_their_own_resolution_is_refused_and_nothing_posts(b: Backend) {
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
        (
            TokenHash::of("t-bob"),
            "bob".to_string(),
            vec![Role::Analyst],
        ),
    ]);
    let server = start(&b, auth, Limits::default()).await;
    server.service.set_four_eyes(FourEyes {
        above: Decimal::ZERO,
        per_currency: Default::default(),
    });
    let ch = server.channel().await;
    let mut erp = Clients::new(&ch, Some("t-erp"));
    load_cases_ledger(&mut erp.ledger).await;
    for p in cases_payments() {
        erp.matching
            .match_payment(structured(p))
            .await
            .expect("match");
    }
    let mut alice = Clients::new(&ch, Some("t-alice"));
    let mut bob = Clients::new(&ch, Some("t-bob"));
    let items = alice
        .review
        .list_review_items(pb::ListReviewItemsRequest::default())
        .await
        .expect("queue")
        .into_inner()
        .items;
    let (id, customer) = items
        .iter()
        .find_map(|i| Some((i.payment_id.clone(), i.customer_id.clone()?)))
        .expect("an item with a customer");
    let put_on_account = pb::ResolveReviewItemRequest {
        payment_id: id.clone(),
        analyst: None,
        action: Some(pb::resolve_review_item_request::Action::PutOnAccount(
            pb::PutOnAccount {
                customer_id: customer,
            },
        )),
        note: "customer asked to keep it".into(),
    };
    let item = alice
        .review
        .resolve_review_item(put_on_account)
        .await
        .expect("submitted")
        .into_inner();
    let pending = item.pending_approval.expect("awaiting approval");
    assert!(item.resolution.is_none());
    assert_eq!(pending.proposed.map(|p| p.analyst), Some("alice".into()));
    assert_eq!(pending.state, pb::ApprovalState::Pending as i32);

    let postings = |ch: Channel, id: String| async move {
        PostingsClient::with_interceptor(ch, Bearer(Some("t-erp".into())))
            .list_postings(pb::ListPostingsRequest {
                subject: Some(pb::list_postings_request::Subject::PaymentId(id)),
                after_sequence: 0,
                limit: 0,
            })
            .await
            .expect("postings")
            .into_inner()
            .postings
            .len()
    };
    assert_eq!(postings(ch.clone(), id.clone()).await, 0);

    let decide = |note: &str| pb::DecideApprovalRequest {
        payment_id: id.clone(),
        analyst: None,
        note: note.into(),
    };
    let (c, msg) = code(alice.review.approve_resolution(decide("")).await);
    assert_eq!(c, Code::PermissionDenied, "{msg}");
    assert!(
        msg.contains("alice proposed this resolution and cannot approve it")
            && msg.contains("nothing was posted"),
        "{msg}"
    );
    assert_eq!(postings(ch.clone(), id.clone()).await, 0);
    let listed = bob
        .review
        .list_pending_approvals(pb::ListPendingApprovalsRequest {})
        .await
        .expect("pending")
        .into_inner()
        .approvals;
    assert_eq!(listed.len(), 1);

    let item = bob
        .review
        .approve_resolution(decide("checked"))
        .await
        .expect("approved")
        .into_inner();
    assert_eq!(
        item.resolution.map(|r| r.analyst),
        Some("alice".to_string())
    );
    assert!(postings(ch.clone(), id.clone()).await > 0);
    let actions: Vec<(String, String)> = bob
        .review
        .get_audit_trail(pb::GetAuditTrailRequest {
            payment_id: id.clone(),
            after_id: 0,
            limit: 0,
        })
        .await
        .expect("audit")
        .into_inner()
        .events
        .into_iter()
        .map(|e| (e.action, e.actor))
        .collect();
    assert!(
        actions.ends_with(&[
            ("request_approval".into(), "alice".into()),
            ("approve".into(), "bob".into())
        ]),
        "{actions:?}"
    );
    server.stop().await;
}
